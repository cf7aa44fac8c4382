//! The REST API over real route actors: document shapes, tenant headers,
//! filters, the 400 and 404 cases, and a state that agrees with the
//! timetable at a chosen instant.

mod common;

use std::sync::Arc;

use actix_web::{test, web, App};
use atlas_transports::clock::Clock;
use atlas_transports::http::{configure, ApiState, ReadinessCheck};
use atlas_transports::route_table::RouteTable;
use atlas_transports::routes::routes_for_tenants;
use atlas_transports::timetable::{Instant, RouteState};
use common::*;
use serde_json::Value;

/// A clock stopped at one instant.
struct FixedClock(Instant);

impl Clock for FixedClock {
    fn now(&self) -> Instant {
        self.0
    }
}

/// 2026-12-04T10:02:00Z: the subway (1 / 0 / 4 / 5) departed at 10:01 and is
/// in transit; the Ellinia ferry boards from 10:00 to 10:04.
const AT: Instant = MIDNIGHT + 10 * 60 * MINUTE + 2 * MINUTE;

const TENANT: &str = "083839c6-c47c-42a6-9585-76492795d123";

fn state_with(readiness: ReadinessCheck) -> ApiState {
    let config = shipped_config();
    let routes = routes_for_tenants(&config.tenants, &config.routes, &config.vessels);
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(AT));
    let recorder = Recorder::start(clock.clone());
    let world = World::start(&routes);
    let settings = default_settings();

    let running: Vec<_> = routes
        .into_iter()
        .map(|route| {
            let actor =
                start_recorded_route(route.clone(), &settings, clock.clone(), &recorder, &world);
            (route, actor)
        })
        .collect();
    ApiState {
        routes: Arc::new(RouteTable::new(running, &config.tenants)),
        consumers: Arc::new(Vec::new()),
        clock,
        readiness,
        metrics: Arc::new(Default::default()),
    }
}

fn ready() -> ReadinessCheck {
    Arc::new(|| Ok(()))
}

fn tenant_request(uri: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("TENANT_ID", TENANT))
        .insert_header(("REGION", "GMS"))
        .insert_header(("MAJOR_VERSION", "83"))
        .insert_header(("MINOR_VERSION", "1"))
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::new($state))
                .configure(configure),
        )
        .await
    };
}

/// Sends the request and returns the status and the JSON body.
macro_rules! get_json {
    ($app:expr, $request:expr) => {{
        let response = test::call_service($app, $request.to_request()).await;
        let status = response.status().as_u16();
        let body = test::read_body(response).await;
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, json)
    }};
}

fn route_named<'a>(documents: &'a Value, name: &str) -> &'a Value {
    documents["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|route| route["attributes"]["name"] == name)
        .unwrap_or_else(|| panic!("route {name} in {documents}"))
}

#[actix_web::test]
async fn routes_list_every_route_with_its_state() {
    let app = app!(state_with(ready()));
    let (status, body) = get_json!(&app, tenant_request("/api/transports/routes"));

    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 12);

    let subway = route_named(&body, "subway-kc-nlc");
    assert_eq!(subway["type"], "routes");
    assert_eq!(subway["attributes"]["state"], "in_transit");
    assert_eq!(subway["attributes"]["startMapId"], 103000100);
    assert_eq!(subway["attributes"]["stagingMapId"], 600010004);
    assert_eq!(
        subway["attributes"]["enRouteMapIds"],
        serde_json::json!([600010005])
    );
    assert_eq!(subway["attributes"]["destinationMapId"], 600010001);
    assert_eq!(subway["attributes"]["observationMapId"], 103000100);
    assert_eq!(subway["attributes"]["cycleInterval"], 300_000_000_000i64);
    let schedule = subway["relationships"]["schedule"]["data"]
        .as_array()
        .unwrap();
    assert_eq!(schedule.len(), 288, "a 5-minute route runs 288 trips a day");
    assert_eq!(schedule[0]["type"], "trip-schedule");
    assert!(body.get("included").is_none());

    let ferry = route_named(&body, "boat-ellinia-orbis");
    assert_eq!(ferry["attributes"]["state"], "open_entry");
    assert_eq!(
        ferry["attributes"]["cycleInterval"], 1_800_000_000_000i64,
        "the vessel's round"
    );
}

