//! The read-only REST API: routes, their state and their day's schedule, as
//! JSON:API documents, plus liveness and readiness probes.
//!
//! Other services of the cluster filter routes by start map and look for
//! `state == "open_entry"` to decide whether boarding is possible, so the
//! state comes from the route actor itself, the one that runs the timers.
//! Like `service`, this module names actors: it is application wiring.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::actors::consumer::{GetConsumerCounters, TopicConsumer};
use crate::actors::route::{GetRouteStatus, RouteActor, RouteStatus};
use crate::clock::Clock;
use crate::metrics::{Metrics, ScrapeInputs};
use crate::route_table::RouteTable;
use crate::routes::Route;
use crate::tenant::Tenant;
use crate::timefmt::rfc3339;
use crate::timetable::{RouteState, Trip};

const DAY_MS: i64 = 86_400_000;

/// Reports whether the service can do its work, or why not.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Shared state of the handlers: the running routes and consumers, the
/// clock and the metrics.
#[derive(Clone)]
pub struct ApiState {
    pub routes: Arc<RouteTable>,
    /// (topic, consumer actor), asked for counts at scrape time.
    pub consumers: Arc<Vec<(String, Addr<TopicConsumer>)>>,
    pub clock: Arc<dyn Clock>,
    pub readiness: ReadinessCheck,
    pub metrics: Arc<Metrics>,
}

/// Registers every endpoint; the caller adds `ApiState` as app data. Every
/// endpoint is read-only: another method gets 405, and an unknown path 404,
/// both as JSON:API error documents.
pub fn configure(config: &mut web::ServiceConfig) {
    let endpoints: [(&str, fn() -> actix_web::Route); 7] = [
        ("/healthz", || web::get().to(healthz)),
        ("/readyz", || web::get().to(readyz)),
        ("/metrics", || web::get().to(metrics)),
        ("/api/transports/routes", || web::get().to(list_routes)),
        ("/api/transports/routes/{route_id}", || {
            web::get().to(get_route)
        }),
        ("/api/transports/routes/{route_id}/state", || {
            web::get().to(get_state)
        }),
        ("/api/transports/routes/{route_id}/schedule", || {
            web::get().to(get_schedule)
        }),
    ];
    for (path, route) in endpoints {
        config.service(
            web::resource(path)
                .route(route())
                .default_service(web::to(method_not_allowed)),
        );
    }
    config.default_service(web::to(not_found));
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed here; the API is read-only, use GET",
            request.method()
        ),
    )
    .error_response()
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no endpoint at {}", request.path()),
    )
    .error_response()
}

/// A failed request, sent as a JSON:API error document.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = json!({
            "errors": [{
                "status": self.status.as_u16().to_string(),
                "title": self.status.canonical_reason().unwrap_or("Error"),
                "detail": self.detail,
            }]
        });
        HttpResponse::build(self.status)
            .content_type("application/vnd.api+json")
            .json(body)
    }
}

fn document(body: Value) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.api+json")
        .json(body))
}

/// The tenant from the request headers. Every tenant header must be
/// present and well formed (the versions as decimal text), as in the rest
/// of the cluster's REST APIs. Routes are selected by the whole tenant: a
/// configured id with another region or version is another deployment.
fn request_tenant(request: &HttpRequest) -> Result<Tenant, ApiError> {
    let header = |name: &str| -> Result<String, ApiError> {
        if request.headers().get_all(name).count() > 1 {
            return Err(ApiError::bad_request(format!(
                "header {name} is repeated; send it once"
            )));
        }
        let value = request
            .headers()
            .get(name)
            .ok_or_else(|| ApiError::bad_request(format!("header {name} is missing")))?;
        value
            .to_str()
            .map(str::to_string)
            .map_err(|_| ApiError::bad_request(format!("header {name} is not text")))
    };
    let version = |name: &str| -> Result<u16, ApiError> {
        let text = header(name)?;
        text.trim().parse::<u16>().map_err(|_| {
            ApiError::bad_request(format!(
                "header {name} must be a whole number from 0 to 65535, found {text:?}"
            ))
        })
    };

    let id = header("TENANT_ID")?;
    let id = Uuid::try_parse(id.trim()).map_err(|_| {
        ApiError::bad_request(format!("header TENANT_ID must be a UUID, found {id:?}"))
    })?;
    let region = header("REGION")?.trim().to_string();
    if region.is_empty() {
        return Err(ApiError::bad_request("header REGION is empty"));
    }
    Ok(Tenant {
        id,
        region,
        major_version: version("MAJOR_VERSION")?,
        minor_version: version("MINOR_VERSION")?,
    })
}

