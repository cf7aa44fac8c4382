//! The route actor: runs one route's timetable for one tenant.
//!
//! It keeps exactly one timer, armed for the next trip event. On wake it
//! performs every event that is due, in timetable order, and arms the next;
//! there is no polling loop. Each event's batch goes to the producer.
//!
//! Departed and Arrived move the riders: the actor asks the channel registry
//! for the tenant's live channels and the presence actor for who stands in
//! the route's maps, then sends one batch with every CHANGE_MAP (and the
//! status event). The presence actor is told of the moves at once, so a
//! rider is not moved twice if the map service's confirmation is lost.
//! The due events are performed as one sequential chain while the actor's
//! mailbox waits, so an Arrived always lands before the next trip's
//! BoardingOpened at the same instant.
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
use crate::metrics::Metrics;
use crate::presence::{Occupant, Position};
use crate::routes::Route;
use crate::settings::Topics;
use crate::timefmt::rfc3339;
use crate::timetable::{Instant, RouteState, TripEvent, TripEventKind};
use crate::trip_effects::{logout_batch, trip_event_batch, warp_of};
use crate::wire::MapChange;

use super::channel_registry::{ChannelRegistry, LiveChannels};
use super::presence::{CharactersWarped, GetOccupants, Presence};
use super::producer::{EmitBatch, OffsetCommit};

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
    /// Characters the event moved.
    pub warped: usize,
}

/// A character logged out in one of this route's staging or en-route maps.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct CharacterLoggedOut {
    /// The character's position at logout (map = the logout map).
    pub logout: MapChange,
    pub trace_headers: Vec<(String, Vec<u8>)>,
    /// The consumed LOGOUT, committed with the batch.
    pub commit: Option<OffsetCommit>,
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

/// The actors a route actor talks to.
#[derive(Clone)]
pub struct RouteLinks {
    pub producer: Recipient<EmitBatch>,
    pub channels: Addr<ChannelRegistry>,
    pub presence: Addr<Presence>,
    /// Told of every performed trip event (tests), if set.
    pub observer: Option<Recipient<TripEventPerformed>>,
    pub metrics: Arc<Metrics>,
}

/// The route and links that performing trip events needs, shared with the
/// chain that performs them.
struct Performer {
    route: Route,
    topics: Arc<Topics>,
    links: RouteLinks,
}

pub struct RouteActor {
    performer: Arc<Performer>,
    clock: Arc<dyn Clock>,
    /// Every event at or before this instant has been performed (or, at
    /// start-up, belongs to the past this process did not see).
    performed_until: Instant,
    timer: Option<SpawnHandle>,
    /// State of the xorshift64* generator that picks spawn portals for
    /// logged-out riders. Seeded once: a UUIDv4 per LOGOUT would cost a
    /// getrandom system call each.
    portal_random: u64,
}

impl RouteActor {
    pub fn new(
        route: Route,
        topics: Arc<Topics>,
        clock: Arc<dyn Clock>,
        links: RouteLinks,
    ) -> Self {
        RouteActor {
            performer: Arc::new(Performer {
                route,
                topics,
                links,
            }),
            clock,
            performed_until: Instant::MIN,
            timer: None,
            // Never zero, which xorshift would keep forever.
            portal_random: Uuid::new_v4().as_u64_pair().0 | 1,
        }
    }

