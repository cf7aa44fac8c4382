//! The service's actor system against a real broker (the in-process
//! cluster, and a tansu process when one is installed), driven the way a
//! game cluster would: channel servers announce themselves, the
//! map service reports who enters and leaves, characters log out. Checks
//! that every expected CHANGE_MAP appears once, with the right key and
//! headers, and nothing else.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use atlas_transports::config::Config;
use atlas_transports::routes::{derived_route_id, routes_for_tenants};
use atlas_transports::settings::Settings;
use atlas_transports::timetable::TripEventKind;
use atlas_transports::wire::character_key;
use common::ferry::{self, CABIN, DECK, DESTINATION, DOCK, STAGING};
use common::kafka::*;
use common::*;
use serde_json::json;
use uuid::Uuid;

const ROUTE: &str = "ferry-fast";

/// A folder with one ferry route on a seconds scale and two tenants.
/// `boarding`, `travel` and `cycle` are seconds; pre-departure is 1 s.
fn config_dir(boarding: u32, travel: u32, cycle: u32) -> PathBuf {
    ferry::config_dir(
        ROUTE,
        ferry::seconds(boarding, travel, cycle),
        &[TENANT_A, TENANT_B],
    )
}

/// Arrival meets the next boarding: 2 s boarding, 1 s wait, 3 s travel.
fn fast_ferry() -> PathBuf {
    config_dir(2, 3, 6)
}

/// Fields drop in order: the service stops before its broker goes away.
struct Setup {
    service: ServiceThread,
    commands: Reader,
    status: Reader,
    cluster: TestCluster,
    settings: Settings,
}

fn start(broker: &BrokerKind, config: &std::path::Path, dead_letter: bool) -> Setup {
    let mut settings = default_settings();
    if dead_letter {
        settings.dead_letter_topic = Some("DEAD_LETTERS".into());
    }
    let cluster = TestCluster::start_on(broker, &settings);
    let service = ServiceThread::start(&cluster.bootstrap, &settings, config);
    let commands = cluster.reader(&settings.topics.character_command);
    let status = cluster.reader(&settings.topics.transport_status);
    Setup {
        settings,
        cluster,
        service,
        commands,
        status,
    }
}

/// Sleeps until just after the fast ferry's next departure, so a test has
/// most of a 6 s cycle to board riders before anyone is moved. (A wait for
/// a point in the timetable under test, not for a signal.)
fn board_after_next_departure(config: &std::path::Path) {
    let config = Config::load(config).unwrap();
    let route = routes_for_tenants(&config.tenants, &config.routes, &config.vessels).remove(0);
    let next_departure = (0..3)
        .filter_map(|ahead| {
            let trip = route.timetable.trip_at(now_millis())?;
            route.timetable.trip(trip.index + ahead)
        })
        .map(|trip| trip.departure)
        .find(|departure| *departure > now_millis())
        .unwrap();
    thread::sleep(Duration::from_millis(
        (next_departure - now_millis() + 50) as u64,
    ));
}

impl Setup {
    fn channel(&self, tenant: &str, channel_id: u8, kind: &str) {
        let event = json!({"type": kind, "worldId": 0, "channelId": channel_id, "ipAddress": "127.0.0.1", "port": 8585});
        self.cluster
            .send_json(&self.settings.topics.channel_status, tenant, event);
    }

    fn moved(&self, tenant: &str, character_id: u32, channel_id: u8, map_id: u32, kind: &str) {
        let event = json!({
            "transactionId": Uuid::new_v4().to_string(),
            "worldId": 0, "channelId": channel_id, "mapId": map_id,
            "type": kind, "body": {"characterId": character_id}
        });
        self.cluster
            .send_json(&self.settings.topics.map_status, tenant, event);
    }

    fn enter(&self, tenant: &str, character_id: u32, channel_id: u8, map_id: u32) {
        self.moved(tenant, character_id, channel_id, map_id, "CHARACTER_ENTER");
    }

    /// Sends the map service's reply to a CHANGE_MAP: EXIT the old map, ENTER the new.
    fn play_back(&self, tenant: &str, character_id: u32, channel_id: u8, from: u32, to: u32) {
        self.moved(tenant, character_id, channel_id, from, "CHARACTER_EXIT");
        self.moved(tenant, character_id, channel_id, to, "CHARACTER_ENTER");
    }

