//! The records each trip event and each logout sends: the batch of records one
//! cause produces.

use crate::presence::Occupant;
use crate::routes::{Route, RouteDefinition};
use crate::settings::Topics;
use crate::timefmt::rfc3339;
use crate::timetable::{TripEvent, TripEventKind};
use crate::wire::{
    change_map_record, transport_status_record, Batch, MapChange, OutgoingRecord, STATUS_ARRIVED,
    STATUS_DEPARTED,
};

/// Returns the maps whose occupants a trip event moves, and the target map:
/// Departed takes the staging map to the first en-route map, Arrived takes
/// every en-route map to the destination.
pub fn warp_of(definition: &RouteDefinition, kind: TripEventKind) -> Option<(Vec<u32>, u32)> {
    match kind {
        TripEventKind::Departed => Some((
            vec![definition.staging_map_id],
            definition.en_route_map_ids[0],
        )),
        TripEventKind::Arrived => Some((
            definition.en_route_map_ids.clone(),
            definition.destination_map_id,
        )),
        TripEventKind::BoardingOpened | TripEventKind::BoardingClosed => None,
    }
}

/// The batch a trip event causes, or `None` when it sends nothing.
///
/// `aboard` are the characters to move (already limited to live channels);
/// `random` picks among a target map's spawn portals. BoardingOpened
/// announces the vessel with ARRIVED; Departed moves the riders and then
/// announces DEPARTED; Arrived moves the riders to the destination.
pub fn trip_event_batch(
    route: &Route,
    event: &TripEvent,
    topics: &Topics,
    aboard: &[Occupant],
    random: &mut dyn FnMut() -> u64,
) -> Option<Batch> {
    let definition = &route.definition;
    let mut records: Vec<OutgoingRecord> = Vec::new();

    if let Some((_, target_map_id)) = warp_of(definition, event.kind) {
        for occupant in aboard {
            let change = MapChange {
                world_id: occupant.position.world_id,
                channel_id: occupant.position.channel_id,
                character_id: occupant.character_id,
                map_id: target_map_id,
                portal_id: spawn_portal(definition, target_map_id, random()),
            };
            records.push(change_map_record(
                &topics.character_command,
                &route.tenant,
                change,
                &[],
            ));
        }
    }

    let status = match event.kind {
        TripEventKind::BoardingOpened => Some(STATUS_ARRIVED),
        TripEventKind::Departed => Some(STATUS_DEPARTED),
        TripEventKind::BoardingClosed | TripEventKind::Arrived => None,
    };
    if let Some(status) = status {
        records.push(transport_status_record(
            &topics.transport_status,
            &route.tenant,
            route.id,
            status,
            definition.observation_map_id,
        ));
    }

    if records.is_empty() {
        return None;
    }
    Some(Batch {
        cause: format!(
            "route={} tenant={} event={} trip={} at={}",
            route.name(),
            route.tenant.id,
            event.kind,
            event.trip.index,
            rfc3339(event.at)
        ),
        scheduled_at: Some(event.at),
        records,
    })
}

/// The batch for a character who logged out aboard: one CHANGE_MAP back to
/// the route's start map, on the same world and channel.
pub fn logout_batch(
    route: &Route,
    topics: &Topics,
    logout: MapChange,
    trace_headers: &[(String, Vec<u8>)],
    random: u64,
) -> Batch {
    let definition = &route.definition;
    let change = MapChange {
        map_id: definition.start_map_id,
        portal_id: spawn_portal(definition, definition.start_map_id, random),
        ..logout
    };

    Batch {
        cause: format!(
            "route={} tenant={} logout character={} map={}",
            route.name(),
            route.tenant.id,
            logout.character_id,
            logout.map_id
        ),
        scheduled_at: None,
        records: vec![change_map_record(
            &topics.character_command,
            &route.tenant,
            change,
            trace_headers,
        )],
    }
}

