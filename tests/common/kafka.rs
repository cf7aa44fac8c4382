//! A real Kafka for tests: librdkafka's in-process cluster or a tansu
//! process, a producer that plays the game cluster's services, and readers
//! of what the service writes. The service's actor system runs on a thread
//! of its own, so blocking Kafka calls in the test never stall the route
//! timers.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use atlas_transports::actors::channel_registry::{ChannelRegistry, LiveChannels};
use atlas_transports::actors::consumer::{ConsumerCounters, GetConsumerCounters, TopicConsumer};
use atlas_transports::actors::presence::{GetOccupants, Presence};
use atlas_transports::clock::SystemClock;
use atlas_transports::config::Config;
use atlas_transports::presence::Occupant;
use atlas_transports::service::Service;
use atlas_transports::settings::Settings;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use uuid::Uuid;

use super::tansu::TansuBroker;

/// Guards against a hung wait; never reached when things work.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub const TENANT_A: &str = "083839c6-c47c-42a6-9585-76492795d123";
pub const TENANT_B: &str = "5f0c1b9e-7a51-4c43-a1b8-0b8a4d0f2e77";

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Tenant headers as the game cluster sends them.
pub fn tenant_headers(tenant_id: &str) -> Vec<(String, Option<Vec<u8>>)> {
    vec![
        ("TENANT_ID".into(), Some(tenant_id.as_bytes().to_vec())),
        ("REGION".into(), Some(b"GMS".to_vec())),
        ("MAJOR_VERSION".into(), Some(vec![0x00, 0x53])),
        ("MINOR_VERSION".into(), Some(vec![0x00, 0x01])),
    ]
}

/// Which broker a test runs against.
#[derive(Clone, Debug)]
pub enum BrokerKind {
    /// librdkafka's in-process mock cluster.
    Mock,
    /// A tansu process started from this binary.
    Tansu(PathBuf),
}

impl BrokerKind {
    pub fn name(&self) -> &'static str {
        match self {
            BrokerKind::Mock => "mock",
            BrokerKind::Tansu(_) => "tansu",
        }
    }
}

/// The broker under a test, kept alive as long as the cluster.
pub enum TestBroker {
    Mock(MockCluster<'static, DefaultProducerContext>),
    Tansu(TansuBroker),
}

/// A broker with every topic on one partition, so the test can reason
/// about order. Fields drop in order: the test producer goes before the
/// broker it writes to.
pub struct TestCluster {
    producer: BaseProducer,
    pub bootstrap: String,
    pub broker: TestBroker,
}

impl TestCluster {
    /// The in-process cluster.
    pub fn start(settings: &Settings) -> TestCluster {
        TestCluster::start_on(&BrokerKind::Mock, settings)
    }

    pub fn start_on(kind: &BrokerKind, settings: &Settings) -> TestCluster {
        let broker = match kind {
            BrokerKind::Mock => {
                let mock = MockCluster::new(1).expect("start mock cluster");
                for topic in settings.topics_in_use() {
                    mock.create_topic(topic, 1, 1).expect("create topic");
                }
                TestBroker::Mock(mock)
            }
            BrokerKind::Tansu(binary) => {
                let tansu = TansuBroker::start(binary.clone());
                create_topics(&tansu.bootstrap_servers(), settings);
                TestBroker::Tansu(tansu)
            }
        };
        let bootstrap = match &broker {
            TestBroker::Mock(mock) => mock.bootstrap_servers(),
            TestBroker::Tansu(tansu) => tansu.bootstrap_servers(),
        };
        start_group_at_beginning(&bootstrap, settings);

        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("message.max.bytes", "4000000")
            .create()
            .expect("create test producer");
        TestCluster {
            producer,
            bootstrap,
            broker,
        }
    }

    /// Returns the tansu process, for tests that kill and restart it.
    pub fn tansu(&mut self) -> &mut TansuBroker {
        match &mut self.broker {
            TestBroker::Tansu(tansu) => tansu,
            TestBroker::Mock(_) => panic!("this test needs tansu, not the in-process cluster"),
        }
    }

