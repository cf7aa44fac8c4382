//! The pipeline scenario, run in a process of its own: LOGOUT records of
//! characters aboard the shipped routes go through the service's real
//! consumers, route actors and producer, and come out as CHANGE_MAP
//! commands. A bare rdkafka consume→produce loop then copies the same
//! records on the same broker, as the ceiling to compare with.
//!
//! Both outputs are read by the same kind of read_committed reader, and a
//! record counts as delivered when that reader receives it.
//!
//! - Throughput: the LOGOUT backlog is written before the pipe starts, and
//!   the rate is taken between the receipts of the 10th and the 90th
//!   percentile output record, so start-up, the group join and the
//!   chunks of the first and last fetches are left out.
//! - Latency: after the backlog, LOGOUTs are sent one by one at a steady
//!   rate, and each is timed from just before its send to the receipt of
//!   its CHANGE_MAP.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant as WallInstant};

use actix::prelude::*;
use atlas_transports::broker::EmbeddedBroker;
use atlas_transports::clock::SystemClock;
use atlas_transports::config::Config;
use atlas_transports::service::Service;
use atlas_transports::settings::Settings;
use atlas_transports::tenant::Tenant;
use atlas_transports::wire::character_key;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::measure::{percentile_of, report};

/// Output topics of the bare consume→produce loop, one per pass. Its rate
/// is the median of the passes, because one pass over the backlog takes
/// only a few hundred milliseconds.
const RAW_PIPE_TOPICS: [&str; 3] = [
    "BENCH_RAW_PIPE_OUT_1",
    "BENCH_RAW_PIPE_OUT_2",
    "BENCH_RAW_PIPE_OUT_3",
];
/// Guards every wait of the scenario; reached only when something hangs.
const PATIENCE: Duration = Duration::from_secs(180);

pub struct PipelineOptions {
    pub config_dir: PathBuf,
    /// LOGOUTs written before the pipe starts, for the throughput.
    pub backlog: u32,
    /// LOGOUTs sent one by one afterwards, for the latency, and their rate.
    pub paced: u32,
    pub paced_per_second: u32,
}

/// Runs the scenario, prints its results and exits the process.
pub fn run(options: PipelineOptions) -> ! {
    let broker = EmbeddedBroker::start().expect("start the in-process Kafka cluster");
    let bootstrap = broker.bootstrap_servers();
    let settings =
        Settings::from_env(options.config_dir.clone(), &HashMap::new()).expect("default settings");
    let partitions = settings.topic_partitions;
    for topic in settings.topics_in_use().into_iter().chain(RAW_PIPE_TOPICS) {
        broker
            .create_topic(topic, partitions)
            .expect("create topic");
    }
    start_group_at_beginning(&bootstrap, &settings);

    let config = Config::load(&options.config_dir).expect("shipped configuration loads");
    let logouts = Logouts {
        topic: settings.topics.character_status.clone(),
        tenant: config.tenants[0].clone(),
        staging_maps: config
            .routes
            .iter()
            .map(|route| route.staging_map_id)
            .collect(),
    };
    let total = options.backlog + options.paced;

    logouts.write_backlog(&bootstrap, options.backlog);
    let mut changes = Receipts::start(&bootstrap, &settings.topics.character_command, partitions);
    let service = ServiceThread::start(&bootstrap, &settings, &config);

    let backlog_ids: Vec<u32> = (1..=options.backlog).collect();
    let received = changes.wait_for(&backlog_ids);
    let pipeline_rate = rate(received.values().copied());

    let sent = logouts.send_paced(
        &bootstrap,
        options.backlog + 1..=total,
        options.paced_per_second,
    );
    let paced_ids: Vec<u32> = sent.keys().copied().collect();
    let received = changes.wait_for(&paced_ids);
    let mut latencies_ms: Vec<f64> = sent
        .iter()
        .map(|(id, sent_at)| {
            received[id]
                .saturating_duration_since(*sent_at)
                .as_secs_f64()
                * 1_000.0
        })
        .collect();
    service.stop();

    let mut raw_rates: Vec<f64> = RAW_PIPE_TOPICS
        .iter()
        .map(|output| {
            let copies = Receipts::start(&bootstrap, output, partitions);
            let pipe = thread::spawn({
                let bootstrap = bootstrap.clone();
                let input = settings.topics.character_status.clone();
                move || raw_pipe(&bootstrap, &input, partitions, output, total)
            });
            let first_copies = copies.wait_for_count(options.backlog as usize);
            pipe.join().expect("raw pipe thread ends");
            rate(first_copies.into_iter())
        })
        .collect();
    let raw_rate = percentile_of(&mut raw_rates, 50.0).unwrap_or(f64::NAN);

    report("pipeline_records", options.backlog as f64);
    report("pipeline_records_per_s", pipeline_rate);
    report("raw_pipe_records_per_s", raw_rate);
    report("pipeline_paced_per_s", options.paced_per_second as f64);
    if let Some(p50) = percentile_of(&mut latencies_ms, 50.0) {
        report("pipeline_p50_ms", p50);
    }
    if let Some(p99) = percentile_of(&mut latencies_ms, 99.0) {
        report("pipeline_p99_ms", p99);
    }
    // Exits with the broker still up, so no client sees it go away.
    std::process::exit(0)
}

