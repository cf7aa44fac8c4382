//! The timetable: when each trip of a route boards, departs and arrives.
//!
//! A timetable is a pure function of the route's durations and an instant, so
//! two replicas, or one replica before and after a restart, agree to the
//! millisecond. Instants are milliseconds since the Unix epoch (UTC); trips are
//! anchored at 1970-01-01T00:00:00Z, which puts boarding at the same wall-clock
//! minutes every day for any cycle that divides a day, and the sequence runs on
//! across midnight without a gap.
//!
//! Trip `k` of a route opens boarding at `offset + k * period`. An independent
//! route has offset 0 and period = its cycle interval. On a shared vessel the
//! period is the vessel's whole round (trip A, turnaround, trip B, turnaround)
//! and route B's offset is trip A plus one turnaround.

use std::fmt;

/// Milliseconds since the Unix epoch, UTC.
pub type Instant = i64;

/// A length of time in milliseconds.
pub type Millis = i64;

/// The spec's route states, with the names the REST API and logs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteState {
    OpenEntry,
    LockedEntry,
    InTransit,
    AwaitingReturn,
    OutOfService,
}

impl RouteState {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::OpenEntry => "open_entry",
            RouteState::LockedEntry => "locked_entry",
            RouteState::InTransit => "in_transit",
            RouteState::AwaitingReturn => "awaiting_return",
            RouteState::OutOfService => "out_of_service",
        }
    }
}

impl fmt::Display for RouteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four events of a trip, declared in the order they happen, so that the
/// derived `Ord` breaks ties at one instant: BoardingClosed comes before
/// Departed when the pre-departure gap is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TripEventKind {
    BoardingOpened,
    BoardingClosed,
    Departed,
    Arrived,
}

impl fmt::Display for TripEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            TripEventKind::BoardingOpened => "BoardingOpened",
            TripEventKind::BoardingClosed => "BoardingClosed",
            TripEventKind::Departed => "Departed",
            TripEventKind::Arrived => "Arrived",
        };
        f.write_str(name)
    }
}

/// One trip: boardingOpen < boardingClosed <= departure < arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trip {
    /// Trip number `k`, counted from the epoch anchor; unique per route.
    pub index: i64,
    pub boarding_open: Instant,
    pub boarding_closed: Instant,
    pub departure: Instant,
    pub arrival: Instant,
}

impl Trip {
    /// The trip's four events in the order they happen.
    pub fn events(&self) -> [TripEvent; 4] {
        [
            TripEvent::new(self.boarding_open, TripEventKind::BoardingOpened, *self),
            TripEvent::new(self.boarding_closed, TripEventKind::BoardingClosed, *self),
            TripEvent::new(self.departure, TripEventKind::Departed, *self),
            TripEvent::new(self.arrival, TripEventKind::Arrived, *self),
        ]
    }
}

/// A trip event at its scheduled instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TripEvent {
    pub at: Instant,
    pub kind: TripEventKind,
    pub trip: Trip,
}

impl TripEvent {
    fn new(at: Instant, kind: TripEventKind, trip: Trip) -> Self {
        TripEvent { at, kind, trip }
    }

    /// The order in which events are performed: by instant, then the earlier
    /// trip first (its Arrived before the next trip's BoardingOpened), then by
    /// kind.
    pub fn order_key(&self) -> (Instant, i64, TripEventKind) {
        (self.at, self.trip.index, self.kind)
    }
}

/// The durations of one trip, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TripDurations {
    pub boarding_window: Millis,
    pub pre_departure: Millis,
    pub travel: Millis,
}

impl TripDurations {
    /// From boarding open to arrival.
    pub fn length(&self) -> Millis {
        self.boarding_window + self.pre_departure + self.travel
    }
}

/// The trip sequence of one route, or none for a route out of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timetable {
    schedule: Option<Schedule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Schedule {
    durations: TripDurations,
    /// Boarding of trip 0 opens this long after the epoch.
    offset: Millis,
    /// Time between consecutive boarding openings; never shorter than a trip.
    period: Millis,
}

impl Timetable {
    /// An independent route: trip `k` opens at `k * cycle_interval`.
    ///
    /// Panics if the durations break the route rules (window and travel > 0,
    /// pre-departure >= 0, cycle >= trip length); route definitions are
    /// validated before they get here.
    pub fn independent(durations: TripDurations, cycle_interval: Millis) -> Self {
        Self::with_schedule(durations, 0, cycle_interval)
    }

    /// Route A or B of a shared vessel: the vessel runs A's trip, waits
    /// `turnaround`, runs B's trip, waits again, and repeats.
    pub fn shared_vessel(
        route_a: TripDurations,
        route_b: TripDurations,
        turnaround: Millis,
        this_is_route_b: bool,
    ) -> Self {
        assert!(turnaround >= 0, "turnaround must not be negative");
        let period = route_a.length() + turnaround + route_b.length() + turnaround;

        if this_is_route_b {
            Self::with_schedule(route_b, route_a.length() + turnaround, period)
        } else {
            Self::with_schedule(route_a, 0, period)
        }
    }

