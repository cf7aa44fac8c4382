//! The producer actor: writes every batch to Kafka, in the order received.
//!
//! The actor only queues; a writer thread of its own does the blocking work
//! (committing a transaction, flushing), so the route timers never wait for
//! it. The writer takes everything queued at once and writes it as one
//! transaction: a burst of trip events at one instant costs one commit, not
//! one per batch, and each batch still lands whole because the transaction
//! does. A write that fails is retried until it succeeds, and batches behind
//! it wait, so nothing is dropped. Only a shutdown, or a broker
//! that rejects a batch for good (too large, invalid), gives up on a batch,
//! and then the batch is logged as undelivered.
//!
//! Offsets: a batch caused by a consumed record carries that record's
//! position, and the writer commits it only once the batch is written:
//! inside the transaction where the broker has transactions, and with the
//! consumer right after in every case. Because the queue is in order, a
//! partition's offsets are committed in order too.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use actix::prelude::*;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerGroupMetadata};
use rdkafka::{Offset, TopicPartitionList};

use crate::batch_writer::{is_too_large, BatchWriter, DeliveryMode, MAX_RECORD_BYTES};
use crate::clock::Clock;
use crate::kafka_consumer::GroupConsumer;
use crate::memory;
use crate::metrics::{Metrics, WriterTotals};
use crate::wire::{Batch, OutgoingRecord};

/// First pause after a failed write; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Most records the writer puts in one transaction. Keeps one write well
/// inside librdkafka's queue and the broker's request size limits.
const MAX_GROUP_RECORDS: usize = 5_000;

/// Most records the writer flushes as one unit without transactions. Such
/// brokers can be slow: tansu 0.6 on SQLite stores a few hundred records a
/// second on a 2-core machine, and a write must end inside the 10 s
/// delivery timeout, or it is sent again and lands twice.
const MAX_IDEMPOTENT_GROUP_RECORDS: usize = 500;

/// Records written after which the writer, once its queue is empty, hands
/// free heap memory back to the operating system: a burst of trip events
/// leaves it fragmented (see `memory`).
const RELEASE_MEMORY_AFTER_RECORDS: u64 = 10_000;

/// Write this batch, then commit the consumed record that caused it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct EmitBatch {
    pub batch: Batch,
    pub commit: Option<OffsetCommit>,
}

impl EmitBatch {
    /// Wraps a batch with no consumed record behind it (a trip event).
    pub fn new(batch: Batch) -> Self {
        EmitBatch {
            batch,
            commit: None,
        }
    }
}

/// The position after a consumed record, to commit for its group.
#[derive(Clone)]
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

    /// Returns whether the consumer still owns the partition. After a rebalance
    /// another group member owns it and has moved on, so committing this
    /// older offset would move the group back.
    fn is_assigned(&self) -> bool {
        let assigned = self
            .consumer
            .assignment()
            .map(|list| list.find_partition(&self.topic, self.partition).is_some())
            .unwrap_or(false);
        if !assigned {
            log::warn!("partition no longer assigned, not committing its offset; the new owner handles the record again {self:?}");
        }
        assigned
    }

    /// Commits through the consumer. `Async` does not wait for the response:
    /// a later commit of the same partition covers a lost one, and a flush
    /// commits the last ones again with `Sync`.
    fn commit_with_consumer(&self, mode: CommitMode) {
        if let Err(error) = self.consumer.commit(&self.partition_list(), mode) {
            log::warn!("failed to commit offset, the record may be handled again after a restart {self:?} error={error}");
        }
    }
}

/// Write everything queued so far, then reply with the counters. The
/// reply comes after every earlier batch is written or given up.
#[derive(Message, Debug)]
#[rtype(result = "ProducerCounters")]
pub struct Flush;

