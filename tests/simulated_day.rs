//! A whole day of every shipped route on paused time: each trip event
//! happens once, in order, at its instant, and each trip sends one ARRIVED
//! and one DEPARTED.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use atlas_transports::routes::routes_for_tenants;
use atlas_transports::timetable::TripEventKind;
use common::*;

#[test]
fn shipped_routes_run_a_whole_day() {
    run_paused(run_a_whole_day());
}

async fn run_a_whole_day() {
    // Start a millisecond before midnight so that the day's first events,
    // at 00:00:00.000, are still ahead of the route actors.
    let day_start = MIDNIGHT - 1;
    let day_end = day_start + DAY;
    let clock = TokioClock::starting_at(day_start);
    let recorder = Recorder::start(clock.clone());

    let config = shipped_config();
    let settings = default_settings();
    let routes = routes_for_tenants(&config.tenants, &config.routes, &config.vessels);
    assert_eq!(routes.len(), 12);
    let world = World::start(&routes);
    for route in &routes {
        start_recorded_route(route.clone(), &settings, clock.clone(), &recorder, &world);
    }

    tokio::time::sleep(Duration::from_millis(DAY as u64)).await;
    let (batches, events) = recorder.send(TakeRecorded).await.unwrap();

    let mut batch_types: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (_, batch) in &batches {
        assert_eq!(
            batch.records.len(),
            1,
            "one status record per batch: {}",
            batch.cause
        );
        let record = &batch.records[0];
        let json: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
        let route_id = json["routeId"].as_str().unwrap().to_string();
        let kind = json["type"].as_str().unwrap().to_string();
        *batch_types
            .entry(route_id)
            .or_default()
            .entry(kind)
            .or_default() += 1;
    }

    for route in &routes {
        let expected = route.timetable.events_between(day_start, day_end);
        let performed: Vec<_> = events.iter().filter(|e| e.route_id == route.id).collect();

        let expected_kinds: Vec<_> = expected
            .iter()
            .map(|e| (e.kind, e.at, e.trip.index))
            .collect();
        let performed_kinds: Vec<_> = performed
            .iter()
            .map(|e| (e.event.kind, e.event.at, e.event.trip.index))
            .collect();
        assert_eq!(
            performed_kinds,
            expected_kinds,
            "events of {}",
            route.name()
        );

        for event in &performed {
            assert_eq!(
                event.performed_at,
                event.event.at,
                "{} performed late: {event:?}",
                route.name()
            );
        }

        let trips = expected
            .iter()
            .filter(|e| e.kind == TripEventKind::BoardingOpened)
            .count();
        let departures = expected
            .iter()
            .filter(|e| e.kind == TripEventKind::Departed)
            .count();
        let counts = &batch_types[&route.id.to_string()];
        assert_eq!(counts["ARRIVED"], trips, "ARRIVED of {}", route.name());
        assert_eq!(
            counts["DEPARTED"],
            departures,
            "DEPARTED of {}",
            route.name()
        );
        assert!(trips >= 48, "{} ran only {trips} trips", route.name());
    }

    // Every status batch was sent at its event's instant.
    for (received_at, batch) in &batches {
        assert_eq!(Some(*received_at), batch.scheduled_at, "{}", batch.cause);
    }
}
