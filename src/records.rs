//! Decoding of consumed records: tenant headers, trace headers and the JSON
//! bodies of the three consumed topics.
//!
//! Decoding never panics. A record that breaks the contract yields a
//! [`BadRecord`] whose reason is a short label (for counters) and whose
//! detail says what was wrong (for the warning).

use std::fmt;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::presence::Position;
use crate::tenant::{
    Tenant, MAJOR_VERSION_HEADER, MINOR_VERSION_HEADER, REGION_HEADER, TENANT_ID_HEADER,
};

/// Records larger than this are rejected unread; no valid event comes close.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Trace-context headers copied from a consumed record onto what it causes.
pub const TRACE_HEADERS: &[&str] = &["traceparent", "tracestate", "uber-trace-id"];

/// The reason a record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BadReason {
    EmptyPayload,
    Oversized,
    InvalidJson,
    MissingField,
    WrongFieldType,
    OutOfRange,
    UnknownType,
    MissingHeader,
    MalformedHeader,
}

impl BadReason {
    /// Label for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BadReason::EmptyPayload => "empty_payload",
            BadReason::Oversized => "oversized",
            BadReason::InvalidJson => "invalid_json",
            BadReason::MissingField => "missing_field",
            BadReason::WrongFieldType => "wrong_field_type",
            BadReason::OutOfRange => "out_of_range",
            BadReason::UnknownType => "unknown_type",
            BadReason::MissingHeader => "missing_header",
            BadReason::MalformedHeader => "malformed_header",
        }
    }
}

/// A record that breaks the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRecord {
    pub reason: BadReason,
    pub detail: String,
}

impl BadRecord {
    fn new(reason: BadReason, detail: impl Into<String>) -> Self {
        BadRecord {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

/// A consumed record's headers, in order, as librdkafka hands them over.
pub type RawHeaders = [(String, Option<Vec<u8>>)];

/// Decodes the tenant from a record's four tenant headers.
pub fn decode_tenant(headers: &RawHeaders) -> Result<Tenant, BadRecord> {
    let id_text = text_header(headers, TENANT_ID_HEADER)?;
    let id = Uuid::try_parse(&id_text)
        .ok()
        .filter(|_| id_text.len() == 36)
        .ok_or_else(|| {
            BadRecord::new(
                BadReason::MalformedHeader,
                format!("{TENANT_ID_HEADER} must be a UUID in 36 characters, found {id_text:?}"),
            )
        })?;

    let region = text_header(headers, REGION_HEADER)?;
    if region.trim().is_empty() {
        return Err(BadRecord::new(
            BadReason::MalformedHeader,
            format!("{REGION_HEADER} is empty"),
        ));
    }

    Ok(Tenant {
        id,
        region,
        major_version: version_header(headers, MAJOR_VERSION_HEADER)?,
        minor_version: version_header(headers, MINOR_VERSION_HEADER)?,
    })
}

/// Decodes a header name. Kafka header names are UTF-8 strings, and a record
/// whose header name is not is malformed.
pub fn decode_header_name(name: &[u8]) -> Result<String, BadRecord> {
    String::from_utf8(name.to_vec()).map_err(|_| {
        BadRecord::new(
            BadReason::MalformedHeader,
            format!(
                "header name {:?} is not UTF-8",
                String::from_utf8_lossy(name)
            ),
        )
    })
}

/// Collects the trace-context headers of a record, to copy onto what it
/// causes.
pub fn trace_headers(headers: &RawHeaders) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| TRACE_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
        .collect()
}

/// Returns the one value of a header; a header given twice is malformed, because
/// the two values could name different tenants.
fn single_header<'a>(headers: &'a RawHeaders, name: &str) -> Result<&'a [u8], BadRecord> {
    let mut values = headers.iter().filter(|(key, _)| key == name);
    let Some((_, value)) = values.next() else {
        return Err(BadRecord::new(
            BadReason::MissingHeader,
            format!("header {name} is missing"),
        ));
    };
    if values.next().is_some() {
        return Err(BadRecord::new(
            BadReason::MalformedHeader,
            format!("header {name} is repeated"),
        ));
    }
    value.as_deref().ok_or_else(|| {
        BadRecord::new(
            BadReason::MalformedHeader,
            format!("header {name} has no value"),
        )
    })
}