/// Counts of the producer's work since start-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProducerCounters {
    /// Batches written whole.
    pub batches: u64,
    /// Records in those batches.
    pub records: u64,
    /// Transactions written (each contains one or more batches).
    pub transactions: u64,
    /// Write attempts that failed and were tried again.
    pub failures: u64,
    /// Batches given up: at shutdown, or rejected by the broker for good.
    pub undelivered: u64,
}

/// One entry of the writer's queue.
enum Work {
    Batch(EmitBatch),
    Flush(mpsc::Sender<ProducerCounters>),
}

/// The queue between the actor and its writer thread.
#[derive(Default)]
struct WorkQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    work: VecDeque<Work>,
    closed: bool,
}

impl WorkQueue {
    fn push(&self, work: Work) {
        self.state
            .lock()
            .expect("producer queue lock")
            .work
            .push_back(work);
        self.ready.notify_one();
    }

    fn is_empty(&self) -> bool {
        self.state
            .lock()
            .expect("producer queue lock")
            .work
            .is_empty()
    }

    fn close(&self) {
        self.state.lock().expect("producer queue lock").closed = true;
        self.ready.notify_one();
    }

    /// Waits for work and takes as much as one transaction should hold:
    /// everything queued, up to `limit` records, ending early at a flush.
    /// `None` once the queue is closed and empty.
    fn take(&self, limit: usize) -> Option<Vec<Work>> {
        let mut state = self.state.lock().expect("producer queue lock");
        while state.work.is_empty() && !state.closed {
            state = self.ready.wait(state).expect("producer queue lock");
        }

        let mut taken = Vec::new();
        let mut records = 0;
        while let Some(next) = state.work.front() {
            let size = match next {
                Work::Batch(emit) => emit.batch.records.len(),
                Work::Flush(_) => 0,
            };
            if !taken.is_empty() && records + size > limit {
                break;
            }
            records += size;

            let work = state.work.pop_front().expect("front exists");
            let is_flush = matches!(work, Work::Flush(_));
            taken.push(work);
            if is_flush {
                break;
            }
        }
        // A burst of 100,000 trip events grows the queue to about 15 MB;
        // without this the idle service would keep that memory.
        if state.work.is_empty() {
            state.work.shrink_to(MAX_GROUP_RECORDS);
        }
        (!taken.is_empty()).then_some(taken)
    }
}

pub struct Producer {
    queue: Arc<WorkQueue>,
    /// Set once the writer has reached the broker.
    connected: Arc<AtomicBool>,
}

impl Producer {
    /// Starts the writer thread; it connects to the broker by itself, and
    /// batches queue up until it has.
    pub fn new(
        bootstrap_servers: String,
        transactional_id: String,
        clock: Arc<dyn Clock>,
        shutting_down: Arc<AtomicBool>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let queue = Arc::new(WorkQueue::default());
        let connected = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            connected: Arc::clone(&connected),
            metrics,
            bootstrap_servers,
            transactional_id,
            clock,
            shutting_down,
            writer: None,
            counters: ProducerCounters::default(),
            records_at_release: 0,
            unconfirmed_commits: HashMap::new(),
        };

        let writer_queue = Arc::clone(&queue);
        thread::Builder::new()
            .name("kafka-writer".to_string())
            .spawn(move || writer.run(&writer_queue))
            .expect("start the Kafka writer thread");
        Producer { queue, connected }
    }

    /// Returns a flag that turns true once the producer has reached the
    /// broker.
    pub fn connected(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.connected)
    }
}

impl Actor for Producer {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.queue.close();
    }
}

impl Handler<EmitBatch> for Producer {
    type Result = ();

    fn handle(&mut self, message: EmitBatch, _ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "producer received message={message:?}");
        self.queue.push(Work::Batch(message));
    }
}

impl Handler<Flush> for Producer {
    type Result = ResponseFuture<ProducerCounters>;

