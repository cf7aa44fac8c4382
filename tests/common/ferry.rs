//! The one-ferry configuration that the broker tests run: its maps, and a
//! folder with the route and its tenants.

use std::path::PathBuf;

use serde_json::{json, Value};

pub const DOCK: u32 = 101000300;
pub const STAGING: u32 = 101000301;
pub const DECK: u32 = 200090010;
pub const CABIN: u32 = 200090011;
pub const DESTINATION: u32 = 200000100;

/// Writes a configuration folder with one ferry route named `name` and the
/// tenants `tenant_ids` (all GMS 83.1). `durations` holds the route's
/// duration fields, in seconds or minutes as their names say.
pub fn config_dir(name: &str, durations: Value, tenant_ids: &[&str]) -> PathBuf {
    let dir = super::temp_dir(name);
    std::fs::create_dir_all(dir.join("routes")).unwrap();

    let mut route = json!({
        "name": name,
        "startMapId": DOCK,
        "stagingMapId": STAGING,
        "enRouteMapIds": [DECK, CABIN],
        "destinationMapId": DESTINATION,
        "observationMapId": DOCK,
    });
    for (field, value) in durations.as_object().expect("durations are an object") {
        route[field] = value.clone();
    }
    std::fs::write(dir.join("routes/ferry.json"), route.to_string()).unwrap();

    let tenants: Vec<Value> = tenant_ids
        .iter()
        .map(|id| json!({"id": id, "region": "GMS", "majorVersion": 83, "minorVersion": 1}))
        .collect();
    std::fs::write(dir.join("tenants.json"), Value::from(tenants).to_string()).unwrap();
    dir
}

/// Durations in seconds: `boarding`, 1 s before departure, `travel`, and a
/// trip every `cycle`.
pub fn seconds(boarding: u32, travel: u32, cycle: u32) -> Value {
    json!({
        "boardingWindowDurationSeconds": boarding,
        "preDepartureDurationSeconds": 1,
        "travelDurationSeconds": travel,
        "cycleIntervalSeconds": cycle
    })
}
