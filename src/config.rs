//! Loads and validates the configuration folder.
//!
//! Layout: `routes/*.json` (one route a file), `vessels/*.json` (shared
//! vessels, optional folder) and `tenants.json`. Every rule is checked before
//! anything starts, and the first broken one stops start-up with the file, the
//! field and the rule, so nothing runs half-configured.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::routes::{RouteDefinition, VesselDefinition};
use crate::tenant::Tenant;
use crate::timetable::{Millis, TripDurations};

/// Everything read from the configuration folder.
#[derive(Clone, Debug)]
pub struct Config {
    pub tenants: Vec<Tenant>,
    pub routes: Vec<Arc<RouteDefinition>>,
    pub vessels: Vec<VesselDefinition>,
}

/// A configuration file that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// The offending field, or `None` when the whole file is at fault.
    pub field: Option<String>,
    pub rule: String,
}

impl ConfigError {
    fn file(file: &Path, rule: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            field: None,
            rule: rule.into(),
        }
    }

    fn field(file: &Path, field: &str, rule: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            field: Some(field.to_string()),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "{}: field `{}`: {}",
                self.file.display(),
                field,
                self.rule
            ),
            None => write!(f, "{}: {}", self.file.display(), self.rule),
        }
    }
}

impl std::error::Error for ConfigError {}

const ROUTE_FIELDS: &[&str] = &[
    "id",
    "name",
    "startMapId",
    "stagingMapId",
    "enRouteMapIds",
    "destinationMapId",
    "observationMapId",
    "boardingWindowDurationMinutes",
    "boardingWindowDurationSeconds",
    "preDepartureDurationMinutes",
    "preDepartureDurationSeconds",
    "travelDurationMinutes",
    "travelDurationSeconds",
    "cycleIntervalMinutes",
    "cycleIntervalSeconds",
    "spawnPortalIds",
];

const VESSEL_FIELDS: &[&str] = &[
    "name",
    "routeA",
    "routeB",
    "turnaroundDelayMinutes",
    "turnaroundDelaySeconds",
];

const TENANT_FIELDS: &[&str] = &["id", "region", "majorVersion", "minorVersion"];

impl Config {
    /// Reads and validates `dir`.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        if !dir.is_dir() {
            return Err(ConfigError::file(
                dir,
                "configuration folder not found; pass --config DIR",
            ));
        }

        let tenants = load_tenants(&dir.join("tenants.json"))?;

        let route_dir = dir.join("routes");
        let route_files = json_files(&route_dir, true)?;
        if route_files.is_empty() {
            return Err(ConfigError::file(&route_dir, "holds no *.json route file"));
        }
        let routes = load_routes(&route_files)?;

        let vessel_files = json_files(&dir.join("vessels"), false)?;
        let vessels = load_vessels(&vessel_files, &routes)?;

        Ok(Config {
            tenants,
            routes,
            vessels,
        })
    }
}

/// The `*.json` files of a folder, sorted by name so loading is repeatable.
fn json_files(dir: &Path, required: bool) -> Result<Vec<PathBuf>, ConfigError> {
    if !dir.exists() && !required {
        return Ok(Vec::new());
    }

    let entries = fs::read_dir(dir)
        .map_err(|error| ConfigError::file(dir, format!("failed to read folder: {error}")))?;

    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| ConfigError::file(dir, format!("failed to read folder: {error}")))?
            .path();
        if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        } else if !is_hidden(&path) {
            log::warn!(
                "ignoring a file without the .json extension; rename it to load it file={}",
                path.display()
            );
        }
    }
    files.sort();
    Ok(files)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with('.'))
}

fn read_json(file: &Path) -> Result<Value, ConfigError> {
    let text = fs::read_to_string(file)
        .map_err(|error| ConfigError::file(file, format!("failed to read: {error}")))?;
    // Some editors start UTF-8 files with a byte-order mark, which is not JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    serde_json::from_str(text)
        .map_err(|error| ConfigError::file(file, format!("invalid JSON: {error}")))
}

fn load_tenants(file: &Path) -> Result<Vec<Tenant>, ConfigError> {
    let Value::Array(entries) = read_json(file)? else {
        return Err(ConfigError::file(file, "must be a JSON array of tenants"));
    };
    if entries.is_empty() {
        return Err(ConfigError::file(file, "must list at least one tenant"));
    }

    let mut tenants: Vec<Tenant> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let fields = Fields::new(file, entry, &format!("[{index}]."), TENANT_FIELDS)?;
        let tenant = Tenant {
            id: fields.uuid("id")?,
            region: fields.non_empty_string("region")?,
            major_version: fields.u16("majorVersion")?,
            minor_version: fields.u16("minorVersion")?,
        };

        if tenants.iter().any(|known| known.id == tenant.id) {
            return Err(fields.error("id", format!("tenant {} is listed twice", tenant.id)));
        }
        tenants.push(tenant);
    }
    Ok(tenants)
}

