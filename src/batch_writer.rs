//! Writes batches to Kafka, whole or not at all where the broker allows it.
//!
//! Delivery modes, chosen once at connect time:
//!
//! - **Transactional**: the broker accepted `InitProducerId` for our
//!   transactional id, so each write (the records of one or more batches) is
//!   one transaction. Consumers reading with `isolation.level=read_committed`
//!   see a write whole or not at all.
//! - **Idempotent**: the broker does not support transactions. Each write is
//!   sent with the idempotent producer and flushed as a unit. A record that
//!   failed is sent again by the caller, so delivery is at least once: a
//!   record can be duplicated, and a resent record lands after later
//!   records of its partition that succeeded the first time.
//!
//! Blocking calls (commit, flush) happen here, so this runs on the producer's
//! writer thread, never on the thread that runs the route timers.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, TopicPartitionList};

use crate::client_errors::ClientErrorLog;
use crate::wire::OutgoingRecord;

/// Largest record the producer sends (librdkafka's `message.max.bytes`,
/// set to its default); librdkafka rejects a larger one at send.
pub const MAX_RECORD_BYTES: usize = 1_000_000;

/// Returns whether librdkafka would reject `record` as too large: key, value and
/// headers together over `MAX_RECORD_BYTES`.
pub fn is_too_large(record: &OutgoingRecord) -> bool {
    let headers: usize = record
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    let key = record.key.as_ref().map_or(0, Vec::len);
    key + record.payload.len() + headers > MAX_RECORD_BYTES
}

/// How long one commit or flush may block before the attempt counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    Transactional { transactional_id: String },
    Idempotent,
}

/// A write attempt that did not deliver every record.
#[derive(Debug)]
pub struct WriteFailure {
    pub error: KafkaError,
    /// Positions (in the slice given to `write`) of the records to send again.
    pub undelivered: Vec<usize>,
    /// The broker rejected the consumed offsets (e.g. the partition moved to
    /// another group member), not the records.
    pub offsets_rejected: bool,
}

impl WriteFailure {
    /// Returns whether trying again cannot help: the record itself is rejected (too
    /// large, invalid, a topic we may not write).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::InvalidMessageSize
                    | RDKafkaErrorCode::InvalidMessage
                    | RDKafkaErrorCode::InvalidRecord
                    | RDKafkaErrorCode::InvalidTopic
                    | RDKafkaErrorCode::TopicAuthorizationFailed
            )
        )
    }
}

/// Collects delivery reports of the records of the batch being written.
#[derive(Default)]
pub struct DeliveryReports {
    /// One slot per record: `None` until its report arrives.
    outcomes: Mutex<Vec<Option<Result<(), KafkaError>>>>,
    errors: ClientErrorLog,
}

impl ClientContext for DeliveryReports {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.log("producer", &error, reason);
    }
}

impl ProducerContext for DeliveryReports {
    /// Position of the record in the batch.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, position: usize) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(error.clone()),
        };
        let mut outcomes = self.outcomes.lock().expect("delivery reports lock");
        if let Some(slot) = outcomes.get_mut(position) {
            *slot = Some(outcome);
        }
    }
}

pub struct BatchWriter {
    producer: BaseProducer<DeliveryReports>,
    mode: DeliveryMode,
    base_config: ClientConfig,
}

impl BatchWriter {
    /// Connects, choosing the transactional mode when the broker supports it.
    ///
    /// Falls back to idempotent writes only when the broker does not support
    /// transactions; any other failure is returned and the caller tries
    /// again.
    pub fn connect(
        bootstrap_servers: &str,
        transactional_id: &str,
    ) -> Result<BatchWriter, KafkaError> {
        let base_config = producer_config(bootstrap_servers);

        let mut transactional_config = base_config.clone();
        transactional_config.set("transactional.id", transactional_id);
        let producer: BaseProducer<DeliveryReports> =
            transactional_config.create_with_context(DeliveryReports::default())?;

        match producer.init_transactions(WRITE_TIMEOUT) {
            Ok(()) => Ok(BatchWriter {
                producer,
                mode: DeliveryMode::Transactional {
                    transactional_id: transactional_id.to_string(),
                },
                base_config,
            }),
            Err(error) if is_unsupported(&error) => {
                log::info!(
                    "broker does not support transactions, batches are written idempotently error={error}"
                );
                Ok(BatchWriter::idempotent(base_config)?)
            }
            // Unreachable, fenced or any other failure: the caller tries
            // again rather than giving up transactions for good.
            Err(error) => Err(error),
        }
    }