fn text_header(headers: &RawHeaders, name: &str) -> Result<String, BadRecord> {
    let bytes = single_header(headers, name)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        BadRecord::new(
            BadReason::MalformedHeader,
            format!("header {name} is not UTF-8"),
        )
    })
}

fn version_header(headers: &RawHeaders, name: &str) -> Result<u16, BadRecord> {
    let bytes = single_header(headers, name)?;
    let pair: [u8; 2] = bytes.try_into().map_err(|_| {
        BadRecord::new(
            BadReason::MalformedHeader,
            format!(
                "header {name} must be exactly 2 bytes (big-endian u16), found {} bytes",
                bytes.len()
            ),
        )
    })?;
    Ok(u16::from_be_bytes(pair))
}

/// Checks size and parses the payload as a JSON object.
pub fn parse_payload(payload: Option<&[u8]>) -> Result<Map<String, Value>, BadRecord> {
    let payload = payload.unwrap_or_default();
    if payload.is_empty() {
        return Err(BadRecord::new(
            BadReason::EmptyPayload,
            "record has no payload",
        ));
    }
    if payload.len() > MAX_RECORD_BYTES {
        return Err(BadRecord::new(
            BadReason::Oversized,
            format!(
                "payload is {} bytes, the limit is {MAX_RECORD_BYTES}",
                payload.len()
            ),
        ));
    }

    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(BadRecord::new(
            BadReason::WrongFieldType,
            format!("payload must be a JSON object, found {}", kind_of(&other)),
        )),
        Err(error) => Err(BadRecord::new(
            BadReason::InvalidJson,
            format!("invalid JSON: {error}"),
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed access to one JSON object's fields, with errors that name the path.
struct Body<'a> {
    path: &'a str,
    object: &'a Map<String, Value>,
}

impl<'a> Body<'a> {
    fn field(&self, name: &str) -> Result<&'a Value, BadRecord> {
        self.object.get(name).ok_or_else(|| {
            BadRecord::new(
                BadReason::MissingField,
                format!("field {}{name} is missing", self.path),
            )
        })
    }

    fn string(&self, name: &str) -> Result<&'a str, BadRecord> {
        match self.field(name)? {
            Value::String(text) => Ok(text),
            other => Err(self.wrong_type(name, "a string", other)),
        }
    }

    fn object(&self, name: &str) -> Result<&'a Map<String, Value>, BadRecord> {
        match self.field(name)? {
            Value::Object(object) => Ok(object),
            other => Err(self.wrong_type(name, "an object", other)),
        }
    }

    fn unsigned(&self, name: &str, max: u64) -> Result<u64, BadRecord> {
        let value = self.field(name)?;
        let Value::Number(number) = value else {
            return Err(self.wrong_type(name, "a number", value));
        };
        match number.as_u64() {
            Some(n) if n <= max => Ok(n),
            _ => Err(BadRecord::new(
                BadReason::OutOfRange,
                format!(
                    "field {}{name} must be a whole number from 0 to {max}, found {number}",
                    self.path
                ),
            )),
        }
    }

    fn byte(&self, name: &str) -> Result<u8, BadRecord> {
        Ok(self.unsigned(name, u8::MAX as u64)? as u8)
    }

    fn u32(&self, name: &str) -> Result<u32, BadRecord> {
        Ok(self.unsigned(name, u32::MAX as u64)? as u32)
    }

    fn wrong_type(&self, name: &str, expected: &str, found: &Value) -> BadRecord {
        BadRecord::new(
            BadReason::WrongFieldType,
            format!(
                "field {}{name} must be {expected}, found {}",
                self.path,
                kind_of(found)
            ),
        )
    }
}