    /// Returns the next number of the portal generator (xorshift64*).
    fn next_portal_random(&mut self) -> u64 {
        let mut x = self.portal_random;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.portal_random = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn route(&self) -> &Route {
        &self.performer.route
    }

    /// Arms the timer for the first event after `performed_until`.
    fn arm_next(&mut self, ctx: &mut Context<Self>) {
        let Some(next) = self
            .route()
            .timetable
            .next_event_after(self.performed_until)
        else {
            return;
        };

        let delay = (next.at - self.clock.now()).max(0) as u64;
        let due = TripEventDue {
            event: next.kind,
            at: next.at,
        };
        self.timer = Some(ctx.notify_later(due, Duration::from_millis(delay)));
    }

    /// Performs every event up to now, within the catch-up window, then arms
    /// the next timer. The mailbox waits until the chain is done.
    fn perform_due_events(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        if now <= self.performed_until {
            // Woke before the instant (the wall clock stepped back).
            self.arm_next(ctx);
            return;
        }

        // Only the current trip and the one before it are caught up: an
        // older trip's Arrived can share an instant with the previous trip's
        // boarding, and is left out with the rest of that trip.
        let timetable = &self.route().timetable;
        let oldest_trip = timetable
            .trip_at(now)
            .map_or(i64::MIN, |trip| trip.index - 1);
        let events: Vec<TripEvent> = timetable
            .events_between(self.catch_up_start(now), now)
            .into_iter()
            .filter(|event| event.trip.index >= oldest_trip)
            .collect();
        self.performed_until = now;

        let performer = Arc::clone(&self.performer);
        let chain = async move {
            for event in events {
                performer.perform(&event, now).await;
            }
        };
        ctx.wait(
            chain
                .into_actor(self)
                .map(|(), actor, ctx| actor.arm_next(ctx)),
        );
    }

    /// Returns where catch-up starts: the last performed instant, but no
    /// earlier than the boarding of the trip before the current one.
    fn catch_up_start(&self, now: Instant) -> Instant {
        let timetable = &self.route().timetable;
        let Some(current) = timetable.trip_at(now) else {
            return now;
        };
        let Some(previous) = timetable.trip(current.index - 1) else {
            return now;
        };

        let window_start = previous.boarding_open - 1;
        if self.performed_until < window_start {
            log::warn!(
                "route woke too late to replay older trips, skipping them route={} tenant={} skipped_from={} skipped_to={}",
                self.route().name(),
                self.route().tenant.id,
                rfc3339(self.performed_until),
                rfc3339(window_start)
            );
            return window_start;
        }
        self.performed_until
    }

    fn log_received(&self, message: &dyn std::fmt::Debug) {
        log::debug!(
            target: "mailbox",
            "route actor received route={} tenant={} message={message:?}",
            self.route().name(),
            self.route().tenant.id
        );
    }
}

impl Performer {
    async fn perform(&self, event: &TripEvent, now: Instant) {
        let route = &self.route;
        let trip = &event.trip;
        log::info!(
            "trip event route={} tenant={} event={} trip={} at={} late_ms={} boarding_open={} departure={} arrival={}",
            route.name(),
            route.tenant.id,
            event.kind,
            trip.index,
            rfc3339(event.at),
            now - event.at,
            rfc3339(trip.boarding_open),
            rfc3339(trip.departure),
            rfc3339(trip.arrival)
        );

        let kind = event.kind.to_string();
        let tenant = route.tenant.id.to_string();
        self.links
            .metrics
            .count_trip_event(&tenant, route.name(), &kind);

        let warp = warp_of(&route.definition, event.kind);
        let aboard = match &warp {
            Some((from_maps, _)) => self.riders_in(from_maps.clone()).await,
            None => Vec::new(),
        };
        if !aboard.is_empty() {
            log::info!(
                "moving riders route={} tenant={} event={} riders={}",
                route.name(),
                route.tenant.id,
                event.kind,
                aboard.len()
            );
        }

        let mut random = || Uuid::new_v4().as_u64_pair().0;
        if let Some(batch) = trip_event_batch(route, event, &self.topics, &aboard, &mut random) {
            self.links.producer.do_send(EmitBatch::new(batch));
        }

        if let Some((_, target_map_id)) = warp.filter(|_| !aboard.is_empty()) {
            let warps = aboard
                .iter()
                .map(|rider| {
                    let position = Position {
                        map_id: target_map_id,
                        ..rider.position
                    };
                    (rider.character_id, position)
                })
                .collect();
            self.links.presence.do_send(CharactersWarped {
                tenant_id: route.tenant.id,
                warps,
            });
        }

        if let Some(observer) = &self.links.observer {
            observer.do_send(TripEventPerformed {
                route_id: route.id,
                tenant_id: route.tenant.id,
                event: *event,
                performed_at: now,
                warped: aboard.len(),
            });
        }
    }

    /// Characters in `maps` on the tenant's live channels.
    async fn riders_in(&self, maps: Vec<u32>) -> Vec<Occupant> {
        let tenant_id = self.route.tenant.id;
        let live = self.links.channels.send(LiveChannels { tenant_id }).await;
        let occupants = self
            .links
            .presence
            .send(GetOccupants {
                tenant_id,
                map_ids: maps,
            })
            .await;

        match (live, occupants) {
            (Ok(live), Ok(occupants)) => occupants
                .into_iter()
                .filter(|o| live.contains(&(o.position.world_id, o.position.channel_id)))
                .collect(),
            (live, occupants) => {
                // Only at shutdown: the registry or presence actor is gone.
                log::error!(
                    "failed to look up riders, moving none route={} tenant={} channels_ok={} presence_ok={}",
                    self.route.name(),
                    tenant_id,
                    live.is_ok(),
                    occupants.is_ok()
                );
                Vec::new()
            }
        }
    }
}

impl Actor for RouteActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Events before start-up belong to a run this process did not see;
        // performing them now would send a second DEPARTED or ARRIVED.
        let now = self.clock.now();
        self.performed_until = now;

        let route = self.route();
        let next = route.timetable.next_event_after(now);
        log::info!(
            "route started route={} tenant={} route_id={} state={} next_event={} next_at={}",
            route.name(),
            route.tenant.id,
            route.id,
            route.timetable.state_at(now),
            next.map_or("none".to_string(), |event| event.kind.to_string()),
            next.map_or("none".to_string(), |event| rfc3339(event.at))
        );

        self.arm_next(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        log::info!(
            "route stopped route={} tenant={}",
            self.route().name(),
            self.route().tenant.id
        );
    }
}

impl Handler<TripEventDue> for RouteActor {
    type Result = ();

    fn handle(&mut self, message: TripEventDue, ctx: &mut Self::Context) {
        self.log_received(&message);
        self.timer = None;
        self.perform_due_events(ctx);
    }
}

impl Handler<CharacterLoggedOut> for RouteActor {
    type Result = ();

    fn handle(&mut self, message: CharacterLoggedOut, _ctx: &mut Self::Context) {
        self.log_received(&message);

        let random = self.next_portal_random();
        let route = self.route();
        log::info!(
            "sending logged-out rider to the dock route={} tenant={} character={} world={} channel={} map={}",
            route.name(),
            route.tenant.id,
            message.logout.character_id,
            message.logout.world_id,
            message.logout.channel_id,
            message.logout.map_id
        );

        let batch = logout_batch(
            route,
            &self.performer.topics,
            message.logout,
            &message.trace_headers,
            random,
        );
        self.performer.links.producer.do_send(EmitBatch {
            batch,
            commit: message.commit,
        });
    }
}

impl Handler<GetRouteStatus> for RouteActor {
    type Result = MessageResult<GetRouteStatus>;

    fn handle(&mut self, message: GetRouteStatus, _ctx: &mut Self::Context) -> Self::Result {
        self.log_received(&message);

        let now = self.clock.now();
        let timetable = &self.route().timetable;
        MessageResult(RouteStatus {
            route_id: self.route().id,
            state: timetable.state_at(now),
            next_event: timetable.next_event_after(now),
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
