//! Crashes and outages: the broker killed with SIGKILL and started again
//! on the same storage, the service killed with SIGKILL, a broker outage
//! across a departure, and a graceful stop with thousands of LOGOUTs in
//! flight. After each, every player still gets the CHANGE_MAP the service
//! owes them.
//!
//! Killing the broker needs it in a process of its own, so those scenarios
//! run on tansu only. The service crash and the graceful stop also run on
//! the in-process cluster, with the service binary in its own process.
//! Each test prints its counts (sent, lost, duplicated) to standard error;
//! run with `--nocapture` to see them when the test passes.
//!
//! Against tansu the service writes idempotently, without transactions, so
//! a record handled again after a crash gives a duplicate CHANGE_MAP:
//! duplicates are counted and reported, losses fail the test.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant as WallInstant};

use atlas_transports::config::Config;
use atlas_transports::routes::routes_for_tenants;
use atlas_transports::settings::Settings;
use common::binary::RunningService;
use common::ferry::{self, CABIN, DECK, DESTINATION, DOCK, STAGING};
use common::kafka::*;
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;

/// The service's `session.timeout.ms`: how long a killed process's group
/// members keep their partitions.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a scenario may take to see every CHANGE_MAP after its fault.
const RECOVERY_PATIENCE: Duration = Duration::from_secs(120);

/// Writes a folder with one ferry route and one tenant; times in seconds.
fn config_dir(boarding: u32, travel: u32, cycle: u32) -> PathBuf {
    ferry::config_dir(
        "ferry",
        ferry::seconds(boarding, travel, cycle),
        &[TENANT_A],
    )
}

/// Plays the game cluster's character service: LOGOUT events in the ferry's
/// maps, each from its own character. Idempotent with a long delivery
/// timeout, so records queued while the broker is down land once it is
/// back, each once.
struct LogoutSender {
    producer: BaseProducer,
    topic: String,
    sent: u32,
}

impl LogoutSender {
    fn new(bootstrap: &str, settings: &Settings) -> LogoutSender {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "300000")
            .set("linger.ms", "1")
            // The Java client's default. tansu 0.6 reads large batches
            // slowly: 10,000 records in 1 MB batches took 11 s to read,
            // in 16 KiB batches 0.8 s.
            .set("batch.size", "16384")
            .create()
            .expect("create LOGOUT producer");
        LogoutSender {
            producer,
            topic: settings.topics.character_status.clone(),
            sent: 0,
        }
    }

    /// Returns the character of the `n`th LOGOUT (from 1). Alternates the staging
    /// map and the two en-route maps, all of which send a rider home.
    fn character_id(n: u32) -> u32 {
        100_000 + n
    }

    /// Queues LOGOUTs up to number `last`; returns without waiting for the
    /// broker.
    fn queue_up_to(&mut self, last: u32) {
        let mut headers = OwnedHeaders::new();
        for (name, value) in tenant_headers(TENANT_A) {
            headers = headers.insert(Header {
                key: &name,
                value: value.as_deref(),
            });
        }
        while self.sent < last {
            let n = self.sent + 1;
            let map_id = [STAGING, DECK, CABIN][(n % 3) as usize];
            let event = json!({
                "worldId": 0,
                "characterId": LogoutSender::character_id(n),
                "type": "LOGOUT",
                "body": {"channelId": 1, "mapId": map_id}
            })
            .to_string();
            let record = BaseRecord::<[u8], [u8]>::to(&self.topic)
                .payload(event.as_bytes())
                .headers(headers.clone());
            match self.producer.send(record) {
                Ok(()) => self.sent = n,
                // The local queue is full: serve delivery reports, retry.
                Err((_, _)) => {
                    self.producer.poll(Duration::from_millis(10));
                }
            }
        }
        self.producer.poll(Duration::ZERO);
    }

    /// Queues LOGOUTs up to number `last`, one every `pace`, each delivered
    /// before the next: the service reads them as a steady stream.
    fn send_paced_up_to(&mut self, last: u32, pace: Duration) {
        while self.sent < last {
            self.queue_up_to(self.sent + 1);
            self.wait_delivered();
            thread::sleep(pace);
        }
    }

    /// Waits until the broker has every queued LOGOUT. Polls in short
    /// steps: rdkafka's `flush` waits in steps of 100 ms.
    fn wait_delivered(&self) {
        let deadline = WallInstant::now() + RECOVERY_PATIENCE;
        while self.producer.in_flight_count() > 0 {
            assert!(
                WallInstant::now() < deadline,
                "LOGOUTs not delivered within {RECOVERY_PATIENCE:?}"
            );
            self.producer.poll(Duration::from_millis(1));
        }
    }
}

