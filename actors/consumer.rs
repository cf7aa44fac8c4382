//! The consumer actor: one per consumed topic. It turns each Kafka record
//! into a typed message for the actor that owns it, and makes sure the
//! record's offset reaches the producer once that actor has handled it.
//!
//! Records are handled one at a time, in partition order: the next record
//! is read only after the owner has replied for the current one. Every
//! record handled before a stop ends in exactly one `EmitBatch` carrying its
//! offset: the owner's batch (a LOGOUT aboard), a dead-letter copy, or an
//! empty batch. The producer commits the offset after writing that batch, so
//! no record is acknowledged before its effect is durable.
//!
//! A record that breaks the contract is logged once with topic, partition,
//! offset and reason, counted, copied to the dead-letter topic when one is
//! configured, and skipped; the next record is handled normally.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rdkafka::message::{Message as KafkaMessage, OwnedMessage};
use uuid::Uuid;

use crate::kafka_consumer::{copy_headers, CopiedHeaders, GroupConsumer};
use crate::records::{
    decode_channel_status, decode_character_status, decode_map_status, decode_tenant,
    trace_headers, BadRecord, CharacterStatus, MapStatus,
};
use crate::route_table::RouteTable;
use crate::tenant::Tenant;
use crate::wire::{dead_letter_record, Batch, MapChange};

use super::channel_registry::{ChannelRegistry, ChannelStatusChanged};
use super::presence::{CharacterMoved, ForgetCharacter, Presence};
use super::producer::{EmitBatch, OffsetCommit};
use super::route::CharacterLoggedOut;

/// The topic a consumer reads, which decides how its records are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsumedTopic {
    CharacterStatus,
    ChannelStatus,
    MapStatus,
}

/// Destinations of decoded records.
#[derive(Clone)]
pub struct ConsumerLinks {
    pub producer: Recipient<EmitBatch>,
    pub channels: Addr<ChannelRegistry>,
    pub presence: Addr<Presence>,
    /// The running routes and configured tenants; records of other
    /// tenants are ignored.
    pub routes: Arc<RouteTable>,
    /// Topic that receives a copy of each rejected record, if any.
    pub dead_letter_topic: Option<String>,
}

/// Counts of one consumer's records since start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerCounters {
    /// Records acted on.
    pub handled: u64,
    /// Valid records this service does not act on (other event types,
    /// tenants that are not configured).
    pub ignored: u64,
    /// Rejected records, by reason label.
    pub bad: BTreeMap<&'static str, u64>,
    /// Failed reads from the broker.
    pub read_errors: u64,
}

/// Asks for the counters.
#[derive(Message, Debug)]
#[rtype(result = "ConsumerCounters")]
pub struct GetConsumerCounters;

/// Stops reading; the group membership ends when the consumer is dropped.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct StopConsumer;

pub struct TopicConsumer {
    kind: ConsumedTopic,
    topic: String,
    consumer: Arc<GroupConsumer>,
    links: ConsumerLinks,
    counters: ConsumerCounters,
    /// Unconfigured tenants already warned about, so each is warned once.
    warned_tenants: HashSet<Tenant>,
}

type Step = actix::fut::LocalBoxActorFuture<TopicConsumer, ()>;

impl TopicConsumer {
    pub fn new(
        kind: ConsumedTopic,
        topic: String,
        consumer: Arc<GroupConsumer>,
        links: ConsumerLinks,
    ) -> Self {
        TopicConsumer {
            kind,
            topic,
            consumer,
            links,
            counters: ConsumerCounters::default(),
            warned_tenants: HashSet::new(),
        }
    }

    /// Reads the next record, hands it over, and comes back for the next.
    // NOTE: the next record is read once the owner has replied, not once
    // the producer has written; a producer slower than the input lets its
    // mailbox grow without bound.
    fn read_next(&mut self, ctx: &mut Context<Self>) {
        let consumer = Arc::clone(&self.consumer);
        let receive = async move {
            consumer.recv().await.map(|message| {
                let headers = copy_headers(&message);
                (message.detach(), headers)
            })
        };

        ctx.spawn(
            receive
                .into_actor(self)
                .then(|result, actor, _ctx| match result {
                    Ok((message, headers)) => actor.dispatch(message, headers),
                    Err(error) => actor.read_failed(error),
                })
                .map(|(), actor, ctx| actor.read_next(ctx)),
        );
    }

