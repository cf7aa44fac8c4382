//! Bytes on the wire: the records this service produces, and the batch that
//! carries the records of one cause to the producer.

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

use crate::tenant::Tenant;
use crate::timetable::Instant;

/// One record to produce.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub topic: String,
    /// `None` lets the partitioner spread records without a key.
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Payload text longer than this is cut short in logs.
const LOGGED_PAYLOAD_CHARS: usize = 512;

/// Text for logs: payloads are JSON, keys and headers mostly text; other
/// bytes show as escapes.
impl fmt::Debug for OutgoingRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let payload = String::from_utf8_lossy(&self.payload);
        let shown: String = payload.chars().take(LOGGED_PAYLOAD_CHARS).collect();
        let cut = if shown.len() < payload.len() {
            "…"
        } else {
            ""
        };

        write!(f, "{{topic={} key=", self.topic)?;
        match &self.key {
            Some(key) => write!(f, "{:?}", key.escape_ascii().to_string())?,
            None => f.write_str("none")?,
        }
        write!(f, " payload={shown}{cut} headers=[")?;
        for (index, (name, value)) in self.headers.iter().enumerate() {
            let separator = if index == 0 { "" } else { " " };
            write!(f, "{separator}{name}={}", value.escape_ascii())?;
        }
        f.write_str("]}")
    }
}

/// The records of one cause (one trip event, one logout), written together:
/// in one transaction where the broker supports it, so they land whole or
/// not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The cause of the batch, for logs, e.g. `route=subway-kc-nlc event=Departed`.
    pub cause: String,
    /// The trip event's scheduled instant, to measure how late delivery was.
    pub scheduled_at: Option<Instant>,
    pub records: Vec<OutgoingRecord>,
}

/// Body of a transport status event: `{"mapId": …}`.
#[derive(Serialize)]
struct StatusBody {
    #[serde(rename = "mapId")]
    map_id: u32,
}

/// `{"routeId": "<uuid>", "type": "ARRIVED" | "DEPARTED", "body": {"mapId": N}}`
#[derive(Serialize)]
struct TransportStatusEvent<'a> {
    #[serde(rename = "routeId")]
    route_id: Uuid,
    #[serde(rename = "type")]
    kind: &'a str,
    body: StatusBody,
}

/// Status event types on the transport status topic.
pub const STATUS_ARRIVED: &str = "ARRIVED";
pub const STATUS_DEPARTED: &str = "DEPARTED";

/// Builds a transport status event, keyed by the route id as its
/// 36-character text.
pub fn transport_status_record(
    topic: &str,
    tenant: &Tenant,
    route_id: Uuid,
    kind: &str,
    map_id: u32,
) -> OutgoingRecord {
    let event = TransportStatusEvent {
        route_id,
        kind,
        body: StatusBody { map_id },
    };

    OutgoingRecord {
        topic: topic.to_string(),
        key: Some(route_id.hyphenated().to_string().into_bytes()),
        payload: serde_json::to_vec(&event).expect("status event serializes"),
        headers: tenant_headers(tenant),
    }
}

/// Body of a CHANGE_MAP command.
#[derive(Serialize)]
struct ChangeMapBody {
    #[serde(rename = "channelId")]
    channel_id: u8,
    #[serde(rename = "mapId")]
    map_id: u32,
    #[serde(rename = "portalId")]
    portal_id: u32,
}

/// `{"worldId": 0, "characterId": N, "type": "CHANGE_MAP", "body": {...}}`
#[derive(Serialize)]
struct ChangeMapCommand {
    #[serde(rename = "worldId")]
    world_id: u8,
    #[serde(rename = "characterId")]
    character_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    body: ChangeMapBody,
}

/// The destination of a CHANGE_MAP: character, world, channel, map and portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapChange {
    pub world_id: u8,
    pub channel_id: u8,
    pub character_id: u32,
    pub map_id: u32,
    pub portal_id: u32,
}

/// Builds a CHANGE_MAP command, keyed by the character.
pub fn change_map_record(
    topic: &str,
    tenant: &Tenant,
    change: MapChange,
    trace_headers: &[(String, Vec<u8>)],
) -> OutgoingRecord {
    let command = ChangeMapCommand {
        world_id: change.world_id,
        character_id: change.character_id,
        kind: "CHANGE_MAP",
        body: ChangeMapBody {
            channel_id: change.channel_id,
            map_id: change.map_id,
            portal_id: change.portal_id,
        },
    };

    let mut headers = tenant_headers(tenant);
    headers.extend(trace_headers.iter().cloned());
    OutgoingRecord {
        topic: topic.to_string(),
        key: Some(character_key(change.character_id)),
        payload: serde_json::to_vec(&command).expect("change-map command serializes"),
        headers,
    }
}

/// `{"type": "STATUS_REQUEST"}`: requests that a tenant's channel servers announce
/// themselves again.
pub fn status_request_record(topic: &str, tenant: &Tenant) -> OutgoingRecord {
    OutgoingRecord {
        topic: topic.to_string(),
        key: None,
        payload: br#"{"type":"STATUS_REQUEST"}"#.to_vec(),
        headers: tenant_headers(tenant),
    }
}