/// What the service wrote for a stream of `sent` LOGOUTs.
struct Tally {
    sent: u32,
    lost: Vec<u32>,
    duplicated: usize,
}

impl Tally {
    fn report(&self, scenario: &str, broker: &str) {
        eprintln!(
            "{scenario} on {broker}: sent={} lost={} duplicated={}",
            self.sent,
            self.lost.len(),
            self.duplicated
        );
    }
}

/// Reads CHANGE_MAP commands until each of the `sent` characters has one,
/// then everything written so far, and counts losses and duplicates.
/// Every CHANGE_MAP must send its character to the dock on channel 1.
fn tally_change_maps(commands: &Reader, sent: u32) -> Tally {
    let expected: BTreeSet<u64> = (1..=sent)
        .map(|n| LogoutSender::character_id(n) as u64)
        .collect();
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let deadline = WallInstant::now() + RECOVERY_PATIENCE;

    while WallInstant::now() < deadline && !expected.iter().all(|id| seen.contains_key(id)) {
        if let Some(record) = commands.poll_for(Duration::from_millis(200)) {
            count_change_map(&record, &mut seen);
        }
    }
    for record in commands.drain() {
        count_change_map(&record, &mut seen);
    }

    let lost = expected
        .iter()
        .filter(|id| !seen.contains_key(id))
        .map(|id| *id as u32)
        .collect();
    let unexpected: Vec<&u64> = seen.keys().filter(|id| !expected.contains(id)).collect();
    assert!(
        unexpected.is_empty(),
        "CHANGE_MAP for characters that never logged out: {unexpected:?}"
    );
    Tally {
        sent,
        lost,
        duplicated: seen.values().map(|count| count - 1).sum(),
    }
}

fn count_change_map(record: &Record, seen: &mut BTreeMap<u64, usize>) {
    assert_eq!(record.json["type"], "CHANGE_MAP", "{record:?}");
    assert_eq!(record.json["body"]["mapId"], DOCK, "{record:?}");
    assert_eq!(record.json["body"]["channelId"], 1, "{record:?}");
    *seen.entry(record.character_id()).or_default() += 1;
}

fn assert_none_lost(tally: &Tally) {
    assert!(
        tally.lost.is_empty(),
        "{} of {} LOGOUTs got no CHANGE_MAP: {:?}",
        tally.lost.len(),
        tally.sent,
        tally.lost
    );
}

/// Starts the service binary against `bootstrap` and waits until its
/// producer has reached the broker and each of its three consumers has its
/// partition.
fn start_service(config: &Path, bootstrap: &str) -> RunningService {
    let port = free_port().to_string();
    let service = RunningService::start(
        config,
        &[("BOOTSTRAP_SERVERS", bootstrap), ("REST_PORT", &port)],
    );
    let settings = default_settings();
    let assigned: Vec<String> = [
        &settings.topics.character_status,
        &settings.topics.channel_status,
        &settings.topics.map_status,
    ]
    .iter()
    .map(|topic| format!("partitions assigned topic={topic} "))
    .collect();
    let mut needles: Vec<&str> = assigned.iter().map(String::as_str).collect();
    needles.push("producer connected");
    service.wait_for_lines(&needles);
    service
}

/// Writes a ferry with an hour's cycle, so no trip event disturbs a
/// LOGOUT stream.
fn quiet_ferry() -> PathBuf {
    config_dir(60, 60, 3600)
}