/// Returns records per second between the receipts of the 10th and the
/// 90th percentile. Outputs arrive in chunks (one fetch response each), so
/// the first and last chunks would make a short run's rate swing.
fn rate(receipts: impl Iterator<Item = WallInstant>) -> f64 {
    let mut sorted: Vec<WallInstant> = receipts.collect();
    sorted.sort_unstable();
    if sorted.len() < 10 {
        return f64::NAN;
    }
    let (from, to) = (sorted.len() / 10, sorted.len() * 9 / 10);
    let seconds = (sorted[to] - sorted[from]).as_secs_f64();
    if seconds > 0.0 {
        (to - from) as f64 / seconds
    } else {
        f64::NAN
    }
}

/// Commits offset 0 for the service's group on every consumed partition.
/// Without a commit a new group starts at the end, and would skip the
/// backlog written before it joined.
fn start_group_at_beginning(bootstrap: &str, settings: &Settings) {
    let committer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &settings.consumer_group)
        .create()
        .expect("create committer");
    let mut offsets = TopicPartitionList::new();
    for topic in [
        &settings.topics.character_status,
        &settings.topics.channel_status,
        &settings.topics.map_status,
    ] {
        for partition in 0..settings.topic_partitions {
            offsets
                .add_partition_offset(topic, partition, Offset::Offset(0))
                .expect("add partition offset");
        }
    }
    committer
        .commit(&offsets, CommitMode::Sync)
        .expect("commit start offsets");
}

/// LOGOUT records as the character service sends them, each in the staging
/// map of one shipped route, round robin.
struct Logouts {
    topic: String,
    tenant: Tenant,
    staging_maps: Vec<u32>,
}

impl Logouts {
    fn payload(&self, character_id: u32) -> Vec<u8> {
        let map_id = self.staging_maps[character_id as usize % self.staging_maps.len()];
        format!(
            r#"{{"worldId":0,"characterId":{character_id},"type":"LOGOUT","body":{{"channelId":1,"mapId":{map_id}}}}}"#
        )
        .into_bytes()
    }

    fn headers(&self) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        for (name, value) in self.tenant.kafka_headers() {
            headers = headers.insert(Header {
                key: name,
                value: Some(&value),
            });
        }
        headers
    }

    /// Writes LOGOUTs of characters 1 to `count` and waits for the broker.
    fn write_backlog(&self, bootstrap: &str, count: u32) {
        let producer = plain_producer(bootstrap, "5");
        for character_id in 1..=count {
            let (key, payload) = (character_key(character_id), self.payload(character_id));
            let record = BaseRecord::to(&self.topic)
                .key(key.as_slice())
                .payload(payload.as_slice())
                .headers(self.headers());
            send(&producer, record);
        }
        producer.flush(PATIENCE).expect("write the LOGOUT backlog");
    }

    /// Sends one LOGOUT per character of `ids` at `per_second`, each sent
    /// at once, and returns when each was sent.
    fn send_paced(
        &self,
        bootstrap: &str,
        ids: std::ops::RangeInclusive<u32>,
        per_second: u32,
    ) -> HashMap<u32, WallInstant> {
        let producer = plain_producer(bootstrap, "0");
        let interval = Duration::from_secs(1) / per_second;
        let start = WallInstant::now();
        let mut sent = HashMap::new();

        for (index, character_id) in ids.enumerate() {
            let due = start + interval * index as u32;
            thread::sleep(due.saturating_duration_since(WallInstant::now()));
            let (key, payload) = (character_key(character_id), self.payload(character_id));
            sent.insert(character_id, WallInstant::now());
            let record = BaseRecord::to(&self.topic)
                .key(key.as_slice())
                .payload(payload.as_slice())
                .headers(self.headers());
            send(&producer, record);
            producer.poll(Duration::ZERO);
        }
        producer.flush(PATIENCE).expect("send the paced LOGOUTs");
        sent
    }
}

