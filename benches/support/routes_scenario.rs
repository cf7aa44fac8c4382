//! The route scenario, run in a process of its own: the whole service with
//! the route actors of one configuration folder, on an in-process cluster
//! that the parent process runs, measured for a fixed time.
//!
//! Lateness is measured per trip event batch, from the event's scheduled
//! instant to the moment the producer saw the broker acknowledge the
//! transaction that contains the batch. The producer records that pair in
//! `Metrics` (`keep_lateness_samples`); the mock broker cannot give it
//! through the records, because it reports a fixed LogAppendTime and keeps
//! the producer's CreateTime.
//!
//! It also prints the start-up time, the resident memory after start-up and
//! between trip events, and the CPU used between trip events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use atlas_transports::actors::route::{GetRouteStatus, RouteActor};
use atlas_transports::broker::EmbeddedBroker;
use atlas_transports::clock::{Clock, SystemClock};
use atlas_transports::config::Config;
use atlas_transports::routes::timetables;
use atlas_transports::service::Service;
use atlas_transports::settings::Settings;
use atlas_transports::timetable::{Instant, Timetable, TripEventKind};

use super::measure::{cpu_ticks, report, resident_bytes, MillisHistogram, TICKS_PER_SECOND};

/// Idle CPU is not measured in the first seconds after start-up, while
/// the consumers join their group and the STATUS_REQUESTs are written.
const SETTLE_MS: i64 = 5_000;
/// An idle window starts this long after a trip event, so the work the
/// event caused is over, and ends this long before the next one.
const IDLE_AFTER_EVENT_MS: i64 = 2_000;
const IDLE_BEFORE_EVENT_MS: i64 = 500;
const MIN_IDLE_WINDOW_MS: i64 = 1_000;
/// How long the scenario waits for the service to be ready, and after the
/// run for the last acknowledgements.
const DRAIN_PATIENCE_MS: i64 = 15_000;

pub struct RoutesOptions {
    /// The in-process cluster of the parent process.
    pub bootstrap: String,
    pub config_dir: PathBuf,
    /// Length of the measured run.
    pub seconds: i64,
    /// When the parent spawned this process, in ms since the epoch.
    pub spawned_at: Instant,
}

/// Runs the scenario, prints its results and exits the process without
/// stopping the service: the scenario measures running, not stopping.
pub fn run(options: RoutesOptions) -> ! {
    let settings = scenario_settings(&options.config_dir);
    let config = Config::load(&options.config_dir).expect("scenario configuration loads");
    let bootstrap = options.bootstrap.clone();

    actix_rt::System::new().block_on(measure(bootstrap, settings, config, options));
    std::process::exit(0)
}

/// Returns the service's settings with no variables set, as the binary has them.
pub fn scenario_settings(config_dir: &Path) -> Settings {
    Settings::from_env(config_dir.to_path_buf(), &HashMap::new()).expect("default settings")
}

/// Starts the in-process cluster for one route scenario with the topics
/// the binary creates on its embedded broker. The parent process runs it,
/// so that the memory and CPU the scenario process reads are the service's
/// alone: the mock broker keeps every record in memory and serves every
/// fetch, which a real deployment's broker does elsewhere.
pub fn start_broker(config_dir: &Path) -> EmbeddedBroker {
    let broker = EmbeddedBroker::start().expect("start the in-process Kafka cluster");
    let settings = scenario_settings(config_dir);
    for topic in settings.topics_in_use() {
        broker
            .create_topic(topic, settings.topic_partitions)
            .expect("create topic");
    }
    broker
}