#[test]
fn broker_killed_mid_stream() {
    let Some(binary) = common::tansu::tansu_or_skip("broker_killed_mid_stream") else {
        return;
    };
    let settings = default_settings();
    let mut cluster = TestCluster::start_on(&BrokerKind::Tansu(binary), &settings);
    let config = quiet_ferry();
    let _service = start_service(&config, &cluster.bootstrap);
    let commands = cluster.reader(&settings.topics.character_command);

    let mut sender = LogoutSender::new(&cluster.bootstrap, &settings);
    sender.send_paced_up_to(100, Duration::from_millis(5));

    // The service may still be turning the last LOGOUTs into CHANGE_MAPs.
    cluster.tansu().kill();
    sender.queue_up_to(300);
    thread::sleep(Duration::from_secs(8));
    cluster.tansu().restart();
    sender.wait_delivered();

    let tally = tally_change_maps(&commands, 300);
    tally.report("broker killed mid-stream", "tansu");
    assert_none_lost(&tally);
}

/// Kills the service with SIGKILL after 200 LOGOUTs and starts it again:
/// its consumer offsets were committed only after the CHANGE_MAPs were
/// written, so the new process handles the rest.
fn service_killed_mid_stream(broker: &BrokerKind) {
    let settings = default_settings();
    let cluster = TestCluster::start_on(broker, &settings);
    let config = quiet_ferry();
    let mut service = start_service(&config, &cluster.bootstrap);
    let commands = cluster.reader(&settings.topics.character_command);

    let mut sender = LogoutSender::new(&cluster.bootstrap, &settings);
    sender.send_paced_up_to(200, Duration::from_millis(5));
    service.signal("KILL");
    service.wait();

    sender.queue_up_to(300);
    sender.wait_delivered();

    // The new process starts once the broker has expired the dead one's
    // group members (the 10 s session timeout). Started earlier, against
    // tansu 0.6 its consumers were given no partitions and no rebalance
    // followed when the dead members expired.
    thread::sleep(SESSION_TIMEOUT + Duration::from_secs(1));
    let _restarted = start_service(&config, &cluster.bootstrap);

    let tally = tally_change_maps(&commands, 300);
    tally.report("service killed mid-stream", broker.name());
    assert_none_lost(&tally);
}

/// Returns the LOGOUTs in flight when the graceful stop starts. tansu 0.6 on
/// SQLite stores about 550 records a second here (10,000 LOGOUTs in 18 s
/// on an idle 2-core machine), and while it writes, its group coordinator
/// leaves heartbeats unanswered past the 10 s session timeout. With 10,000
/// the service's group kept rebalancing and the test read no CHANGE_MAP
/// within 30 s. It handles 1,000 in seconds.
fn logouts_in_flight(broker: &BrokerKind) -> u32 {
    match broker {
        BrokerKind::Mock => 10_000,
        BrokerKind::Tansu(_) => 1_000,
    }
}

/// SIGTERM while thousands of LOGOUTs wait to be handled: the service stops
/// within its deadline and exits 0, and after a restart every LOGOUT has
/// its CHANGE_MAP.
fn graceful_stop_under_load(broker: &BrokerKind) {
    let settings = default_settings();
    let cluster = TestCluster::start_on(broker, &settings);
    let config = quiet_ferry();
    let mut service = start_service(&config, &cluster.bootstrap);
    let commands = cluster.reader(&settings.topics.character_command);

    let mut sender = LogoutSender::new(&cluster.bootstrap, &settings);
    let total = logouts_in_flight(broker);
    sender.queue_up_to(total);
    sender.wait_delivered();

    // Stop once the service is handling the stream. A reader of its own,
    // so `commands` still counts this first CHANGE_MAP.
    cluster
        .reader(&settings.topics.character_command)
        .read_until(|record| record.json["type"] == "CHANGE_MAP");
    service.signal("TERM");
    let status = service.wait();
    assert!(status.success(), "graceful stop exited with {status}");

    let _restarted = start_service(&config, &cluster.bootstrap);
    let tally = tally_change_maps(&commands, total);
    tally.report("graceful stop under load", broker.name());
    assert_none_lost(&tally);
}