fn plain_producer(bootstrap: &str, linger_ms: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms)
        .create()
        .expect("create producer")
}

/// Queues one record, serving delivery reports while librdkafka's queue is
/// full.
fn send(producer: &BaseProducer, mut record: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                producer.poll(Duration::from_millis(10));
                record = returned;
            }
            Err((error, _)) => panic!("failed to queue record: {error}"),
        }
    }
}

/// A reader of every partition of one topic on a thread of its own, that
/// notes when each record arrives, by the character id in its key.
struct Receipts {
    arrivals: mpsc::Receiver<(u32, WallInstant)>,
    seen: HashMap<u32, WallInstant>,
    /// Arrival order, for outputs counted rather than matched by id.
    order: Vec<WallInstant>,
}

impl Receipts {
    fn start(bootstrap: &str, topic: &str, partitions: i32) -> Receipts {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("bench-reader-{topic}"))
            .set("isolation.level", "read_committed")
            // Short, so the reader adds little to the measured latency.
            .set("fetch.wait.max.ms", "2")
            .create()
            .expect("create reader");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("add partition");
        }
        consumer.assign(&assignment).expect("assign reader");

        let (sender, arrivals) = mpsc::channel();
        thread::spawn(move || loop {
            // Read errors are retried by librdkafka itself and only show as
            // late arrivals.
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let at = WallInstant::now();
            let id = message
                .key()
                .and_then(|key| key.get(..4))
                .map_or(0, |bytes| {
                    u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
                });
            if sender.send((id, at)).is_err() {
                return;
            }
        });
        Receipts {
            arrivals,
            seen: HashMap::new(),
            order: Vec::new(),
        }
    }

    fn receive(&mut self) {
        let (id, at) = self
            .arrivals
            .recv_timeout(PATIENCE)
            .expect("output record within the patience");
        self.seen.entry(id).or_insert(at);
        self.order.push(at);
    }

    /// Waits until a record of every id arrived; returns their arrivals.
    fn wait_for(&mut self, ids: &[u32]) -> HashMap<u32, WallInstant> {
        let mut arrivals = HashMap::with_capacity(ids.len());
        for id in ids {
            while !self.seen.contains_key(id) {
                self.receive();
            }
            arrivals.insert(*id, self.seen[id]);
        }
        arrivals
    }

    /// Waits until `count` records arrived; returns their arrivals.
    fn wait_for_count(mut self, count: usize) -> Vec<WallInstant> {
        while self.order.len() < count {
            self.receive();
        }
        self.order.truncate(count);
        self.order
    }
}

/// Copies the first `count` records of `input` to `output`: poll, produce
/// the same key, value and headers, serve delivery reports, no other work.
/// It reads every partition from its beginning without a consumer group.
fn raw_pipe(bootstrap: &str, input: &str, partitions: i32, output: &str, count: u32) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-raw-pipe")
        .create()
        .expect("create raw pipe consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(input, partition, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&assignment).expect("assign raw pipe");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("create raw pipe producer");

    let deadline = WallInstant::now() + PATIENCE;
    let mut copied = 0;
    while copied < count {
        assert!(
            WallInstant::now() < deadline,
            "raw pipe copied only {copied} records"
        );
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = result.expect("read input record");
        let mut record = BaseRecord::<[u8], [u8]>::to(output);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(headers) = message.headers() {
            record = record.headers(headers.detach());
        }
        send(&producer, record);
        producer.poll(Duration::ZERO);
        copied += 1;
    }
    producer
        .flush(PATIENCE)
        .expect("deliver the raw pipe's records");
}

/// The service's actor system on a thread of its own, as the binary runs it
/// but without the HTTP API.
struct ServiceThread {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: thread::JoinHandle<()>,
}

impl ServiceThread {
    fn start(bootstrap: &str, settings: &Settings, config: &Config) -> ServiceThread {
        let (bootstrap, settings, config) =
            (bootstrap.to_string(), settings.clone(), config.clone());
        let (stop, stop_requested) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            System::new().block_on(async move {
                let service = Service::start(&bootstrap, &settings, &config, Arc::new(SystemClock))
                    .await
                    .expect("service starts");
                let _ = stop_requested.await;
                service.stop(Duration::from_secs(5)).await;
                System::current().stop();
            });
        });
        ServiceThread { stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("service thread ends");
    }
}
