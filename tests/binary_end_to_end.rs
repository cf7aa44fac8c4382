//! The real binary on its embedded broker: status events reach an ordinary
//! Kafka consumer with the contract's JSON, key and tenant headers, on time
//! and in order; SIGTERM stops it cleanly; a broken route file stops start-up.

mod common;

use std::process::Command;
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use atlas_transports::config::Config;
use atlas_transports::routes::routes_for_tenants;
use atlas_transports::timetable::TripEventKind;
use common::binary::{RunningService, PATIENCE};
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn status_events_reach_a_consumer() {
    let config_dir = repo_path("tests/fixtures/seconds-route");
    let config = Config::load(&config_dir).unwrap();
    let route = routes_for_tenants(&config.tenants, &config.routes, &config.vessels).remove(0);
    let topic = "EVENT_TOPIC_TRANSPORT_STATUS";

    // Events before the process started are never sent.
    let started_at = now_millis();
    let service = RunningService::start(&config_dir, &[]);
    let line = service.wait_for_line("embedded Kafka broker");
    let bootstrap = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("bootstrap="))
        .expect("bootstrap address in the log line")
        .to_string();
    service.wait_for_line("producer connected");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "status-events-test")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // Deliver each record as soon as it is committed.
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();

    // Two whole trips: ARRIVED, DEPARTED, ARRIVED, DEPARTED (about 12 s).
    let mut received = Vec::new();
    let deadline = WallInstant::now() + PATIENCE;
    while received.len() < 4 && WallInstant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = result.expect("consume");
        let arrived_at = now_millis();

        let headers = message.headers().expect("tenant headers");
        let header_pairs: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
            .collect();
        received.push((
            message.key().unwrap().to_vec(),
            message.payload().unwrap().to_vec(),
            header_pairs,
            arrived_at,
        ));
    }
    assert_eq!(received.len(), 4, "status events within {PATIENCE:?}");

    let expected_events: Vec<_> = route
        .timetable
        .events_between(started_at - 1, now_millis())
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                TripEventKind::BoardingOpened | TripEventKind::Departed
            )
        })
        .collect();

    let mut previous_type = None;
    for (key, payload, headers, arrived_at) in &received {
        assert_eq!(
            key,
            route.id.to_string().as_bytes(),
            "key is the route id text"
        );

        let json: serde_json::Value = serde_json::from_slice(payload).unwrap();
        let kind = json["type"].as_str().unwrap().to_string();
        assert_eq!(
            payload,
            &format!(
                r#"{{"routeId":"{}","type":"{kind}","body":{{"mapId":103000100}}}}"#,
                route.id
            )
            .into_bytes()
        );
        assert_ne!(
            previous_type.as_deref(),
            Some(kind.as_str()),
            "types alternate"
        );
        previous_type = Some(kind.clone());

        assert_eq!(
            headers,
            &vec![
                (
                    "TENANT_ID".to_string(),
                    b"083839c6-c47c-42a6-9585-76492795d123".to_vec()
                ),
                ("REGION".to_string(), b"GMS".to_vec()),
                ("MAJOR_VERSION".to_string(), vec![0x00, 0x53]),
                ("MINOR_VERSION".to_string(), vec![0x00, 0x01]),
            ]
        );

        // The scheduled instant of this event is the latest one of its kind
        // at or before its arrival at the consumer; it must not be early.
        let wanted = if kind == "ARRIVED" {
            TripEventKind::BoardingOpened
        } else {
            TripEventKind::Departed
        };
        let scheduled = expected_events
            .iter()
            .filter(|e| e.kind == wanted && e.at <= *arrived_at)
            .map(|e| e.at)
            .max()
            .expect("a scheduled event before the record arrived");
        eprintln!(
            "{kind} scheduled={scheduled} consumed_late_ms={}",
            arrived_at - scheduled
        );
    }

    // Leave the group while the broker is still there, or closing waits
    // for it until the session times out.
    drop(consumer);

    let stop_started = WallInstant::now();
    service.signal("TERM");
    let mut service = service;
    let status = service.wait();
    eprintln!("stopped in {} ms", stop_started.elapsed().as_millis());
    assert!(status.success(), "exit status {status}");
}

#[test]
fn broken_route_file_stops_start_up() {
    let dir = temp_dir("broken-config");
    std::fs::create_dir_all(dir.join("routes")).unwrap();
    std::fs::copy(repo_path("config/tenants.json"), dir.join("tenants.json")).unwrap();
    let mut route: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo_path(
            "tests/fixtures/seconds-route/routes/shuttle.json",
        ))
        .unwrap(),
    )
    .unwrap();
    route["cycleIntervalSeconds"] = serde_json::json!(5);
    std::fs::write(dir.join("routes/shuttle.json"), route.to_string()).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_atlas-transports"))
        .arg("--config")
        .arg(&dir)
        .env_remove("BOOTSTRAP_SERVERS")
        .env_remove("RUST_LOG")
        .output()
        .expect("run atlas-transports");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("routes/shuttle.json"),
        "names the file: {stderr}"
    );
    assert!(
        stderr.contains("cycleIntervalSeconds"),
        "names the field: {stderr}"
    );
    assert!(
        stderr.contains("must be at least"),
        "names the rule: {stderr}"
    );
    assert!(
        !stderr.contains("embedded Kafka broker"),
        "started anyway: {stderr}"
    );

    std::fs::remove_dir_all(dir).unwrap();
}

/// Start-up against a broker that does not respond can take a minute. A
/// SIGTERM meanwhile stops the process at once, with exit code 0.
#[test]
fn sigterm_during_start_up_stops_at_once() {
    // Nothing listens on port 1 of loopback, so every connection fails.
    let rest_port = free_port().to_string();
    let mut service = RunningService::start(
        &repo_path("config"),
        &[
            ("BOOTSTRAP_SERVERS", "127.0.0.1:1"),
            ("REST_PORT", &rest_port),
        ],
    );
    // Logged 5 s into start-up, well after the signal handlers are set.
    service.wait_for_line("failed to list topics");

    service.signal("TERM");
    service.wait_for_line("stopping on SIGTERM during start-up");
    let status = service.wait();
    assert!(status.success(), "exit status {status}");
}