    /// A route with no trips.
    pub fn out_of_service() -> Self {
        Timetable { schedule: None }
    }

    fn with_schedule(durations: TripDurations, offset: Millis, period: Millis) -> Self {
        assert!(durations.boarding_window > 0, "boarding window must be > 0");
        assert!(durations.pre_departure >= 0, "pre-departure must be >= 0");
        assert!(durations.travel > 0, "travel must be > 0");
        assert!(
            period >= durations.length(),
            "period must hold a whole trip"
        );

        Timetable {
            schedule: Some(Schedule {
                durations,
                offset,
                period,
            }),
        }
    }

    pub fn is_out_of_service(&self) -> bool {
        self.schedule.is_none()
    }

    /// Time between consecutive boarding openings, if the route runs.
    pub fn period(&self) -> Option<Millis> {
        self.schedule.map(|s| s.period)
    }

    /// Trip number `index`, or `None` when the route is out of service.
    pub fn trip(&self, index: i64) -> Option<Trip> {
        let schedule = self.schedule?;
        let durations = schedule.durations;
        let boarding_open = schedule.offset + index * schedule.period;
        let boarding_closed = boarding_open + durations.boarding_window;
        let departure = boarding_closed + durations.pre_departure;

        Some(Trip {
            index,
            boarding_open,
            boarding_closed,
            departure,
            arrival: departure + durations.travel,
        })
    }

    /// The latest trip whose boarding opened at or before `t`.
    pub fn trip_at(&self, t: Instant) -> Option<Trip> {
        let schedule = self.schedule?;
        let index = (t - schedule.offset).div_euclid(schedule.period);
        self.trip(index)
    }

    /// The route's state at `t`.
    pub fn state_at(&self, t: Instant) -> RouteState {
        let Some(trip) = self.trip_at(t) else {
            return RouteState::OutOfService;
        };

        if t < trip.boarding_closed {
            RouteState::OpenEntry
        } else if t < trip.departure {
            RouteState::LockedEntry
        } else if t < trip.arrival {
            RouteState::InTransit
        } else {
            RouteState::AwaitingReturn
        }
    }

    /// The first trip event strictly after `t`.
    pub fn next_event_after(&self, t: Instant) -> Option<TripEvent> {
        let current = self.trip_at(t)?;
        let next = self.trip(current.index + 1)?;

        // The earlier trip's arrival can fall on the next trip's boarding,
        // so both trips are candidates; the order key breaks the tie.
        current
            .events()
            .into_iter()
            .chain(next.events())
            .filter(|event| event.at > t)
            .min_by_key(TripEvent::order_key)
    }