    fn logout_event(character_id: u32, channel_id: u8, map_id: u32) -> serde_json::Value {
        json!({"worldId": 0, "characterId": character_id, "type": "LOGOUT", "body": {"channelId": channel_id, "mapId": map_id}})
    }

    fn logout(&self, tenant: &str, character_id: u32, channel_id: u8, map_id: u32) {
        let event = Self::logout_event(character_id, channel_id, map_id);
        self.cluster
            .send_json(&self.settings.topics.character_status, tenant, event);
    }

    /// Waits for the next DEPARTED after everything read so far, then reads
    /// every command written until then: a whole trip has passed.
    fn commands_after_next_departure(&self) -> Vec<Record> {
        self.status.read_until(|r| r.json["type"] == "DEPARTED");
        self.commands.drain()
    }
}

fn change_maps_of(records: &[Record], character_id: u64) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.character_id() == character_id)
        .collect()
}

fn assert_tenant_headers(record: &Record, tenant: &str) {
    assert_eq!(record.header("TENANT_ID"), Some(tenant.as_bytes()));
    assert_eq!(record.header("REGION"), Some(&b"GMS"[..]));
    assert_eq!(record.header("MAJOR_VERSION"), Some(&[0x00, 0x53][..]));
    assert_eq!(record.header("MINOR_VERSION"), Some(&[0x00, 0x01][..]));
}

/// Plays the map service: replies to each CHANGE_MAP with EXIT and ENTER, and
/// keeps every character's (channel, map).
struct MapService {
    positions: HashMap<u64, (u8, u32)>,
}

impl MapService {
    fn answer(&mut self, setup: &Setup, tenant: &str, records: &[Record]) {
        for record in records {
            let character_id = record.character_id();
            let (channel_id, from) = self.positions[&character_id];
            let to = record.json["body"]["mapId"].as_u64().unwrap() as u32;
            setup.play_back(tenant, character_id as u32, channel_id, from, to);
            self.positions.insert(character_id, (channel_id, to));
        }
    }
}

fn riders_move_at_departure_and_arrival(broker: &BrokerKind) {
    let dir = fast_ferry();
    let setup = start(broker, &dir, false);
    board_after_next_departure(&dir);
    setup.channel(TENANT_A, 1, "STARTED");
    setup.enter(TENANT_A, 1001, 1, STAGING);
    setup.enter(TENANT_A, 1002, 2, STAGING); // channel 2 never started
    setup.enter(TENANT_A, 1003, 1, CABIN); // already on the second en-route map
    setup
        .service
        .wait_for_occupants(TENANT_A, &[STAGING, CABIN], 3);
    let mut map_service = MapService {
        positions: HashMap::from([
            (1001, (1, STAGING)),
            (1002, (2, STAGING)),
            (1003, (1, CABIN)),
        ]),
    };

    // Read until 1001 is at the destination, replying to every move.
    let mut seen: Vec<Record> = Vec::new();
    while map_service.positions[&1001].1 != DESTINATION {
        let batch = setup.commands.read_until(|_| true);
        map_service.answer(&setup, TENANT_A, &batch);
        seen.extend(batch);
    }
    seen.extend(setup.commands_after_next_departure());

    let rider = change_maps_of(&seen, 1001);
    assert_eq!(rider.len(), 2, "{seen:#?}");
    let departure = rider[0];
    assert_eq!(departure.json["type"], "CHANGE_MAP");
    assert_eq!(departure.json["worldId"], 0);
    assert_eq!(departure.json["body"]["channelId"], 1);
    assert_eq!(departure.json["body"]["mapId"], DECK);
    assert_eq!(departure.json["body"]["portalId"], 0);
    assert_eq!(departure.key.as_deref(), Some(&character_key(1001)[..]));
    assert_eq!(
        departure.key.as_deref(),
        Some(&[0xe9, 0x03, 0, 0, 0, 0, 0, 0][..])
    );
    assert_tenant_headers(departure, TENANT_A);
    assert_eq!(rider[1].json["body"]["mapId"], DESTINATION);
    assert_tenant_headers(rider[1], TENANT_A);

    // 1003 stood on the cabin: moved once, at the first arrival it met.
    let cabin_rider = change_maps_of(&seen, 1003);
    assert_eq!(cabin_rider.len(), 1, "{seen:#?}");
    assert_eq!(cabin_rider[0].json["body"]["mapId"], DESTINATION);

    assert!(
        change_maps_of(&seen, 1002).is_empty(),
        "channel 2 is not live: {seen:#?}"
    );
    assert_eq!(seen.len(), 3, "only the expected commands: {seen:#?}");
}

