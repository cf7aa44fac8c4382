//! Thirty simulated days of every shipped route on paused time, with a
//! recorder in place of the producer. Each trip event the timetable
//! predicts must be performed once, at its exact millisecond, and nothing
//! else may be performed. The batches must match those events. Riders who
//! board on a few days must get exactly one CHANGE_MAP at each departure
//! and arrival they are aboard for, on live channels only. The live heap
//! must not grow with simulated time.
//!
//! Memory is measured as live heap bytes: this test binary installs a
//! global allocator that adds each allocation's size and subtracts each
//! release, so the count is exactly the bytes Rust code still holds. The
//! resident set size (VmRSS) is printed too but not asserted on, because
//! it moves in 4 KiB pages and the allocator keeps freed pages, so a leak
//! of a few bytes per trip could hide in it for weeks. Without any leak it
//! still rose by about 1.5 MiB from day 1 to day 10 in a debug build on a
//! 2-core Linux machine, while the live heap stayed flat. The shipped routes
//! run 2,016 trips a day. A route actor that kept one 8-byte word per trip
//! would add about 16 KB a day, 145 KB by day 10 and 468 KB by day 30,
//! well over `HEAP_SLACK_BYTES`. The recorder is drained at the end of
//! every simulated day and the sample is taken after the day's checks have
//! dropped their data, at the same time of day (23:59:59.999), when each
//! route has exactly one timer armed.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atlas_transports::actors::channel_registry::ChannelStatusChanged;
use atlas_transports::actors::presence::{CharacterMoved, GetOccupants};
use atlas_transports::actors::route::TripEventPerformed;
use atlas_transports::clock::Clock;
use atlas_transports::presence::Position;
use atlas_transports::routes::{aboard_maps, routes_for_tenants, Route};
use atlas_transports::settings::Topics;
use atlas_transports::tenant::Tenant;
use atlas_transports::timetable::{Instant, TripEventKind};
use atlas_transports::wire::Batch;
use common::*;
use serde_json::json;

/// Counts the bytes allocated and not yet released by the whole process.
struct CountingAllocator;

