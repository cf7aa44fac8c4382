//! The `atlas-transports` binary: reads settings and configuration, starts
//! the broker connection and the actors, and stops them on SIGINT or SIGTERM.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use atlas_transports::broker::{ensure_topics, EmbeddedBroker};
use atlas_transports::clock::{Clock, SystemClock};
use atlas_transports::config::Config;
use atlas_transports::http::ApiState;
use atlas_transports::service::Service;
use atlas_transports::settings::{Command, Settings, HELP};
use atlas_transports::shutdown::{unless_stopped, SignalRequest, StartUp, StopSignals};

/// The service's stop, after the HTTP server's, stays inside this.
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(4_000);

/// How long the HTTP server may wait for open connections when stopping.
const HTTP_STOP_TIMEOUT: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: HashMap<String, String> = std::env::vars().collect();

    let settings = match Command::parse(&args, &env) {
        Ok(Command::Run(settings)) => *settings,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("atlas-transports {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };

    init_logging(&settings);

    let config = match Config::load(&settings.config_dir) {
        Ok(config) => config,
        Err(error) => {
            // Printed, not logged: it must show even with logging off.
            eprintln!("error: invalid configuration, not starting: {error}");
            return ExitCode::from(2);
        }
    };
    log::info!(
        "configuration loaded folder={} tenants={} routes={} vessels={}",
        settings.config_dir.display(),
        config.tenants.len(),
        config.routes.len(),
        config.vessels.len()
    );

    actix_rt::System::new().block_on(run(settings, config))
}

/// Applies the configuration folder's current contents, or keeps the
/// running routes when it is invalid.
async fn reload(service: &Service, settings: &Settings) {
    log::info!(
        "reloading configuration on SIGHUP folder={}",
        settings.config_dir.display()
    );
    match Config::load(&settings.config_dir) {
        Ok(config) => service.reload(&config).await,
        Err(error) => log::error!(
            "invalid configuration on reload, the running routes stay as they were: {error}"
        ),
    }
}

fn init_logging(settings: &Settings) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&settings.log_filter);
    if let Ok(filter) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filter);
    }
    builder.format_timestamp_millis().init();
}

async fn run(settings: Settings, config: Config) -> ExitCode {
    let mut stop_signals = match StopSignals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            log::error!("failed to listen for SIGINT and SIGTERM, not starting error={error}");
            return ExitCode::FAILURE;
        }
    };

    // Kept alive until the end of `run`: dropping it stops the broker.
    let mut embedded = None;

    let bootstrap_servers = match &settings.bootstrap_servers {
        Some(servers) => servers.clone(),
        None => match start_embedded_broker(&settings) {
            Ok(broker) => embedded.insert(broker).bootstrap_servers(),
            Err(error) => {
                log::error!("failed to start the embedded Kafka broker; set BOOTSTRAP_SERVERS to use another error={error}");
                return ExitCode::FAILURE;
            }
        },
    };

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let start_up = async {
        // The embedded broker got its topics when it started.
        if embedded.is_none() {
            ensure_topics(
                &bootstrap_servers,
                &settings.topics_in_use(),
                settings.topic_partitions,
            )
            .await;
        }
        Service::start(&bootstrap_servers, &settings, &config, Arc::clone(&clock)).await
    };

    let mut reload_requested = false;
    let service = match unless_stopped(start_up, &mut stop_signals, &mut reload_requested).await {
        StartUp::Finished(Ok(service)) => service,
        StartUp::Finished(Err(error)) => {
            log::error!("failed to start the service: {error}");
            return ExitCode::FAILURE;
        }
        // Nothing was consumed yet, so no offset is left uncommitted. The
        // channel-status requests queued so far are not sent; the next
        // start sends them. The process exits here: the half-started
        // producer's thread may be inside a 10 s connect attempt, and
        // returning would wait for it.
        StartUp::Stopped(signal) => {
            log::info!("stopping on {signal} during start-up");
            std::process::exit(0);
        }
    };
    log::info!(
        "service started bootstrap={bootstrap_servers} route_actors={}",
        service.routes.len()
    );

    let api = ApiState {
        routes: Arc::clone(&service.routes),
        consumers: Arc::new(service.consumer_actors()),
        clock,
        readiness: service.readiness(),
        metrics: Arc::clone(&service.metrics),
    };
    let server = match start_http(settings.rest_port, api) {
        Ok(server) => server,
        Err(error) => {
            log::error!(
                "failed to listen for HTTP on port {}; set REST_PORT to a free port error={error}",
                settings.rest_port
            );
            let _ = service.stop(SHUTDOWN_DEADLINE).await;
            return ExitCode::FAILURE;
        }
    };

    if reload_requested {
        reload(&service, &settings).await;
    }
    loop {
        match stop_signals.next().await {
            SignalRequest::Stop(signal) => {
                log::info!("stopping on {signal}");
                break;
            }
            SignalRequest::Reload => reload(&service, &settings).await,
        }
    }
    // Open keep-alive connections get a moment, not the whole deadline.
    if actix_rt::time::timeout(HTTP_STOP_TIMEOUT, server.stop(true))
        .await
        .is_err()
    {
        log::warn!(
            "HTTP connections still open after {} ms, closing them",
            HTTP_STOP_TIMEOUT.as_millis()
        );
    }

    match service.stop(SHUTDOWN_DEADLINE).await {
        Some(counters) => log::info!(
            "service stopped batches={} records={} failures={} undelivered={}",
            counters.batches,
            counters.records,
            counters.failures,
            counters.undelivered
        ),
        None => log::warn!("service stopped without a complete flush"),
    }
    drop(embedded);
    ExitCode::SUCCESS
}

/// Serves the REST API on all interfaces, on the service's own runtime.
fn start_http(port: u16, api: ApiState) -> std::io::Result<actix_web::dev::ServerHandle> {
    let data = actix_web::web::Data::new(api);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .configure(atlas_transports::http::configure)
    })
    // The service stops the server itself, after its own signal handling.
    .disable_signals()
    .workers(2)
    .bind(("0.0.0.0", port))?
    .run();

    let handle = server.handle();
    actix_rt::spawn(server);
    log::info!("HTTP API listening port={port}");
    Ok(handle)
}

fn start_embedded_broker(
    settings: &Settings,
) -> Result<EmbeddedBroker, rdkafka::error::KafkaError> {
    let broker = EmbeddedBroker::start()?;
    log::info!(
        "embedded Kafka broker started bootstrap={} (set BOOTSTRAP_SERVERS to use a real cluster)",
        broker.bootstrap_servers()
    );

    for topic in settings.topics_in_use() {
        broker.create_topic(topic, settings.topic_partitions)?;
        log::info!(
            "topic created topic={topic} partitions={}",
            settings.topic_partitions
        );
    }
    Ok(broker)
}