fn logout_aboard_goes_to_the_dock(broker: &BrokerKind) {
    let setup = start(broker, &fast_ferry(), false);

    let mut traced = tenant_headers(TENANT_A);
    traced.push((
        "traceparent".into(),
        Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()),
    ));
    let deck_logout = Setup::logout_event(2001, 3, DECK).to_string();
    setup.cluster.send(
        &setup.settings.topics.character_status,
        None,
        deck_logout.as_bytes(),
        &traced,
    );
    setup.logout(TENANT_A, 2002, 3, DOCK);
    setup.logout(TENANT_A, 2003, 4, STAGING);

    let mut seen = setup.commands.read_until(|r| r.character_id() == 2003);
    seen.extend(setup.commands.drain());

    let from_deck = change_maps_of(&seen, 2001);
    assert_eq!(from_deck.len(), 1, "{seen:#?}");
    assert_eq!(from_deck[0].json["body"]["mapId"], DOCK);
    assert_eq!(from_deck[0].json["body"]["channelId"], 3);
    assert_eq!(from_deck[0].key.as_deref(), Some(&character_key(2001)[..]));
    assert_tenant_headers(from_deck[0], TENANT_A);
    assert_eq!(
        from_deck[0].header("traceparent"),
        Some(&b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..])
    );

    assert!(
        change_maps_of(&seen, 2002).is_empty(),
        "logout on the dock: {seen:#?}"
    );
    let from_staging = change_maps_of(&seen, 2003);
    assert_eq!(from_staging.len(), 1);
    assert_eq!(from_staging[0].json["body"]["channelId"], 4);
    assert_eq!(from_staging[0].header("traceparent"), None);
}

fn tenants_stay_apart(broker: &BrokerKind) {
    let dir = fast_ferry();
    let setup = start(broker, &dir, false);
    board_after_next_departure(&dir);
    setup.channel(TENANT_A, 1, "STARTED");
    setup.enter(TENANT_A, 3002, 1, STAGING);
    setup.enter(TENANT_B, 3003, 1, STAGING); // tenant B has no live channel
    setup.service.wait_for_occupants(TENANT_A, &[STAGING], 1);
    setup.service.wait_for_occupants(TENANT_B, &[STAGING], 1);
    setup.logout(TENANT_B, 3001, 1, DECK);

    let seen = setup.commands.read_until(|r| r.character_id() == 3002);
    let mut seen = seen;
    seen.extend(setup.commands_after_next_departure());

    let b_logout = change_maps_of(&seen, 3001);
    assert_eq!(b_logout.len(), 1, "{seen:#?}");
    assert_tenant_headers(b_logout[0], TENANT_B);

    let a_departure = change_maps_of(&seen, 3002);
    assert_eq!(a_departure.len(), 1, "{seen:#?}");
    assert_tenant_headers(a_departure[0], TENANT_A);

    assert!(change_maps_of(&seen, 3003).is_empty(), "{seen:#?}");

    // Status events carry each tenant's own route id and headers.
    let statuses = setup.status.drain();
    let config = Config::load(&dir).unwrap();
    let routes = routes_for_tenants(&config.tenants, &config.routes, &config.vessels);
    for tenant in [TENANT_A, TENANT_B] {
        let route_id = derived_route_id(Uuid::parse_str(tenant).unwrap(), ROUTE).to_string();
        assert!(routes.iter().any(|r| r.id.to_string() == route_id));
        for record in statuses
            .iter()
            .filter(|r| r.json["routeId"] == route_id.as_str())
        {
            assert_tenant_headers(record, tenant);
        }
    }
}