    /// Produces one record and waits until the broker has it.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(String, Option<Vec<u8>>)],
    ) {
        let mut owned = OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .payload(payload)
            .headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.producer
            .send(record)
            .map_err(|(error, _)| error)
            .expect("queue test record");
        self.producer.flush(PATIENCE).expect("deliver test record");
    }

    /// Sends a JSON event with a tenant's headers.
    pub fn send_json(&self, topic: &str, tenant_id: &str, json: Value) {
        self.send(
            topic,
            None,
            json.to_string().as_bytes(),
            &tenant_headers(tenant_id),
        );
    }

    /// A reader of `topic` from its beginning, outside any group.
    pub fn reader(&self, topic: &str) -> Reader {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", format!("test-reader-{}", Uuid::new_v4()))
            // Nothing to commit on close, so dropping a reader never waits
            // for a broker that is down.
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            .create()
            .expect("create reader");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        Reader {
            consumer,
            topic: topic.to_string(),
        }
    }
}

/// Creates every topic the service uses, one partition each, through the
/// broker's admin API as the service itself does.
fn create_topics(bootstrap: &str, settings: &Settings) {
    let topics = settings.topics_in_use();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build runtime for topic creation")
        .block_on(atlas_transports::broker::ensure_topics(
            bootstrap, &topics, 1,
        ));
}

/// Commits offset 0 for the service's group on the consumed topics, as a
/// deployed service's group has commits. Without them a new group starts at
/// the end of each partition, and a record sent right after the assignment
/// can fall before that end.
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
        offsets
            .add_partition_offset(topic, 0, Offset::Offset(0))
            .unwrap();
    }
    committer
        .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
        .expect("commit start offsets");
}

/// One record the service wrote.
#[derive(Clone, Debug)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub json: Value,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }

    pub fn character_id(&self) -> u64 {
        self.json["characterId"].as_u64().expect("characterId")
    }
}

pub struct Reader {
    consumer: BaseConsumer,
    topic: String,
}

impl Reader {
    fn poll_once(&self, wait: Duration) -> Option<Record> {
        // A broker that is down or restarting gives errors; the reader
        // tries again on the next poll, as the service's consumers do.
        let message = match self.consumer.poll(wait)? {
            Ok(message) => message,
            Err(error) => {
                eprintln!("reader of {}: {error}", self.topic);
                return None;
            }
        };
        let payload = message.payload().unwrap_or_default().to_vec();
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Some(Record {
            key: message.key().map(<[u8]>::to_vec),
            json: serde_json::from_slice(&payload).unwrap_or(Value::Null),
            payload,
            headers,
        })
    }

    /// Returns the next record, waiting up to `wait` for one.
    pub fn poll_for(&self, wait: Duration) -> Option<Record> {
        self.poll_once(wait)
    }

    /// Reads until a record matches `wanted`; returns every record read,
    /// the matching one last.
    pub fn read_until(&self, wanted: impl Fn(&Record) -> bool) -> Vec<Record> {
        let deadline = WallInstant::now() + PATIENCE;
        let mut records = Vec::new();
        while WallInstant::now() < deadline {
            if let Some(record) = self.poll_once(Duration::from_millis(100)) {
                let done = wanted(&record);
                records.push(record);
                if done {
                    return records;
                }
            }
        }
        panic!(
            "no wanted record on {} within {PATIENCE:?}; read: {records:#?}",
            self.topic
        );
    }

    /// Reads everything written so far (to the high watermark).
    pub fn drain(&self) -> Vec<Record> {
        let (_, high) = self
            .consumer
            .fetch_watermarks(&self.topic, 0, PATIENCE)
            .expect("watermarks");
        let deadline = WallInstant::now() + PATIENCE;
        let mut records = Vec::new();
        loop {
            let position = self.consumer.position().expect("position");
            let at_end = match position.find_partition(&self.topic, 0).map(|p| p.offset()) {
                Some(Offset::Offset(next)) => next >= high,
                _ => high == 0,
            };
            if at_end {
                return records;
            }
            assert!(
                WallInstant::now() < deadline,
                "drain of {} did not reach offset {high}",
                self.topic
            );
            records.extend(self.poll_once(Duration::from_millis(100)));
        }
    }
}

