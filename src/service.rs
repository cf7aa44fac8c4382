//! Starts the actors of a running service and stops them in order.
//!
//! Unlike the domain modules, this wiring names actors: it is the
//! application layer that the binary and the integration tests share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use uuid::Uuid;

use crate::actors::producer::{Flush, Producer, ProducerCounters};
use crate::actors::route::{RouteActor, StopRoute};
use crate::clock::Clock;
use crate::config::Config;
use crate::routes::{routes_for_tenants, Route};
use crate::settings::Settings;

pub struct Service {
    pub routes: Vec<(Route, Addr<RouteActor>)>,
    pub producer: Addr<Producer>,
    shutting_down: Arc<AtomicBool>,
}

impl Service {
    /// Starts the producer and one route actor per (tenant, route). Must be
    /// called inside a running actix system.
    pub fn start(
        bootstrap_servers: &str,
        settings: &Settings,
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Service {
        let shutting_down = Arc::new(AtomicBool::new(false));

        // Unique per process unless configured: two replicas must not fence
        // each other's transactions.
        let transactional_id = settings
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("atlas-transports-{}", Uuid::new_v4()));

        let producer = {
            let bootstrap_servers = bootstrap_servers.to_string();
            let clock = Arc::clone(&clock);
            let shutting_down = Arc::clone(&shutting_down);
            SyncArbiter::start(1, move || {
                Producer::new(
                    bootstrap_servers.clone(),
                    transactional_id.clone(),
                    Arc::clone(&clock),
                    Arc::clone(&shutting_down),
                )
            })
        };

        let topics = Arc::new(settings.topics.clone());
        let routes = routes_for_tenants(&config.tenants, &config.routes, &config.vessels)
            .into_iter()
            .map(|route| {
                let actor = RouteActor::new(
                    route.clone(),
                    Arc::clone(&topics),
                    Arc::clone(&clock),
                    producer.clone().recipient(),
                );
                (route, actor.start())
            })
            .collect();

        Service {
            routes,
            producer,
            shutting_down,
        }
    }

    /// Stops the route timers, then lets the producer write what is queued.
    /// Batches still failing when `deadline` is near are logged and dropped.
    pub async fn stop(self, deadline: Duration) -> Option<ProducerCounters> {
        for (_, route) in &self.routes {
            // An actor that already stopped has nothing left to do.
            let _ = route.send(StopRoute).await;
        }

        // Leave a second for the last write attempt after retries end.
        let give_up_at = deadline.saturating_sub(Duration::from_secs(1));
        let shutting_down = Arc::clone(&self.shutting_down);
        actix_rt::spawn(async move {
            actix_rt::time::sleep(give_up_at).await;
            shutting_down.store(true, Ordering::SeqCst);
        });

        match actix_rt::time::timeout(deadline, self.producer.send(Flush)).await {
            Ok(Ok(counters)) => Some(counters),
            Ok(Err(error)) => {
                log::error!("producer stopped before flushing error={error}");
                None
            }
            Err(_) => {
                log::error!("producer did not flush within {} ms", deadline.as_millis());
                None
            }
        }
    }
}