on_both_brokers!(service_killed_mid_stream, graceful_stop_under_load);

/// Riders board, the broker goes down a second before departure and comes
/// back four seconds after it, well before arrival. The departure warp and
/// the DEPARTED event are delivered late, the arrival warp on time, each
/// rider's two CHANGE_MAPs in order.
#[test]
fn departure_during_broker_outage() {
    let Some(binary) = common::tansu::tansu_or_skip("departure_during_broker_outage") else {
        return;
    };
    let settings = default_settings();
    let mut cluster = TestCluster::start_on(&BrokerKind::Tansu(binary), &settings);
    // 4 s boarding, 1 s pre-departure, 15 s travel.
    let config = config_dir(4, 15, 20);
    let service = ServiceThread::start(&cluster.bootstrap, &settings, &config);
    let commands = cluster.reader(&settings.topics.character_command);
    let status = cluster.reader(&settings.topics.transport_status);

    let departure = next_departure_at_least(&config, Duration::from_secs(5));
    let riders = [7001u32, 7002, 7003];
    let channel = json!({"type": "STARTED", "worldId": 0, "channelId": 1, "ipAddress": "127.0.0.1", "port": 8585});
    cluster.send_json(&settings.topics.channel_status, TENANT_A, channel);
    for rider in riders {
        let enter = json!({
            "transactionId": uuid::Uuid::new_v4().to_string(),
            "worldId": 0, "channelId": 1, "mapId": STAGING,
            "type": "CHARACTER_ENTER", "body": {"characterId": rider}
        });
        cluster.send_json(&settings.topics.map_status, TENANT_A, enter);
    }
    service.wait_for_occupants(TENANT_A, &[STAGING], riders.len());

    sleep_until(departure - 1_000);
    cluster.tansu().kill();
    sleep_until(departure + 4_000);
    cluster.tansu().restart();

    let departed = status.read_until(|record| record.json["type"] == "DEPARTED");
    let departed = departed.last().unwrap();
    eprintln!("DEPARTED after the outage: {}", departed.json);

    let mut moves: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let deadline = WallInstant::now() + RECOVERY_PATIENCE;
    while moves.values().map(Vec::len).sum::<usize>() < 2 * riders.len() {
        assert!(WallInstant::now() < deadline, "warps missing: {moves:?}");
        if let Some(record) = commands.poll_for(Duration::from_millis(200)) {
            assert_eq!(record.json["type"], "CHANGE_MAP", "{record:?}");
            let map_id = record.json["body"]["mapId"].as_u64().unwrap() as u32;
            moves.entry(record.character_id()).or_default().push(map_id);
        }
    }
    for rider in riders {
        let seen = &moves[&(rider as u64)];
        assert_eq!(seen, &vec![DECK, DESTINATION], "rider {rider}: {moves:?}");
    }
    eprintln!(
        "departure during broker outage on tansu: riders={} lost=0 duplicated=0",
        riders.len()
    );
}

/// Returns the ferry's first departure that is at least `lead` from now.
fn next_departure_at_least(config: &Path, lead: Duration) -> i64 {
    let config = Config::load(config).unwrap();
    let route = routes_for_tenants(&config.tenants, &config.routes, &config.vessels).remove(0);
    let earliest = now_millis() + lead.as_millis() as i64;
    let trip = route.timetable.trip_at(earliest).expect("a trip runs");
    (trip.index..trip.index + 3)
        .filter_map(|index| route.timetable.trip(index))
        .map(|trip| trip.departure)
        .find(|departure| *departure >= earliest)
        .unwrap()
}

/// Sleeps until the wall clock reads `instant` (a point in the timetable,
/// not a wait for a signal).
fn sleep_until(instant: i64) {
    let left = instant - now_millis();
    if left > 0 {
        thread::sleep(Duration::from_millis(left as u64));
    }
}