fn channel_shutdown_stops_its_warps(broker: &BrokerKind) {
    let dir = fast_ferry();
    let setup = start(broker, &dir, false);
    board_after_next_departure(&dir);
    setup.channel(TENANT_A, 1, "STARTED");
    setup.channel(TENANT_A, 2, "STARTED");
    setup.enter(TENANT_A, 6001, 1, STAGING);
    setup.enter(TENANT_A, 6002, 2, STAGING);
    setup.service.wait_for_occupants(TENANT_A, &[STAGING], 2);

    setup.channel(TENANT_A, 1, "SHUTDOWN");
    setup.service.wait_for_occupants(TENANT_A, &[STAGING], 1);

    let mut seen = setup.commands.read_until(|r| r.character_id() == 6002);
    seen.extend(setup.commands_after_next_departure());
    assert!(change_maps_of(&seen, 6001).is_empty(), "{seen:#?}");
    assert_eq!(change_maps_of(&seen, 6002).len(), 1);
}

fn bad_records_are_skipped_and_reported(broker: &BrokerKind) {
    let setup = start(broker, &fast_ferry(), true);
    let topic = setup.settings.topics.character_status.clone();
    let good = |character_id: u32| {
        Setup::logout_event(character_id, 1, DECK)
            .to_string()
            .into_bytes()
    };
    let headers = tenant_headers(TENANT_A);
    let with_header = |name: &str, value: Option<Vec<u8>>| {
        let mut changed: Vec<(String, Option<Vec<u8>>)> =
            headers.iter().filter(|(n, _)| n != name).cloned().collect();
        changed.push((name.to_string(), value));
        changed
    };
    let without_header = |name: &str| -> Vec<(String, Option<Vec<u8>>)> {
        headers.iter().filter(|(n, _)| n != name).cloned().collect()
    };

    type Headers = Vec<(String, Option<Vec<u8>>)>;
    let bad: Vec<(&str, Vec<u8>, Headers)> = vec![
        ("invalid_json", br#"{"worldId":0,"characterId":12,"type":"LOGO"#.to_vec(), headers.clone()),
        ("wrong_field_type", br#"{"worldId":"zero","characterId":12,"type":"LOGOUT","body":{"channelId":1,"mapId":1}}"#.to_vec(), headers.clone()),
        ("out_of_range", br#"{"worldId":300,"characterId":12,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#.to_vec(), headers.clone()),
        ("out_of_range", br#"{"worldId":0,"characterId":-12,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#.to_vec(), headers.clone()),
        ("missing_header", good(12), without_header("TENANT_ID")),
        ("malformed_header", good(12), with_header("TENANT_ID", Some(b"not-a-uuid".to_vec()))),
        ("malformed_header", good(12), with_header("MAJOR_VERSION", Some(vec![83]))),
        ("empty_payload", Vec::new(), headers.clone()),
        ("oversized", {
            let mut big = br#"{"worldId":0,"characterId":12,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010},"padding":""#.to_vec();
            big.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
            big.extend(br#""}"#);
            big
        }, headers.clone()),
    ];

    // Each bad record is followed by a good LOGOUT that must be handled.
    for (index, (_, payload, record_headers)) in bad.iter().enumerate() {
        setup
            .cluster
            .send(&topic, Some(b"key-bad"), payload, record_headers);
        setup
            .cluster
            .send(&topic, None, &good(4000 + index as u32), &headers);
    }
    let channel_topic = setup.settings.topics.channel_status.clone();
    setup.cluster.send_json(
        &channel_topic,
        TENANT_A,
        json!({"type": "PAUSED", "worldId": 0, "channelId": 1}),
    );
    setup.channel(TENANT_A, 1, "STARTED");
    let map_topic = setup.settings.topics.map_status.clone();
    setup.cluster.send(&map_topic, None, b"{not json", &headers);
    setup.enter(TENANT_A, 4999, 1, STAGING);

    let last_good = 4000 + bad.len() as u64 - 1;
    let mut seen = setup.commands.read_until(|r| r.character_id() == last_good);
    seen.extend(setup.commands.drain());
    for index in 0..bad.len() as u64 {
        assert_eq!(
            change_maps_of(&seen, 4000 + index).len(),
            1,
            "good record after bad #{index}: {seen:#?}"
        );
    }
    // 4999 entered the staging map, so a departure may move it meanwhile.
    let from_logouts = seen.iter().filter(|r| r.character_id() != 4999).count();
    assert_eq!(
        from_logouts,
        bad.len(),
        "only the good records caused commands"
    );
    // The ENTER after the bad map-status record is handled. (Presence is no
    // witness: a departure may already have moved 4999 on.)
    let deadline = std::time::Instant::now() + PATIENCE;
    while setup.service.consumer_counters()[&map_topic].handled < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "map-status ENTER never handled"
        );
        thread::sleep(Duration::from_millis(20));
    }

    let counters = setup.service.consumer_counters();
    let character = &counters[&topic];
    let mut expected = std::collections::BTreeMap::new();
    for (reason, _, _) in &bad {
        *expected.entry(*reason).or_insert(0u64) += 1;
    }
    assert_eq!(character.bad, expected);
    assert_eq!(character.handled, bad.len() as u64);
    assert_eq!(counters[&channel_topic].bad.get("unknown_type"), Some(&1));
    assert_eq!(counters[&map_topic].bad.get("invalid_json"), Some(&1));

    // Every rejected record was copied with its reason and origin.
    let dead = setup.cluster.reader("DEAD_LETTERS");
    let mut copies = Vec::new();
    while copies.len() < bad.len() + 2 {
        copies.extend(dead.read_until(|_| true));
    }
    copies.extend(dead.drain());
    assert_eq!(copies.len(), bad.len() + 2, "{copies:#?}");

    // The character topic's copies come in the order the records were sent.
    let source_prefix = format!("{topic}/");
    let character_copies: Vec<&Record> = copies
        .iter()
        .filter(|c| {
            c.header("DEAD_LETTER_SOURCE")
                .is_some_and(|s| s.starts_with(source_prefix.as_bytes()))
        })
        .collect();
    assert_eq!(character_copies.len(), bad.len());
    for (copy, (reason, payload, _)) in character_copies.iter().zip(&bad) {
        let stated =
            String::from_utf8(copy.header("DEAD_LETTER_REASON").unwrap().to_vec()).unwrap();
        assert!(stated.starts_with(reason), "{stated} for {reason}");
        assert_eq!(copy.key.as_deref(), Some(&b"key-bad"[..]));
        if *reason == "oversized" {
            assert!(copy.payload.is_empty(), "oversized value is left out");
            assert_eq!(
                copy.header("DEAD_LETTER_TRUNCATED"),
                Some(payload.len().to_string().as_bytes())
            );
        } else {
            assert_eq!(&copy.payload, payload);
        }
    }
}

fn restart_keeps_riders_who_boarded_before(broker: &BrokerKind) {
    // 10 s boarding, 1 s wait, 3 s travel, every 20 s: time to restart
    // between boarding and departure.
    let dir = config_dir(10, 3, 20);
    let config = Config::load(&dir).unwrap();
    let route = routes_for_tenants(&config.tenants, &config.routes, &config.vessels).remove(0);

    let settings = default_settings();
    let cluster = TestCluster::start_on(broker, &settings);
    let status_requests = cluster.reader(&settings.topics.channel_status_command);
    let commands = cluster.reader(&settings.topics.character_command);

    let first = ServiceThread::start(&cluster.bootstrap, &settings, &dir);
    let setup = Setup {
        service: first,
        commands,
        status: status_requests,
        cluster,
        settings: settings.clone(),
    };

    // Board right after a departure, so the next one is ~20 s away.
    let next = route.timetable.next_event_after(now_millis()).unwrap();
    let next_departure = if next.kind == TripEventKind::Departed {
        next.at
    } else {
        route.timetable.trip(next.trip.index).unwrap().departure
    };
    let wait = (next_departure - now_millis() + 100).max(0) as u64;
    thread::sleep(Duration::from_millis(wait));

    setup.channel(TENANT_A, 1, "STARTED");
    setup.enter(TENANT_A, 5001, 1, STAGING);
    setup.service.wait_for_occupants(TENANT_A, &[STAGING], 1);
    let Setup {
        service: first,
        commands,
        status: status_requests,
        cluster,
        settings,
    } = setup;
    first.stop();

    let second = ServiceThread::start(&cluster.bootstrap, &settings, &dir);
    second.wait_for_occupants(TENANT_A, &[STAGING], 1);

    // Play the channel server: reply to the new STATUS_REQUEST. Each start
    // asks each of the two tenants once.
    let mut requests = Vec::new();
    while requests.len() < 4 {
        requests.extend(status_requests.read_until(|_| true));
    }
    assert_eq!(requests.len(), 4, "one STATUS_REQUEST per tenant and start");
    for request in &requests {
        assert_eq!(request.json, json!({"type": "STATUS_REQUEST"}));
    }
    assert_tenant_headers(&requests[2], TENANT_A);
    assert_tenant_headers(&requests[3], TENANT_B);
    let event = json!({"type": "STARTED", "worldId": 0, "channelId": 1, "ipAddress": "127.0.0.1", "port": 8585});
    cluster.send_json(&settings.topics.channel_status, TENANT_A, event);

    let seen = commands.read_until(|r| r.character_id() == 5001);
    let moved = seen.last().unwrap();
    assert_eq!(moved.json["body"]["mapId"], DECK);
    assert!(
        now_millis() >= next_departure + 20_000,
        "moved by the restarted service at the next departure"
    );
    // Readers close while their broker is still up, or each waits for it.
    drop(second);
    drop(commands);
    drop(status_requests);
    drop(cluster);
}

fn stop_keeps_the_latest_committed_offset(broker: &BrokerKind) {
    let setup = start(broker, &fast_ferry(), false);
    let topic = setup.settings.topics.character_status.clone();

    // An ignored record (offset committed by the consumer), then a LOGOUT
    // aboard (offset committed in the batch's transaction).
    let login = json!({"worldId": 0, "characterId": 7001, "type": "LOGIN", "body": {}});
    setup.cluster.send_json(&topic, TENANT_A, login);
    setup.logout(TENANT_A, 7002, 1, DECK);
    setup.commands.read_until(|r| r.character_id() == 7002);

    let Setup {
        service,
        commands,
        status,
        cluster,
        settings,
    } = setup;
    service.stop();

    let reader: rdkafka::consumer::BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &cluster.bootstrap)
        .set("group.id", &settings.consumer_group)
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    partitions.add_partition(&topic, 0);
    let committed =
        rdkafka::consumer::Consumer::committed_offsets(&reader, partitions, PATIENCE).unwrap();
    let offset = committed.find_partition(&topic, 0).unwrap().offset();
    assert_eq!(
        offset,
        rdkafka::Offset::Offset(2),
        "both records committed, none read again"
    );

    drop(reader);
    drop(commands);
    drop(status);
    drop(cluster);
}

fn rider_moves_once_without_confirmation(broker: &BrokerKind) {
    let dir = fast_ferry();
    let setup = start(broker, &dir, false);
    board_after_next_departure(&dir);
    setup.channel(TENANT_A, 1, "STARTED");
    setup.enter(TENANT_A, 8001, 1, STAGING);
    setup.service.wait_for_occupants(TENANT_A, &[STAGING], 1);

    // The map service never answers: the rider must still be moved once to
    // the deck and once to the destination, not again at later departures.
    let mut seen = setup.commands.read_until(|r| r.character_id() == 8001);
    seen.extend(setup.commands.read_until(|r| r.character_id() == 8001));
    seen.extend(setup.commands_after_next_departure());
    seen.extend(setup.commands_after_next_departure());

    let moves = change_maps_of(&seen, 8001);
    assert_eq!(moves.len(), 2, "{seen:#?}");
    assert_eq!(moves[0].json["body"]["mapId"], DECK);
    assert_eq!(moves[1].json["body"]["mapId"], DESTINATION);
}

on_both_brokers!(
    riders_move_at_departure_and_arrival,
    logout_aboard_goes_to_the_dock,
    tenants_stay_apart,
    channel_shutdown_stops_its_warps,
    bad_records_are_skipped_and_reported,
    restart_keeps_riders_who_boarded_before,
    stop_keeps_the_latest_committed_offset,
    rider_moves_once_without_confirmation,
);