/// The service's actor system, running on its own thread.
pub struct ServiceThread {
    arbiter: ArbiterHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    consumers: Vec<(String, Addr<TopicConsumer>)>,
    presence: Addr<Presence>,
    channels: Addr<ChannelRegistry>,
}

/// What the service thread hands back once its consumers have partitions.
type Ready = (
    ArbiterHandle,
    Vec<(String, Addr<TopicConsumer>)>,
    Addr<Presence>,
    Addr<ChannelRegistry>,
);

impl ServiceThread {
    /// Starts the service and waits until its consumers have partitions, so
    /// records sent from now on are read (a new group starts at the end).
    pub fn start(bootstrap: &str, settings: &Settings, config_dir: &Path) -> ServiceThread {
        // RUST_LOG=info shows the service's log in a failing test's output.
        let _ = env_logger::builder().is_test(true).try_init();
        let config = Config::load(config_dir).expect("test configuration loads");
        let (ready_sender, ready) = mpsc::channel::<Ready>();
        let (stop, stop_requested) = tokio::sync::oneshot::channel::<()>();
        let bootstrap = bootstrap.to_string();
        let settings = settings.clone();

        let thread = thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let service = Service::start(&bootstrap, &settings, &config, Arc::new(SystemClock))
                    .await
                    .expect("service starts");

                let deadline = WallInstant::now() + PATIENCE;
                while !service.consumers_assigned() {
                    assert!(WallInstant::now() < deadline, "consumers got no partitions");
                    actix_rt::time::sleep(Duration::from_millis(20)).await;
                }

                let consumers = service.consumer_actors();
                ready_sender
                    .send((
                        Arbiter::current(),
                        consumers,
                        service.presence.clone(),
                        service.channels.clone(),
                    ))
                    .unwrap();

                let _ = stop_requested.await;
                service.stop(Duration::from_secs(5)).await;

                // Also ends the producer's own thread, which holds nothing
                // more after the flush.
                System::current().stop();
            });
        });

        let (arbiter, consumers, presence, channels) =
            ready.recv_timeout(PATIENCE * 2).expect("service ready");
        ServiceThread {
            arbiter,
            stop: Some(stop),
            thread: Some(thread),
            consumers,
            presence,
            channels,
        }
    }

    /// Runs a request on the service's thread and waits for the answer.
    fn ask<T: Send + 'static>(
        &self,
        request: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (sender, answer) = mpsc::channel();
        self.arbiter.spawn(async move {
            let _ = sender.send(request.await);
        });
        answer.recv_timeout(PATIENCE).expect("service answers")
    }

    pub fn consumer_counters(&self) -> HashMap<String, ConsumerCounters> {
        self.consumers
            .iter()
            .map(|(topic, addr)| {
                (
                    topic.clone(),
                    self.ask(addr.send(GetConsumerCounters)).unwrap(),
                )
            })
            .collect()
    }

    pub fn occupants(&self, tenant_id: &str, map_ids: &[u32]) -> Vec<Occupant> {
        let message = GetOccupants {
            tenant_id: Uuid::parse_str(tenant_id).unwrap(),
            map_ids: map_ids.to_vec(),
        };
        self.ask(self.presence.send(message)).unwrap()
    }

    /// Lists the tenant's live channels as (world, channel).
    pub fn live_channels(&self, tenant_id: &str) -> BTreeSet<(u8, u8)> {
        let message = LiveChannels {
            tenant_id: Uuid::parse_str(tenant_id).unwrap(),
        };
        self.ask(self.channels.send(message)).unwrap()
    }

    /// Waits until presence holds `count` characters in `map_ids`.
    pub fn wait_for_occupants(&self, tenant_id: &str, map_ids: &[u32], count: usize) {
        let deadline = WallInstant::now() + PATIENCE;
        while self.occupants(tenant_id, map_ids).len() != count {
            assert!(
                WallInstant::now() < deadline,
                "presence never held {count} in {map_ids:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the service gracefully and waits for its thread.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("service thread ends");
        }
    }
}

impl Drop for ServiceThread {
    fn drop(&mut self) {
        self.shut_down();
    }
}
