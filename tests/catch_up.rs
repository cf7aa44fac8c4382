//! A route actor that wakes late performs what it missed, in order, once:
//! the current trip's and the previous trip's events, and nothing older.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use atlas_transports::config::parse_route;
use atlas_transports::routes::{derived_route_id, Route};
use atlas_transports::timetable::{Instant, Timetable, TripEventKind};
use common::*;

/// Boards 10 s, waits 5 s, travels 20 s, every 120 s: trip k departs at
/// k*120 + 15 s and arrives at k*120 + 35 s.
fn slow_route() -> Route {
    let json = serde_json::json!({
        "name": "catch-up-ferry",
        "startMapId": 1, "stagingMapId": 2, "enRouteMapIds": [3],
        "destinationMapId": 4, "observationMapId": 1,
        "boardingWindowDurationSeconds": 10,
        "preDepartureDurationSeconds": 5,
        "travelDurationSeconds": 20,
        "cycleIntervalSeconds": 120
    });
    let definition = parse_route(std::path::Path::new("catch-up-ferry.json"), &json).unwrap();
    let tenant = shipped_config().tenants[0].clone();
    Route {
        id: derived_route_id(tenant.id, &definition.name),
        timetable: Timetable::independent(definition.durations, definition.cycle_interval),
        tenant,
        definition: Arc::new(definition),
    }
}

/// Starts `route` on a clock at `start` and returns the recorder of what
/// it performs.
fn start_route_at(route: Route, start: Instant) -> Addr<Recorder> {
    let clock = TokioClock::starting_at(start);
    let recorder = Recorder::start(clock.clone());
    let world = World::start(std::slice::from_ref(&route));
    start_recorded_route(route, &default_settings(), clock, &recorder, &world);
    recorder
}

/// Lets the route actor arm its timer, then jumps `seconds` at once:
/// timers cannot fire in between, as when the thread is stalled.
async fn stall(seconds: u64) {
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_secs(seconds)).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[test]
fn stall_across_departure_and_arrival() {
    run_paused(async {
        // MIDNIGHT is a whole number of 120 s cycles, so a trip boards then.
        // The timer is armed for the departure at +15 s; the stall passes it
        // and the arrival at +35 s.
        let recorder = start_route_at(slow_route(), MIDNIGHT + 12 * SECOND);
        stall(40).await;

        let (batches, events) = recorder.send(TakeRecorded).await.unwrap();
        let performed: Vec<_> = events
            .iter()
            .map(|e| (e.event.kind, e.event.at, e.performed_at))
            .collect();
        let woke_at = MIDNIGHT + 52 * SECOND;
        assert_eq!(
            performed,
            vec![
                (TripEventKind::Departed, MIDNIGHT + 15 * SECOND, woke_at),
                (TripEventKind::Arrived, MIDNIGHT + 35 * SECOND, woke_at),
            ]
        );
        assert_eq!(batches.len(), 1, "one DEPARTED batch");
        assert!(
            batches[0].1.cause.contains("event=Departed"),
            "{}",
            batches[0].1.cause
        );

        // Nothing is performed twice before the next boarding at +120 s.
        tokio::time::sleep(Duration::from_secs(67)).await;
        let (batches, events) = recorder.send(TakeRecorded).await.unwrap();
        assert!(events.is_empty(), "performed again: {events:?}");
        assert!(batches.is_empty());

        tokio::time::sleep(Duration::from_secs(2)).await;
        let (_, events) = recorder.send(TakeRecorded).await.unwrap();
        let kinds: Vec<_> = events
            .iter()
            .map(|e| (e.event.kind, e.event.at, e.performed_at))
            .collect();
        let boarding = MIDNIGHT + 120 * SECOND;
        assert_eq!(
            kinds,
            vec![(TripEventKind::BoardingOpened, boarding, boarding)]
        );
    });
}

#[test]
fn long_stall_skips_older_trips() {
    run_paused(async {
        // Stall for ten minutes: wake at +612 s, in trip 5 (boarded at
        // +600 s, boarding until +610 s, so locked now).
        let recorder = start_route_at(slow_route(), MIDNIGHT + 12 * SECOND);
        stall(600).await;

        let (_, events) = recorder.send(TakeRecorded).await.unwrap();
        let performed: Vec<_> = events
            .iter()
            .map(|e| (e.event.trip.index, e.event.kind))
            .collect();
        let current = (MIDNIGHT + 600 * SECOND) / (120 * SECOND);
        assert_eq!(
            performed,
            vec![
                (current - 1, TripEventKind::BoardingOpened),
                (current - 1, TripEventKind::BoardingClosed),
                (current - 1, TripEventKind::Departed),
                (current - 1, TripEventKind::Arrived),
                (current, TripEventKind::BoardingOpened),
                (current, TripEventKind::BoardingClosed),
            ]
        );
    });
}

#[test]
fn long_stall_leaves_out_an_older_arrival_at_the_same_instant() {
    run_paused(async {
        // The cycle is exactly one trip (10 + 5 + 20 s), so each arrival
        // falls on the next trip's boarding.
        let mut route = slow_route();
        let definition = Arc::make_mut(&mut route.definition);
        definition.cycle_interval = 35 * SECOND;
        route.timetable = Timetable::independent(definition.durations, definition.cycle_interval);

        let first = route.timetable.trip_at(MIDNIGHT).unwrap().index + 1;
        let start = route.timetable.trip(first).unwrap().boarding_open + 12 * SECOND;
        let recorder = start_route_at(route.clone(), start);
        stall(600).await;

        let (_, events) = recorder.send(TakeRecorded).await.unwrap();
        let now = start + 600 * SECOND;
        let current = route.timetable.trip_at(now).unwrap().index;
        let expected: Vec<_> = route
            .timetable
            .events_between(
                route.timetable.trip(current - 1).unwrap().boarding_open - 1,
                now,
            )
            .into_iter()
            .filter(|e| e.trip.index >= current - 1)
            .map(|e| (e.trip.index, e.kind))
            .collect();
        let performed: Vec<_> = events
            .iter()
            .map(|e| (e.event.trip.index, e.event.kind))
            .collect();
        assert_eq!(performed, expected);
        assert!(
            performed.iter().all(|(trip, _)| *trip >= current - 1),
            "{performed:?}"
        );
    });
}