    fn handle(&mut self, message: Flush, _ctx: &mut Self::Context) -> Self::Result {
        log::debug!(target: "mailbox", "producer received message={message:?}");

        let (sender, answer) = mpsc::channel();
        self.queue.push(Work::Flush(sender));
        Box::pin(async move {
            match actix_rt::task::spawn_blocking(move || answer.recv()).await {
                Ok(Ok(counters)) => counters,
                _ => {
                    log::error!("Kafka writer thread ended before the flush");
                    ProducerCounters::default()
                }
            }
        })
    }
}

/// The writer thread's state: the Kafka producer and what it has done.
struct Writer {
    connected: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    bootstrap_servers: String,
    transactional_id: String,
    clock: Arc<dyn Clock>,
    /// Set by the shutdown sequence: stop retrying, report what is left.
    shutting_down: Arc<AtomicBool>,
    writer: Option<BatchWriter>,
    counters: ProducerCounters,
    /// `counters.records` when free memory was last released.
    records_at_release: u64,
    /// The last offset committed without waiting, per (topic, partition),
    /// committed again with `Sync` on flush so a stop loses none.
    unconfirmed_commits: HashMap<(String, i32), OffsetCommit>,
}

impl Writer {
    fn run(mut self, queue: &WorkQueue) {
        self.connect();

        while let Some(taken) = queue.take(self.group_limit()) {
            let mut group = Vec::new();
            for work in taken {
                match work {
                    Work::Batch(emit) => group.push(emit),
                    Work::Flush(answer) => {
                        self.write_group(std::mem::take(&mut group));
                        self.flush();
                        let _ = answer.send(self.counters);
                    }
                }
            }
            self.write_group(group);
            if self.counters.records - self.records_at_release >= RELEASE_MEMORY_AFTER_RECORDS
                && queue.is_empty()
            {
                memory::release_free_memory();
                self.records_at_release = self.counters.records;
            }
            self.metrics.set_writer_totals(WriterTotals {
                batches: self.counters.batches,
                records: self.counters.records,
                transactions: self.counters.transactions,
                failures: self.counters.failures,
                undelivered: self.counters.undelivered,
            });
        }

        log::info!(
            "producer stopped batches={} records={} transactions={} failures={} undelivered={}",
            self.counters.batches,
            self.counters.records,
            self.counters.transactions,
            self.counters.failures,
            self.counters.undelivered
        );
    }

    /// Returns the maximum records to write as one unit in the current
    /// delivery mode.
    fn group_limit(&self) -> usize {
        match self.writer.as_ref().map(BatchWriter::mode) {
            Some(DeliveryMode::Idempotent) => MAX_IDEMPOTENT_GROUP_RECORDS,
            _ => MAX_GROUP_RECORDS,
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
                            "producer connected, each batch is written in a transaction transactional_id={transactional_id}"
                        ),
                        DeliveryMode::Idempotent => log::info!(
                            "producer connected, broker has no transactions so batches are flushed as a unit, at least once"
                        ),
                    }
                    self.writer = Some(writer);
                    self.connected.store(true, Ordering::SeqCst);
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