    fn read_failed(&mut self, error: rdkafka::error::KafkaError) -> Step {
        self.counters.read_errors += 1;
        log::warn!(
            "failed to read record, trying again topic={} error={error}",
            self.topic
        );

        // librdkafka recovers by itself; the pause keeps a persistent error
        // from spinning.
        actix::fut::wrap_future(actix_rt::time::sleep(Duration::from_millis(200))).boxed_local()
    }

    fn dispatch(&mut self, message: OwnedMessage, headers: CopiedHeaders) -> Step {
        log::debug!(
            target: "mailbox",
            "consumer received record topic={} partition={} offset={} bytes={}",
            message.topic(),
            message.partition(),
            message.offset(),
            message.payload().map_or(0, <[u8]>::len)
        );

        let CopiedHeaders {
            headers,
            invalid_name,
        } = headers;
        let commit = OffsetCommit {
            consumer: Arc::clone(&self.consumer),
            topic: message.topic().to_string(),
            partition: message.partition(),
            next_offset: message.offset() + 1,
        };

        if let Some(bad) = invalid_name {
            return self.reject(&message, &headers, bad, commit);
        }
        let tenant = match decode_tenant(&headers) {
            Ok(tenant) => tenant,
            Err(bad) => return self.reject(&message, &headers, bad, commit),
        };
        if !self.links.routes.serves(&tenant) {
            if self.warned_tenants.insert(tenant.clone()) {
                log::warn!(
                    "ignoring records of a tenant that is not configured; add it to tenants.json to serve it topic={} tenant={tenant}",
                    self.topic
                );
            }
            return self.ignore(commit);
        }

        let payload = message.payload();
        match self.kind {
            ConsumedTopic::CharacterStatus => match decode_character_status(payload) {
                Err(bad) => self.reject(&message, &headers, bad, commit),
                Ok(CharacterStatus::Other(_)) => self.ignore(commit),
                Ok(CharacterStatus::Logout {
                    world_id,
                    channel_id,
                    character_id,
                    map_id,
                }) => {
                    let logout = MapChange {
                        world_id,
                        channel_id,
                        character_id,
                        map_id,
                        portal_id: 0,
                    };
                    self.logout(tenant.id, logout, trace_headers(&headers), commit)
                }
            },

            ConsumedTopic::ChannelStatus => match decode_channel_status(payload) {
                Err(bad) => self.reject(&message, &headers, bad, commit),
                Ok(status) => {
                    let change = ChannelStatusChanged {
                        tenant_id: tenant.id,
                        world_id: status.world_id,
                        channel_id: status.channel_id,
                        started: status.started,
                    };
                    self.hand_over(self.links.channels.send(change), commit)
                }
            },

            ConsumedTopic::MapStatus => match decode_map_status(payload) {
                Err(bad) => self.reject(&message, &headers, bad, commit),
                Ok(MapStatus::Other(_)) => self.ignore(commit),
                Ok(MapStatus::CharacterMoved {
                    position,
                    character_id,
                    entered,
                }) => {
                    let moved = CharacterMoved {
                        tenant_id: tenant.id,
                        character_id,
                        position,
                        entered,
                    };
                    self.hand_over(self.links.presence.send(moved), commit)
                }
            },
        }
    }

