//! What each trip event sends: the batch of records one event causes.

use crate::routes::Route;
use crate::settings::Topics;
use crate::timefmt::rfc3339;
use crate::timetable::{TripEvent, TripEventKind};
use crate::wire::{transport_status_record, Batch, STATUS_ARRIVED, STATUS_DEPARTED};

/// The batch a trip event causes, or `None` for an event that is only logged.
///
/// BoardingOpened announces the vessel with ARRIVED, Departed with DEPARTED;
/// both go to the observation map.
// TODO: Departed and Arrived do not yet move the riders aboard (CHANGE_MAP
// commands); that needs the channel registry and map presence.
pub fn trip_event_batch(route: &Route, event: &TripEvent, topics: &Topics) -> Option<Batch> {
    let status = match event.kind {
        TripEventKind::BoardingOpened => STATUS_ARRIVED,
        TripEventKind::Departed => STATUS_DEPARTED,
        TripEventKind::BoardingClosed | TripEventKind::Arrived => return None,
    };

    let record = transport_status_record(
        &topics.transport_status,
        &route.tenant,
        route.id,
        status,
        route.definition.observation_map_id,
    );

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
        records: vec![record],
    })
}