/// Header of a dead-letter copy with the reason the record was rejected.
pub const DEAD_LETTER_REASON_HEADER: &str = "DEAD_LETTER_REASON";
/// Header of a dead-letter copy with the record's source position, as
/// `topic/partition/offset`.
pub const DEAD_LETTER_SOURCE_HEADER: &str = "DEAD_LETTER_SOURCE";

/// Header set on a dead-letter copy whose value was left out because it was
/// too large to produce; its value is the original size in bytes, as text.
pub const DEAD_LETTER_TRUNCATED_HEADER: &str = "DEAD_LETTER_TRUNCATED";

/// Largest value a dead-letter copy carries. Below librdkafka's and the
/// broker's default limit of 1 MB per record, so the copy itself can land.
pub const MAX_DEAD_LETTER_VALUE_BYTES: usize = 512 * 1024;

/// Builds a copy of a rejected record: its key, value and headers, plus the reason
/// and the source position. A value over `MAX_DEAD_LETTER_VALUE_BYTES` is
/// left out and its size noted in a header.
pub fn dead_letter_record(
    topic: &str,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    headers: &[(String, Option<Vec<u8>>)],
    reason: &str,
    source: &str,
) -> OutgoingRecord {
    // A header without a value is kept with an empty one.
    let mut copied: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().unwrap_or_default()))
        .collect();
    copied.push((
        DEAD_LETTER_REASON_HEADER.to_string(),
        reason.as_bytes().to_vec(),
    ));
    copied.push((
        DEAD_LETTER_SOURCE_HEADER.to_string(),
        source.as_bytes().to_vec(),
    ));

    let mut payload = payload.unwrap_or_default();
    if payload.len() > MAX_DEAD_LETTER_VALUE_BYTES {
        copied.push((
            DEAD_LETTER_TRUNCATED_HEADER.to_string(),
            payload.len().to_string().into_bytes(),
        ));
        payload = &[];
    }

    OutgoingRecord {
        topic: topic.to_string(),
        key: key.map(<[u8]>::to_vec),
        payload: payload.to_vec(),
        headers: copied,
    }
}

/// Builds the key of a record about one character: the id as little-endian u32 and
/// four zero bytes, as the rest of the ecosystem builds integer keys.
pub fn character_key(character_id: u32) -> Vec<u8> {
    let mut key = character_id.to_le_bytes().to_vec();
    key.extend_from_slice(&[0, 0, 0, 0]);
    key
}

fn tenant_headers(tenant: &Tenant) -> Vec<(String, Vec<u8>)> {
    tenant
        .kafka_headers()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_record_matches_the_contract() {
        let tenant = Tenant {
            id: Uuid::parse_str("083839c6-c47c-42a6-9585-76492795d123").unwrap(),
            region: "GMS".to_string(),
            major_version: 83,
            minor_version: 1,
        };
        let route_id = Uuid::parse_str("a0e6b5ae-3ae1-4b7f-9a44-1f7a5d0c7e11").unwrap();

        let record =
            transport_status_record("STATUS", &tenant, route_id, STATUS_ARRIVED, 101000300);

        assert_eq!(
            record.key,
            Some(b"a0e6b5ae-3ae1-4b7f-9a44-1f7a5d0c7e11".to_vec())
        );
        assert_eq!(
            String::from_utf8(record.payload).unwrap(),
            r#"{"routeId":"a0e6b5ae-3ae1-4b7f-9a44-1f7a5d0c7e11","type":"ARRIVED","body":{"mapId":101000300}}"#
        );
        assert_eq!(record.headers.len(), 4);
    }

    #[test]
    fn change_map_matches_the_contract() {
        let tenant = Tenant {
            id: Uuid::parse_str("083839c6-c47c-42a6-9585-76492795d123").unwrap(),
            region: "GMS".to_string(),
            major_version: 83,
            minor_version: 1,
        };
        let change = MapChange {
            world_id: 0,
            channel_id: 1,
            character_id: 1234,
            map_id: 200000100,
            portal_id: 0,
        };
        let trace = vec![("traceparent".to_string(), b"00-1-2-01".to_vec())];

        let record = change_map_record("COMMANDS", &tenant, change, &trace);

        assert_eq!(record.key, Some(vec![0xd2, 0x04, 0, 0, 0, 0, 0, 0]));
        assert_eq!(
            String::from_utf8(record.payload).unwrap(),
            r#"{"worldId":0,"characterId":1234,"type":"CHANGE_MAP","body":{"channelId":1,"mapId":200000100,"portalId":0}}"#
        );
        assert_eq!(record.headers.len(), 5);
        assert_eq!(record.headers[4].0, "traceparent");
    }

    #[test]
    fn character_key_is_little_endian_and_padded() {
        assert_eq!(character_key(1234), vec![0xd2, 0x04, 0, 0, 0, 0, 0, 0]);
    }
}