    /// Hands a LOGOUT aboard a route to that route actor, which sends the
    /// rider home and passes the offset on with its batch. Elsewhere only the
    /// offset moves.
    fn logout(
        &mut self,
        tenant_id: Uuid,
        logout: MapChange,
        trace_headers: Vec<(String, Vec<u8>)>,
        commit: OffsetCommit,
    ) -> Step {
        self.links.presence.do_send(ForgetCharacter {
            tenant_id,
            character_id: logout.character_id,
        });

        let Some(route) = self.links.routes.owner_of(tenant_id, logout.map_id) else {
            return self.ignore(commit);
        };

        self.counters.handled += 1;
        let message = CharacterLoggedOut {
            logout,
            trace_headers,
            commit: Some(commit),
        };
        let routes = Arc::clone(&self.links.routes);
        actix::fut::wrap_future(async move {
            // A closed mailbox means the route actor stopped before handling
            // the message: a reload replaced it, so the new owner gets it.
            // At shutdown there is none; the offset then stays uncommitted
            // and the record is read again after a restart.
            if route.send(message.clone()).await.is_err() {
                if let Some(replacement) = routes.owner_of(tenant_id, logout.map_id) {
                    let _ = replacement.send(message).await;
                }
            }
        })
        .boxed_local()
    }

    /// Waits for the owner to handle the record, then commits it.
    fn hand_over<R>(
        &mut self,
        sent: impl std::future::Future<Output = Result<R, MailboxError>> + 'static,
        commit: OffsetCommit,
    ) -> Step {
        self.counters.handled += 1;
        let producer = self.links.producer.clone();
        actix::fut::wrap_future(async move {
            if sent.await.is_ok() {
                producer.do_send(offset_only(commit));
            }
        })
        .boxed_local()
    }

    fn ignore(&mut self, commit: OffsetCommit) -> Step {
        self.counters.ignored += 1;
        self.links.producer.do_send(offset_only(commit));
        actix::fut::ready(()).boxed_local()
    }

    fn reject(
        &mut self,
        message: &OwnedMessage,
        headers: &[(String, Option<Vec<u8>>)],
        bad: BadRecord,
        commit: OffsetCommit,
    ) -> Step {
        *self.counters.bad.entry(bad.reason.as_str()).or_default() += 1;
        log::warn!(
            "skipping bad record topic={} partition={} offset={} reason={} detail={}",
            message.topic(),
            message.partition(),
            message.offset(),
            bad.reason.as_str(),
            bad.detail
        );

        let source = format!(
            "{}/{}/{}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        let records = match &self.links.dead_letter_topic {
            Some(topic) => vec![dead_letter_record(
                topic,
                message.key(),
                message.payload(),
                headers,
                &bad.to_string(),
                &source,
            )],
            None => Vec::new(),
        };
        self.links.producer.do_send(EmitBatch {
            batch: Batch {
                cause: format!("bad record {source}"),
                scheduled_at: None,
                records,
            },
            commit: Some(commit),
        });
        actix::fut::ready(()).boxed_local()
    }
}

/// Builds an empty batch that only moves the offset on.
fn offset_only(commit: OffsetCommit) -> EmitBatch {
    EmitBatch {
        batch: Batch {
            cause: format!(
                "offset {}/{}/{}",
                commit.topic,
                commit.partition,
                commit.next_offset - 1
            ),
            scheduled_at: None,
            records: Vec::new(),
        },
        commit: Some(commit),
    }
}

impl Actor for TopicConsumer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        log::info!("consumer started topic={} kind={:?}", self.topic, self.kind);
        self.read_next(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        log::info!(
            "consumer stopped topic={} handled={} ignored={} bad={:?} read_errors={}",
            self.topic,
            self.counters.handled,
            self.counters.ignored,
            self.counters.bad,
            self.counters.read_errors
        );
    }
}

impl Handler<GetConsumerCounters> for TopicConsumer {
    type Result = MessageResult<GetConsumerCounters>;

    fn handle(&mut self, message: GetConsumerCounters, _ctx: &mut Self::Context) -> Self::Result {
        log::debug!(target: "mailbox", "consumer received topic={} message={message:?}", self.topic);
        MessageResult(self.counters.clone())
    }
}

impl Handler<StopConsumer> for TopicConsumer {
    type Result = ();

    fn handle(&mut self, message: StopConsumer, ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "consumer received topic={} message={message:?}", self.topic);
        ctx.stop();
    }
}