/// Finds the tenant's route with this id.
fn find_route(
    state: &ApiState,
    request: &HttpRequest,
    route_id: &str,
) -> Result<(Route, Addr<RouteActor>), ApiError> {
    let tenant = request_tenant(request)?;
    let route_id = Uuid::try_parse(route_id).map_err(|_| {
        ApiError::bad_request(format!("route id must be a UUID, found {route_id:?}"))
    })?;

    state
        .routes
        .routes()
        .into_iter()
        .find(|(route, _)| route.tenant == tenant && route.id == route_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("route {route_id} not found for tenant {tenant}"),
            )
        })
}

/// Asks the route's actor for its state and next event.
async fn route_status(actor: &Addr<RouteActor>) -> Result<RouteStatus, ApiError> {
    actor.send(GetRouteStatus).await.map_err(|error| {
        log::warn!("failed to ask route actor for its state error={error}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "route is stopping, try again",
        )
    })
}

/// Lists the trips whose boarding opens on the UTC day of `now`.
fn trips_of_day(route: &Route, now: i64) -> Vec<Trip> {
    let day_start = now.div_euclid(DAY_MS) * DAY_MS;
    let Some(first) = route.timetable.trip_at(day_start - 1) else {
        return Vec::new();
    };

    (first.index..)
        .map_while(|index| {
            route
                .timetable
                .trip(index)
                .filter(|trip| trip.boarding_open < day_start + DAY_MS)
        })
        .filter(|trip| trip.boarding_open >= day_start)
        .collect()
}

/// Id of a trip-schedule resource: the same for a trip on every replica.
fn trip_id(route: &Route, trip: &Trip) -> Uuid {
    Uuid::new_v5(&route.id, trip.index.to_string().as_bytes())
}

fn trip_resource(route: &Route, trip: &Trip) -> Value {
    json!({
        "type": "trip-schedule",
        "id": trip_id(route, trip),
        "attributes": {
            "boardingOpen": rfc3339(trip.boarding_open),
            "boardingClosed": rfc3339(trip.boarding_closed),
            "departure": rfc3339(trip.departure),
            "arrival": rfc3339(trip.arrival),
        }
    })
}

/// Builds a `routes` resource, whose schedule relationship lists the day's
/// trips.
fn route_resource(route: &Route, state: RouteState, trips: &[Trip]) -> Value {
    let definition = &route.definition;
    // On a shared vessel the cycle is the vessel's round. The reference
    // service encodes durations as integer nanoseconds.
    let cycle_ms = route
        .timetable
        .period()
        .unwrap_or(definition.cycle_interval);

    json!({
        "type": "routes",
        "id": route.id,
        "attributes": {
            "name": definition.name,
            "startMapId": definition.start_map_id,
            "stagingMapId": definition.staging_map_id,
            "enRouteMapIds": definition.en_route_map_ids,
            "destinationMapId": definition.destination_map_id,
            "observationMapId": definition.observation_map_id,
            "state": state.as_str(),
            "cycleInterval": cycle_ms * 1_000_000,
        },
        "relationships": {
            "schedule": {
                "data": trips
                    .iter()
                    .map(|trip| json!({"type": "trip-schedule", "id": trip_id(route, trip)}))
                    .collect::<Vec<_>>()
            }
        }
    })
}