async fn measure(bootstrap: String, settings: Settings, config: Config, options: RoutesOptions) {
    let clock = SystemClock;
    let service = Service::start(&bootstrap, &settings, &config, Arc::new(SystemClock))
        .await
        .expect("service starts");
    let metrics = Arc::clone(&service.metrics);
    metrics.keep_lateness_samples();

    wait_until_routes_started(&service, &config).await;
    report("startup_ms", (clock.now() - options.spawned_at) as f64);
    report("route_actors", service.routes.len() as f64);
    report("rss_startup_bytes", resident_bytes() as f64);

    // The run starts once the service is ready (as /readyz reports it):
    // until the producer has connected, batches wait for the connection,
    // which is start-up, not lateness.
    let ready = service.readiness();
    let give_up_at = clock.now() + DRAIN_PATIENCE_MS;
    while ready().is_err() && clock.now() < give_up_at {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    ready().expect("service ready");
    let started_at = clock.now();

    let run_end = started_at + options.seconds * 1_000;
    let timetables: Vec<Timetable> = timetables(&config.routes, &config.vessels)
        .into_values()
        .collect();
    let expected = batches_between(&timetables, started_at, run_end) * config.tenants.len();
    let idle = idle_windows(&timetables, started_at + SETTLE_MS, run_end);

    let mut lateness = MillisHistogram::new();
    let take_samples = |lateness: &mut MillisHistogram| {
        for sample in metrics.take_lateness_samples() {
            if sample.scheduled_at > started_at && sample.scheduled_at <= run_end {
                lateness.record(sample.acknowledged_at - sample.scheduled_at);
            }
        }
    };

    let (mut idle_ticks, mut idle_ms) = (0, 0);
    let mut rss_idle = None;
    for (start, end) in idle {
        sleep_until(&clock, start).await;
        // Taken before the CPU reading, so the samples are freed outside
        // the window. The window waits until every batch of the events
        // before it is acknowledged: with many routes a burst's work can
        // outlast the margin after its event.
        let due = batches_between(&timetables, started_at, start) * config.tenants.len();
        take_samples(&mut lateness);
        while (lateness.count() as usize) < due && clock.now() + MIN_IDLE_WINDOW_MS < end {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
            take_samples(&mut lateness);
        }
        if (lateness.count() as usize) < due {
            continue;
        }
        rss_idle = Some(resident_bytes());
        let (ticks_before, wall_before) = (cpu_ticks(), clock.now());

        sleep_until(&clock, end).await;
        idle_ticks += cpu_ticks() - ticks_before;
        idle_ms += clock.now() - wall_before;
    }

    sleep_until(&clock, run_end).await;
    let give_up_at = run_end + DRAIN_PATIENCE_MS;
    while (lateness.count() as usize) < expected && clock.now() < give_up_at {
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        take_samples(&mut lateness);
    }

    report("lateness_batches", lateness.count() as f64);
    report("lateness_batches_expected", expected as f64);
    for (name, percent) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        if let Some(millis) = lateness.percentile(percent) {
            report(&format!("lateness_{name}_ms"), millis as f64);
        }
    }
    report(
        "rss_idle_bytes",
        rss_idle.unwrap_or_else(resident_bytes) as f64,
    );
    if idle_ms > 0 {
        let cpu_ms = idle_ticks as f64 * 1_000.0 / TICKS_PER_SECOND;
        report("idle_cpu_percent", 100.0 * cpu_ms / idle_ms as f64);
        report("idle_seconds", idle_ms as f64 / 1_000.0);
    }
}

/// Waits until every route actor has run `started`, which arms its first
/// timer: an actor handles messages only after `started`, so its reply to
/// `GetRouteStatus` proves the timer is armed.
async fn wait_until_routes_started(service: &Service, config: &Config) {
    // The owners of the staging maps, rather than `routes()`, which would
    // clone every route and leave that memory in the allocator.
    let mut actors: Vec<Addr<RouteActor>> = config
        .tenants
        .iter()
        .flat_map(|tenant| {
            config
                .routes
                .iter()
                .filter_map(|route| service.routes.owner_of(tenant.id, route.staging_map_id))
        })
        .collect();
    if actors.len() != service.routes.len() {
        // Two routes share a staging map: fall back to the full list.
        actors = service
            .routes
            .routes()
            .into_iter()
            .map(|(_, actor)| actor)
            .collect();
    }

    // `send` queues the message at once, so every actor works on its reply
    // while the loop awaits the first ones.
    let replies: Vec<_> = actors
        .iter()
        .map(|actor| actor.send(GetRouteStatus))
        .collect();
    for reply in replies {
        reply.await.expect("route actor replies");
    }
}

/// Counts the trip events in `(from, to]` that send a batch: BoardingOpened
/// (ARRIVED) and Departed (DEPARTED). Arrived sends one only with riders
/// aboard, and the scenario has none.
fn batches_between(timetables: &[Timetable], from: Instant, to: Instant) -> usize {
    timetables
        .iter()
        .flat_map(|timetable| timetable.events_between(from, to))
        .filter(|event| {
            matches!(
                event.kind,
                TripEventKind::BoardingOpened | TripEventKind::Departed
            )
        })
        .count()
}

/// Lists the stretches of `[from, to]` between trip events of any route,
/// with margins around each event.
fn idle_windows(timetables: &[Timetable], from: Instant, to: Instant) -> Vec<(Instant, Instant)> {
    // Events before `from` bound the first window too.
    let lookback = from - IDLE_AFTER_EVENT_MS;
    let mut instants: Vec<Instant> = timetables
        .iter()
        .flat_map(|timetable| timetable.events_between(lookback, to + IDLE_BEFORE_EVENT_MS))
        .map(|event| event.at)
        .collect();
    instants.sort_unstable();
    instants.dedup();

    instants
        .windows(2)
        .map(|pair| {
            (
                pair[0] + IDLE_AFTER_EVENT_MS,
                pair[1] - IDLE_BEFORE_EVENT_MS,
            )
        })
        .filter(|&(start, end)| start >= from && end <= to && end - start >= MIN_IDLE_WINDOW_MS)
        .collect()
}

async fn sleep_until(clock: &SystemClock, at: Instant) {
    let wait = (at - clock.now()).max(0) as u64;
    actix_rt::time::sleep(Duration::from_millis(wait)).await;
}