fn load_routes(files: &[PathBuf]) -> Result<Vec<Arc<RouteDefinition>>, ConfigError> {
    let mut routes: Vec<Arc<RouteDefinition>> = Vec::new();

    for file in files {
        let route = parse_route(file, &read_json(file)?)?;

        if let Some(other) = routes.iter().find(|known| known.name == route.name) {
            let rule = format!(
                "name `{}` is already used by {}",
                route.name,
                other.source.display()
            );
            return Err(ConfigError::field(file, "name", rule));
        }
        if let Some(other) = routes
            .iter()
            .find(|known| route.id.is_some() && known.id == route.id)
        {
            let rule = format!("id is already used by {}", other.source.display());
            return Err(ConfigError::field(file, "id", rule));
        }
        routes.push(Arc::new(route));
    }
    Ok(routes)
}

/// Parses one route file and checks the route rules.
pub fn parse_route(file: &Path, json: &Value) -> Result<RouteDefinition, ConfigError> {
    let fields = Fields::new(file, json, "", ROUTE_FIELDS)?;

    let en_route_map_ids = fields.u32_list("enRouteMapIds")?;
    if en_route_map_ids.is_empty() {
        return Err(fields.error("enRouteMapIds", "must list at least one map"));
    }

    let durations = TripDurations {
        boarding_window: fields.duration("boardingWindowDuration")?,
        pre_departure: fields.duration("preDepartureDuration")?,
        travel: fields.duration("travelDuration")?,
    };
    let cycle_interval = fields.duration("cycleInterval")?;

    if durations.boarding_window <= 0 {
        return Err(fields.duration_error("boardingWindowDuration", "must be greater than 0"));
    }
    if durations.travel <= 0 {
        return Err(fields.duration_error("travelDuration", "must be greater than 0"));
    }
    // The cycle rule holds for routes on a shared vessel too, although the
    // vessel sets their timing, so that the file stays valid on its own.
    if cycle_interval < durations.length() {
        let rule = format!(
            "must be at least boarding window + pre-departure + travel ({} ms), is {} ms",
            durations.length(),
            cycle_interval
        );
        return Err(fields.duration_error("cycleInterval", rule));
    }

    Ok(RouteDefinition {
        source: file.to_path_buf(),
        id: fields.optional_uuid("id")?,
        name: fields.non_empty_string("name")?,
        start_map_id: fields.u32("startMapId")?,
        staging_map_id: fields.u32("stagingMapId")?,
        en_route_map_ids,
        destination_map_id: fields.u32("destinationMapId")?,
        observation_map_id: fields.u32("observationMapId")?,
        durations,
        cycle_interval,
        spawn_portal_ids: fields.spawn_portals("spawnPortalIds")?,
    })
}

fn load_vessels(
    files: &[PathBuf],
    routes: &[Arc<RouteDefinition>],
) -> Result<Vec<VesselDefinition>, ConfigError> {
    let mut vessels: Vec<VesselDefinition> = Vec::new();

    for file in files {
        let json = read_json(file)?;
        let fields = Fields::new(file, &json, "", VESSEL_FIELDS)?;
        let vessel = VesselDefinition {
            source: file.to_path_buf(),
            name: fields.non_empty_string("name")?,
            route_a: fields.non_empty_string("routeA")?,
            route_b: fields.non_empty_string("routeB")?,
            turnaround_delay: fields.duration("turnaroundDelay")?,
        };

        if vessel.route_a == vessel.route_b {
            return Err(fields.error("routeB", "must name a different route than routeA"));
        }
        for (field, route) in [("routeA", &vessel.route_a), ("routeB", &vessel.route_b)] {
            if let Some(other) = vessels
                .iter()
                .find(|known| &known.route_a == route || &known.route_b == route)
            {
                let rule = format!("route `{route}` already runs on {}", other.source.display());
                return Err(fields.error(field, rule));
            }
            if !routes.iter().any(|known| &known.name == route) {
                // A shared vessel without one of its routes cannot run the
                // other: that route stays out of service instead of the
                // whole service refusing to start.
                let partner = if field == "routeA" {
                    &vessel.route_b
                } else {
                    &vessel.route_a
                };
                log::warn!(
                    "vessel route not found, so route {partner} is out of service; add the route file or fix the name file={} field={field} route={route}",
                    file.display()
                );
            }
        }
        vessels.push(vessel);
    }
    Ok(vessels)
}

