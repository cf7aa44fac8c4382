//! Starts the actors of a running service in dependency order, and stops
//! them in the reverse order.
//!
//! Unlike the domain modules, this wiring names actors: it is the
//! application layer that the binary and the integration tests share.
//!
//! Start-up order: producer; channel registry and presence; presence rebuilt
//! from recent map-status history; route actors; one STATUS_REQUEST per
//! tenant; consumers. Route actors start only after the rebuild, so a rider
//! who boarded before a restart is still moved at departure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rdkafka::consumer::Consumer;
use uuid::Uuid;

use crate::actors::channel_registry::ChannelRegistry;
use crate::actors::consumer::{ConsumedTopic, ConsumerLinks, StopConsumer, TopicConsumer};
use crate::actors::presence::{CharacterMoved, Presence, TrackMaps};
use crate::actors::producer::{EmitBatch, Flush, Producer, ProducerCounters};
use crate::actors::route::{RouteActor, RouteLinks, StopRoute};
use crate::clock::Clock;
use crate::config::Config;
use crate::kafka_consumer::{read_history, subscribe, GroupConsumer};
use crate::metrics::Metrics;
use crate::presence::PresenceIndex;
use crate::records::{decode_map_status, decode_tenant, MapStatus};
use crate::route_table::RouteTable;
use crate::routes::{aboard_maps, routes_for_tenants, Route};
use crate::settings::{Settings, Topics};
use crate::tenant::Tenant;
use crate::wire::{status_request_record, Batch};

/// How long start-up may spend reading map-status history.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(30);

/// A consumed topic's Kafka consumer and the actor that reads it.
pub struct TopicReader {
    pub topic: String,
    pub consumer: Arc<GroupConsumer>,
    pub actor: Addr<TopicConsumer>,
}

pub struct Service {
    pub routes: Arc<RouteTable>,
    /// One per consumed topic.
    pub consumers: Vec<TopicReader>,
    pub producer: Addr<Producer>,
    pub channels: Addr<ChannelRegistry>,
    pub presence: Addr<Presence>,
    pub metrics: Arc<Metrics>,
    /// True once the producer has reached the broker.
    producer_connected: Arc<AtomicBool>,
    shutting_down: Arc<AtomicBool>,
    /// Inputs for route actors that a reload starts.
    route_links: RouteLinks,
    topics: Arc<Topics>,
    clock: Arc<dyn Clock>,
}

