//! Which character is in which route map: the index departures and arrivals warp
//! from.
//!
//! Only staging and en-route maps are tracked; everything else the map
//! service reports is ignored. A character is in at most one map per
//! tenant, so an ENTER also removes any older position of that character
//! even when its EXIT was never seen.

use std::collections::{BTreeSet, HashMap, HashSet};

use uuid::Uuid;

/// A character's position: world, channel and map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub world_id: u8,
    pub channel_id: u8,
    pub map_id: u32,
}

/// A character standing in a tracked map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Occupant {
    pub position: Position,
    pub character_id: u32,
}

#[derive(Debug, Default)]
pub struct PresenceIndex {
    /// Maps worth tracking, per tenant: every route's staging and en-route maps.
    tracked_maps: HashSet<(Uuid, u32)>,
    /// (tenant, character) → its position.
    positions: HashMap<(Uuid, u32), Position>,
    /// (tenant, map) → the characters in it, ordered for repeatable output.
    occupants: HashMap<(Uuid, u32), BTreeSet<Occupant>>,
}

impl PresenceIndex {
    pub fn new(tracked_maps: impl IntoIterator<Item = (Uuid, u32)>) -> Self {
        PresenceIndex {
            tracked_maps: tracked_maps.into_iter().collect(),
            ..Default::default()
        }
    }

    /// Replaces the tracked maps, forgetting characters in maps no longer
    /// tracked.
    pub fn track(&mut self, maps: impl IntoIterator<Item = (Uuid, u32)>) {
        self.tracked_maps = maps.into_iter().collect();

        let untracked: Vec<(Uuid, u32)> = self
            .positions
            .iter()
            .filter(|((tenant_id, _), position)| {
                !self.tracked_maps.contains(&(*tenant_id, position.map_id))
            })
            .map(|(key, _)| *key)
            .collect();
        for (tenant_id, character_id) in untracked {
            self.remove(tenant_id, character_id);
        }
    }

    pub fn is_tracked(&self, tenant_id: Uuid, map_id: u32) -> bool {
        self.tracked_maps.contains(&(tenant_id, map_id))
    }

    /// Records CHARACTER_ENTER. Returns whether the index changed.
    pub fn enter(&mut self, tenant_id: Uuid, character_id: u32, position: Position) -> bool {
        let old = self.remove(tenant_id, character_id);
        if !self.is_tracked(tenant_id, position.map_id) {
            return old.is_some();
        }

        self.positions.insert((tenant_id, character_id), position);
        self.occupants
            .entry((tenant_id, position.map_id))
            .or_default()
            .insert(Occupant {
                position,
                character_id,
            });
        old != Some(position)
    }

    /// Records CHARACTER_EXIT: removes the character if it is there.
    pub fn exit(&mut self, tenant_id: Uuid, character_id: u32, position: Position) -> bool {
        if self.positions.get(&(tenant_id, character_id)) == Some(&position) {
            self.remove(tenant_id, character_id);
            return true;
        }
        false
    }

    /// Removes a character wherever it is (it logged out).
    pub fn remove(&mut self, tenant_id: Uuid, character_id: u32) -> Option<Position> {
        let position = self.positions.remove(&(tenant_id, character_id))?;
        if let Some(set) = self.occupants.get_mut(&(tenant_id, position.map_id)) {
            set.remove(&Occupant {
                position,
                character_id,
            });
            if set.is_empty() {
                self.occupants.remove(&(tenant_id, position.map_id));
            }
        }
        Some(position)
    }

    /// Forgets everyone on a channel that shut down. Returns how many.
    pub fn drop_channel(&mut self, tenant_id: Uuid, world_id: u8, channel_id: u8) -> usize {
        let departed: Vec<u32> = self
            .positions
            .iter()
            .filter(|((tenant, _), position)| {
                *tenant == tenant_id
                    && position.world_id == world_id
                    && position.channel_id == channel_id
            })
            .map(|((_, character_id), _)| *character_id)
            .collect();

        for character_id in &departed {
            self.remove(tenant_id, *character_id);
        }
        departed.len()
    }

    /// Everyone in any of `maps`, on every channel.
    pub fn occupants(&self, tenant_id: Uuid, maps: &[u32]) -> Vec<Occupant> {
        maps.iter()
            .filter_map(|map_id| self.occupants.get(&(tenant_id, *map_id)))
            .flat_map(|set| set.iter().copied())
            .collect()
    }

    /// Characters tracked in all tenants.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGING: u32 = 101000301;
    const DECK: u32 = 200090010;
    const DOCK: u32 = 101000300;

    fn tenant() -> Uuid {
        Uuid::from_u128(7)
    }

    fn at(channel_id: u8, map_id: u32) -> Position {
        Position {
            world_id: 0,
            channel_id,
            map_id,
        }
    }

    fn index() -> PresenceIndex {
        PresenceIndex::new([(tenant(), STAGING), (tenant(), DECK)])
    }

    #[test]
    fn enter_and_exit_track_route_maps() {
        let mut presence = index();
        assert!(presence.enter(tenant(), 1, at(1, STAGING)));
        assert_eq!(presence.occupants(tenant(), &[STAGING]).len(), 1);

        assert!(presence.exit(tenant(), 1, at(1, STAGING)));
        assert!(presence.occupants(tenant(), &[STAGING]).is_empty());
        assert!(presence.is_empty());
    }

    #[test]
    fn untracked_maps_are_ignored() {
        let mut presence = index();
        assert!(!presence.enter(tenant(), 1, at(1, DOCK)));
        assert!(presence.is_empty());
        assert!(
            !presence.enter(Uuid::from_u128(8), 1, at(1, STAGING)),
            "other tenant's map"
        );
    }

    #[test]
    fn enter_moves_a_character_without_exit() {
        let mut presence = index();
        presence.enter(tenant(), 1, at(1, STAGING));
        presence.enter(tenant(), 1, at(1, DECK));

        assert!(presence.occupants(tenant(), &[STAGING]).is_empty());
        assert_eq!(presence.occupants(tenant(), &[DECK])[0].character_id, 1);

        // Leaving for an untracked map forgets the character.
        presence.enter(tenant(), 1, at(1, DOCK));
        assert!(presence.is_empty());
    }

    #[test]
    fn stale_exit_keeps_the_newer_position() {
        let mut presence = index();
        presence.enter(tenant(), 1, at(1, DECK));
        assert!(!presence.exit(tenant(), 1, at(1, STAGING)));
        assert_eq!(presence.len(), 1);
    }

    #[test]
    fn channel_shutdown_drops_its_characters() {
        let mut presence = index();
        presence.enter(tenant(), 1, at(1, STAGING));
        presence.enter(tenant(), 2, at(2, STAGING));

        assert_eq!(presence.drop_channel(tenant(), 0, 1), 1);
        let left = presence.occupants(tenant(), &[STAGING]);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].character_id, 2);
    }
}
