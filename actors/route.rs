//! The route actor: runs one route's timetable for one tenant.
//!
//! It keeps exactly one timer, armed for the next trip event. On wake it
//! performs every event that is due, in timetable order, and arms the next;
//! there is no polling loop. Each event's batch goes to the producer.
//!
//! Catch-up: when the actor wakes late (the process was paused, or the
//! thread stalled), it performs the missed events of the current trip and
//! the one before it, in order, so riders are not left on a deck; events of
//! older trips are skipped with a warning, not replayed.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use uuid::Uuid;

use crate::clock::Clock;
use crate::routes::Route;
use crate::settings::Topics;
use crate::timefmt::rfc3339;
use crate::timetable::{Instant, RouteState, TripEvent, TripEventKind};
use crate::trip_effects::trip_event_batch;

use super::producer::EmitBatch;

/// The timer fired: perform what is due.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct TripEventDue {
    /// The event the timer was armed for.
    pub event: TripEventKind,
    pub at: Instant,
}

/// Sent to the route's observer after each trip event is performed.
#[derive(Message, Clone, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct TripEventPerformed {
    pub route_id: Uuid,
    pub tenant_id: Uuid,
    pub event: TripEvent,
    /// The clock when it was performed; later than `event.at` after a stall.
    pub performed_at: Instant,
}

/// Asks for the route's state and next trip event, as of now.
#[derive(Message, Debug)]
#[rtype(result = "RouteStatus")]
pub struct GetRouteStatus;

/// Stops the route's timer and the actor.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct StopRoute;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteStatus {
    pub route_id: Uuid,
    pub state: RouteState,
    pub next_event: Option<TripEvent>,
}

pub struct RouteActor {
    route: Route,
    topics: Arc<Topics>,
    clock: Arc<dyn Clock>,
    producer: Recipient<EmitBatch>,
    /// Told of every performed trip event (metrics, tests), if set.
    observer: Option<Recipient<TripEventPerformed>>,
    /// Every event at or before this instant has been performed (or, at
    /// start-up, belongs to the past this process did not see).
    performed_until: Instant,
    timer: Option<SpawnHandle>,
}

impl RouteActor {
    pub fn new(
        route: Route,
        topics: Arc<Topics>,
        clock: Arc<dyn Clock>,
        producer: Recipient<EmitBatch>,
    ) -> Self {
        RouteActor {
            route,
            topics,
            clock,
            producer,
            observer: None,
            performed_until: Instant::MIN,
            timer: None,
        }
    }

    /// Also tells `observer` of every trip event performed.
    pub fn with_observer(mut self, observer: Recipient<TripEventPerformed>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Arms the timer for the first event after `performed_until`.
    fn arm_next(&mut self, ctx: &mut Context<Self>) {
        let Some(next) = self.route.timetable.next_event_after(self.performed_until) else {
            return;
        };

        let delay = (next.at - self.clock.now()).max(0) as u64;
        let due = TripEventDue {
            event: next.kind,
            at: next.at,
        };
        self.timer = Some(ctx.notify_later(due, Duration::from_millis(delay)));
    }

    /// Performs every event up to now, within the catch-up window.
    fn perform_due_events(&mut self) {
        let now = self.clock.now();
        if now <= self.performed_until {
            return;
        }

        let from = self.catch_up_start(now);
        for event in self.route.timetable.events_between(from, now) {
            self.perform(&event, now);
        }
        self.performed_until = now;
    }

    /// Where catch-up starts: the last performed instant, but no earlier than
    /// the boarding of the trip before the current one.
    fn catch_up_start(&self, now: Instant) -> Instant {
        let Some(current) = self.route.timetable.trip_at(now) else {
            return now;
        };
        let Some(previous) = self.route.timetable.trip(current.index - 1) else {
            return now;
        };

        let window_start = previous.boarding_open - 1;
        if self.performed_until < window_start {
            log::warn!(
                "route woke too late to replay older trips, skipping them route={} tenant={} skipped_from={} skipped_to={}",
                self.route.name(),
                self.route.tenant.id,
                rfc3339(self.performed_until),
                rfc3339(window_start)
            );
            return window_start;
        }
        self.performed_until
    }

    fn perform(&self, event: &TripEvent, now: Instant) {
        let trip = &event.trip;
        log::info!(
            "trip event route={} tenant={} event={} trip={} at={} late_ms={} boarding_open={} departure={} arrival={}",
            self.route.name(),
            self.route.tenant.id,
            event.kind,
            trip.index,
            rfc3339(event.at),
            now - event.at,
            rfc3339(trip.boarding_open),
            rfc3339(trip.departure),
            rfc3339(trip.arrival)
        );

        if let Some(batch) = trip_event_batch(&self.route, event, &self.topics) {
            self.producer.do_send(EmitBatch(batch));
        }

        if let Some(observer) = &self.observer {
            observer.do_send(TripEventPerformed {
                route_id: self.route.id,
                tenant_id: self.route.tenant.id,
                event: *event,
                performed_at: now,
            });
        }
    }

    fn log_received(&self, message: &dyn std::fmt::Debug) {
        log::debug!(
            target: "mailbox",
            "route actor received route={} tenant={} message={message:?}",
            self.route.name(),
            self.route.tenant.id
        );
    }
}

impl Actor for RouteActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Events before start-up belong to a run this process did not see;
        // performing them now would send a second DEPARTED or ARRIVED.
        let now = self.clock.now();
        self.performed_until = now;

        let timetable = &self.route.timetable;
        let next = timetable.next_event_after(now);
        log::info!(
            "route started route={} tenant={} route_id={} state={} next_event={} next_at={}",
            self.route.name(),
            self.route.tenant.id,
            self.route.id,
            timetable.state_at(now),
            next.map_or("none".to_string(), |event| event.kind.to_string()),
            next.map_or("none".to_string(), |event| rfc3339(event.at))
        );

        self.arm_next(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        log::info!(
            "route stopped route={} tenant={}",
            self.route.name(),
            self.route.tenant.id
        );
    }
}

impl Handler<TripEventDue> for RouteActor {
    type Result = ();

    fn handle(&mut self, message: TripEventDue, ctx: &mut Self::Context) {
        self.log_received(&message);
        self.timer = None;

        // A wake before the instant (the wall clock stepped back) performs
        // nothing and re-arms for the remaining time.
        self.perform_due_events();
        self.arm_next(ctx);
    }
}

impl Handler<GetRouteStatus> for RouteActor {
    type Result = MessageResult<GetRouteStatus>;

    fn handle(&mut self, message: GetRouteStatus, _ctx: &mut Self::Context) -> Self::Result {
        self.log_received(&message);

        let now = self.clock.now();
        MessageResult(RouteStatus {
            route_id: self.route.id,
            state: self.route.timetable.state_at(now),
            next_event: self.route.timetable.next_event_after(now),
        })
    }
}

impl Handler<StopRoute> for RouteActor {
    type Result = ();

    fn handle(&mut self, message: StopRoute, ctx: &mut Self::Context) {
        self.log_received(&message);

        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        ctx.stop();
    }
}