/// An event of `EVENT_TOPIC_CHARACTER_STATUS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CharacterStatus {
    Logout {
        world_id: u8,
        channel_id: u8,
        character_id: u32,
        map_id: u32,
    },
    /// Any other type: other services' business, ignored quietly.
    Other(String),
}

pub fn decode_character_status(payload: Option<&[u8]>) -> Result<CharacterStatus, BadRecord> {
    let object = parse_payload(payload)?;
    let event = Body {
        path: "",
        object: &object,
    };

    let kind = event.string("type")?;
    if kind != "LOGOUT" {
        return Ok(CharacterStatus::Other(kind.to_string()));
    }

    let body = Body {
        path: "body.",
        object: event.object("body")?,
    };
    Ok(CharacterStatus::Logout {
        world_id: event.byte("worldId")?,
        channel_id: body.byte("channelId")?,
        character_id: event.u32("characterId")?,
        map_id: body.u32("mapId")?,
    })
}

/// An event of `EVENT_TOPIC_CHANNEL_STATUS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStatus {
    pub world_id: u8,
    pub channel_id: u8,
    /// STARTED registers the channel as live, SHUTDOWN removes it.
    pub started: bool,
}

pub fn decode_channel_status(payload: Option<&[u8]>) -> Result<ChannelStatus, BadRecord> {
    let object = parse_payload(payload)?;
    let event = Body {
        path: "",
        object: &object,
    };

    let started = match event.string("type")? {
        "STARTED" => true,
        "SHUTDOWN" => false,
        other => {
            return Err(BadRecord::new(
                BadReason::UnknownType,
                format!("channel status type must be STARTED or SHUTDOWN, found {other:?}"),
            ))
        }
    };

    Ok(ChannelStatus {
        world_id: event.byte("worldId")?,
        channel_id: event.byte("channelId")?,
        started,
    })
}

/// An event of `EVENT_TOPIC_MAP_STATUS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapStatus {
    CharacterMoved {
        position: Position,
        character_id: u32,
        /// CHARACTER_ENTER when true, CHARACTER_EXIT when false.
        entered: bool,
    },
    /// Any other type: other services' business, ignored quietly.
    Other(String),
}