static LIVE_HEAP_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator with the caller's
// arguments unchanged and only updates a counter besides.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = System.alloc(layout);
        if !pointer.is_null() {
            LIVE_HEAP_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = System.alloc_zeroed(layout);
        if !pointer.is_null() {
            LIVE_HEAP_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        System.dealloc(pointer, layout);
        LIVE_HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = System.realloc(pointer, layout, new_size);
        if !moved.is_null() {
            LIVE_HEAP_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const DAYS: usize = 30;

/// Days (counted from 1) on which riders board.
const RIDER_DAYS: [i64; 4] = [1, 2, 15, 29];

/// How far the live heap after day 10 and after day 30 may exceed the live
/// heap after day 1. Allocations whose size depends on the run rather than
/// on simulated time (hash-table capacity in presence, a rider still
/// aboard at a sample) stay well under it. The smallest leak worth
/// catching, one 8-byte word per trip, passes it by day 10.
const HEAP_SLACK_BYTES: usize = 32 * 1024;

/// Trip events of the shipped routes in one day: two ferries every 30
/// minutes (48 trips each), six routes every 10 minutes (144), two subways
/// every 5 minutes (288) and two airplanes every 6 minutes (240), four
/// events per trip. Every cycle divides a day, so each day has as many.
const TRIP_EVENTS_PER_DAY: usize = 4 * (2 * 48 + 6 * 144 + 2 * 288 + 2 * 240);

/// ARRIVED and DEPARTED batches in one day: two per trip.
const STATUS_BATCHES_PER_DAY: usize = 2 * TRIP_EVENTS_PER_DAY / 4;

const LIVE_CHANNEL: u8 = 1;
/// A channel never announced as started: its riders are never moved.
const DEAD_CHANNEL: u8 = 2;

/// Where a rider enters the route's maps.
#[derive(Clone, Copy)]
enum Boarding {
    Staging,
    /// An en-route map by position in the route's list, entered mid-travel.
    EnRoute(usize),
}

/// A rider boarding on every rider day, at `time_of_day` after midnight.
/// Each boards half a minute past a whole minute, when no shipped route
/// has a trip event.
struct RiderSpec {
    route: &'static str,
    time_of_day: i64,
    boarding: Boarding,
    channel_id: u8,
    /// Leaves the map this long after boarding, if at all.
    leaves_after: Option<i64>,
}

const fn at(hours: i64, minutes: i64) -> i64 {
    hours * 60 * MINUTE + minutes * MINUTE + 30 * SECOND
}

const RIDER_SPECS: [RiderSpec; 8] = [
    // Ferry A boards at 08:00, departs 08:05 and arrives 08:15 with riders
    // on both en-route maps.
    RiderSpec {
        route: "boat-ellinia-orbis",
        time_of_day: at(8, 0),
        boarding: Boarding::Staging,
        channel_id: LIVE_CHANNEL,
        leaves_after: None,
    },
    // On a channel that is not live, so not moved at 08:05. It leaves
    // after the departure, so presence does not keep it.
    RiderSpec {
        route: "boat-ellinia-orbis",
        time_of_day: at(8, 0),
        boarding: Boarding::Staging,
        channel_id: DEAD_CHANNEL,
        leaves_after: Some(5 * MINUTE),
    },
    RiderSpec {
        route: "boat-ellinia-orbis",
        time_of_day: at(8, 6),
        boarding: Boarding::EnRoute(1),
        channel_id: LIVE_CHANNEL,
        leaves_after: None,
    },
    // Ferry B on the same vessel boards at 08:15.
    RiderSpec {
        route: "boat-orbis-ellinia",
        time_of_day: at(8, 15),
        boarding: Boarding::Staging,
        channel_id: LIVE_CHANNEL,
        leaves_after: None,
    },
    // The subway closes and departs at once, at 12:01.
    RiderSpec {
        route: "subway-kc-nlc",
        time_of_day: at(12, 0),
        boarding: Boarding::Staging,
        channel_id: LIVE_CHANNEL,
        leaves_after: None,
    },
    RiderSpec {
        route: "subway-kc-nlc",
        time_of_day: at(12, 0),
        boarding: Boarding::Staging,
        channel_id: LIVE_CHANNEL,
        leaves_after: None,
    },
    // The train arrives at 17:10, the instant the next trip boards.
    RiderSpec {
        route: "train-orbis-ludibrium",
        time_of_day: at(17, 0),
        boarding: Boarding::Staging,
        channel_id: LIVE_CHANNEL,
        leaves_after: None,
    },
    // The airplane departs at 23:59 and arrives at 00:00 the next day.
    RiderSpec {
        route: "airplane-cbd-kc",
        time_of_day: at(23, 54),
        boarding: Boarding::Staging,
        channel_id: LIVE_CHANNEL,
        leaves_after: None,
    },
];

/// A character entering or leaving a route map at a simulated instant.
struct PresenceStep {
    at: Instant,
    character_id: u32,
    position: Position,
    entered: bool,
}

/// One CHANGE_MAP a trip event is expected to send.
struct ExpectedMove {
    /// The order the batch lists it in: the presence index returns
    /// occupants map by map, each map ordered by channel and character.
    order: (usize, u8, u32),
    character_id: u32,
    channel_id: u8,
    target_map_id: u32,
}

/// (route index, trip index, event kind) → the CHANGE_MAPs it sends.
type ExpectedMoves = HashMap<(usize, i64, TripEventKind), Vec<ExpectedMove>>;

/// A record as compared: topic, key and the payload as canonical JSON text.
type RecordSummary = (String, Vec<u8>, String);

/// A batch as compared: its scheduled instant and its records in order.
type BatchSummary = (Instant, Vec<RecordSummary>);

#[derive(Clone, Copy, Debug, Default)]
struct DayCounts {
    trip_events: usize,
    status_batches: usize,
    change_maps: usize,
}

#[test]
fn shipped_routes_run_thirty_days() {
    run_paused(run_thirty_days());
}

async fn run_thirty_days() {
    let wall_clock_start = std::time::Instant::now();

    // A millisecond before midnight, so the first day's events at
    // 00:00:00.000 are still ahead of the route actors.
    let run_start = MIDNIGHT - 1;
    let run_end = run_start + DAYS as i64 * DAY;
    let clock = TokioClock::starting_at(run_start);
    let origin = tokio::time::Instant::now();
    let recorder = Recorder::start(clock.clone());

    let config = shipped_config();
    let settings = default_settings();
    assert_eq!(config.tenants.len(), 1, "the shipped config has one tenant");
    let tenant = config.tenants[0].clone();
    let routes = routes_for_tenants(&config.tenants, &config.routes, &config.vessels);
    assert_eq!(routes.len(), 12);

    let world = World::start(&routes);
    world
        .channels
        .send(ChannelStatusChanged {
            tenant_id: tenant.id,
            world_id: 0,
            channel_id: LIVE_CHANNEL,
            started: true,
        })
        .await
        .unwrap();
    for route in &routes {
        start_recorded_route(route.clone(), &settings, clock.clone(), &recorder, &world);
    }

    let (steps, riders) = plan_riders(&routes);
    let moves = expected_moves(&routes, &riders);
    let expected_change_maps = expected_change_maps_per_rider(&routes, &riders, &moves, run_end);
    let mut change_maps = vec![0usize; riders.len()];

    let mut counts = [DayCounts::default(); DAYS];
    let mut heap_bytes = [0usize; DAYS];
    let mut resident_kib = [0u64; DAYS];
    let mut next_step = 0;

    for day in 0..DAYS {
        let day_start = run_start + day as i64 * DAY;
        let day_end = day_start + DAY;

        while next_step < steps.len() && steps[next_step].at <= day_end {
            let step = &steps[next_step];
            sleep_until(origin, run_start, step.at).await;
            world
                .presence
                .send(CharacterMoved {
                    tenant_id: tenant.id,
                    character_id: step.character_id,
                    position: step.position,
                    entered: step.entered,
                })
                .await
                .unwrap();
            next_step += 1;
        }

        sleep_until(origin, run_start, day_end).await;
        assert_eq!(
            clock.now(),
            day_end,
            "test clock drifted on day {}",
            day + 1
        );

        {
            let (batches, events) = recorder.send(TakeRecorded).await.unwrap();
            let context = DayContext {
                day: day + 1,
                from: day_start,
                to: day_end,
                routes: &routes,
                tenant: &tenant,
                topics: &settings.topics,
                moves: &moves,
            };
            let trip_events = check_events(&context, &events);
            let day_counts = check_batches(&context, &batches);
            assert_eq!(
                trip_events,
                TRIP_EVENTS_PER_DAY,
                "trip events on day {}",
                day + 1
            );
            assert_eq!(
                day_counts.status_batches,
                STATUS_BATCHES_PER_DAY,
                "status batches on day {}",
                day + 1
            );
            counts[day] = DayCounts {
                trip_events,
                ..day_counts
            };
            count_change_maps(&batches, &settings.topics, &riders, &mut change_maps);
        }

        heap_bytes[day] = LIVE_HEAP_BYTES.load(Ordering::Relaxed);
        resident_kib[day] = resident_set_kib();
    }

    for (index, rider) in riders.iter().enumerate() {
        assert_eq!(
            change_maps[index],
            expected_change_maps[index],
            "CHANGE_MAP count of character {} ({})",
            rider.character_id,
            routes[rider.route].name()
        );
    }
    let total_change_maps: usize = counts.iter().map(|c| c.change_maps).sum();
    assert_eq!(
        total_change_maps,
        expected_change_maps.iter().sum::<usize>()
    );

    // Every rider was delivered or left, so no tracked map has occupants.
    let aboard = world
        .presence
        .send(GetOccupants {
            tenant_id: tenant.id,
            map_ids: aboard_maps(&routes)
                .into_iter()
                .map(|(_, map)| map)
                .collect(),
        })
        .await
        .unwrap();
    assert!(aboard.is_empty(), "still aboard after the run: {aboard:?}");

    let day_1 = heap_bytes[0];
    for day in [10, 30] {
        assert!(
            heap_bytes[day - 1] <= day_1 + HEAP_SLACK_BYTES,
            "live heap grew from {day_1} bytes after day 1 to {} after day {day}, more than {HEAP_SLACK_BYTES}",
            heap_bytes[day - 1]
        );
    }

    let trip_events: usize = counts.iter().map(|c| c.trip_events).sum();
    let status_batches: usize = counts.iter().map(|c| c.status_batches).sum();
    println!(
        "{DAYS} days: {trip_events} trip events, {status_batches} status batches, {total_change_maps} CHANGE_MAPs"
    );
    for day in [1, 10, 30] {
        println!(
            "after day {day}: live heap {} bytes, VmRSS {} KiB",
            heap_bytes[day - 1],
            resident_kib[day - 1]
        );
    }
    let heap_max = heap_bytes.iter().max().unwrap();
    let heap_min = heap_bytes.iter().min().unwrap();
    println!("live heap over all days: min {heap_min} bytes, max {heap_max} bytes");
    println!("wall-clock time: {:?}", wall_clock_start.elapsed());
}

/// Sleeps on the paused clock until the simulated instant `at`. The wait
/// is counted from `origin`, the tokio instant at `run_start`, and not from
/// the current time, so the test's own waits cannot drift either.
async fn sleep_until(origin: tokio::time::Instant, run_start: Instant, at: Instant) {
    let offset = Duration::from_millis((at - run_start) as u64);
    tokio::time::sleep_until(origin + offset).await;
}

/// A rider as planned: who, on which route, and where it boarded.
struct Rider {
    character_id: u32,
    route: usize,
    boards_at: Instant,
    position: Position,
}

/// Lists the presence steps of every rider day in time order, and every
/// rider.
fn plan_riders(routes: &[Route]) -> (Vec<PresenceStep>, Vec<Rider>) {
    let mut steps = Vec::new();
    let mut riders = Vec::new();

    for day in RIDER_DAYS {
        let midnight = MIDNIGHT + (day - 1) * DAY;
        for (index, spec) in RIDER_SPECS.iter().enumerate() {
            let route = routes
                .iter()
                .position(|route| route.name() == spec.route)
                .unwrap_or_else(|| panic!("no shipped route {}", spec.route));
            let definition = &routes[route].definition;
            let map_id = match spec.boarding {
                Boarding::Staging => definition.staging_map_id,
                Boarding::EnRoute(position) => definition.en_route_map_ids[position],
            };
            let position = Position {
                world_id: 0,
                channel_id: spec.channel_id,
                map_id,
            };
            let character_id = (day * 100 + index as i64) as u32;
            let boards_at = midnight + spec.time_of_day;

            steps.push(PresenceStep {
                at: boards_at,
                character_id,
                position,
                entered: true,
            });
            if let Some(after) = spec.leaves_after {
                steps.push(PresenceStep {
                    at: boards_at + after,
                    character_id,
                    position,
                    entered: false,
                });
            }
            riders.push(Rider {
                character_id,
                route,
                boards_at,
                position,
            });
        }
    }

    steps.sort_by_key(|step| step.at);
    (steps, riders)
}

/// Works out each rider's moves from the timetable. A rider in the staging
/// map is moved at the trip's departure and again at its arrival. A rider
/// who enters an en-route map mid-travel is moved at arrival only. Riders
/// on a channel that is not live are never moved.
fn expected_moves(routes: &[Route], riders: &[Rider]) -> ExpectedMoves {
    let mut moves = ExpectedMoves::new();

    for rider in riders
        .iter()
        .filter(|r| r.position.channel_id == LIVE_CHANNEL)
    {
        let route = &routes[rider.route];
        let definition = &route.definition;
        let trip = route.timetable.trip_at(rider.boards_at).unwrap();
        let channel_id = rider.position.channel_id;
        let character_id = rider.character_id;

        let arrival_order = if rider.position.map_id == definition.staging_map_id {
            assert!(
                trip.boarding_open <= rider.boards_at && rider.boards_at < trip.departure,
                "character {character_id} boards outside boarding"
            );
            moves
                .entry((rider.route, trip.index, TripEventKind::Departed))
                .or_default()
                .push(ExpectedMove {
                    order: (0, channel_id, character_id),
                    character_id,
                    channel_id,
                    target_map_id: definition.en_route_map_ids[0],
                });
            0
        } else {
            assert!(
                trip.departure <= rider.boards_at && rider.boards_at < trip.arrival,
                "character {character_id} enters an en-route map outside travel"
            );
            definition
                .en_route_map_ids
                .iter()
                .position(|map| *map == rider.position.map_id)
                .unwrap()
        };

        moves
            .entry((rider.route, trip.index, TripEventKind::Arrived))
            .or_default()
            .push(ExpectedMove {
                order: (arrival_order, channel_id, character_id),
                character_id,
                channel_id,
                target_map_id: definition.destination_map_id,
            });
    }

    for list in moves.values_mut() {
        list.sort_by_key(|planned| planned.order);
    }
    moves
}

/// Counts, per rider, the CHANGE_MAPs of events up to `run_end`.
fn expected_change_maps_per_rider(
    routes: &[Route],
    riders: &[Rider],
    moves: &ExpectedMoves,
    run_end: Instant,
) -> Vec<usize> {
    let mut counts = vec![0; riders.len()];
    for ((route, trip_index, kind), list) in moves {
        let trip = routes[*route].timetable.trip(*trip_index).unwrap();
        let event = trip.events().into_iter().find(|e| e.kind == *kind).unwrap();
        if event.at > run_end {
            continue;
        }
        for planned in list {
            let rider = riders
                .iter()
                .position(|r| r.character_id == planned.character_id)
                .unwrap();
            counts[rider] += 1;
        }
    }
    counts
}

/// What checking one simulated day needs.
struct DayContext<'a> {
    /// Counted from 1.
    day: usize,
    /// The day covers `from < instant <= to`.
    from: Instant,
    to: Instant,
    routes: &'a [Route],
    tenant: &'a Tenant,
    topics: &'a Topics,
    moves: &'a ExpectedMoves,
}

/// Checks that each route performed exactly the timetable's events of the
/// day, in order, each at its instant and moving the expected riders.
/// Returns how many events were performed.
fn check_events(context: &DayContext, events: &[TripEventPerformed]) -> usize {
    let day = context.day;
    let mut expected_total = 0;

    for (route_index, route) in context.routes.iter().enumerate() {
        let expected = route.timetable.events_between(context.from, context.to);
        expected_total += expected.len();
        let performed: Vec<&TripEventPerformed> =
            events.iter().filter(|e| e.route_id == route.id).collect();

        let expected_keys: Vec<_> = expected
            .iter()
            .map(|e| (e.kind, e.at, e.trip.index))
            .collect();
        let performed_keys: Vec<_> = performed
            .iter()
            .map(|e| (e.event.kind, e.event.at, e.event.trip.index))
            .collect();
        assert_eq!(
            performed_keys,
            expected_keys,
            "events of {} on day {day}",
            route.name()
        );

        for event in performed {
            assert_eq!(
                event.performed_at,
                event.event.at,
                "{} performed off its instant on day {day}: {event:?}",
                route.name()
            );
            assert_eq!(event.tenant_id, context.tenant.id);
            let key = (route_index, event.event.trip.index, event.event.kind);
            let riders = context.moves.get(&key).map_or(0, Vec::len);
            assert_eq!(
                event.warped,
                riders,
                "riders moved by {} on day {day}: {event:?}",
                route.name()
            );
        }
    }

    assert_eq!(
        events.len(),
        expected_total,
        "events of unknown routes on day {day}"
    );
    events.len()
}

/// Checks that the day's batches are exactly those its trip events cause,
/// each received at its scheduled instant with the tenant's headers.
/// Returns the day's counts of status batches and CHANGE_MAPs.
fn check_batches(context: &DayContext, batches: &[(Instant, Batch)]) -> DayCounts {
    let day = context.day;
    let topics = context.topics;
    let tenant_headers: Vec<(String, Vec<u8>)> = context
        .tenant
        .kafka_headers()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();

    let mut actual: Vec<BatchSummary> = Vec::new();
    let mut counts = DayCounts::default();
    for (received_at, batch) in batches {
        assert_eq!(
            Some(*received_at),
            batch.scheduled_at,
            "batch received off its instant on day {day}: {}",
            batch.cause
        );
        let mut records = Vec::new();
        for record in &batch.records {
            assert_eq!(record.headers, tenant_headers, "{}", batch.cause);
            if record.topic == topics.transport_status {
                counts.status_batches += 1;
            }
            if record.topic == topics.character_command {
                counts.change_maps += 1;
            }
            let json: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
            let key = record.key.clone().unwrap_or_default();
            records.push((record.topic.clone(), key, json.to_string()));
        }
        actual.push((batch.scheduled_at.unwrap_or(*received_at), records));
    }

    let mut expected = expected_batches(context);
    actual.sort();
    expected.sort();
    let missing = multiset_difference(&expected, &actual);
    let unexpected = multiset_difference(&actual, &expected);
    assert!(
        missing.is_empty(),
        "{} batches missing on day {day}, first: {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected batches on day {day}, first: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(3)]
    );
    counts
}

/// Builds the batches the day's trip events should cause, from the
/// timetable and the planned riders: BoardingOpened sends ARRIVED,
/// Departed sends its CHANGE_MAPs then DEPARTED, Arrived sends its
/// CHANGE_MAPs if there are any, BoardingClosed sends nothing.
fn expected_batches(context: &DayContext) -> Vec<BatchSummary> {
    let topics = context.topics;
    let mut batches = Vec::new();

    for (route_index, route) in context.routes.iter().enumerate() {
        for event in route.timetable.events_between(context.from, context.to) {
            let mut records: Vec<RecordSummary> = Vec::new();
            let key = (route_index, event.trip.index, event.kind);
            for planned in context.moves.get(&key).into_iter().flatten() {
                let command = json!({
                    "worldId": 0,
                    "characterId": planned.character_id,
                    "type": "CHANGE_MAP",
                    "body": {
                        "channelId": planned.channel_id,
                        "mapId": planned.target_map_id,
                        "portalId": 0
                    }
                });
                let mut key = planned.character_id.to_le_bytes().to_vec();
                key.extend([0, 0, 0, 0]);
                records.push((topics.character_command.clone(), key, command.to_string()));
            }

            let status = match event.kind {
                TripEventKind::BoardingOpened => Some("ARRIVED"),
                TripEventKind::Departed => Some("DEPARTED"),
                TripEventKind::BoardingClosed | TripEventKind::Arrived => None,
            };
            if let Some(status) = status {
                let route_id = route.id.hyphenated().to_string();
                let payload = json!({
                    "routeId": route_id,
                    "type": status,
                    "body": {"mapId": route.definition.observation_map_id}
                });
                records.push((
                    topics.transport_status.clone(),
                    route_id.into_bytes(),
                    payload.to_string(),
                ));
            }

            if !records.is_empty() {
                batches.push((event.at, records));
            }
        }
    }
    batches
}

/// Returns the items of sorted `left` that sorted `right` lacks, counting
/// repeats.
fn multiset_difference<T: Ord + Clone>(left: &[T], right: &[T]) -> Vec<T> {
    let mut lacking = Vec::new();
    let mut other = right.iter().peekable();
    for item in left {
        while other.peek().is_some_and(|candidate| *candidate < item) {
            other.next();
        }
        if other.peek() == Some(&item) {
            other.next();
        } else {
            lacking.push(item.clone());
        }
    }
    lacking
}

/// Adds each CHANGE_MAP of `batches` to its rider's count.
fn count_change_maps(
    batches: &[(Instant, Batch)],
    topics: &Topics,
    riders: &[Rider],
    counts: &mut [usize],
) {
    let commands = batches
        .iter()
        .flat_map(|(_, batch)| &batch.records)
        .filter(|record| record.topic == topics.character_command);
    for record in commands {
        let json: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
        let character_id = json["characterId"].as_u64().unwrap() as u32;
        let rider = riders
            .iter()
            .position(|r| r.character_id == character_id)
            .unwrap_or_else(|| panic!("CHANGE_MAP for unknown character {character_id}"));
        counts[rider] += 1;
    }
}

/// Reads the process's resident set size in KiB from /proc/self/status,
/// or returns 0 where that file does not exist.
fn resident_set_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