impl Service {
    /// Starts every actor. Must be called inside a running actix system.
    pub async fn start(
        bootstrap_servers: &str,
        settings: &Settings,
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, String> {
        let shutting_down = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(Metrics::default());
        let (producer, producer_connected) = start_producer(
            bootstrap_servers,
            settings,
            &clock,
            &shutting_down,
            &metrics,
        );
        let routes = routes_for_tenants(&config.tenants, &config.routes, &config.vessels);

        let presence = Presence::new(PresenceIndex::new(aboard_maps(&routes))).start();
        let channels = ChannelRegistry::new(presence.clone()).start();

        rebuild_presence(bootstrap_servers, settings, &routes, clock.now(), &presence).await;

        let topics = Arc::new(settings.topics.clone());
        let route_links = RouteLinks {
            producer: producer.clone().recipient(),
            channels: channels.clone(),
            presence: presence.clone(),
            observer: None,
            metrics: Arc::clone(&metrics),
        };
        let running = routes
            .into_iter()
            .map(|route| {
                let actor = start_route(&route, &topics, &clock, &route_links);
                (route, actor)
            })
            .collect();
        let routes = Arc::new(RouteTable::new(running, &config.tenants));

        request_channel_status(&producer, &settings.topics, &config.tenants);

        let consumer_links = ConsumerLinks {
            producer: producer.clone().recipient(),
            channels: channels.clone(),
            presence: presence.clone(),
            routes: Arc::clone(&routes),
            dead_letter_topic: settings.dead_letter_topic.clone(),
        };

        let mut consumers = Vec::new();
        for (kind, topic) in [
            (
                ConsumedTopic::CharacterStatus,
                &settings.topics.character_status,
            ),
            (
                ConsumedTopic::ChannelStatus,
                &settings.topics.channel_status,
            ),
            (ConsumedTopic::MapStatus, &settings.topics.map_status),
        ] {
            let consumer = subscribe(bootstrap_servers, &settings.consumer_group, topic)
                .map_err(|error| format!("failed to subscribe to topic {topic}: {error}"))?;
            let consumer = Arc::new(consumer);
            let actor = TopicConsumer::new(
                kind,
                topic.clone(),
                Arc::clone(&consumer),
                consumer_links.clone(),
            );
            consumers.push(TopicReader {
                topic: topic.clone(),
                consumer,
                actor: actor.start(),
            });
        }

        Ok(Service {
            routes,
            consumers,
            producer,
            channels,
            presence,
            metrics,
            producer_connected,
            shutting_down,
            route_links,
            topics,
            clock,
        })
    }

    /// Builds the check of the readiness probe: the producer reached the broker and
    /// every consumer has its partitions.
    pub fn readiness(&self) -> crate::http::ReadinessCheck {
        let connected = Arc::clone(&self.producer_connected);
        let consumers: Vec<Arc<GroupConsumer>> = self
            .consumers
            .iter()
            .map(|reader| Arc::clone(&reader.consumer))
            .collect();

        Arc::new(move || {
            if !connected.load(Ordering::SeqCst) {
                return Err("producer has not reached the Kafka broker yet".to_string());
            }
            if !all_assigned(&consumers) {
                return Err(
                    "a consumer holds no partitions (not assigned yet, rebalancing, or held by another group member)"
                        .to_string(),
                );
            }
            Ok(())
        })
    }

    /// Lists the consumer actors with the topic each reads.
    pub fn consumer_actors(&self) -> Vec<(String, Addr<TopicConsumer>)> {
        self.consumers
            .iter()
            .map(|reader| (reader.topic.clone(), reader.actor.clone()))
            .collect()
    }

    /// Returns whether every consumer has its first partition assignment.
    pub fn consumers_assigned(&self) -> bool {
        let consumers: Vec<Arc<GroupConsumer>> = self
            .consumers
            .iter()
            .map(|reader| Arc::clone(&reader.consumer))
            .collect();
        all_assigned(&consumers)
    }

    /// Applies a reloaded configuration: starts the routes it adds, stops the
    /// ones it removes, restarts the ones it changes, and leaves the rest
    /// running with their timers.
    pub async fn reload(&self, config: &Config) {
        let wanted = routes_for_tenants(&config.tenants, &config.routes, &config.vessels);
        let running = self.routes.routes();
        let mut next = Vec::with_capacity(wanted.len());
        let mut retired = Vec::new();
        let (mut started, mut restarted, mut unchanged) = (0, 0, 0);

        for route in wanted {
            let same_id = running
                .iter()
                .find(|(old, _)| old.id == route.id && old.tenant.id == route.tenant.id);
            match same_id {
                Some((old, actor)) if *old == route => {
                    unchanged += 1;
                    next.push((old.clone(), actor.clone()));
                }
                Some((_, actor)) => {
                    restarted += 1;
                    retired.push(actor.clone());
                    let actor = start_route(&route, &self.topics, &self.clock, &self.route_links);
                    next.push((route, actor));
                }
                None => {
                    started += 1;
                    let actor = start_route(&route, &self.topics, &self.clock, &self.route_links);
                    next.push((route, actor));
                }
            }
        }

        let removed = running.iter().filter(|(old, _)| {
            !next
                .iter()
                .any(|(route, _)| route.id == old.id && route.tenant.id == old.tenant.id)
        });
        let stopped = removed.clone().count();
        retired.extend(removed.map(|(_, actor)| actor.clone()));

        let new_tenants: Vec<Tenant> = config
            .tenants
            .iter()
            .filter(|tenant| !self.routes.serves(tenant))
            .cloned()
            .collect();
        request_channel_status(&self.producer, &self.topics, &new_tenants);

        // Swap the table before stopping the old actors, so a LOGOUT that
        // finds an old actor closed finds its replacement in the table.
        let tracked = aboard_maps(next.iter().map(|(route, _)| route));
        let _ = self.presence.send(TrackMaps { maps: tracked }).await;
        self.routes.replace(next, &config.tenants);
        for actor in retired {
            let _ = actor.send(StopRoute).await;
        }

        log::info!(
            "configuration reloaded routes_started={started} routes_restarted={restarted} routes_stopped={stopped} routes_unchanged={unchanged}"
        );
    }

    /// Stops reading, stops the route timers, then lets the producer write
    /// what is queued. Batches still failing when `deadline` is near are
    /// logged and dropped; their records are read again after a restart.
    pub async fn stop(self, deadline: Duration) -> Option<ProducerCounters> {
        for reader in &self.consumers {
            // An actor that already stopped has nothing left to do.
            let _ = reader.actor.send(StopConsumer).await;
        }
        for (_, route) in self.routes.routes() {
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

fn all_assigned(consumers: &[Arc<GroupConsumer>]) -> bool {
    consumers
        .iter()
        .all(|consumer| consumer.context().assigned.load(Ordering::SeqCst))
}

/// Asks each tenant's channel servers to announce themselves, so the
/// channel registry fills after a start or a reload.
fn request_channel_status(producer: &Addr<Producer>, topics: &Topics, tenants: &[Tenant]) {
    for tenant in tenants {
        producer.do_send(EmitBatch::new(Batch {
            cause: format!("channel status request tenant={}", tenant.id),
            scheduled_at: None,
            records: vec![status_request_record(
                &topics.channel_status_command,
                tenant,
            )],
        }));
    }
}

fn start_route(
    route: &Route,
    topics: &Arc<Topics>,
    clock: &Arc<dyn Clock>,
    links: &RouteLinks,
) -> Addr<RouteActor> {
    RouteActor::new(
        route.clone(),
        Arc::clone(topics),
        Arc::clone(clock),
        links.clone(),
    )
    .start()
}

fn start_producer(
    bootstrap_servers: &str,
    settings: &Settings,
    clock: &Arc<dyn Clock>,
    shutting_down: &Arc<AtomicBool>,
    metrics: &Arc<Metrics>,
) -> (Addr<Producer>, Arc<AtomicBool>) {
    // Unique per process unless configured: two replicas must not fence
    // each other's transactions.
    let transactional_id = settings
        .transactional_id
        .clone()
        .unwrap_or_else(|| format!("atlas-transports-{}", Uuid::new_v4()));

    let producer = Producer::new(
        bootstrap_servers.to_string(),
        transactional_id,
        Arc::clone(clock),
        Arc::clone(shutting_down),
        Arc::clone(metrics),
    );
    let connected = producer.connected();
    (producer.start(), connected)
}

/// Replays map-status history since the longest trip cycle ago into the
/// presence actor: a character stays in a route map for at most one trip.
async fn rebuild_presence(
    bootstrap_servers: &str,
    settings: &Settings,
    routes: &[Route],
    now: crate::timetable::Instant,
    presence: &Addr<Presence>,
) {
    let longest_cycle = routes
        .iter()
        .filter_map(|route| route.timetable.period())
        .max()
        .unwrap_or(0);
    let since = now - longest_cycle;

    let bootstrap_servers = bootstrap_servers.to_string();
    let group = settings.consumer_group.clone();
    let topic = settings.topics.map_status.clone();
    let history = actix_rt::task::spawn_blocking(move || {
        read_history(&bootstrap_servers, &group, &topic, since, HISTORY_TIMEOUT)
    })
    .await;

    let records = match history {
        Ok(Ok(records)) => records,
        Ok(Err(error)) => {
            log::warn!("failed to read map-status history, presence starts empty error={error}");
            return;
        }
        Err(error) => {
            log::warn!("map-status history reader failed, presence starts empty error={error}");
            return;
        }
    };

    let mut replayed = 0;
    for record in &records {
        // Bad records were reported when the group consumer first read them.
        let Ok(tenant) = decode_tenant(&record.headers) else {
            continue;
        };
        let Ok(MapStatus::CharacterMoved {
            position,
            character_id,
            entered,
        }) = decode_map_status(record.payload.as_deref())
        else {
            continue;
        };

        replayed += 1;
        presence.do_send(CharacterMoved {
            tenant_id: tenant.id,
            character_id,
            position,
            entered,
        });
    }
    log::info!(
        "presence rebuilt from map-status history records={} moves={replayed} since={}",
        records.len(),
        crate::timefmt::rfc3339(since)
    );
}