    /// Every trip event with `from < instant <= to`, in the order they are
    /// performed. Walks every trip in the interval, so callers keep the
    /// interval short (the route actor bounds it to two trips).
    pub fn events_between(&self, from: Instant, to: Instant) -> Vec<TripEvent> {
        let (Some(first), Some(last)) = (self.trip_at(from), self.trip_at(to)) else {
            return Vec::new();
        };

        // A trip that opened before `from` can still have events after it.
        let mut events: Vec<TripEvent> = (first.index..=last.index)
            .filter_map(|index| self.trip(index))
            .flat_map(|trip| trip.events())
            .filter(|event| event.at > from && event.at <= to)
            .collect();
        events.sort_by_key(TripEvent::order_key);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Millis = 1_000;
    const MINUTE: Millis = 60 * SECOND;
    const HOUR: Millis = 60 * MINUTE;
    const DAY: Millis = 24 * HOUR;

    /// 2026-12-04T00:00:00Z.
    const MIDNIGHT: Instant = 1_796_342_400_000;

    fn minutes(boarding: i64, pre: i64, travel: i64) -> TripDurations {
        TripDurations {
            boarding_window: boarding * MINUTE,
            pre_departure: pre * MINUTE,
            travel: travel * MINUTE,
        }
    }

    fn kinds_and_instants(events: &[TripEvent]) -> Vec<(TripEventKind, Instant)> {
        events.iter().map(|e| (e.kind, e.at)).collect()
    }

    #[test]
    fn midnight_constant_is_midnight() {
        assert_eq!(MIDNIGHT % DAY, 0);
    }

    #[test]
    fn subway_closes_and_departs_at_once() {
        // subway-kc-nlc: 1 / 0 / 4 / 5 minutes.
        let subway = Timetable::independent(minutes(1, 0, 4), 5 * MINUTE);
        let at = MIDNIGHT + 10 * HOUR + 3 * MINUTE;

        let trip = subway.trip_at(at).unwrap();
        assert_eq!(trip.boarding_open, MIDNIGHT + 10 * HOUR);
        assert_eq!(trip.boarding_closed, MIDNIGHT + 10 * HOUR + MINUTE);
        assert_eq!(trip.departure, MIDNIGHT + 10 * HOUR + MINUTE);
        assert_eq!(trip.arrival, MIDNIGHT + 10 * HOUR + 5 * MINUTE);

        let events = subway.events_between(MIDNIGHT + 10 * HOUR, MIDNIGHT + 10 * HOUR + MINUTE);
        assert_eq!(
            kinds_and_instants(&events),
            vec![
                (TripEventKind::BoardingClosed, MIDNIGHT + 10 * HOUR + MINUTE),
                (TripEventKind::Departed, MIDNIGHT + 10 * HOUR + MINUTE),
            ]
        );
    }

    #[test]
    fn subway_state_has_no_locked_entry() {
        let subway = Timetable::independent(minutes(1, 0, 4), 5 * MINUTE);
        let open = MIDNIGHT + 2 * HOUR;

        assert_eq!(subway.state_at(open), RouteState::OpenEntry);
        assert_eq!(subway.state_at(open + MINUTE - 1), RouteState::OpenEntry);
        assert_eq!(subway.state_at(open + MINUTE), RouteState::InTransit);
        assert_eq!(
            subway.state_at(open + 5 * MINUTE - 1),
            RouteState::InTransit
        );
        assert_eq!(subway.state_at(open + 5 * MINUTE), RouteState::OpenEntry);
    }

    #[test]
    fn ferry_routes_alternate_on_one_vessel() {
        // boat-ellinia-orbis (A) and boat-orbis-ellinia (B): 4 / 1 / 10, no
        // turnaround, so the vessel's round is 30 minutes.
        let durations = minutes(4, 1, 10);
        let route_a = Timetable::shared_vessel(durations, durations, 0, false);
        let route_b = Timetable::shared_vessel(durations, durations, 0, true);
        let hour = MIDNIGHT + 7 * HOUR;

        let a_openings: Vec<Instant> = route_a
            .events_between(hour - 1, hour + HOUR - 1)
            .iter()
            .filter(|e| e.kind == TripEventKind::BoardingOpened)
            .map(|e| e.at)
            .collect();
        assert_eq!(a_openings, vec![hour, hour + 30 * MINUTE]);

        let b_openings: Vec<Instant> = route_b
            .events_between(hour - 1, hour + HOUR - 1)
            .iter()
            .filter(|e| e.kind == TripEventKind::BoardingOpened)
            .map(|e| e.at)
            .collect();
        assert_eq!(b_openings, vec![hour + 15 * MINUTE, hour + 45 * MINUTE]);
    }

    #[test]
    fn ferry_route_b_waits_for_a() {
        let durations = minutes(4, 1, 10);
        let route_b = Timetable::shared_vessel(durations, durations, 0, true);
        let hour = MIDNIGHT + 7 * HOUR;

        assert_eq!(route_b.state_at(hour), RouteState::AwaitingReturn);
        assert_eq!(
            route_b.state_at(hour + 14 * MINUTE),
            RouteState::AwaitingReturn
        );
        assert_eq!(route_b.state_at(hour + 15 * MINUTE), RouteState::OpenEntry);
        assert_eq!(
            route_b.state_at(hour + 19 * MINUTE),
            RouteState::LockedEntry
        );
        assert_eq!(route_b.state_at(hour + 20 * MINUTE), RouteState::InTransit);
        assert_eq!(
            route_b.state_at(hour + 30 * MINUTE),
            RouteState::AwaitingReturn
        );
    }

    #[test]
    fn turnaround_delays_the_partner_route() {
        let a = minutes(4, 1, 10);
        let b = minutes(2, 1, 5);
        let route_a = Timetable::shared_vessel(a, b, 3 * MINUTE, false);
        let route_b = Timetable::shared_vessel(a, b, 3 * MINUTE, true);

        // Round: 15 + 3 + 8 + 3 = 29 minutes.
        assert_eq!(route_a.period(), Some(29 * MINUTE));
        assert_eq!(route_b.trip(0).unwrap().boarding_open, 18 * MINUTE);
        assert_eq!(route_a.trip(1).unwrap().boarding_open, 29 * MINUTE);
    }

    #[test]
    fn trip_across_midnight_has_no_gap() {
        // A 7-minute cycle counted from the epoch opens boarding at 23:55 on
        // 2026-12-03; with 2 / 1 / 4 minutes it arrives at 00:02.
        let route = Timetable::independent(minutes(2, 1, 4), 7 * MINUTE);
        let boards = MIDNIGHT - 5 * MINUTE;
        assert_eq!(route.trip_at(boards).unwrap().boarding_open, boards);

        assert_eq!(route.state_at(boards), RouteState::OpenEntry);
        assert_eq!(route.state_at(MIDNIGHT), RouteState::InTransit);
        assert_eq!(route.state_at(MIDNIGHT + MINUTE), RouteState::InTransit);

        let events = route.events_between(boards - 1, MIDNIGHT + 2 * MINUTE);
        assert_eq!(
            kinds_and_instants(&events),
            vec![
                (TripEventKind::Arrived, boards),
                (TripEventKind::BoardingOpened, boards),
                (TripEventKind::BoardingClosed, MIDNIGHT - 3 * MINUTE),
                (TripEventKind::Departed, MIDNIGHT - 2 * MINUTE),
                (TripEventKind::Arrived, MIDNIGHT + 2 * MINUTE),
                (TripEventKind::BoardingOpened, MIDNIGHT + 2 * MINUTE),
            ]
        );
    }

    #[test]
    fn every_route_runs_through_midnight() {
        // No instant around midnight is out of service, for any cycle in use.
        for cycle in [5, 6, 10, 15] {
            let route = Timetable::independent(minutes(1, 0, 4), cycle * MINUTE);
            let mut t = MIDNIGHT - 20 * MINUTE;
            while t < MIDNIGHT + 20 * MINUTE {
                assert_ne!(
                    route.state_at(t),
                    RouteState::OutOfService,
                    "cycle {cycle} at {t}"
                );
                t += SECOND;
            }
        }
    }

    #[test]
    fn train_arrival_comes_before_next_boarding() {
        // train-orbis-ludibrium: 4 / 1 / 5 / 10, so each arrival meets the
        // next boarding.
        let train = Timetable::independent(minutes(4, 1, 5), 10 * MINUTE);
        let meeting = MIDNIGHT + 9 * HOUR + 10 * MINUTE;

        let events = train.events_between(meeting - 1, meeting);
        assert_eq!(
            kinds_and_instants(&events),
            vec![
                (TripEventKind::Arrived, meeting),
                (TripEventKind::BoardingOpened, meeting),
            ]
        );
        assert_eq!(events[0].trip.index + 1, events[1].trip.index);

        let next = train.next_event_after(meeting - 1).unwrap();
        assert_eq!(next.kind, TripEventKind::Arrived);
        assert_eq!(next.at, meeting);

        let after = train.next_event_after(meeting).unwrap();
        assert_eq!(after.kind, TripEventKind::BoardingClosed);
        assert_eq!(after.at, meeting + 4 * MINUTE);
    }

    #[test]
    fn next_event_walks_the_same_sequence_as_events_between() {
        let routes = [
            Timetable::independent(minutes(1, 0, 4), 5 * MINUTE),
            Timetable::independent(minutes(4, 1, 5), 10 * MINUTE),
            Timetable::independent(minutes(4, 1, 1), 6 * MINUTE),
            Timetable::shared_vessel(minutes(4, 1, 10), minutes(4, 1, 10), 0, true),
        ];

        for route in routes {
            let start = MIDNIGHT - 3 * HOUR;
            let end = MIDNIGHT + 3 * HOUR;
            let mut walked = Vec::new();
            let mut t = start;
            while let Some(event) = route.next_event_after(t) {
                if event.at > end {
                    break;
                }
                // Events sharing an instant come out one by one: step past
                // the instant only once all of them have been taken.
                let same_instant = route.events_between(event.at - 1, event.at);
                walked.extend(same_instant);
                t = event.at;
            }
            assert_eq!(walked, route.events_between(start, end));
        }
    }

    #[test]
    fn events_between_is_empty_for_out_of_service() {
        let route = Timetable::out_of_service();
        assert!(route.events_between(0, DAY).is_empty());
        assert_eq!(route.state_at(MIDNIGHT), RouteState::OutOfService);
        assert_eq!(route.next_event_after(MIDNIGHT), None);
    }

    #[test]
    fn state_before_the_epoch_still_follows_the_cycle() {
        let route = Timetable::independent(minutes(4, 1, 5), 15 * MINUTE);
        assert_eq!(route.state_at(-15 * MINUTE), RouteState::OpenEntry);
        assert_eq!(route.state_at(-MINUTE), RouteState::AwaitingReturn);
        assert_eq!(route.trip_at(-1).unwrap().index, -1);
    }

    #[test]
    fn trip_count_in_a_day_matches_the_cycle() {
        let train = Timetable::independent(minutes(4, 1, 5), 10 * MINUTE);
        let openings = train
            .events_between(MIDNIGHT - 1, MIDNIGHT + DAY - 1)
            .iter()
            .filter(|e| e.kind == TripEventKind::BoardingOpened)
            .count();
        assert_eq!(openings, 144);
    }
}
