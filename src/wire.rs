//! Bytes on the wire: the records this service produces, and the batch that
//! carries the records of one cause to the producer.

use serde::Serialize;
use uuid::Uuid;

use crate::tenant::Tenant;
use crate::timetable::Instant;

/// One record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub topic: String,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The records of one cause (one trip event, one logout), written together:
/// in one transaction where the broker supports it, so they land whole or
/// not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// What caused the batch, for logs, e.g. `route=subway-kc-nlc event=Departed`.
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

/// A transport status event, keyed by the route id as its 36-character text.
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
        key: route_id.hyphenated().to_string().into_bytes(),
        payload: serde_json::to_vec(&event).expect("status event serializes"),
        headers: tenant_headers(tenant),
    }
}

/// The key of a record about one character: the id as little-endian u32 and
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

        assert_eq!(record.key, b"a0e6b5ae-3ae1-4b7f-9a44-1f7a5d0c7e11".to_vec());
        assert_eq!(
            String::from_utf8(record.payload).unwrap(),
            r#"{"routeId":"a0e6b5ae-3ae1-4b7f-9a44-1f7a5d0c7e11","type":"ARRIVED","body":{"mapId":101000300}}"#
        );
        assert_eq!(record.headers.len(), 4);
    }

    #[test]
    fn character_key_is_little_endian_and_padded() {
        assert_eq!(character_key(1234), vec![0xd2, 0x04, 0, 0, 0, 0, 0, 0]);
    }
}