/// A spawn portal of the target map from the route's list, or portal 0 (the
/// map's standard spawn point) when the route lists none.
pub fn spawn_portal(definition: &RouteDefinition, map_id: u32, random: u64) -> u32 {
    match definition.spawn_portal_ids.get(&map_id) {
        Some(portals) if !portals.is_empty() => portals[(random % portals.len() as u64) as usize],
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Arc;

    use uuid::Uuid;

    use crate::presence::Position;
    use crate::tenant::Tenant;
    use crate::timetable::{Timetable, TripDurations};

    fn ferry() -> Route {
        let definition = RouteDefinition {
            source: PathBuf::from("routes/boat.json"),
            id: None,
            name: "boat-ellinia-orbis".into(),
            start_map_id: 101000300,
            staging_map_id: 101000301,
            en_route_map_ids: vec![200090010, 200090011],
            destination_map_id: 200000100,
            observation_map_id: 101000300,
            durations: TripDurations {
                boarding_window: 240_000,
                pre_departure: 60_000,
                travel: 600_000,
            },
            cycle_interval: 900_000,
            spawn_portal_ids: BTreeMap::from([(200000100, vec![3, 4])]),
        };
        Route {
            id: Uuid::from_u128(1),
            tenant: Tenant {
                id: Uuid::from_u128(2),
                region: "GMS".into(),
                major_version: 83,
                minor_version: 1,
            },
            timetable: Timetable::independent(definition.durations, definition.cycle_interval),
            definition: Arc::new(definition),
        }
    }

    fn topics() -> Topics {
        Topics {
            transport_status: "STATUS".into(),
            character_status: "CHARACTER".into(),
            channel_status: "CHANNEL".into(),
            map_status: "MAP".into(),
            character_command: "COMMAND".into(),
            channel_status_command: "CHANNEL_COMMAND".into(),
        }
    }

    fn rider(character_id: u32, map_id: u32) -> Occupant {
        Occupant {
            position: Position {
                world_id: 0,
                channel_id: 2,
                map_id,
            },
            character_id,
        }
    }

    fn event(route: &Route, kind: TripEventKind) -> TripEvent {
        route
            .timetable
            .trip(10)
            .unwrap()
            .events()
            .into_iter()
            .find(|e| e.kind == kind)
            .unwrap()
    }

    fn payloads(batch: &Batch) -> Vec<serde_json::Value> {
        batch
            .records
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).unwrap())
            .collect()
    }

    #[test]
    fn departure_moves_riders_then_announces() {
        let route = ferry();
        let batch = trip_event_batch(
            &route,
            &event(&route, TripEventKind::Departed),
            &topics(),
            &[rider(7, 101000301)],
            &mut || 0,
        )
        .unwrap();

        let json = payloads(&batch);
        assert_eq!(json.len(), 2);
        assert_eq!(json[0]["type"], "CHANGE_MAP");
        assert_eq!(json[0]["characterId"], 7);
        assert_eq!(json[0]["body"]["mapId"], 200090010);
        assert_eq!(json[0]["body"]["channelId"], 2);
        assert_eq!(json[0]["body"]["portalId"], 0);
        assert_eq!(json[1]["type"], "DEPARTED");
        assert_eq!(batch.records[1].topic, "STATUS");
    }

    #[test]
    fn arrival_moves_riders_to_a_listed_portal() {
        let route = ferry();
        let aboard = [rider(7, 200090010), rider(8, 200090011)];
        let mut draws = [0u64, 1].into_iter();
        let batch = trip_event_batch(
            &route,
            &event(&route, TripEventKind::Arrived),
            &topics(),
            &aboard,
            &mut || draws.next().unwrap(),
        )
        .unwrap();

        let json = payloads(&batch);
        assert_eq!(json.len(), 2);
        assert!(json.iter().all(|j| j["body"]["mapId"] == 200000100));
        assert_eq!(json[0]["body"]["portalId"], 3);
        assert_eq!(json[1]["body"]["portalId"], 4);
    }

    #[test]
    fn empty_arrival_sends_nothing() {
        let route = ferry();
        let batch = trip_event_batch(
            &route,
            &event(&route, TripEventKind::Arrived),
            &topics(),
            &[],
            &mut || 0,
        );
        assert_eq!(batch, None);
    }

    #[test]
    fn logout_goes_back_to_the_start_map() {
        let route = ferry();
        let logout = MapChange {
            world_id: 1,
            channel_id: 3,
            character_id: 99,
            map_id: 200090011,
            portal_id: 0,
        };
        let batch = logout_batch(&route, &topics(), logout, &[], 5);

        let json = payloads(&batch);
        assert_eq!(json[0]["worldId"], 1);
        assert_eq!(json[0]["body"]["channelId"], 3);
        assert_eq!(json[0]["body"]["mapId"], 101000300);
    }
}
