//! Helpers shared by the integration tests: a clock that follows tokio's
//! (pausable) time, and an actor that records what the route actors send.

#![allow(dead_code)]

pub mod binary;
pub mod ferry;
pub mod kafka;
pub mod tansu;

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use atlas_transports::actors::channel_registry::ChannelRegistry;
use atlas_transports::actors::presence::Presence;
use atlas_transports::actors::producer::EmitBatch;
use atlas_transports::actors::route::{RouteActor, RouteLinks, TripEventPerformed};
use atlas_transports::clock::Clock;
use atlas_transports::config::Config;
use atlas_transports::presence::PresenceIndex;
use atlas_transports::routes::{aboard_maps, Route};
use atlas_transports::settings::{Command, Settings};
use atlas_transports::timetable::Instant;
use atlas_transports::wire::Batch;

/// 2026-12-04T00:00:00Z in milliseconds.
pub const MIDNIGHT: Instant = 1_796_342_400_000;
pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const DAY: i64 = 24 * 60 * MINUTE;

/// Wall clock that starts at `base` and moves with tokio's clock, so paused
/// time (`tokio::time::pause`) drives it.
pub struct TokioClock {
    base: Instant,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: Instant) -> Arc<TokioClock> {
        Arc::new(TokioClock {
            base,
            start: tokio::time::Instant::now(),
        })
    }
}

/// Runs `test` in an actix system whose tokio clock starts paused.
///
/// Paused from the runtime's creation, the clock stays on whole-millisecond
/// ticks of tokio's timer wheel; pausing later (`tokio::time::pause` inside
/// `#[actix_rt::test]`) leaves it between ticks and every timer then fires
/// one millisecond late.
pub fn run_paused<F: std::future::Future>(test: F) -> F::Output {
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("build paused tokio runtime")
    });
    system.block_on(test)
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        self.base + self.start.elapsed().as_millis() as Instant
    }
}

/// Records every batch and performed trip event with the clock at receipt.
pub struct Recorder {
    pub clock: Arc<dyn Clock>,
    pub batches: Vec<(Instant, Batch)>,
    pub events: Vec<TripEventPerformed>,
}

impl Recorder {
    pub fn start(clock: Arc<dyn Clock>) -> Addr<Recorder> {
        Recorder {
            clock,
            batches: Vec::new(),
            events: Vec::new(),
        }
        .start()
    }
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<EmitBatch> for Recorder {
    type Result = ();

    fn handle(&mut self, message: EmitBatch, _ctx: &mut Self::Context) {
        self.batches.push((self.clock.now(), message.batch));
    }
}

impl Handler<TripEventPerformed> for Recorder {
    type Result = ();

    fn handle(&mut self, message: TripEventPerformed, _ctx: &mut Self::Context) {
        self.events.push(message);
    }
}

/// Everything recorded so far; queued behind every earlier message.
#[derive(Message)]
#[rtype(result = "(Vec<(Instant, Batch)>, Vec<TripEventPerformed>)")]
pub struct TakeRecorded;

impl Handler<TakeRecorded> for Recorder {
    type Result = MessageResult<TakeRecorded>;

    fn handle(&mut self, _message: TakeRecorded, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult((
            std::mem::take(&mut self.batches),
            std::mem::take(&mut self.events),
        ))
    }
}

/// The channel registry and presence actors a route actor asks at
/// departure and arrival.
pub struct World {
    pub channels: Addr<ChannelRegistry>,
    pub presence: Addr<Presence>,
}

impl World {
    /// Presence tracks the staging and en-route maps of `routes`.
    pub fn start(routes: &[Route]) -> World {
        let tracked = aboard_maps(routes);
        let presence = Presence::new(PresenceIndex::new(tracked)).start();
        let channels = ChannelRegistry::new(presence.clone()).start();
        World { channels, presence }
    }
}

/// Starts a route actor that reports to `recorder` instead of a producer.
pub fn start_recorded_route(
    route: Route,
    settings: &Settings,
    clock: Arc<dyn Clock>,
    recorder: &Addr<Recorder>,
    world: &World,
) -> Addr<RouteActor> {
    let links = RouteLinks {
        producer: recorder.clone().recipient(),
        channels: world.channels.clone(),
        presence: world.presence.clone(),
        observer: Some(recorder.clone().recipient()),
        metrics: Arc::new(Default::default()),
    };
    RouteActor::new(route, Arc::new(settings.topics.clone()), clock, links).start()
}

/// Settings with every default, as the binary sees them with no variables.
pub fn default_settings() -> Settings {
    match Command::parse(&[], &Default::default()).expect("defaults parse") {
        Command::Run(settings) => *settings,
        _ => unreachable!("no arguments means run"),
    }
}

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn shipped_config() -> Config {
    Config::load(&repo_path("config")).expect("shipped configuration loads")
}

/// Returns a loopback port that was free a moment ago. Another process
/// could take it before the test binds it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("find a free loopback port")
}

/// A fresh empty folder under the system temp folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "atlas-transports-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).expect("create temp folder");
    dir
}

/// Generates, for each listed scenario `fn name(broker: &BrokerKind)`, a
/// test `mock::name` on the in-process cluster and a test `tansu::name` on
/// a tansu process. Without a tansu binary the tansu test prints that it
/// was skipped and passes, unless `ATLAS_REQUIRE_TANSU` is set.
#[macro_export]
macro_rules! on_both_brokers {
    ($($scenario:ident),+ $(,)?) => {
        mod mock {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario(&$crate::common::kafka::BrokerKind::Mock);
                }
            )+
        }

        mod tansu {
            $(
                #[test]
                fn $scenario() {
                    let name = concat!(module_path!(), "::", stringify!($scenario));
                    if let Some(binary) = $crate::common::tansu::tansu_or_skip(name) {
                        super::$scenario(&$crate::common::kafka::BrokerKind::Tansu(binary));
                    }
                }
            )+
        }
    };
}