    fn idempotent(base_config: ClientConfig) -> Result<BatchWriter, KafkaError> {
        Ok(BatchWriter {
            producer: base_config.create_with_context(DeliveryReports::default())?,
            mode: DeliveryMode::Idempotent,
            base_config,
        })
    }

    pub fn mode(&self) -> &DeliveryMode {
        &self.mode
    }

    /// Writes the records as one unit. In transactional mode `offsets` (the
    /// consumed positions that caused the records) are committed in the same
    /// transaction; in idempotent mode they are ignored and the caller
    /// commits them once this returns.
    pub fn write(
        &mut self,
        records: &[&OutgoingRecord],
        offsets: &[(TopicPartitionList, ConsumerGroupMetadata)],
    ) -> Result<(), WriteFailure> {
        match self.mode.clone() {
            DeliveryMode::Transactional { transactional_id } => {
                self.write_transaction(records, offsets, &transactional_id)
            }
            DeliveryMode::Idempotent => self.write_idempotent(records),
        }
    }

    fn write_transaction(
        &mut self,
        records: &[&OutgoingRecord],
        offsets: &[(TopicPartitionList, ConsumerGroupMetadata)],
        transactional_id: &str,
    ) -> Result<(), WriteFailure> {
        let everything = || (0..records.len()).collect::<Vec<_>>();
        let fail = |error: KafkaError| WriteFailure {
            error,
            undelivered: everything(),
            offsets_rejected: false,
        };

        if let Err(error) = self.producer.begin_transaction() {
            self.end_failed_transaction(&error, transactional_id);
            return Err(fail(error));
        }

        self.reset_reports(records.len());
        for (position, record) in records.iter().enumerate() {
            if let Err(error) = self.send(record, position) {
                self.end_failed_transaction(&error, transactional_id);
                return Err(fail(error));
            }
        }

        for (offsets, group) in offsets {
            if let Err(error) =
                self.producer
                    .send_offsets_to_transaction(offsets, group, WRITE_TIMEOUT)
            {
                self.end_failed_transaction(&error, transactional_id);
                return Err(WriteFailure {
                    offsets_rejected: true,
                    ..fail(error)
                });
            }
        }

        let mut commit_attempts = 0;
        loop {
            commit_attempts += 1;
            // Delivered first with short polls: commit_transaction's own
            // flush polls in 100 ms steps, which would add 100 ms to every
            // batch.
            let _ = self.wait_for_deliveries(WRITE_TIMEOUT);
            let error = match self.producer.commit_transaction(WRITE_TIMEOUT) {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };

            if is_unsupported(&error) {
                // The broker took InitProducerId but has no EndTxn, so it
                // cannot have transaction markers either: the records sent
                // are plain records, visible to every reader. Fall back for
                // good, and count the write as done when all of them landed,
                // so that this first write is not sent twice.
                log::warn!("broker cannot commit transactions, switching to idempotent writes error={error}");
                let landed = self.all_delivered(records.len());
                if let Ok(writer) = BatchWriter::idempotent(self.base_config.clone()) {
                    *self = writer;
                }
                return if landed { Ok(()) } else { Err(fail(error)) };
            }

            // A retriable commit (e.g. timed out while the broker is away)
            // is still in progress inside librdkafka and may be repeated.
            let retriable =
                matches!(&error, KafkaError::Transaction(cause) if cause.is_retriable());
            if !retriable || commit_attempts >= 3 {
                self.end_failed_transaction(&error, transactional_id);
                return Err(fail(error));
            }
            log::warn!("commit failed, trying again attempt={commit_attempts} error={error}");
        }
    }

    /// Brings the producer back to a state where a new transaction can begin:
    /// aborts the open transaction, or replaces a producer that cannot.
    fn end_failed_transaction(&mut self, error: &KafkaError, transactional_id: &str) {
        let fatal = matches!(error, KafkaError::Transaction(cause) if cause.is_fatal());

        if !fatal {
            // Abort waits for the records in flight, whose delivery reports
            // only arrive while someone polls.
            let _ = self.wait_for_deliveries(WRITE_TIMEOUT);
            match self.producer.abort_transaction(WRITE_TIMEOUT) {
                Ok(()) => return,
                Err(abort_error) => log::warn!("failed to abort transaction error={abort_error}"),
            }
        }

        // A fatal error (e.g. fenced by another instance with the same
        // transactional id) or a failed abort leaves this producer unusable.
        log::warn!("replacing the transactional producer error={error}");
        let bootstrap_servers = self
            .base_config
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_string();
        match BatchWriter::connect(&bootstrap_servers, transactional_id) {
            Ok(writer) => *self = writer,
            Err(connect_error) => {
                log::warn!("failed to create a new producer, will try again error={connect_error}")
            }
        }
    }

