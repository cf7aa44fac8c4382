//! The presence actor: who stands in which route map, per tenant, world and
//! channel, kept from CHARACTER_ENTER and CHARACTER_EXIT events.
//!
//! At start-up the service replays recent map-status history into it before
//! any route actor starts, so riders who boarded before a restart are still
//! moved at departure.

use actix::prelude::*;
use uuid::Uuid;

use crate::presence::{Occupant, Position, PresenceIndex};

/// A character entered (or left) a map.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CharacterMoved {
    pub tenant_id: Uuid,
    pub character_id: u32,
    pub position: Position,
    pub entered: bool,
}

/// A character logged out: forget it wherever it stood.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ForgetCharacter {
    pub tenant_id: Uuid,
    pub character_id: u32,
}

/// A channel shut down: forget everyone on it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct DropChannel {
    pub tenant_id: Uuid,
    pub world_id: u8,
    pub channel_id: u8,
}

/// Characters were sent elsewhere by CHANGE_MAP. Recorded at once, before
/// the map service confirms, so a lost or late CHARACTER_EXIT does not move
/// the same rider again at the next departure.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CharactersWarped {
    pub tenant_id: Uuid,
    /// (character, where it was sent).
    pub warps: Vec<(u32, Position)>,
}

/// The route maps to track changed (a configuration reload).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct TrackMaps {
    /// (tenant, map) of every staging and en-route map.
    pub maps: Vec<(Uuid, u32)>,
}

/// Everyone in any of these maps of a tenant.
#[derive(Message, Debug)]
#[rtype(result = "Vec<Occupant>")]
pub struct GetOccupants {
    pub tenant_id: Uuid,
    pub map_ids: Vec<u32>,
}

pub struct Presence {
    index: PresenceIndex,
}

impl Presence {
    pub fn new(index: PresenceIndex) -> Self {
        Presence { index }
    }
}

impl Actor for Presence {
    type Context = Context<Self>;
}

impl Handler<CharacterMoved> for Presence {
    type Result = ();

    fn handle(&mut self, message: CharacterMoved, _ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "presence received message={message:?}");

        if message.entered {
            self.index
                .enter(message.tenant_id, message.character_id, message.position);
        } else {
            self.index
                .exit(message.tenant_id, message.character_id, message.position);
        }
    }
}

impl Handler<ForgetCharacter> for Presence {
    type Result = ();

    fn handle(&mut self, message: ForgetCharacter, _ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "presence received message={message:?}");
        self.index.remove(message.tenant_id, message.character_id);
    }
}

impl Handler<DropChannel> for Presence {
    type Result = ();

    fn handle(&mut self, message: DropChannel, _ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "presence received message={message:?}");

        let dropped =
            self.index
                .drop_channel(message.tenant_id, message.world_id, message.channel_id);
        if dropped > 0 {
            log::info!(
                "channel presence dropped tenant={} world={} channel={} characters={dropped}",
                message.tenant_id,
                message.world_id,
                message.channel_id
            );
        }
    }
}

impl Handler<CharactersWarped> for Presence {
    type Result = ();

    fn handle(&mut self, message: CharactersWarped, _ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "presence received message={message:?}");

        for (character_id, position) in message.warps {
            self.index.enter(message.tenant_id, character_id, position);
        }
    }
}

impl Handler<TrackMaps> for Presence {
    type Result = ();

    fn handle(&mut self, message: TrackMaps, _ctx: &mut Self::Context) {
        log::debug!(target: "mailbox", "presence received message={message:?}");
        self.index.track(message.maps);
    }
}

impl Handler<GetOccupants> for Presence {
    type Result = MessageResult<GetOccupants>;

    fn handle(&mut self, message: GetOccupants, _ctx: &mut Self::Context) -> Self::Result {
        log::debug!(target: "mailbox", "presence received message={message:?}");
        MessageResult(self.index.occupants(message.tenant_id, &message.map_ids))
    }
}