fn wants_schedule(query: &HashMap<String, String>) -> bool {
    query
        .get("include")
        .is_some_and(|include| include.split(',').any(|name| name.trim() == "schedule"))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    match (state.readiness)() {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(reason) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "not ready", "reason": reason})),
    }
}

/// Prometheus text; route states and consumer counts are asked of their
/// actors now, the rest was counted as it happened.
// NOTE: actor mailbox backlogs are not exported: actix does not expose a
// mailbox's length.
async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    let mut inputs = ScrapeInputs::default();

    for (route, actor) in state.routes.routes() {
        if let Ok(status) = actor.send(GetRouteStatus).await {
            inputs.route_states.push((
                route.tenant.id.to_string(),
                route.name().to_string(),
                status.state.as_str(),
            ));
        }
    }
    for (topic, consumer) in state.consumers.iter() {
        let Ok(counters) = consumer.send(GetConsumerCounters).await else {
            continue;
        };
        inputs
            .consumed
            .push((topic.clone(), "handled", String::new(), counters.handled));
        inputs
            .consumed
            .push((topic.clone(), "ignored", String::new(), counters.ignored));
        for (reason, count) in &counters.bad {
            inputs
                .consumed
                .push((topic.clone(), "bad", reason.to_string(), *count));
        }
        inputs
            .read_errors
            .push((topic.clone(), counters.read_errors));
    }

    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&inputs))
}

async fn list_routes(
    state: web::Data<ApiState>,
    request: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let tenant = request_tenant(&request)?;
    let start_map_id = match query.get("filter[startMapId]") {
        None => None,
        Some(text) => Some(text.trim().parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!(
                "filter[startMapId] must be a map id (whole number from 0 to 4294967295), found {text:?}"
            ))
        })?),
    };

    let now = state.clock.now();
    let include = wants_schedule(&query);
    let mut data = Vec::new();
    let mut included = Vec::new();
    let routes = state.routes.routes();
    let tenant_routes = routes.iter().filter(|(route, _)| route.tenant == tenant);
    for (route, actor) in tenant_routes {
        if start_map_id.is_some_and(|map_id| map_id != route.definition.start_map_id) {
            continue;
        }

        let status = route_status(actor).await?;
        let trips = trips_of_day(route, now);
        data.push(route_resource(route, status.state, &trips));
        if include {
            included.extend(trips.iter().map(|trip| trip_resource(route, trip)));
        }
    }

    let mut body = json!({"data": data});
    if include {
        body["included"] = Value::Array(included);
    }
    document(body)
}

async fn get_route(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let (route, actor) = &find_route(&state, &request, &path)?;
    let status = route_status(actor).await?;

    let trips = trips_of_day(route, state.clock.now());
    let mut body = json!({"data": route_resource(route, status.state, &trips)});
    if wants_schedule(&query) {
        body["included"] = trips
            .iter()
            .map(|trip| trip_resource(route, trip))
            .collect();
    }
    document(body)
}

async fn get_state(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (route, actor) = &find_route(&state, &request, &path)?;
    let status = route_status(actor).await?;

    let next = status.next_event.map(|event| {
        json!({
            "event": event.kind.to_string(),
            "at": rfc3339(event.at),
            "tripId": trip_id(route, &event.trip),
        })
    });
    document(json!({
        "data": {
            "type": "route-states",
            "id": route.id,
            "attributes": {
                "state": status.state.as_str(),
                "nextEvent": next,
            }
        }
    }))
}

async fn get_schedule(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (route, _) = &find_route(&state, &request, &path)?;
    let trips = trips_of_day(route, state.clock.now());
    let data: Vec<Value> = trips
        .iter()
        .map(|trip| trip_resource(route, trip))
        .collect();
    document(json!({"data": data}))
}