/// One JSON object's fields, with typed getters whose errors name the file
/// and the field.
struct Fields<'a> {
    file: &'a Path,
    /// Prefix for field names in messages, such as `[2].` for array entries.
    prefix: String,
    object: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(
        file: &'a Path,
        json: &'a Value,
        prefix: &str,
        allowed: &[&str],
    ) -> Result<Self, ConfigError> {
        let Value::Object(object) = json else {
            let rule = if prefix.is_empty() {
                "must be a JSON object".to_string()
            } else {
                format!(
                    "entry {} must be a JSON object",
                    prefix.trim_end_matches('.')
                )
            };
            return Err(ConfigError::file(file, rule));
        };

        // A misspelt optional field would otherwise be silently ignored.
        if let Some(unknown) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(ConfigError::field(
                file,
                &format!("{prefix}{unknown}"),
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            ));
        }

        Ok(Fields {
            file,
            prefix: prefix.to_string(),
            object,
        })
    }

    fn error(&self, field: &str, rule: impl Into<String>) -> ConfigError {
        ConfigError::field(self.file, &format!("{}{field}", self.prefix), rule)
    }

    /// An error on a duration, named by whichever unit the file used.
    fn duration_error(&self, base: &str, rule: impl Into<String>) -> ConfigError {
        let seconds = format!("{base}Seconds");
        let field = if self.object.contains_key(&seconds) {
            seconds
        } else {
            format!("{base}Minutes")
        };
        self.error(&field, rule)
    }

    fn required(&self, field: &str) -> Result<&'a Value, ConfigError> {
        self.object
            .get(field)
            .ok_or_else(|| self.error(field, "missing; this field is required"))
    }

    fn non_empty_string(&self, field: &str) -> Result<String, ConfigError> {
        match self.required(field)? {
            Value::String(text) if text.trim().is_empty() => {
                Err(self.error(field, "must not be empty"))
            }
            Value::String(text) if text.trim() != text => Err(self.error(
                field,
                format!("must not start or end with white space, found {text:?}"),
            )),
            Value::String(text) => Ok(text.clone()),
            other => Err(self.error(field, format!("must be a string, found {other}"))),
        }
    }

    fn uuid(&self, field: &str) -> Result<Uuid, ConfigError> {
        let text = self.non_empty_string(field)?;
        Uuid::try_parse(&text)
            .map_err(|_| self.error(field, format!("must be a UUID, found `{text}`")))
    }

    fn optional_uuid(&self, field: &str) -> Result<Option<Uuid>, ConfigError> {
        if self.object.contains_key(field) {
            self.uuid(field).map(Some)
        } else {
            Ok(None)
        }
    }

    fn unsigned(&self, field: &str, value: &Value, max: u64) -> Result<u64, ConfigError> {
        match value.as_u64() {
            Some(number) if number <= max => Ok(number),
            _ => Err(self.error(
                field,
                format!("must be a whole number from 0 to {max}, found {value}"),
            )),
        }
    }

    fn u16(&self, field: &str) -> Result<u16, ConfigError> {
        let value = self.required(field)?;
        Ok(self.unsigned(field, value, u16::MAX as u64)? as u16)
    }

    fn u32(&self, field: &str) -> Result<u32, ConfigError> {
        let value = self.required(field)?;
        Ok(self.unsigned(field, value, u32::MAX as u64)? as u32)
    }

    fn u32_list(&self, field: &str) -> Result<Vec<u32>, ConfigError> {
        let Value::Array(items) = self.required(field)? else {
            return Err(self.error(field, "must be an array of map ids"));
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let name = format!("{field}[{index}]");
                Ok(self.unsigned(&name, item, u32::MAX as u64)? as u32)
            })
            .collect()
    }

    /// A duration given as `{base}Minutes` or `{base}Seconds` (exactly one),
    /// in milliseconds. Fractions are allowed down to whole milliseconds.
    fn duration(&self, base: &str) -> Result<Millis, ConfigError> {
        let minutes_field = format!("{base}Minutes");
        let seconds_field = format!("{base}Seconds");

        let (field, value, unit_ms) = match (
            self.object.get(&minutes_field),
            self.object.get(&seconds_field),
        ) {
            (Some(value), None) => (minutes_field, value, 60_000.0),
            (None, Some(value)) => (seconds_field, value, 1_000.0),
            (Some(_), Some(_)) => {
                return Err(self.error(
                    &seconds_field,
                    format!("give either {minutes_field} or {seconds_field}, not both"),
                ));
            }
            (None, None) => {
                return Err(self.error(
                    &minutes_field,
                    format!("missing; give {minutes_field} or {seconds_field}"),
                ));
            }
        };

        let amount = value
            .as_f64()
            .filter(|amount| amount.is_finite() && *amount >= 0.0);
        let Some(amount) = amount else {
            return Err(self.error(&field, format!("must be a number >= 0, found {value}")));
        };

        let millis = amount * unit_ms;
        // About 290 years: far past any trip, and far from i64 overflow when
        // trip instants are added up.
        if millis > 1e13 {
            return Err(self.error(&field, format!("is too long, found {value}")));
        }
        // Decimal fractions such as 1.001 s are not exact in binary, so
        // round to the nearest millisecond and allow a rounding error only.
        let rounded = millis.round();
        if (millis - rounded).abs() > 1e-6 {
            return Err(self.error(
                &field,
                format!("must be a whole number of milliseconds, found {value}"),
            ));
        }
        Ok(rounded as Millis)
    }

    fn spawn_portals(&self, field: &str) -> Result<BTreeMap<u32, Vec<u32>>, ConfigError> {
        let Some(value) = self.object.get(field) else {
            return Ok(BTreeMap::new());
        };
        let Value::Object(targets) = value else {
            return Err(self.error(
                field,
                "must be an object: target map id -> list of portal ids",
            ));
        };

        let mut portals = BTreeMap::new();
        for (map_id, ids) in targets {
            let name = format!("{field}.{map_id}");
            let map_id: u32 = map_id.parse().map_err(|_| {
                self.error(
                    &name,
                    "key must be a map id (whole number from 0 to 4294967295)",
                )
            })?;
            let Value::Array(ids) = ids else {
                return Err(self.error(&name, "must be a non-empty array of portal ids"));
            };
            if ids.is_empty() {
                return Err(self.error(&name, "must be a non-empty array of portal ids"));
            }

            let ids = ids
                .iter()
                .map(|id| Ok(self.unsigned(&name, id, u32::MAX as u64)? as u32))
                .collect::<Result<Vec<u32>, ConfigError>>()?;
            portals.insert(map_id, ids);
        }
        Ok(portals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route_json() -> Value {
        json!({
            "name": "train-orbis-ludibrium",
            "startMapId": 200000121,
            "stagingMapId": 200000122,
            "enRouteMapIds": [200090100],
            "destinationMapId": 220000100,
            "observationMapId": 200000121,
            "boardingWindowDurationMinutes": 4,
            "preDepartureDurationMinutes": 1,
            "travelDurationMinutes": 5,
            "cycleIntervalMinutes": 10
        })
    }

    fn parse(json: Value) -> Result<RouteDefinition, ConfigError> {
        parse_route(Path::new("routes/train.json"), &json)
    }

    fn error_of(json: Value) -> ConfigError {
        parse(json).expect_err("route must be rejected")
    }

    #[test]
    fn route_in_minutes_parses() {
        let route = parse(route_json()).unwrap();
        assert_eq!(route.name, "train-orbis-ludibrium");
        assert_eq!(route.en_route_map_ids, vec![200090100]);
        assert_eq!(route.durations.boarding_window, 240_000);
        assert_eq!(route.durations.pre_departure, 60_000);
        assert_eq!(route.durations.travel, 300_000);
        assert_eq!(route.cycle_interval, 600_000);
        assert_eq!(route.id, None);
    }

    #[test]
    fn route_in_seconds_parses() {
        let mut json = route_json();
        let object = json.as_object_mut().unwrap();
        for base in [
            "boardingWindowDuration",
            "preDepartureDuration",
            "travelDuration",
            "cycleInterval",
        ] {
            object.remove(&format!("{base}Minutes"));
        }
        object.insert("boardingWindowDurationSeconds".into(), json!(2));
        object.insert("preDepartureDurationSeconds".into(), json!(1));
        object.insert("travelDurationSeconds".into(), json!(3));
        object.insert("cycleIntervalSeconds".into(), json!(6.5));

        let route = parse(json).unwrap();
        assert_eq!(route.durations.boarding_window, 2_000);
        assert_eq!(route.cycle_interval, 6_500);
    }

    #[test]
    fn decimal_fractions_round_to_milliseconds() {
        let mut json = route_json();
        json["travelDurationMinutes"] = json!(4.35);
        assert_eq!(parse(json.clone()).unwrap().durations.travel, 261_000);

        json.as_object_mut()
            .unwrap()
            .remove("travelDurationMinutes");
        json["travelDurationSeconds"] = json!(1.001);
        json["cycleIntervalMinutes"] = json!(15);
        assert_eq!(parse(json.clone()).unwrap().durations.travel, 1_001);

        json["travelDurationSeconds"] = json!(1.0005);
        assert_eq!(
            error_of(json).field.as_deref(),
            Some("travelDurationSeconds")
        );
    }

    #[test]
    fn cycle_shorter_than_trip_is_rejected() {
        let mut json = route_json();
        json["cycleIntervalMinutes"] = json!(9);
        let error = error_of(json);
        assert_eq!(error.field.as_deref(), Some("cycleIntervalMinutes"));
        assert!(error.rule.contains("at least"), "{error}");
        assert_eq!(error.file, Path::new("routes/train.json"));
    }

    #[test]
    fn zero_travel_is_rejected() {
        let mut json = route_json();
        json["travelDurationMinutes"] = json!(0);
        assert_eq!(
            error_of(json).field.as_deref(),
            Some("travelDurationMinutes")
        );
    }

    #[test]
    fn zero_boarding_window_is_rejected() {
        let mut json = route_json();
        json["boardingWindowDurationMinutes"] = json!(0);
        assert_eq!(
            error_of(json).field.as_deref(),
            Some("boardingWindowDurationMinutes")
        );
    }

    #[test]
    fn zero_pre_departure_is_allowed() {
        let mut json = route_json();
        json["preDepartureDurationMinutes"] = json!(0);
        assert_eq!(parse(json).unwrap().durations.pre_departure, 0);
    }

    #[test]
    fn negative_duration_is_rejected() {
        let mut json = route_json();
        json["preDepartureDurationMinutes"] = json!(-1);
        let error = error_of(json);
        assert_eq!(error.field.as_deref(), Some("preDepartureDurationMinutes"));
        assert!(error.rule.contains(">= 0"), "{error}");
    }

    #[test]
    fn both_units_are_rejected() {
        let mut json = route_json();
        json["travelDurationSeconds"] = json!(300);
        let error = error_of(json);
        assert_eq!(error.field.as_deref(), Some("travelDurationSeconds"));
        assert!(error.rule.contains("not both"), "{error}");
    }

    #[test]
    fn missing_duration_names_both_units() {
        let mut json = route_json();
        json.as_object_mut()
            .unwrap()
            .remove("travelDurationMinutes");
        let error = error_of(json);
        assert!(error.rule.contains("travelDurationSeconds"), "{error}");
    }

    #[test]
    fn empty_en_route_list_is_rejected() {
        let mut json = route_json();
        json["enRouteMapIds"] = json!([]);
        assert_eq!(error_of(json).field.as_deref(), Some("enRouteMapIds"));
    }

    #[test]
    fn map_id_past_u32_is_rejected() {
        let mut json = route_json();
        json["startMapId"] = json!(4_294_967_296u64);
        assert_eq!(error_of(json).field.as_deref(), Some("startMapId"));
    }

    #[test]
    fn map_id_as_text_is_rejected() {
        let mut json = route_json();
        json["enRouteMapIds"] = json!([200090100, "200090101"]);
        assert_eq!(error_of(json).field.as_deref(), Some("enRouteMapIds[1]"));
    }

    #[test]
    fn empty_name_is_rejected() {
        let mut json = route_json();
        json["name"] = json!(" ");
        assert_eq!(error_of(json).field.as_deref(), Some("name"));
    }

    #[test]
    fn unknown_field_is_rejected() {
        let mut json = route_json();
        json["travelDurationMinute"] = json!(5);
        let error = error_of(json);
        assert_eq!(error.field.as_deref(), Some("travelDurationMinute"));
        assert!(error.rule.contains("unknown field"), "{error}");
    }

    #[test]
    fn invalid_route_id_is_rejected() {
        let mut json = route_json();
        json["id"] = json!("not-a-uuid");
        assert_eq!(error_of(json).field.as_deref(), Some("id"));
    }

    #[test]
    fn spawn_portals_parse_and_check_keys() {
        let mut json = route_json();
        json["spawnPortalIds"] = json!({"220000100": [1, 2]});
        let route = parse(json.clone()).unwrap();
        assert_eq!(route.spawn_portal_ids[&220000100], vec![1, 2]);

        json["spawnPortalIds"] = json!({"dock": [1]});
        assert_eq!(error_of(json).field.as_deref(), Some("spawnPortalIds.dock"));
    }

    #[test]
    fn error_message_names_file_field_and_rule() {
        let mut json = route_json();
        json["travelDurationMinutes"] = json!(0);
        assert_eq!(
            error_of(json).to_string(),
            "routes/train.json: field `travelDurationMinutes`: must be greater than 0"
        );
    }
}