#[actix_web::test]
async fn state_agrees_with_the_timetable() {
    let state = state_with(ready());
    let routes = state.routes.routes();
    let app = app!(state);

    for (route, _) in routes.iter() {
        let uri = format!("/api/transports/routes/{}/state", route.id);
        let (status, body) = get_json!(&app, tenant_request(&uri));
        assert_eq!(status, 200);
        assert_eq!(
            body["data"]["attributes"]["state"],
            route.timetable.state_at(AT).as_str(),
            "{}",
            route.name()
        );
        let next = route.timetable.next_event_after(AT).unwrap();
        assert_eq!(
            body["data"]["attributes"]["nextEvent"]["event"],
            next.kind.to_string()
        );
    }

    let subway = routes
        .iter()
        .find(|(route, _)| route.name() == "subway-kc-nlc")
        .unwrap();
    assert_eq!(subway.0.timetable.state_at(AT), RouteState::InTransit);
}

#[actix_web::test]
async fn start_map_filter_narrows_the_list() {
    let app = app!(state_with(ready()));

    let (status, body) = get_json!(
        &app,
        tenant_request("/api/transports/routes?filter%5BstartMapId%5D=101000300")
    );
    assert_eq!(status, 200);
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route| route["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["boat-ellinia-orbis"]);
    assert_eq!(body["data"][0]["attributes"]["state"], "open_entry");

    let (status, body) = get_json!(
        &app,
        tenant_request("/api/transports/routes?filter%5BstartMapId%5D=1")
    );
    assert_eq!(status, 200);
    assert_eq!(body["data"], serde_json::json!([]));

    let (status, body) = get_json!(
        &app,
        tenant_request("/api/transports/routes?filter%5BstartMapId%5D=dock")
    );
    assert_eq!(status, 400);
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("filter[startMapId]"));
}

#[actix_web::test]
async fn one_route_with_its_schedule_included() {
    let state = state_with(ready());
    let subway = state
        .routes
        .routes()
        .into_iter()
        .find(|(route, _)| route.name() == "subway-kc-nlc")
        .unwrap()
        .0;
    let app = app!(state);

    let uri = format!("/api/transports/routes/{}?include=schedule", subway.id);
    let (status, body) = get_json!(&app, tenant_request(&uri));
    assert_eq!(status, 200);
    assert_eq!(body["data"]["id"], subway.id.to_string());
    let included = body["included"].as_array().unwrap();
    assert_eq!(included.len(), 288);
    assert_eq!(included[0]["type"], "trip-schedule");
    assert_eq!(
        included[0]["attributes"]["boardingOpen"],
        "2026-12-04T00:00:00.000Z"
    );
    assert_eq!(
        included[0]["attributes"]["boardingClosed"],
        "2026-12-04T00:01:00.000Z"
    );
    assert_eq!(
        included[0]["attributes"]["departure"],
        "2026-12-04T00:01:00.000Z"
    );
    assert_eq!(
        included[0]["attributes"]["arrival"],
        "2026-12-04T00:05:00.000Z"
    );
    assert_eq!(
        included[0]["id"],
        body["data"]["relationships"]["schedule"]["data"][0]["id"]
    );

    let uri = format!("/api/transports/routes/{}/schedule", subway.id);
    let (status, schedule) = get_json!(&app, tenant_request(&uri));
    assert_eq!(status, 200);
    assert_eq!(schedule["data"].as_array().unwrap().len(), 288);
    assert_eq!(
        schedule["data"][287]["attributes"]["boardingOpen"],
        "2026-12-04T23:55:00.000Z"
    );
}

