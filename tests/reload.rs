//! Live reload of the real binary: SIGHUP re-reads the configuration folder,
//! starts added routes, restarts changed ones, stops removed ones, and keeps
//! the running routes when the new configuration is invalid.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use common::binary::RunningService;
use common::*;
use serde_json::{json, Value};

const TENANT: &str = "083839c6-c47c-42a6-9585-76492795d123";

/// GET over plain HTTP/1.1 on loopback; returns the JSON body.
fn get_routes(port: u16) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP API");
    let request = format!(
        "GET /api/transports/routes HTTP/1.1\r\nHost: 127.0.0.1\r\nTENANT_ID: {TENANT}\r\nREGION: GMS\r\nMAJOR_VERSION: 83\r\nMINOR_VERSION: 1\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();

    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).expect("JSON body")
}

/// Route name → cycleInterval (ns) as the API reports them.
fn routes_by_name(port: u16) -> Vec<(String, i64)> {
    let mut routes: Vec<(String, i64)> = get_routes(port)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route| {
            let attributes = &route["attributes"];
            (
                attributes["name"].as_str().unwrap().to_string(),
                attributes["cycleInterval"].as_i64().unwrap(),
            )
        })
        .collect();
    routes.sort();
    routes
}

fn write_route(dir: &Path, file: &str, name: &str, staging: u32, cycle_seconds: u32) {
    let route = json!({
        "name": name,
        "startMapId": staging - 1,
        "stagingMapId": staging,
        "enRouteMapIds": [staging + 1],
        "destinationMapId": staging + 2,
        "observationMapId": staging - 1,
        "boardingWindowDurationSeconds": 2,
        "preDepartureDurationSeconds": 1,
        "travelDurationSeconds": 2,
        "cycleIntervalSeconds": cycle_seconds
    });
    std::fs::write(dir.join("routes").join(file), route.to_string()).unwrap();
}

#[test]
fn sighup_applies_route_changes() {
    let dir = temp_dir("reload");
    std::fs::create_dir_all(dir.join("routes")).unwrap();
    std::fs::copy(repo_path("config/tenants.json"), dir.join("tenants.json")).unwrap();
    write_route(&dir, "shuttle.json", "shuttle", 600010004, 6);

    let port = free_port();
    let port_text = port.to_string();
    let service = RunningService::start(&dir, &[("REST_PORT", &port_text)]);
    service.wait_for_line("HTTP API listening");
    assert_eq!(
        routes_by_name(port),
        vec![("shuttle".to_string(), 6_000_000_000)]
    );

    // Add a route and change the other.
    write_route(&dir, "ferry.json", "ferry", 101000301, 5);
    write_route(&dir, "shuttle.json", "shuttle", 600010004, 12);
    service.signal("HUP");
    let line = service.wait_for_line("configuration reloaded");
    assert!(line.contains("routes_started=1"), "{line}");
    assert!(line.contains("routes_restarted=1"), "{line}");
    assert!(line.contains("routes_stopped=0"), "{line}");
    assert_eq!(
        routes_by_name(port),
        vec![
            ("ferry".to_string(), 5_000_000_000),
            ("shuttle".to_string(), 12_000_000_000)
        ]
    );
    // The new route runs its timetable without a restart.
    service.wait_for_line("trip event route=ferry");

    // A broken file keeps the running routes.
    write_route(&dir, "broken.json", "broken", 103000100, 1);
    service.signal("HUP");
    let line = service.wait_for_line("invalid configuration on reload");
    assert!(line.contains("broken.json"), "names the file: {line}");
    assert!(
        line.contains("cycleIntervalSeconds"),
        "names the field: {line}"
    );
    assert!(line.contains("must be at least"), "names the rule: {line}");
    assert_eq!(routes_by_name(port).len(), 2);

    // Remove the broken file and the ferry.
    std::fs::remove_file(dir.join("routes/broken.json")).unwrap();
    std::fs::remove_file(dir.join("routes/ferry.json")).unwrap();
    service.signal("HUP");
    let line = service.wait_for_line("configuration reloaded");
    assert!(line.contains("routes_stopped=1"), "{line}");
    assert!(line.contains("routes_unchanged=1"), "{line}");
    assert_eq!(
        routes_by_name(port),
        vec![("shuttle".to_string(), 12_000_000_000)]
    );

    service.signal("TERM");
    let mut service = service;
    assert!(service.wait().success());
    std::fs::remove_dir_all(dir).unwrap();
}
