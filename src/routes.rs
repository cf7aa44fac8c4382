//! Route and shared-vessel definitions, and the routes a tenant runs.
//!
//! A definition is the content of a route file; a [`Route`] is one definition run
//! for one tenant, with its id and its timetable worked out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use uuid::Uuid;

use crate::tenant::Tenant;
use crate::timetable::{Millis, Timetable, TripDurations};

/// One route file, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteDefinition {
    /// The file it was read from, for messages.
    pub source: PathBuf,
    /// Fixed id from the file; without one, each tenant derives its own.
    pub id: Option<Uuid>,
    pub name: String,
    pub start_map_id: u32,
    pub staging_map_id: u32,
    pub en_route_map_ids: Vec<u32>,
    pub destination_map_id: u32,
    pub observation_map_id: u32,
    pub durations: TripDurations,
    pub cycle_interval: Millis,
    /// Target map id → spawn portals to pick from when warping there.
    pub spawn_portal_ids: BTreeMap<u32, Vec<u32>>,
}

impl RouteDefinition {
    /// Lists the maps where a character is aboard: the staging map, then the
    /// en-route maps in order.
    pub fn aboard_map_ids(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(self.staging_map_id).chain(self.en_route_map_ids.iter().copied())
    }
}

/// A vehicle shared by two routes, which runs A's trip, then B's, and again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VesselDefinition {
    pub source: PathBuf,
    pub name: String,
    pub route_a: String,
    pub route_b: String,
    pub turnaround_delay: Millis,
}

/// One route as run for one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub id: Uuid,
    pub tenant: Tenant,
    pub definition: Arc<RouteDefinition>,
    pub timetable: Timetable,
}

impl Route {
    pub fn name(&self) -> &str {
        &self.definition.name
    }
}

/// Lists every (tenant, map) where a character is aboard one of `routes`: the
/// maps the presence index tracks.
pub fn aboard_maps<'a>(routes: impl IntoIterator<Item = &'a Route>) -> Vec<(Uuid, u32)> {
    routes
        .into_iter()
        .flat_map(|route| {
            route
                .definition
                .aboard_map_ids()
                .map(move |map_id| (route.tenant.id, map_id))
        })
        .collect()
}

/// Derives the id of a route without a fixed one: UUIDv5 of the route name in the
/// tenant id's namespace, so it is the same across restarts and replicas.
pub fn derived_route_id(tenant_id: Uuid, route_name: &str) -> Uuid {
    Uuid::new_v5(&tenant_id, route_name.as_bytes())
}

/// Builds each route's timetable: routes of a shared vessel alternate on it;
/// a vessel whose partner route is missing leaves its route out of service.
pub fn timetables(
    routes: &[Arc<RouteDefinition>],
    vessels: &[VesselDefinition],
) -> BTreeMap<String, Timetable> {
    let mut timetables: BTreeMap<String, Timetable> = routes
        .iter()
        .map(|route| {
            let timetable = Timetable::independent(route.durations, route.cycle_interval);
            (route.name.clone(), timetable)
        })
        .collect();

    for vessel in vessels {
        let find = |name: &str| routes.iter().find(|route| route.name == name);

        match (find(&vessel.route_a), find(&vessel.route_b)) {
            (Some(a), Some(b)) => {
                let on_vessel = |is_b| {
                    Timetable::shared_vessel(
                        a.durations,
                        b.durations,
                        vessel.turnaround_delay,
                        is_b,
                    )
                };
                timetables.insert(a.name.clone(), on_vessel(false));
                timetables.insert(b.name.clone(), on_vessel(true));
            }
            (a, b) => {
                for present in [a, b].into_iter().flatten() {
                    timetables.insert(present.name.clone(), Timetable::out_of_service());
                }
            }
        }
    }

    timetables
}

/// Builds every route for every tenant: each tenant runs every route.
pub fn routes_for_tenants(
    tenants: &[Tenant],
    definitions: &[Arc<RouteDefinition>],
    vessels: &[VesselDefinition],
) -> Vec<Route> {
    let timetables = timetables(definitions, vessels);

    tenants
        .iter()
        .flat_map(|tenant| {
            definitions.iter().map(|definition| Route {
                id: definition
                    .id
                    .unwrap_or_else(|| derived_route_id(tenant.id, &definition.name)),
                tenant: tenant.clone(),
                definition: Arc::clone(definition),
                timetable: timetables[&definition.name],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_id() -> Uuid {
        Uuid::parse_str("083839c6-c47c-42a6-9585-76492795d123").unwrap()
    }

    #[test]
    fn derived_id_is_stable_and_per_tenant() {
        let first = derived_route_id(tenant_id(), "boat-ellinia-orbis");
        let again = derived_route_id(tenant_id(), "boat-ellinia-orbis");
        let other_tenant = derived_route_id(Uuid::nil(), "boat-ellinia-orbis");

        assert_eq!(first, again);
        assert_ne!(first, other_tenant);
        assert_eq!(first.get_version_num(), 5);
    }
}
