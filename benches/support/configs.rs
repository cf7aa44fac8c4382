//! Configuration folders of the scenarios. The parent process writes them,
//! so that loading them is part of each scenario process's start-up, as it
//! is for the service binary.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use uuid::Uuid;

/// Routes per tenant of the many-routes scenario.
pub const BURST_ROUTES_PER_TENANT: usize = 10;

/// Seconds of each burst route's trip: boarding opens at 0, closes at 4,
/// the vessel departs at 5 and arrives at 10, and the next trip boards at
/// 20. The 10 s after the arrival is where idle CPU is measured.
const BURST_BOARDING_SECONDS: u64 = 4;
const BURST_PRE_DEPARTURE_SECONDS: u64 = 1;
const BURST_TRAVEL_SECONDS: u64 = 5;
const BURST_CYCLE_SECONDS: u64 = 20;

/// Returns the shipped configuration folder.
pub fn shipped_config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Writes the shipped routes, vessels and tenants with every duration in
/// seconds instead of minutes: the twelve shipped routes, one tenant,
/// trip events every few seconds.
pub fn write_seconds_scale_shipped(dir: &Path) {
    let shipped = shipped_config_dir();
    for folder in ["routes", "vessels"] {
        fs::create_dir_all(dir.join(folder)).expect("create configuration folder");
        for entry in fs::read_dir(shipped.join(folder)).expect("read shipped configuration") {
            let path = entry.expect("list shipped configuration").path();
            let text = fs::read_to_string(&path).expect("read shipped configuration file");
            // Only the duration keys end in "Minutes"; the values keep their
            // numbers and so become seconds.
            let seconds = text.replace("Minutes\"", "Seconds\"");
            let name = path.file_name().expect("file name");
            fs::write(dir.join(folder).join(name), seconds).expect("write configuration file");
        }
    }
    fs::copy(shipped.join("tenants.json"), dir.join("tenants.json")).expect("copy tenants.json");
}

/// Writes `BURST_ROUTES_PER_TENANT` routes that share one timetable, each
/// with maps of its own, run by `tenants` tenants: every route actor's trip
/// events fall on the same instants.
pub fn write_burst_routes(dir: &Path, tenants: usize) {
    let routes_dir = dir.join("routes");
    fs::create_dir_all(&routes_dir).expect("create routes folder");

    for index in 0..BURST_ROUTES_PER_TENANT {
        let start_map_id = 910_000_000 + 10 * index as u32;
        let route = json!({
            "name": format!("burst-route-{index:02}"),
            "startMapId": start_map_id,
            "stagingMapId": start_map_id + 1,
            "enRouteMapIds": [start_map_id + 2],
            "destinationMapId": start_map_id + 3,
            "observationMapId": start_map_id,
            "boardingWindowDurationSeconds": BURST_BOARDING_SECONDS,
            "preDepartureDurationSeconds": BURST_PRE_DEPARTURE_SECONDS,
            "travelDurationSeconds": BURST_TRAVEL_SECONDS,
            "cycleIntervalSeconds": BURST_CYCLE_SECONDS,
        });
        write_json(
            &routes_dir.join(format!("burst-route-{index:02}.json")),
            &route,
        );
    }

    let tenants: Vec<Value> = (0..tenants)
        .map(|index| {
            let id = Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("bench-tenant-{index}").as_bytes(),
            );
            json!({"id": id, "region": "GMS", "majorVersion": 83, "minorVersion": 1})
        })
        .collect();
    write_json(&dir.join("tenants.json"), &Value::Array(tenants));
}

fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("JSON serializes");
    fs::write(path, text).expect("write configuration file");
}