#[actix_web::test]
async fn bad_ids_and_unknown_routes() {
    let app = app!(state_with(ready()));

    let (status, body) = get_json!(&app, tenant_request("/api/transports/routes/not-a-uuid"));
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["status"], "400");

    let unknown = "/api/transports/routes/00000000-0000-0000-0000-000000000000";
    let (status, body) = get_json!(&app, tenant_request(unknown));
    assert_eq!(status, 404);
    assert_eq!(body["errors"][0]["status"], "404");

    let (status, _) = get_json!(&app, tenant_request(&format!("{unknown}/state")));
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn tenant_headers_are_required() {
    let app = app!(state_with(ready()));

    let (status, body) = get_json!(&app, test::TestRequest::get().uri("/api/transports/routes"));
    assert_eq!(status, 400);
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("TENANT_ID"));

    let request =
        tenant_request("/api/transports/routes").insert_header(("MAJOR_VERSION", "eighty-three"));
    let (status, body) = get_json!(&app, request);
    assert_eq!(status, 400);
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("MAJOR_VERSION"));

    let request =
        tenant_request("/api/transports/routes").insert_header(("TENANT_ID", "tenant-one"));
    let (status, _) = get_json!(&app, request);
    assert_eq!(status, 400);

    // Another tenant sees none of this tenant's routes.
    let request = tenant_request("/api/transports/routes")
        .insert_header(("TENANT_ID", "5f0c1b9e-7a51-4c43-a1b8-0b8a4d0f2e77"));
    let (status, body) = get_json!(&app, request);
    assert_eq!(status, 200);
    assert_eq!(body["data"], serde_json::json!([]));

    // A repeated tenant header is ambiguous, as on Kafka.
    let request = tenant_request("/api/transports/routes")
        .append_header(("TENANT_ID", "5f0c1b9e-7a51-4c43-a1b8-0b8a4d0f2e77"));
    let (status, body) = get_json!(&app, request);
    assert_eq!(status, 400);
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("repeated"));

    // The same id in another region or version gets none either: a tenant
    // is a deployment, named by all four headers.
    for (name, value) in [
        ("REGION", "KMS"),
        ("MAJOR_VERSION", "95"),
        ("MINOR_VERSION", "9"),
    ] {
        let request = tenant_request("/api/transports/routes").insert_header((name, value));
        let (status, body) = get_json!(&app, request);
        assert_eq!(status, 200, "{name}={value}");
        assert_eq!(body["data"], serde_json::json!([]), "{name}={value}");
    }
}

#[actix_web::test]
async fn probes_report_health_and_readiness() {
    let app = app!(state_with(Arc::new(|| Err(
        "consumers have no partition assignment yet".to_string()
    ))));

    let (status, _) = get_json!(&app, test::TestRequest::get().uri("/healthz"));
    assert_eq!(status, 200);

    let (status, body) = get_json!(&app, test::TestRequest::get().uri("/readyz"));
    assert_eq!(status, 503);
    assert_eq!(body["reason"], "consumers have no partition assignment yet");

    let app = app!(state_with(ready()));
    let (status, _) = get_json!(&app, test::TestRequest::get().uri("/readyz"));
    assert_eq!(status, 200);
}

/// Checks one line of the Prometheus text format: a `# HELP` or `# TYPE`
/// comment, or `name{labels} value` with a number for value.
fn is_exposition_line(line: &str) -> bool {
    if let Some(comment) = line.strip_prefix("# ") {
        return comment.starts_with("HELP ") || comment.starts_with("TYPE ");
    }
    let Some((series, value)) = line.rsplit_once(' ') else {
        return false;
    };
    let name_end = series.find('{').unwrap_or(series.len());
    let name = &series[..name_end];
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    let labels_ok =
        name_end == series.len() || (series.ends_with('}') && series[name_end..].contains('='));
    name_ok && labels_ok && (value.parse::<f64>().is_ok() || value == "+Inf")
}

#[actix_web::test]
async fn metrics_parse_as_prometheus_text() {
    let state = state_with(ready());
    state
        .metrics
        .count_trip_event(TENANT, "subway-kc-nlc", "Departed");
    state.metrics.observe_lateness(4);
    let app = app!(state);

    let response =
        test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();

    for line in text.lines() {
        assert!(is_exposition_line(line), "not Prometheus text: {line:?}");
    }
    let state_lines = text
        .lines()
        .filter(|l| l.starts_with("atlas_transports_route_state{"))
        .count();
    assert_eq!(state_lines, 12 * 5, "one line per route and state");
    assert!(text.contains(&format!(
        "atlas_transports_route_state{{tenant=\"{TENANT}\",route=\"subway-kc-nlc\",state=\"in_transit\"}} 1"
    )));
    assert!(text.contains(&format!(
        "atlas_transports_trip_events_total{{tenant=\"{TENANT}\",route=\"subway-kc-nlc\",event=\"Departed\"}} 1"
    )));
    assert!(text.contains("atlas_transports_trip_event_delivery_lateness_seconds_count 1"));
}

#[actix_web::test]
async fn unknown_paths_and_methods_get_error_documents() {
    let app = app!(state_with(ready()));

    let (status, body) = get_json!(&app, tenant_request("/api/transports/nope"));
    assert_eq!(status, 404);
    assert_eq!(body["errors"][0]["status"], "404");
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("/api/transports/nope"));

    let request = tenant_request("/api/transports/routes").method(actix_web::http::Method::POST);
    let (status, body) = get_json!(&app, request);
    assert_eq!(status, 405);
    assert_eq!(body["errors"][0]["status"], "405");
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("POST"));
}
