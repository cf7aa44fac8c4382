//! The channel registry actor: which (world, channel) pairs of each tenant
//! are live, from STARTED and SHUTDOWN events.
//!
//! Warps go only to live channels. A SHUTDOWN also tells the presence actor
//! to forget that channel's characters.

use std::collections::{BTreeSet, HashMap};

use actix::prelude::*;
use uuid::Uuid;

use super::presence::{DropChannel, Presence};

/// A channel server started or shut down.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ChannelStatusChanged {
    pub tenant_id: Uuid,
    pub world_id: u8,
    pub channel_id: u8,
    pub started: bool,
}

/// The live (world, channel) pairs of a tenant.
#[derive(Message, Debug)]
#[rtype(result = "BTreeSet<(u8, u8)>")]
pub struct LiveChannels {
    pub tenant_id: Uuid,
}

pub struct ChannelRegistry {
    live: HashMap<Uuid, BTreeSet<(u8, u8)>>,
    presence: Addr<Presence>,
}

impl ChannelRegistry {
    pub fn new(presence: Addr<Presence>) -> Self {
        ChannelRegistry {
            live: HashMap::new(),
            presence,
        }
    }
}

impl Actor for ChannelRegistry {
    type Context = Context<Self>;
}

impl Handler<ChannelStatusChanged> for ChannelRegistry {
    type Result = ();

    fn handle(&mut self, message: ChannelStatusChanged, _ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "channel registry received message={message:?}");

        let channel = (message.world_id, message.channel_id);
        let channels = self.live.entry(message.tenant_id).or_default();
        if message.started {
            if channels.insert(channel) {
                log::info!(
                    "channel live tenant={} world={} channel={}",
                    message.tenant_id,
                    message.world_id,
                    message.channel_id
                );
            }
            return;
        }

        if channels.remove(&channel) {
            log::info!(
                "channel shut down tenant={} world={} channel={}",
                message.tenant_id,
                message.world_id,
                message.channel_id
            );
        }
        self.presence.do_send(DropChannel {
            tenant_id: message.tenant_id,
            world_id: message.world_id,
            channel_id: message.channel_id,
        });
    }
}

impl Handler<LiveChannels> for ChannelRegistry {
    type Result = MessageResult<LiveChannels>;

    fn handle(&mut self, message: LiveChannels, _ctx: &mut Self::Context) -> Self::Result {
        log::debug!(target: "mailbox", "channel registry received message={message:?}");
        MessageResult(
            self.live
                .get(&message.tenant_id)
                .cloned()
                .unwrap_or_default(),
        )
    }
}