    /// Writes the batches of `group` as one unit, then commits their offsets
    /// in order.
    fn write_group(&mut self, group: Vec<EmitBatch>) {
        if group.is_empty() {
            return;
        }

        // Past the shutdown deadline every queued batch is reported, not
        // tried: the process is about to exit. Its offset stays uncommitted,
        // so a batch caused by a consumed record is made again after restart.
        if self.is_shutting_down() {
            for emit in group.iter().filter(|emit| !emit.batch.records.is_empty()) {
                self.counters.undelivered += 1;
                log::error!(
                    "batch not written, the service is stopping batch={:?}",
                    emit.batch
                );
            }
            return;
        }

        // A batch with a record librdkafka would reject as too large is
        // dropped before the transaction starts: sent, it would fail the
        // whole transaction. It keeps its place for the offset commits.
        let too_large: Vec<bool> = group
            .iter()
            .map(|emit| emit.batch.records.iter().any(is_too_large))
            .collect();
        for emit in group
            .iter()
            .zip(&too_large)
            .filter(|(_, too_large)| **too_large)
            .map(|(emit, _)| emit)
        {
            self.counters.undelivered += 1;
            log::error!(
                "batch holds a record over {MAX_RECORD_BYTES} bytes, dropping it batch={:?}",
                emit.batch
            );
        }

        // Each record with the position of its batch in the group, so a
        // failure can be traced back to the batches it touches.
        let mut pending: Vec<(usize, &OutgoingRecord)> = group
            .iter()
            .enumerate()
            .filter(|(index, _)| !too_large[*index])
            .flat_map(|(index, emit)| emit.batch.records.iter().map(move |record| (index, record)))
            .collect();
        if pending.is_empty() {
            self.commit_offsets(group);
            return;
        }

        let mut with_offsets = true;
        let mut backoff = FIRST_BACKOFF;
        while let Some(writer) = self.connect() {
            let transactional = matches!(writer.mode(), DeliveryMode::Transactional { .. });
            let offsets = if transactional && with_offsets {
                offsets_by_consumer(&group)
            } else {
                Vec::new()
            };

            let records: Vec<&OutgoingRecord> = pending.iter().map(|(_, record)| *record).collect();
            let failure = match writer.write(&records, &offsets) {
                Ok(()) => {
                    self.counters.transactions += 1;
                    self.report_written(&group, &too_large);
                    self.commit_offsets(group);
                    return;
                }
                Err(failure) => failure,
            };
            pending = failure
                .undelivered
                .iter()
                .map(|&position| pending[position])
                .collect();

            if failure.is_permanent() {
                // Only batches with records still undelivered go on: in
                // idempotent mode the others already landed.
                let unfinished: Vec<bool> = (0..group.len())
                    .map(|index| pending.iter().any(|(batch, _)| *batch == index))
                    .collect();
                self.split_rejected(group, unfinished, &too_large, &failure.error);
                return;
            }

            self.counters.failures += 1;
            log::warn!(
                "failed to write batches, will try again batches={} undelivered_records={} error={} first={}",
                group.len(),
                failure.undelivered.len(),
                failure.error,
                group[0].batch.cause
            );
            // After a rebalance the offsets belong to another group member.
            // The records still go out; their offsets are not committed
            // (see `is_assigned`), and the new owner handles them again.
            if failure.offsets_rejected {
                with_offsets = false;
            }

            if self.is_shutting_down() {
                break;
            }
            thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }

        let unwritten = group
            .iter()
            .zip(&too_large)
            .filter(|(_, too_large)| !**too_large);
        for (emit, _) in unwritten.filter(|(emit, _)| !emit.batch.records.is_empty()) {
            self.counters.undelivered += 1;
            log::error!("batch not delivered before shutdown batch={:?}", emit.batch);
        }
    }

    /// Handles a group the broker rejected for good: batches that landed
    /// are reported and committed, and the unfinished ones are written one
    /// by one, so only the batch at fault is dropped.
    fn split_rejected(
        &mut self,
        group: Vec<EmitBatch>,
        unfinished: Vec<bool>,
        too_large: &[bool],
        error: &rdkafka::error::KafkaError,
    ) {
        let unfinished_count = unfinished.iter().filter(|flag| **flag).count();
        if unfinished_count == 1 && group.len() == 1 {
            // Retrying would stall every batch behind this one. The offset
            // still moves on: the record was handled, its output is what
            // failed, and it is logged here.
            self.counters.undelivered += 1;
            log::error!(
                "broker rejected the batch for good, dropping it error={error} batch={:?}",
                group[0].batch
            );
            self.commit_offsets(group);
            return;
        }

        for ((emit, unfinished), too_large) in group.into_iter().zip(unfinished).zip(too_large) {
            if unfinished {
                self.write_group(vec![emit]);
            } else {
                // Landed, or already dropped as too large: report and commit
                // in queue order.
                self.report_written(std::slice::from_ref(&emit), &[*too_large]);
                self.commit_offsets(vec![emit]);
            }
        }
    }

