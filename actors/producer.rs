//! The producer actor: writes every batch to Kafka, in the order received.
//!
//! It runs on a thread of its own (a `SyncArbiter` of one), because
//! committing a transaction or flushing blocks; the route timers never wait
//! for it. A batch that fails is retried until it is written, and batches
//! behind it wait in the mailbox, so nothing is dropped or reordered. Only a
//! shutdown gives up on a batch, and then the batch is logged as undelivered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use actix::prelude::*;

use crate::batch_writer::{BatchWriter, DeliveryMode};
use crate::clock::Clock;
use crate::wire::{Batch, OutgoingRecord};

/// First pause after a failed write; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Write this batch.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct EmitBatch(pub Batch);

/// Write everything queued so far, then answer with the counters. Because
/// the mailbox is in order, the answer comes after every earlier batch.
#[derive(Message, Debug)]
#[rtype(result = "ProducerCounters")]
pub struct Flush;

/// What the producer has done since start-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProducerCounters {
    /// Batches written whole.
    pub batches: u64,
    /// Records in those batches.
    pub records: u64,
    /// Write attempts that failed and were tried again.
    pub failures: u64,
    /// Batches given up at shutdown.
    pub undelivered: u64,
}

pub struct Producer {
    bootstrap_servers: String,
    transactional_id: String,
    clock: Arc<dyn Clock>,
    /// Set by the shutdown sequence: stop retrying, give up after one attempt.
    shutting_down: Arc<AtomicBool>,
    writer: Option<BatchWriter>,
    counters: ProducerCounters,
}

impl Producer {
    pub fn new(
        bootstrap_servers: String,
        transactional_id: String,
        clock: Arc<dyn Clock>,
        shutting_down: Arc<AtomicBool>,
    ) -> Self {
        Producer {
            bootstrap_servers,
            transactional_id,
            clock,
            shutting_down,
            writer: None,
            counters: ProducerCounters::default(),
        }
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Connects once, retrying while the broker is unreachable.
    fn connect(&mut self) -> Option<&mut BatchWriter> {
        let mut backoff = FIRST_BACKOFF;

        while self.writer.is_none() {
            match BatchWriter::connect(&self.bootstrap_servers, &self.transactional_id) {
                Ok(writer) => {
                    match writer.mode() {
                        DeliveryMode::Transactional { transactional_id } => log::info!(
                            "producer connected, each batch is one transaction transactional_id={transactional_id}"
                        ),
                        DeliveryMode::Idempotent => log::info!(
                            "producer connected, broker has no transactions so batches are flushed as a unit, at least once"
                        ),
                    }
                    self.writer = Some(writer);
                }
                Err(error) => {
                    log::warn!(
                        "failed to connect producer, will try again bootstrap={} error={error}",
                        self.bootstrap_servers
                    );
                    if self.is_shutting_down() {
                        return None;
                    }
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.writer.as_mut()
    }

    fn write(&mut self, batch: Batch) {
        let mut pending: Vec<&OutgoingRecord> = batch.records.iter().collect();
        let mut backoff = FIRST_BACKOFF;

        while let Some(writer) = self.connect() {
            match writer.write(&pending) {
                Ok(()) => {
                    self.counters.batches += 1;
                    self.counters.records += batch.records.len() as u64;
                    let late = batch
                        .scheduled_at
                        .map_or("none".to_string(), |at| (self.clock.now() - at).to_string());
                    log::debug!(
                        "batch written records={} delivered_late_ms={late} {}",
                        batch.records.len(),
                        batch.cause
                    );
                    return;
                }
                Err(failure) => {
                    self.counters.failures += 1;
                    log::warn!(
                        "failed to write batch, will try again undelivered={} error={} {}",
                        failure.undelivered.len(),
                        failure.error,
                        batch.cause
                    );
                    pending = failure
                        .undelivered
                        .iter()
                        .map(|&position| pending[position])
                        .collect();
                }
            }

            if self.is_shutting_down() {
                break;
            }
            thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }

        self.counters.undelivered += 1;
        log::error!(
            "batch not delivered before shutdown records={} batch={batch:?}",
            pending.len()
        );
    }
}

impl Actor for Producer {
    type Context = SyncContext<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        self.connect();
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        log::info!(
            "producer stopped batches={} records={} failures={} undelivered={}",
            self.counters.batches,
            self.counters.records,
            self.counters.failures,
            self.counters.undelivered
        );
    }
}

impl Handler<EmitBatch> for Producer {
    type Result = ();

    fn handle(&mut self, message: EmitBatch, _ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "producer received message={message:?}");
        self.write(message.0);
    }
}

impl Handler<Flush> for Producer {
    type Result = MessageResult<Flush>;

    fn handle(&mut self, message: Flush, _ctx: &mut Self::Context) -> Self::Result {
        log::debug!(target: "mailbox", "producer received message={message:?}");

        if let Some(writer) = &self.writer {
            if let Err(error) = writer.flush(Duration::from_secs(3)) {
                log::warn!("failed to flush producer error={error}");
            }
        }
        MessageResult(self.counters)
    }
}