pub fn decode_map_status(payload: Option<&[u8]>) -> Result<MapStatus, BadRecord> {
    let object = parse_payload(payload)?;
    let event = Body {
        path: "",
        object: &object,
    };

    let entered = match event.string("type")? {
        "CHARACTER_ENTER" => true,
        "CHARACTER_EXIT" => false,
        other => return Ok(MapStatus::Other(other.to_string())),
    };

    let body = Body {
        path: "body.",
        object: event.object("body")?,
    };
    Ok(MapStatus::CharacterMoved {
        position: Position {
            world_id: event.byte("worldId")?,
            channel_id: event.byte("channelId")?,
            map_id: event.u32("mapId")?,
        },
        character_id: body.u32("characterId")?,
        entered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_headers() -> Vec<(String, Option<Vec<u8>>)> {
        vec![
            (
                "TENANT_ID".into(),
                Some(b"083839c6-c47c-42a6-9585-76492795d123".to_vec()),
            ),
            ("REGION".into(), Some(b"GMS".to_vec())),
            ("MAJOR_VERSION".into(), Some(vec![0, 83])),
            ("MINOR_VERSION".into(), Some(vec![0, 1])),
        ]
    }

    fn reason_of<T: fmt::Debug>(result: Result<T, BadRecord>) -> BadReason {
        result.expect_err("must be rejected").reason
    }

    #[test]
    fn tenant_headers_decode() {
        let tenant = decode_tenant(&good_headers()).unwrap();
        assert_eq!(tenant.region, "GMS");
        assert_eq!(tenant.major_version, 83);
        assert_eq!(tenant.minor_version, 1);
    }

    #[test]
    fn tenant_header_faults_are_named() {
        let mut missing = good_headers();
        missing.remove(0);
        assert_eq!(reason_of(decode_tenant(&missing)), BadReason::MissingHeader);

        let mut not_uuid = good_headers();
        not_uuid[0].1 = Some(b"tenant-one".to_vec());
        assert_eq!(
            reason_of(decode_tenant(&not_uuid)),
            BadReason::MalformedHeader
        );

        let mut compact_uuid = good_headers();
        compact_uuid[0].1 = Some(b"083839c6c47c42a6958576492795d123".to_vec());
        assert_eq!(
            reason_of(decode_tenant(&compact_uuid)),
            BadReason::MalformedHeader
        );

        let mut three_bytes = good_headers();
        three_bytes[2].1 = Some(vec![0, 0, 83]);
        let error = decode_tenant(&three_bytes).unwrap_err();
        assert_eq!(error.reason, BadReason::MalformedHeader);
        assert!(error.detail.contains("MAJOR_VERSION"), "{error}");

        let mut repeated = good_headers();
        repeated.push(("REGION".into(), Some(b"KMS".to_vec())));
        assert_eq!(
            reason_of(decode_tenant(&repeated)),
            BadReason::MalformedHeader
        );

        let mut empty = good_headers();
        empty[1].1 = None;
        assert_eq!(reason_of(decode_tenant(&empty)), BadReason::MalformedHeader);
    }

    #[test]
    fn header_name_must_be_utf8() {
        assert_eq!(decode_header_name(b"traceparent").unwrap(), "traceparent");
        let error = decode_header_name(b"trace\xffparent").unwrap_err();
        assert_eq!(error.reason, BadReason::MalformedHeader);
        assert!(error.detail.contains("trace\u{fffd}parent"), "{error}");
    }

    #[test]
    fn trace_headers_are_kept() {
        let mut headers = good_headers();
        headers.push(("traceparent".into(), Some(b"00-abc-def-01".to_vec())));
        headers.push(("other".into(), Some(b"x".to_vec())));
        assert_eq!(
            trace_headers(&headers),
            vec![("traceparent".to_string(), b"00-abc-def-01".to_vec())]
        );
    }

    #[test]
    fn logout_decodes() {
        let payload = br#"{"worldId":0,"characterId":1234,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#;
        assert_eq!(
            decode_character_status(Some(payload)).unwrap(),
            CharacterStatus::Logout {
                world_id: 0,
                channel_id: 1,
                character_id: 1234,
                map_id: 200090010
            }
        );
    }

    #[test]
    fn other_character_types_are_ignored() {
        let payload = br#"{"worldId":0,"characterId":1,"type":"LOGIN","body":{"anything":true}}"#;
        assert_eq!(
            decode_character_status(Some(payload)).unwrap(),
            CharacterStatus::Other("LOGIN".into())
        );
    }

    #[test]
    fn bad_bodies_are_classified() {
        let cases: &[(&[u8], BadReason)] = &[
            (b"", BadReason::EmptyPayload),
            (br#"{"worldId":0,"characterId":1234,"type":"LOG"#, BadReason::InvalidJson),
            (b"[1,2]", BadReason::WrongFieldType),
            (br#"{"worldId":"0","characterId":1,"type":"LOGOUT","body":{"channelId":1,"mapId":1}}"#, BadReason::WrongFieldType),
            (br#"{"worldId":300,"characterId":1,"type":"LOGOUT","body":{"channelId":1,"mapId":1}}"#, BadReason::OutOfRange),
            (br#"{"worldId":0,"characterId":-5,"type":"LOGOUT","body":{"channelId":1,"mapId":1}}"#, BadReason::OutOfRange),
            (br#"{"worldId":0,"characterId":4294967296,"type":"LOGOUT","body":{"channelId":1,"mapId":1}}"#, BadReason::OutOfRange),
            (br#"{"worldId":0,"characterId":1.5,"type":"LOGOUT","body":{"channelId":1,"mapId":1}}"#, BadReason::OutOfRange),
            (br#"{"worldId":0,"characterId":1,"type":"LOGOUT"}"#, BadReason::MissingField),
            (br#"{"worldId":0,"characterId":1,"type":"LOGOUT","body":[]}"#, BadReason::WrongFieldType),
            (br#"{"worldId":0,"characterId":1,"body":{}}"#, BadReason::MissingField),
            (br#"{"worldId":0,"characterId":1,"type":7,"body":{}}"#, BadReason::WrongFieldType),
        ];
        for (payload, reason) in cases {
            let result = decode_character_status(Some(payload));
            assert_eq!(
                reason_of(result),
                *reason,
                "payload {}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn oversized_payload_is_rejected_unread() {
        let payload = vec![b' '; MAX_RECORD_BYTES + 1];
        assert_eq!(
            reason_of(decode_character_status(Some(&payload))),
            BadReason::Oversized
        );
    }

    #[test]
    fn channel_status_decodes() {
        let started =
            br#"{"type":"STARTED","worldId":0,"channelId":1,"ipAddress":"10.0.0.5","port":8585}"#;
        assert_eq!(
            decode_channel_status(Some(started)).unwrap(),
            ChannelStatus {
                world_id: 0,
                channel_id: 1,
                started: true
            }
        );

        let unknown = br#"{"type":"PAUSED","worldId":0,"channelId":1}"#;
        assert_eq!(
            reason_of(decode_channel_status(Some(unknown))),
            BadReason::UnknownType
        );
    }

    /// Mutates valid payloads and headers byte by byte (a fixed-seed
    /// xorshift, so a failure repeats) and runs every decoder on them: each
    /// must return, never panic.
    #[test]
    fn decoders_survive_mutated_input() {
        let payloads: [&[u8]; 3] = [
            br#"{"worldId":0,"characterId":1234,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#,
            br#"{"type":"STARTED","worldId":0,"channelId":1,"ipAddress":"10.0.0.5","port":8585}"#,
            br#"{"worldId":0,"channelId":1,"mapId":101000301,"type":"CHARACTER_ENTER","body":{"characterId":1234}}"#,
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };

        for round in 0..20_000 {
            let mut payload = payloads[round % payloads.len()].to_vec();
            for _ in 0..(next() % 4 + 1) {
                let position = (next() as usize) % payload.len();
                match next() % 3 {
                    0 => payload[position] = next() as u8,
                    1 => payload.truncate(position),
                    _ => payload.insert(position, next() as u8),
                }
                if payload.is_empty() {
                    break;
                }
            }
            let _ = decode_character_status(Some(&payload));
            let _ = decode_channel_status(Some(&payload));
            let _ = decode_map_status(Some(&payload));

            let mut headers = good_headers();
            let header = (next() as usize) % headers.len();
            let value: Vec<u8> = (0..next() % 40).map(|_| next() as u8).collect();
            headers[header].1 = Some(value);
            let _ = decode_tenant(&headers);
            let _ = trace_headers(&headers);
        }
    }

    #[test]
    fn map_status_decodes() {
        let enter = br#"{"transactionId":"5b0b3c1a-5a2b-4f7e-9c1d-111111111111","worldId":0,"channelId":1,"mapId":101000301,"type":"CHARACTER_ENTER","body":{"characterId":1234}}"#;
        assert_eq!(
            decode_map_status(Some(enter)).unwrap(),
            MapStatus::CharacterMoved {
                position: Position {
                    world_id: 0,
                    channel_id: 1,
                    map_id: 101000301,
                },
                character_id: 1234,
                entered: true
            }
        );

        let other = br#"{"worldId":0,"channelId":1,"mapId":1,"type":"WEATHER_START","body":{}}"#;
        assert_eq!(
            decode_map_status(Some(other)).unwrap(),
            MapStatus::Other("WEATHER_START".into())
        );
    }
}