    fn report_written(&mut self, group: &[EmitBatch], too_large: &[bool]) {
        let now = self.clock.now();

        let written = group
            .iter()
            .zip(too_large)
            .filter(|(_, too_large)| !**too_large);
        for (emit, _) in written.filter(|(emit, _)| !emit.batch.records.is_empty()) {
            let batch = &emit.batch;
            self.counters.batches += 1;
            self.counters.records += batch.records.len() as u64;

            if let Some(at) = batch.scheduled_at {
                self.metrics.observe_delivery(at, now);
            }
            let late = batch
                .scheduled_at
                .map_or("none".to_string(), |at| (now - at).to_string());
            log::debug!(
                "batch written records={} delivered_late_ms={late} {}",
                batch.records.len(),
                batch.cause
            );
        }
    }

    /// Commits the last offset of each partition in `group` through its
    /// consumer. A partition's later offset covers its earlier ones, and
    /// each `is_assigned` waits for librdkafka's main thread, so one check
    /// and one commit per partition, not per batch, keep the writer fast.
    fn commit_offsets(&mut self, group: Vec<EmitBatch>) {
        let mut last_per_partition: Vec<OffsetCommit> = Vec::new();
        for commit in group.into_iter().filter_map(|emit| emit.commit) {
            let same_partition = last_per_partition.iter_mut().find(|last| {
                Arc::ptr_eq(&last.consumer, &commit.consumer)
                    && last.topic == commit.topic
                    && last.partition == commit.partition
            });
            match same_partition {
                Some(last) => {
                    if commit.next_offset > last.next_offset {
                        *last = commit;
                    }
                }
                None => last_per_partition.push(commit),
            }
        }

        for commit in last_per_partition {
            if !commit.is_assigned() {
                continue;
            }
            commit.commit_with_consumer(CommitMode::Async);
            self.unconfirmed_commits
                .insert((commit.topic.clone(), commit.partition), commit);
        }
    }

    /// Delivers the records librdkafka still has, and commits the last
    /// offset of each partition, waiting for the response.
    fn flush(&mut self) {
        if let Some(writer) = &self.writer {
            if let Err(error) = writer.flush(Duration::from_secs(3)) {
                log::warn!("failed to flush producer error={error}");
            }
        }
        for (_, commit) in self.unconfirmed_commits.drain() {
            if commit.is_assigned() {
                commit.commit_with_consumer(CommitMode::Sync);
            }
        }
    }
}

/// Highest next offset per (topic, partition) of one consumer.
type ConsumerPositions<'a> = (&'a Arc<GroupConsumer>, HashMap<(&'a str, i32), i64>);

/// Collects the highest offset per partition of each consumer in `group`,
/// to commit inside the transaction.
fn offsets_by_consumer(group: &[EmitBatch]) -> Vec<(TopicPartitionList, ConsumerGroupMetadata)> {
    let mut by_consumer: HashMap<*const GroupConsumer, ConsumerPositions> = HashMap::new();
    for commit in group.iter().filter_map(|emit| emit.commit.as_ref()) {
        let (_, positions) = by_consumer
            .entry(Arc::as_ptr(&commit.consumer))
            .or_insert_with(|| (&commit.consumer, HashMap::new()));
        let position = positions
            .entry((commit.topic.as_str(), commit.partition))
            .or_insert(0);
        *position = (*position).max(commit.next_offset);
    }

    by_consumer
        .into_values()
        .filter_map(|(consumer, positions)| {
            let group_metadata = consumer.group_metadata()?;
            let mut list = TopicPartitionList::new();
            for ((topic, partition), next_offset) in positions {
                list.add_partition_offset(topic, partition, Offset::Offset(next_offset))
                    .ok()?;
            }
            Some((list, group_metadata))
        })
        .collect()
}
