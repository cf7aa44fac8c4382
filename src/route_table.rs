//! The running routes, shared by the consumers, the HTTP API and the live
//! reload: which route actors run, which one owns each map where a
//! character is aboard, and which tenants are configured.
//!
//! A reload swaps the whole table at once under the lock, so a reader sees
//! either the old route set or the new one, never a mix.

use std::collections::HashMap;
use std::sync::RwLock;

use actix::Addr;
use uuid::Uuid;

use crate::actors::route::RouteActor;
use crate::routes::Route;
use crate::tenant::Tenant;

#[derive(Default)]
struct Table {
    routes: Vec<(Route, Addr<RouteActor>)>,
    /// (tenant, map) → the route actor owning that staging or en-route map.
    owners: HashMap<(Uuid, u32), Addr<RouteActor>>,
    tenants: HashMap<Uuid, Tenant>,
}

#[derive(Default)]
pub struct RouteTable {
    table: RwLock<Table>,
}

impl RouteTable {
    pub fn new(routes: Vec<(Route, Addr<RouteActor>)>, tenants: &[Tenant]) -> Self {
        let table = RouteTable::default();
        table.replace(routes, tenants);
        table
    }

    /// Replaces every entry at once.
    pub fn replace(&self, routes: Vec<(Route, Addr<RouteActor>)>, tenants: &[Tenant]) {
        let mut owners = HashMap::new();
        for (route, actor) in &routes {
            for map_id in route.definition.aboard_map_ids() {
                // NOTE: a map shared by two routes of a tenant sends its
                // logouts to the route listed first.
                owners
                    .entry((route.tenant.id, map_id))
                    .or_insert_with(|| actor.clone());
            }
        }

        *self.table.write().expect("route table lock") = Table {
            routes,
            owners,
            tenants: tenants.iter().map(|t| (t.id, t.clone())).collect(),
        };
    }

    /// Returns a copy of the running routes and their actors.
    pub fn routes(&self) -> Vec<(Route, Addr<RouteActor>)> {
        self.table.read().expect("route table lock").routes.clone()
    }

    pub fn len(&self) -> usize {
        self.table.read().expect("route table lock").routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the route actor owning a tenant's staging or en-route map.
    pub fn owner_of(&self, tenant_id: Uuid, map_id: u32) -> Option<Addr<RouteActor>> {
        let table = self.table.read().expect("route table lock");
        table.owners.get(&(tenant_id, map_id)).cloned()
    }

    /// Returns whether `tenant` is configured: its id, region and version
    /// all match. A record with a configured id but another region or
    /// version belongs to another deployment, and must not be served under
    /// the configured tenant's headers.
    pub fn serves(&self, tenant: &Tenant) -> bool {
        self.table
            .read()
            .expect("route table lock")
            .tenants
            .get(&tenant.id)
            .is_some_and(|configured| configured == tenant)
    }
}