    fn write_idempotent(&mut self, records: &[&OutgoingRecord]) -> Result<(), WriteFailure> {
        self.reset_reports(records.len());

        let mut first_error = None;
        for (position, record) in records.iter().enumerate() {
            if let Err(error) = self.send(record, position) {
                first_error.get_or_insert(error);
                break;
            }
        }
        if let Err(error) = self.wait_for_deliveries(WRITE_TIMEOUT) {
            first_error.get_or_insert(error);
        }

        let outcomes = std::mem::take(
            &mut *self
                .producer
                .context()
                .outcomes
                .lock()
                .expect("delivery reports lock"),
        );
        let mut undelivered = Vec::new();
        for (position, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    first_error.get_or_insert(error);
                    undelivered.push(position);
                }
                None => undelivered.push(position),
            }
        }

        if undelivered.is_empty() {
            return Ok(());
        }

        // The next attempt gets a new producer. The old one may still hold
        // records in flight whose late reports would land in this attempt's
        // slots. And after a timeout its sequence numbers have gaps that a
        // broker can reject for good: tansu 0.6 responded to every later
        // write with UNKNOWN_SERVER_ERROR. A new producer id starts afresh,
        // and a record of the old one that lands after all is a duplicate.
        match BatchWriter::idempotent(self.base_config.clone()) {
            Ok(fresh) => *self = fresh,
            Err(error) => log::warn!("failed to replace the idempotent producer error={error}"),
        }
        Err(WriteFailure {
            error: first_error.unwrap_or(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)),
            undelivered,
            offsets_rejected: false,
        })
    }

    /// Returns whether each of the `count` records of this attempt has a
    /// successful delivery report.
    fn all_delivered(&self, count: usize) -> bool {
        let outcomes = self
            .producer
            .context()
            .outcomes
            .lock()
            .expect("delivery reports lock");
        outcomes.len() == count
            && outcomes
                .iter()
                .all(|outcome| matches!(outcome, Some(Ok(()))))
    }

    /// Clears the delivery-report slots for an attempt of `count` records.
    /// Slots are positions in the attempt: in transactional mode a failed
    /// transaction is aborted, and in idempotent mode the producer is
    /// replaced, before the next attempt reuses them.
    fn reset_reports(&self, count: usize) {
        let mut outcomes = self
            .producer
            .context()
            .outcomes
            .lock()
            .expect("delivery reports lock");
        outcomes.clear();
        outcomes.resize(count, None);
    }

    /// Queues one record, waiting for room when librdkafka's queue is full.
    fn send(&self, record: &OutgoingRecord, position: usize) -> Result<(), KafkaError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }

        let mut pending = BaseRecord::with_opaque_to(&record.topic, position)
            .payload(&record.payload)
            .headers(headers);
        if let Some(key) = &record.key {
            pending = pending.key(key);
        }

        loop {
            match self.producer.send(pending) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    self.producer.poll(Duration::from_millis(50));
                    pending = returned;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Waits until every queued record is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.wait_for_deliveries(timeout)
    }

    /// Serves delivery reports until nothing is in flight. Replaces
    /// `BaseProducer::flush`, whose polls (rdkafka 0.39) each last a full
    /// 100 ms even when the last report arrives at once.
    fn wait_for_deliveries(&self, timeout: Duration) -> Result<(), KafkaError> {
        let deadline = std::time::Instant::now() + timeout;
        while self.producer.in_flight_count() > 0 {
            if std::time::Instant::now() >= deadline {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            self.producer.poll(Duration::from_millis(1));
        }
        // Reports already taken off librdkafka's count may still wait in
        // the event queue.
        self.producer.poll(Duration::ZERO);
        Ok(())
    }
}

fn producer_config(bootstrap_servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    if let Ok(contexts) = std::env::var("KAFKA_DEBUG") {
        config.set("debug", contexts);
    }
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("enable.idempotence", "true")
        // murmur2 is the Java client's key hash, so one key lands on the
        // same partition whichever client of the cluster writes it.
        .set("partitioner", "murmur2_random")
        // Records of a batch are sent as soon as the batch is complete.
        .set("linger.ms", "0")
        .set("message.max.bytes", MAX_RECORD_BYTES.to_string())
        .set("message.timeout.ms", "10000")
        // A transaction left open by a crash blocks read_committed readers
        // of its partitions until the broker aborts it after this long.
        .set("transaction.timeout.ms", "15000");
    config
}

fn is_unsupported(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::UnsupportedVersion) | Some(RDKafkaErrorCode::UnsupportedFeature)
    )
}
