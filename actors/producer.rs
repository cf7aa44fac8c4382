//! The producer actor: writes every batch to Kafka, in the order received.
//!
//! It runs on a thread of its own (a `SyncArbiter` of one), because
//! committing a transaction or flushing blocks; the route timers never wait
//! for it. A batch that fails is retried until it is written, and batches
//! behind it wait in the mailbox, so nothing is dropped or reordered. Only a
//! shutdown, or a broker that refuses a batch for good (too large, invalid),
//! gives up on a batch, and then the batch is logged as undelivered.
//!
//! Offsets: a batch caused by a consumed record carries that record's
//! position, and the producer commits it only once the batch is written:
//! inside the batch's transaction where the broker has transactions, and
//! with the consumer right after in every case. Because the mailbox is in
//! order, a partition's offsets are committed in order too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use actix::prelude::*;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::batch_writer::{BatchWriter, DeliveryMode};
use crate::clock::Clock;
use crate::kafka_consumer::GroupConsumer;
use crate::wire::{Batch, OutgoingRecord};

/// First pause after a failed write; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Write this batch, then commit the consumed record that caused it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct EmitBatch {
    pub batch: Batch,
    pub commit: Option<OffsetCommit>,
}

impl EmitBatch {
    /// A batch with no consumed record behind it (a trip event).
    pub fn new(batch: Batch) -> Self {
        EmitBatch {
            batch,
            commit: None,
        }
    }
}

/// The position after a consumed record, to commit for its group.
pub struct OffsetCommit {
    pub consumer: Arc<GroupConsumer>,
    pub topic: String,
    pub partition: i32,
    /// The record's offset + 1: where the group resumes.
    pub next_offset: i64,
}

impl std::fmt::Debug for OffsetCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OffsetCommit(topic={} partition={} next_offset={})",
            self.topic, self.partition, self.next_offset
        )
    }
}

impl OffsetCommit {
    fn partition_list(&self) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        // Cannot fail: the offset is a plain position.
        let _ = list.add_partition_offset(
            &self.topic,
            self.partition,
            Offset::Offset(self.next_offset),
        );
        list
    }

    /// Commits through the consumer. `Async` does not wait for the answer:
    /// a later commit of the same partition covers a lost one, and a flush
    /// commits the last ones again with `Sync`.
    fn commit_with_consumer(&self, mode: CommitMode) {
        if let Err(error) = self.consumer.commit(&self.partition_list(), mode) {
            log::warn!("failed to commit offset, the record may be handled again after a restart {self:?} error={error}");
        }
    }

    /// Whether this consumer still owns the partition.
    fn still_assigned(&self) -> bool {
        self.consumer
            .assignment()
            .map(|list| list.find_partition(&self.topic, self.partition).is_some())
            .unwrap_or(false)
    }
}
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
    /// The last offset committed without waiting, per (topic, partition),
    /// committed again with `Sync` on flush so a stop loses none.
    unconfirmed_commits: HashMap<(String, i32), OffsetCommit>,
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
            unconfirmed_commits: HashMap::new(),
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

    // NOTE: one transaction per batch, one after another: about 2.6 ms each
    // on the embedded broker (release build), so a burst of hundreds of
    // batches at one instant delivers its last ones up to a second late.
    // Writing the queued batches together in one transaction would not.
    fn write(&mut self, batch: Batch, mut commit: Option<OffsetCommit>) {
        // Past the shutdown deadline every queued batch is reported, not
        // tried: the process is about to exit. Its offset stays uncommitted,
        // so a batch caused by a consumed record is made again after restart.
        if self.is_shutting_down() && !batch.records.is_empty() {
            self.counters.undelivered += 1;
            log::error!("batch not written, the service is stopping batch={batch:?}");
            return;
        }

        if batch.records.is_empty() {
            if let Some(commit) = commit {
                self.commit_without_waiting(commit);
            }
            return;
        }

        let mut pending: Vec<&OutgoingRecord> = batch.records.iter().collect();
        let mut backoff = FIRST_BACKOFF;

        while let Some(writer) = self.connect() {
            let transactional = matches!(writer.mode(), DeliveryMode::Transactional { .. });
            let offsets = match &commit {
                Some(commit) if transactional => commit
                    .consumer
                    .group_metadata()
                    .map(|group| (commit.partition_list(), group)),
                _ => None,
            };
            let offsets_ref = offsets.as_ref().map(|(list, group)| (list, group));

            match writer.write(&pending, offsets_ref) {
                Ok(()) => {
                    // Committed through the consumer as well when it was
                    // in the transaction: the same offset twice is harmless,
                    // and librdkafka's mock cluster accepts transactional
                    // offsets without storing them.
                    if let Some(commit) = commit {
                        self.commit_without_waiting(commit);
                    }
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
                Err(failure) if failure.is_permanent() => {
                    // Retrying would stall every batch behind this one.
                    // The offset still moves on: the record was handled,
                    // its output is what failed, and it is logged here.
                    self.counters.undelivered += 1;
                    log::error!(
                        "broker refused the batch for good, dropping it error={} batch={batch:?}",
                        failure.error
                    );
                    if let Some(commit) = commit {
                        self.commit_without_waiting(commit);
                    }
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

                    // After a rebalance the offsets belong to another group
                    // member, which handles the record again; keep the
                    // records, drop the offsets, or the batch never lands.
                    if failure.offsets_rejected
                        && commit.as_ref().is_some_and(|c| !c.still_assigned())
                    {
                        log::warn!(
                            "partition no longer assigned, writing the batch without its offset; the record will be handled again {:?} {}",
                            commit,
                            batch.cause
                        );
                        commit = None;
                    }
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

impl Producer {
    fn commit_without_waiting(&mut self, commit: OffsetCommit) {
        commit.commit_with_consumer(CommitMode::Async);
        self.unconfirmed_commits
            .insert((commit.topic.clone(), commit.partition), commit);
    }

    /// Commits the last offset of each partition and waits for the answer.
    fn confirm_commits(&mut self) {
        for (_, commit) in self.unconfirmed_commits.drain() {
            commit.commit_with_consumer(CommitMode::Sync);
        }
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
        self.write(message.batch, message.commit);
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
        self.confirm_commits();
        MessageResult(self.counters)
    }
}
