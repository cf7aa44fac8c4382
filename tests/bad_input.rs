//! Bad input against the running service: a corpus of malformed records on
//! the three consumed topics, each followed by a good record, sent to the
//! in-process Kafka cluster. Checks that every good record has its effect
//! once, that every bad record is counted once under its reason and copied
//! once to the dead-letter topic, and that the service writes nothing else.
//!
//! The corpus is the table in `corpus()`. Findings it pins down:
//! - A JSON object with a repeated key keeps the last value (serde_json's
//!   `Value` does this, as Go's encoding/json does), so the last value
//!   decides whether the record is good.
//! - The tenant is checked before the payload: a record of a tenant that is
//!   not configured is ignored, whatever its payload.
//! - `MAJOR_VERSION` sent as the text "83" is two bytes, so it decodes as
//!   the big-endian number 14,387. Tenants are matched by id, region and
//!   version, so the record belongs to an unconfigured tenant and is
//!   ignored.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant as WallInstant};

use atlas_transports::records::MAX_RECORD_BYTES;
use atlas_transports::settings::Settings;
use atlas_transports::wire::{character_key, MAX_DEAD_LETTER_VALUE_BYTES};
use common::default_settings;
use common::ferry::{self, CABIN, DECK, DESTINATION, DOCK, STAGING};
use common::kafka::{
    tenant_headers, Record, ServiceThread, TestCluster, PATIENCE, TENANT_A, TENANT_B,
};
use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use uuid::Uuid;

const ROUTE_MAPS: [u32; 3] = [STAGING, DECK, CABIN];

/// Riders of the map-status records stand on this world and channel, which
/// no channel-status record starts, so no departure moves them.
const RIDER_WORLD: u8 = 1;
const RIDER_CHANNEL: u8 = 9;

const DEAD_LETTERS: &str = "DEAD_LETTERS";

type Headers = Vec<(String, Option<Vec<u8>>)>;

/// The consumed topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Topic {
    Character,
    Channel,
    Map,
}

impl Topic {
    fn name(self, settings: &Settings) -> &str {
        match self {
            Topic::Character => &settings.topics.character_status,
            Topic::Channel => &settings.topics.channel_status,
            Topic::Map => &settings.topics.map_status,
        }
    }
}

/// What the service must do with one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Rejected: counted under this reason label and copied to the
    /// dead-letter topic.
    Bad(&'static str),
    /// Valid but not acted on: counted as ignored, nothing written.
    Ignored,
    /// A LOGOUT aboard: one CHANGE_MAP to the dock.
    Logout {
        character_id: u32,
        world_id: u8,
        channel_id: u8,
    },
    /// A CHARACTER_ENTER of a route map on the riders' channel: presence
    /// lists the character there.
    Enter { character_id: u32, map_id: u32 },
    /// A channel STARTED: the registry lists it as live.
    Live { world_id: u8, channel_id: u8 },
    /// A channel SHUTDOWN: the registry no longer lists it.
    Down { world_id: u8, channel_id: u8 },
}

use Expect::*;
use Topic::*;

/// One record of the corpus. `value: None` sends a record without a value
/// (a tombstone).
struct Case {
    topic: Topic,
    name: String,
    key: Option<Vec<u8>>,
    headers: Headers,
    value: Option<Vec<u8>>,
    expect: Expect,
}

fn case(
    topic: Topic,
    name: &str,
    key: Option<&[u8]>,
    headers: Headers,
    value: Option<Vec<u8>>,
    expect: Expect,
) -> Case {
    Case {
        topic,
        name: name.to_string(),
        key: key.map(<[u8]>::to_vec),
        headers,
        value,
        expect,
    }
}

// Header sets, from tenant A's good four.

fn good() -> Headers {
    tenant_headers(TENANT_A)
}

fn none() -> Headers {
    Vec::new()
}

fn without(name: &str) -> Headers {
    good().into_iter().filter(|(n, _)| n != name).collect()
}

fn with(name: &str, value: Option<&[u8]>) -> Headers {
    good()
        .into_iter()
        .map(|(n, v)| {
            if n == name {
                (n, value.map(<[u8]>::to_vec))
            } else {
                (n, v)
            }
        })
        .collect()
}

fn plus(name: &str, value: Option<&[u8]>) -> Headers {
    let mut headers = good();
    headers.push((name.to_string(), value.map(<[u8]>::to_vec)));
    headers
}

fn lower_case_names() -> Headers {
    good()
        .into_iter()
        .map(|(n, v)| (n.to_lowercase(), v))
        .collect()
}

// Values.

fn value(bytes: &[u8]) -> Option<Vec<u8>> {
    Some(bytes.to_vec())
}

fn cat(parts: &[&[u8]]) -> Option<Vec<u8>> {
    Some(parts.concat())
}

fn logout(character_id: u32, channel_id: u8, map_id: u32) -> Vec<u8> {
    json!({"worldId": 0, "characterId": character_id, "type": "LOGOUT",
           "body": {"channelId": channel_id, "mapId": map_id}})
    .to_string()
    .into_bytes()
}

fn enter(character_id: u32, map_id: u32) -> Vec<u8> {
    json!({"transactionId": Uuid::new_v4().to_string(),
           "worldId": RIDER_WORLD, "channelId": RIDER_CHANNEL, "mapId": map_id,
           "type": "CHARACTER_ENTER", "body": {"characterId": character_id}})
    .to_string()
    .into_bytes()
}

fn started(world_id: u8, channel_id: u8) -> Vec<u8> {
    json!({"type": "STARTED", "worldId": world_id, "channelId": channel_id,
           "ipAddress": "127.0.0.1", "port": 8585})
    .to_string()
    .into_bytes()
}

/// `open` `depth` times, then `inner`, then `close` `depth` times.
fn nested(open: &str, inner: &str, close: &str, depth: usize) -> Option<Vec<u8>> {
    Some(format!("{}{inner}{}", open.repeat(depth), close.repeat(depth)).into_bytes())
}

/// Builds a channel STARTED whose port is wrapped in `depth` arrays.
fn deep_port(depth: usize) -> Option<Vec<u8>> {
    let port = format!("{}8585{}", "[".repeat(depth), "]".repeat(depth));
    Some(format!(r#"{{"type":"STARTED","worldId":0,"channelId":1,"port":{port}}}"#).into_bytes())
}

/// Builds a LOGOUT aboard, padded with a string field to exactly `size` bytes.
fn padded_logout(character_id: u32, size: usize) -> Option<Vec<u8>> {
    let head = format!(
        r#"{{"worldId":0,"characterId":{character_id},"type":"LOGOUT","body":{{"channelId":1,"mapId":{DECK}}},"padding":""#
    );
    let mut value = head.into_bytes();
    value.resize(size - 2, b'x');
    value.extend_from_slice(br#""}"#);
    Some(value)
}

fn utf16le(text: &str) -> Option<Vec<u8>> {
    Some(text.encode_utf16().flat_map(u16::to_le_bytes).collect())
}

const KEY: Option<&[u8]> = Some(b"bad-key");
const BINARY_KEY: Option<&[u8]> = Some(&[0xff, 0x00, 0xfe, 0x01]);
const NO_KEY: Option<&[u8]> = None;

/// A LOGOUT aboard the deck, for the header cases.
const LOGOUT: &[u8] =
    br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#;
const CHANNEL_STARTED: &[u8] =
    br#"{"type":"STARTED","worldId":0,"channelId":1,"ipAddress":"10.0.0.5","port":8585}"#;
const MAP_ENTER: &[u8] = br#"{"transactionId":"5b0b3c1a-5a2b-4f7e-9c1d-111111111111","worldId":1,"channelId":9,"mapId":101000301,"type":"CHARACTER_ENTER","body":{"characterId":10}}"#;
const TENANT_A_UPPER: &[u8] = b"083839C6-C47C-42A6-9585-76492795D123";

/// Lists the corpus: (topic, name, key, headers, value, expected outcome).
/// The test follows every row with a good record on the same topic.
#[rustfmt::skip]
fn corpus() -> Vec<Case> {
    vec![
        // Character status: JSON syntax.
        case(Character, "truncated JSON", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGO"#), Bad("invalid_json")),
        case(Character, "trailing garbage", KEY, good(), cat(&[LOGOUT, b" }x"]), Bad("invalid_json")),
        case(Character, "two objects in one value", NO_KEY, good(), cat(&[LOGOUT, LOGOUT]), Bad("invalid_json")),
        case(Character, "single quotes", KEY, good(), value(b"{'worldId':0,'characterId':10,'type':'LOGOUT'}"), Bad("invalid_json")),
        case(Character, "trailing comma", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010},}"#), Bad("invalid_json")),
        case(Character, "comment before the object", KEY, good(), cat(&[b"// logout\n", LOGOUT]), Bad("invalid_json")),
        case(Character, "NaN literal", KEY, good(), value(br#"{"worldId":NaN,"characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("invalid_json")),
        case(Character, "byte order mark", KEY, good(), cat(&[b"\xef\xbb\xbf", LOGOUT]), Bad("invalid_json")),
        case(Character, "whitespace only", KEY, good(), value(b" \n\t "), Bad("invalid_json")),
        case(Character, "NUL bytes", BINARY_KEY, good(), value(&[0; 16]), Bad("invalid_json")),
        case(Character, "binary garbage", BINARY_KEY, good(), value(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), Bad("invalid_json")),
        case(Character, "number past f64", KEY, good(), value(br#"{"worldId":0,"characterId":1e400,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("invalid_json")),
        // Character status: invalid UTF-8 and other encodings.
        case(Character, "invalid UTF-8 in the type", KEY, good(), value(b"{\"worldId\":0,\"characterId\":10,\"type\":\"LOGOUT\xff\",\"body\":{\"channelId\":1,\"mapId\":200090010}}"), Bad("invalid_json")),
        case(Character, "overlong UTF-8 in an unread field", KEY, good(), value(b"{\"worldId\":0,\"characterId\":10,\"type\":\"LOGOUT\",\"note\":\"\xc0\xaf\",\"body\":{\"channelId\":1,\"mapId\":200090010}}"), Bad("invalid_json")),
        case(Character, "lone surrogate escape", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT\ud800","body":{"channelId":1,"mapId":200090010}}"#), Bad("invalid_json")),
        case(Character, "UTF-16 text", KEY, good(), utf16le(r#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("invalid_json")),
        // Character status: nested garbage.
        case(Character, "arrays nested 100,000 deep", KEY, good(), nested("[", "", "]", 100_000), Bad("invalid_json")),
        case(Character, "bodies nested 200 deep", KEY, good(), nested(r#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":"#, r#"{"channelId":1,"mapId":200090010}"#, "}", 200), Bad("invalid_json")),
        case(Character, "arrays in place of numbers", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"channelId":[[[1]]],"mapId":200090010}}"#), Bad("wrong_field_type")),
        case(Character, "body inside body", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"body":{"channelId":1,"mapId":200090010}}}"#), Bad("missing_field")),
        // Character status: no value, or not an object.
        case(Character, "empty value", KEY, good(), value(b""), Bad("empty_payload")),
        case(Character, "null value", KEY, good(), None, Bad("empty_payload")),
        case(Character, "JSON null", KEY, good(), value(b"null"), Bad("wrong_field_type")),
        case(Character, "JSON array", KEY, good(), cat(&[b"[", LOGOUT, b"]"]), Bad("wrong_field_type")),
        case(Character, "JSON string", KEY, good(), value(br#""LOGOUT""#), Bad("wrong_field_type")),
        case(Character, "JSON number", KEY, good(), value(b"42"), Bad("wrong_field_type")),
        // Character status: wrong JSON types.
        case(Character, "worldId as text", KEY, good(), value(br#"{"worldId":"0","characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("wrong_field_type")),
        case(Character, "characterId true", KEY, good(), value(br#"{"worldId":0,"characterId":true,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("wrong_field_type")),
        case(Character, "body.mapId null", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":null}}"#), Bad("wrong_field_type")),
        case(Character, "body as text", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":"{\"channelId\":1,\"mapId\":200090010}"}"#), Bad("wrong_field_type")),
        case(Character, "type as number", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":1,"body":{"channelId":1,"mapId":200090010}}"#), Bad("wrong_field_type")),
        case(Character, "type null", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":null,"body":{"channelId":1,"mapId":200090010}}"#), Bad("wrong_field_type")),
        // Character status: missing fields.
        case(Character, "type missing", KEY, good(), value(br#"{"worldId":0,"characterId":10,"body":{"channelId":1,"mapId":200090010}}"#), Bad("missing_field")),
        case(Character, "body missing", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT"}"#), Bad("missing_field")),
        case(Character, "characterId missing", KEY, good(), value(br#"{"worldId":0,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("missing_field")),
        case(Character, "body.mapId missing", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"channelId":1}}"#), Bad("missing_field")),
        // Character status: numbers out of range.
        case(Character, "worldId 256", KEY, good(), value(br#"{"worldId":256,"characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("out_of_range")),
        case(Character, "body.channelId 256", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"channelId":256,"mapId":200090010}}"#), Bad("out_of_range")),
        case(Character, "characterId 2^32", KEY, good(), value(br#"{"worldId":0,"characterId":4294967296,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("out_of_range")),
        case(Character, "mapId 2^32 + DECK", KEY, good(), value(br#"{"worldId":0,"characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":4495057306}}"#), Bad("out_of_range")),
        case(Character, "characterId past u64", KEY, good(), value(br#"{"worldId":0,"characterId":18446744073709551616,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("out_of_range")),
        case(Character, "characterId -1", KEY, good(), value(br#"{"worldId":0,"characterId":-1,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("out_of_range")),
        case(Character, "worldId -0", KEY, good(), value(br#"{"worldId":-0,"characterId":10,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("out_of_range")),
        case(Character, "characterId 1.5", KEY, good(), value(br#"{"worldId":0,"characterId":1.5,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("out_of_range")),
        case(Character, "characterId 10.0", KEY, good(), value(br#"{"worldId":0,"characterId":10.0,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("out_of_range")),
        case(Character, "characterId 1e1", KEY, good(), value(br#"{"worldId":0,"characterId":1e1,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("out_of_range")),
        // Character status: repeated keys keep the last value.
        case(Character, "repeated key, text last", KEY, good(), value(br#"{"worldId":0,"characterId":7001,"characterId":"7001","type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Bad("wrong_field_type")),
        case(Character, "repeated key, number last", KEY, good(), value(br#"{"worldId":0,"characterId":"7002","characterId":7002,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Logout { character_id: 7002, world_id: 0, channel_id: 1 }),
        case(Character, "repeated type, LOGOUT last", KEY, good(), value(br#"{"type":"LOGIN","worldId":0,"characterId":7003,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#), Logout { character_id: 7003, world_id: 0, channel_id: 1 }),
        case(Character, "repeated type, LOGIN last", KEY, good(), value(br#"{"type":"LOGOUT","worldId":0,"characterId":7004,"type":"LOGIN","body":{"channelId":1,"mapId":200090010}}"#), Ignored),
        case(Character, "repeated body, not merged", KEY, good(), value(br#"{"worldId":0,"characterId":7005,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010},"body":{"channelId":2}}"#), Bad("missing_field")),
        // Character status: oversized.
        case(Character, "value over 1 MiB", KEY, good(), padded_logout(7006, 2 * MAX_RECORD_BYTES), Bad("oversized")),
        case(Character, "value of exactly 1 MiB", KEY, good(), padded_logout(7007, MAX_RECORD_BYTES), Logout { character_id: 7007, world_id: 0, channel_id: 1 }),
        case(Character, "600 KiB of garbage", KEY, good(), Some(vec![b'{'; 600 * 1024]), Bad("invalid_json")),
        // Character status: headers.
        case(Character, "no headers", KEY, none(), value(LOGOUT), Bad("missing_header")),
        case(Character, "TENANT_ID missing", KEY, without("TENANT_ID"), value(LOGOUT), Bad("missing_header")),
        case(Character, "REGION missing", KEY, without("REGION"), value(LOGOUT), Bad("missing_header")),
        case(Character, "MAJOR_VERSION missing", KEY, without("MAJOR_VERSION"), value(LOGOUT), Bad("missing_header")),
        case(Character, "MINOR_VERSION missing", KEY, without("MINOR_VERSION"), value(LOGOUT), Bad("missing_header")),
        case(Character, "TENANT_ID repeated, same value", KEY, plus("TENANT_ID", Some(TENANT_A.as_bytes())), value(LOGOUT), Bad("malformed_header")),
        case(Character, "TENANT_ID repeated, other tenant", KEY, plus("TENANT_ID", Some(TENANT_B.as_bytes())), value(LOGOUT), Bad("malformed_header")),
        case(Character, "TENANT_ID without a value", KEY, with("TENANT_ID", None), value(LOGOUT), Bad("malformed_header")),
        case(Character, "TENANT_ID empty", KEY, with("TENANT_ID", Some(b"")), value(LOGOUT), Bad("malformed_header")),
        case(Character, "TENANT_ID without hyphens", KEY, with("TENANT_ID", Some(b"083839c6c47c42a6958576492795d123")), value(LOGOUT), Bad("malformed_header")),
        case(Character, "TENANT_ID in braces", KEY, with("TENANT_ID", Some(b"{083839c6-c47c-42a6-9585-76492795d123}")), value(LOGOUT), Bad("malformed_header")),
        case(Character, "MAJOR_VERSION empty", KEY, with("MAJOR_VERSION", Some(b"")), value(LOGOUT), Bad("malformed_header")),
        case(Character, "MINOR_VERSION four bytes", KEY, with("MINOR_VERSION", Some(&[0, 0, 0, 1])), value(LOGOUT), Bad("malformed_header")),
        // Character status: valid records that are not acted on, or odd but valid.
        case(Character, "LOGIN", KEY, good(), value(br#"{"worldId":0,"characterId":7008,"type":"LOGIN","body":{}}"#), Ignored),
        case(Character, "LOGIN with garbage fields", KEY, good(), value(br#"{"type":"LOGIN","worldId":"x","body":[]}"#), Ignored),
        case(Character, "LOGOUT on a map of no route", KEY, good(), value(&logout(7009, 1, DESTINATION)), Ignored),
        case(Character, "tenant not configured, value not JSON", KEY, tenant_headers(TENANT_B), value(b"{not json"), Ignored),
        case(Character, "largest world and channel", KEY, good(), value(br#"{"worldId":255,"characterId":4294967294,"type":"LOGOUT","body":{"channelId":255,"mapId":200090011}}"#), Logout { character_id: u32::MAX - 1, world_id: 255, channel_id: 255 }),
        case(Character, "unknown fields", KEY, good(), value(br#"{"worldId":0,"characterId":7010,"type":"LOGOUT","extra":[{"deep":[null]}],"body":{"channelId":1,"mapId":200090010,"x":null}}"#), Logout { character_id: 7010, world_id: 0, channel_id: 1 }),
        case(Character, "TENANT_ID in upper case", KEY, with("TENANT_ID", Some(TENANT_A_UPPER)), value(&logout(7011, 1, DECK)), Logout { character_id: 7011, world_id: 0, channel_id: 1 }),
        case(Character, "MAJOR_VERSION as the text 83", KEY, with("MAJOR_VERSION", Some(b"83")), value(&logout(7012, 1, DECK)), Ignored),
        case(Character, "configured id with another region", KEY, with("REGION", Some(b"KMS")), value(&logout(7015, 1, DECK)), Ignored),
        case(Character, "extra header without a value", KEY, plus("x-empty", None), value(&logout(7013, 1, DECK)), Logout { character_id: 7013, world_id: 0, channel_id: 1 }),

        // Channel status.
        case(Channel, "type PAUSED", KEY, good(), value(br#"{"type":"PAUSED","worldId":0,"channelId":1}"#), Bad("unknown_type")),
        case(Channel, "type in lower case", KEY, good(), value(br#"{"type":"started","worldId":0,"channelId":1}"#), Bad("unknown_type")),
        case(Channel, "type empty", KEY, good(), value(br#"{"type":"","worldId":0,"channelId":1}"#), Bad("unknown_type")),
        case(Channel, "a command on the event topic", KEY, good(), value(br#"{"type":"STATUS_REQUEST"}"#), Bad("unknown_type")),
        case(Channel, "repeated type, PAUSED last", KEY, good(), value(br#"{"type":"STARTED","worldId":0,"channelId":1,"type":"PAUSED"}"#), Bad("unknown_type")),
        case(Channel, "type missing", KEY, good(), value(br#"{"worldId":0,"channelId":1}"#), Bad("missing_field")),
        case(Channel, "worldId missing", KEY, good(), value(br#"{"type":"STARTED","channelId":1}"#), Bad("missing_field")),
        case(Channel, "type as array", KEY, good(), value(br#"{"type":["STARTED"],"worldId":0,"channelId":1}"#), Bad("wrong_field_type")),
        case(Channel, "channelId as text", KEY, good(), value(br#"{"type":"STARTED","worldId":0,"channelId":"1"}"#), Bad("wrong_field_type")),
        case(Channel, "channelId as object", KEY, good(), value(br#"{"type":"STARTED","worldId":0,"channelId":{"id":1}}"#), Bad("wrong_field_type")),
        case(Channel, "channelId 256", KEY, good(), value(br#"{"type":"STARTED","worldId":0,"channelId":256}"#), Bad("out_of_range")),
        case(Channel, "worldId -1", KEY, good(), value(br#"{"type":"STARTED","worldId":-1,"channelId":1}"#), Bad("out_of_range")),
        case(Channel, "channelId 1.0", KEY, good(), value(br#"{"type":"STARTED","worldId":0,"channelId":1.0}"#), Bad("out_of_range")),
        case(Channel, "invalid UTF-8 in ipAddress", KEY, good(), value(b"{\"type\":\"STARTED\",\"worldId\":0,\"channelId\":1,\"ipAddress\":\"10.0.0.\xfe\"}"), Bad("invalid_json")),
        case(Channel, "port nested 500 deep", KEY, good(), deep_port(500), Bad("invalid_json")),
        case(Channel, "JSON true", KEY, good(), value(b"true"), Bad("wrong_field_type")),
        case(Channel, "empty value", KEY, good(), value(b""), Bad("empty_payload")),
        case(Channel, "null value", NO_KEY, good(), None, Bad("empty_payload")),
        case(Channel, "no headers", KEY, none(), value(CHANNEL_STARTED), Bad("missing_header")),
        case(Channel, "header names in lower case", KEY, lower_case_names(), value(CHANNEL_STARTED), Bad("missing_header")),
        case(Channel, "REGION repeated", KEY, plus("REGION", Some(b"KMS")), value(CHANNEL_STARTED), Bad("malformed_header")),
        case(Channel, "REGION blank", KEY, with("REGION", Some(b"  ")), value(CHANNEL_STARTED), Bad("malformed_header")),
        case(Channel, "REGION not UTF-8", KEY, with("REGION", Some(b"G\xffS")), value(CHANNEL_STARTED), Bad("malformed_header")),
        case(Channel, "MAJOR_VERSION one byte", KEY, with("MAJOR_VERSION", Some(&[83])), value(CHANNEL_STARTED), Bad("malformed_header")),
        case(Channel, "MINOR_VERSION without a value", KEY, with("MINOR_VERSION", None), value(CHANNEL_STARTED), Bad("malformed_header")),
        case(Channel, "TENANT_ID not a UUID", KEY, with("TENANT_ID", Some(b"tenant-a")), value(CHANNEL_STARTED), Bad("malformed_header")),
        case(Channel, "repeated type, STARTED last", KEY, good(), value(br#"{"type":"PAUSED","worldId":0,"channelId":201,"type":"STARTED"}"#), Live { world_id: 0, channel_id: 201 }),
        case(Channel, "largest world and channel", KEY, good(), value(&started(255, 255)), Live { world_id: 255, channel_id: 255 }),
        case(Channel, "SHUTDOWN of a live channel", KEY, good(), value(br#"{"type":"SHUTDOWN","worldId":255,"channelId":255}"#), Down { world_id: 255, channel_id: 255 }),
        case(Channel, "tenant not configured", KEY, tenant_headers(TENANT_B), value(&started(0, 202)), Ignored),

        // Map status.
        case(Map, "not JSON", KEY, good(), value(b"{not json"), Bad("invalid_json")),
        case(Map, "truncated JSON", KEY, good(), Some(MAP_ENTER[..MAP_ENTER.len() / 2].to_vec()), Bad("invalid_json")),
        case(Map, "invalid UTF-8 in transactionId", KEY, good(), value(b"{\"transactionId\":\"\xed\xa0\x80\",\"worldId\":1,\"channelId\":9,\"mapId\":101000301,\"type\":\"CHARACTER_ENTER\",\"body\":{\"characterId\":10}}"), Bad("invalid_json")),
        case(Map, "objects nested 1,000 deep", KEY, good(), nested(r#"{"a":"#, "1", "}", 1_000), Bad("invalid_json")),
        case(Map, "body.characterId missing", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":101000301,"type":"CHARACTER_ENTER","body":{}}"#), Bad("missing_field")),
        case(Map, "mapId missing", KEY, good(), value(br#"{"worldId":1,"channelId":9,"type":"CHARACTER_ENTER","body":{"characterId":10}}"#), Bad("missing_field")),
        case(Map, "body as array", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":101000301,"type":"CHARACTER_ENTER","body":[10]}"#), Bad("wrong_field_type")),
        case(Map, "type as number", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":101000301,"type":3,"body":{"characterId":10}}"#), Bad("wrong_field_type")),
        case(Map, "JSON array", KEY, good(), cat(&[b"[", MAP_ENTER, b"]"]), Bad("wrong_field_type")),
        case(Map, "mapId 2^32 + STAGING", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":4395967597,"type":"CHARACTER_ENTER","body":{"characterId":10}}"#), Bad("out_of_range")),
        case(Map, "mapId negative", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":-101000301,"type":"CHARACTER_ENTER","body":{"characterId":10}}"#), Bad("out_of_range")),
        case(Map, "worldId 1.5", KEY, good(), value(br#"{"worldId":1.5,"channelId":9,"mapId":101000301,"type":"CHARACTER_ENTER","body":{"characterId":10}}"#), Bad("out_of_range")),
        case(Map, "characterId 1e10", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":101000301,"type":"CHARACTER_ENTER","body":{"characterId":1e10}}"#), Bad("out_of_range")),
        case(Map, "characterId past u64", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":101000301,"type":"CHARACTER_ENTER","body":{"characterId":99999999999999999999999}}"#), Bad("out_of_range")),
        case(Map, "empty value", KEY, good(), value(b""), Bad("empty_payload")),
        case(Map, "null value", BINARY_KEY, good(), None, Bad("empty_payload")),
        case(Map, "value over 1 MiB", KEY, good(), Some(vec![b' '; MAX_RECORD_BYTES + 1]), Bad("oversized")),
        case(Map, "TENANT_ID repeated", KEY, plus("TENANT_ID", Some(TENANT_A.as_bytes())), value(MAP_ENTER), Bad("malformed_header")),
        case(Map, "TENANT_ID empty", KEY, with("TENANT_ID", Some(b"")), value(MAP_ENTER), Bad("malformed_header")),
        case(Map, "TENANT_ID not UTF-8", KEY, with("TENANT_ID", Some(b"083839c6-c47c-42a6-9585-76492795d12\xff")), value(MAP_ENTER), Bad("malformed_header")),
        case(Map, "MAJOR_VERSION missing", KEY, without("MAJOR_VERSION"), value(MAP_ENTER), Bad("missing_header")),
        case(Map, "MINOR_VERSION three bytes", KEY, with("MINOR_VERSION", Some(&[0, 0, 1])), value(MAP_ENTER), Bad("malformed_header")),
        case(Map, "MAJOR_VERSION repeated", KEY, plus("MAJOR_VERSION", Some(&[0, 83])), value(MAP_ENTER), Bad("malformed_header")),
        case(Map, "unknown map-status type", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":101000301,"type":"WEATHER_START","body":{}}"#), Ignored),
        case(Map, "repeated characterId, last counts", KEY, good(), value(br#"{"worldId":1,"channelId":9,"mapId":200090010,"type":"CHARACTER_ENTER","body":{"characterId":1,"characterId":8001}}"#), Enter { character_id: 8001, map_id: DECK }),
        case(Map, "largest character id", KEY, good(), value(&enter(u32::MAX, CABIN)), Enter { character_id: u32::MAX, map_id: CABIN }),
        case(Map, "tenant not configured", KEY, tenant_headers(TENANT_B), value(&enter(8002, STAGING)), Ignored),
    ]
}

/// Builds the good record that follows row `index` on `topic`, and its effect.
fn good_after(topic: Topic, index: usize) -> (Vec<u8>, Expect) {
    let character_id = 50_000 + index as u32;
    let map_id = ROUTE_MAPS[index % ROUTE_MAPS.len()];
    match topic {
        Character => {
            let channel_id = (index % 200) as u8 + 1;
            (
                logout(character_id, channel_id, map_id),
                Logout {
                    character_id,
                    world_id: 0,
                    channel_id,
                },
            )
        }
        Map => (
            enter(character_id, map_id),
            Enter {
                character_id,
                map_id,
            },
        ),
        Channel => {
            let channel_id = (index % 200) as u8;
            (
                started(0, channel_id),
                Live {
                    world_id: 0,
                    channel_id,
                },
            )
        }
    }
}

/// Writes a configuration folder with one ferry route, whose trips are an
/// hour apart, and tenant A alone.
fn config_dir() -> PathBuf {
    let durations = json!({
        "boardingWindowDurationMinutes": 20,
        "preDepartureDurationMinutes": 1,
        "travelDurationMinutes": 20,
        "cycleIntervalMinutes": 60
    });
    ferry::config_dir("ferry-slow", durations, &[TENANT_A])
}

/// (character, map) of everyone presence lists in the route maps. Every
/// rider entered on the same world and channel.
fn riders_in_presence(service: &ServiceThread) -> BTreeSet<(u32, u32)> {
    service
        .occupants(TENANT_A, &ROUTE_MAPS)
        .into_iter()
        .inspect(|occupant| {
            assert_eq!(
                (occupant.position.world_id, occupant.position.channel_id),
                (RIDER_WORLD, RIDER_CHANNEL)
            );
        })
        .map(|occupant| (occupant.character_id, occupant.position.map_id))
        .collect()
}

/// Plays the game cluster's services. The producer is idempotent, so the
/// records of a topic keep the order they were sent in.
struct Sender {
    producer: BaseProducer,
}

impl Sender {
    fn new(bootstrap: &str) -> Sender {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("message.max.bytes", "4000000")
            .set("enable.idempotence", "true")
            .create()
            .expect("create test producer");
        Sender { producer }
    }

    fn send(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, headers: &Headers) {
        let mut owned = OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        self.producer
            .send(record)
            .map_err(|(error, _)| error)
            .expect("queue test record");
    }

    /// Waits until the broker has every record sent.
    fn flush(&self) {
        self.producer.flush(PATIENCE).expect("deliver test records");
    }

    /// Sends a record with one extra header whose name is not UTF-8.
    /// rdkafka's `Header` cannot express that name because it is a `&str`,
    /// so this goes through librdkafka's `rd_kafka_produceva`.
    fn send_with_raw_header_name(
        &self,
        topic: &str,
        value: &[u8],
        name: &[u8],
        header_value: &[u8],
        headers: &Headers,
    ) {
        let topic = CString::new(topic).unwrap();
        let name = CString::new(name).unwrap();
        let names: Vec<CString> = headers
            .iter()
            .map(|(name, _)| CString::new(name.as_str()).unwrap())
            .collect();

        let mut fields = vec![
            rdsys::rd_kafka_vu_t {
                vtype: rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TOPIC,
                u: rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                    cstr: topic.as_ptr(),
                },
            },
            rdsys::rd_kafka_vu_t {
                vtype: rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
                u: rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                    i: rdsys::RD_KAFKA_MSG_F_COPY,
                },
            },
            rdsys::rd_kafka_vu_t {
                vtype: rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE,
                u: rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                    mem: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
                        ptr: value.as_ptr() as *mut _,
                        size: value.len(),
                    },
                },
            },
        ];
        let header = |name: &CString, value: &[u8]| rdsys::rd_kafka_vu_t {
            vtype: rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADER,
            u: rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                header: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                    name: name.as_ptr(),
                    val: value.as_ptr() as *const _,
                    size: value.len() as isize,
                },
            },
        };
        for (name, (_, value)) in names.iter().zip(headers) {
            fields.push(header(name, value.as_deref().unwrap_or_default()));
        }
        fields.push(header(&name, header_value));

        // SAFETY: every pointer in `fields` points into `topic`, `name`,
        // `names`, `headers` or `value`, which outlive the call, and
        // RD_KAFKA_MSG_F_COPY makes librdkafka copy the value before it
        // returns.
        let error = unsafe {
            rdsys::rd_kafka_produceva(
                self.producer.client().native_ptr(),
                fields.as_ptr(),
                fields.len(),
            )
        };
        assert!(error.is_null(), "rd_kafka_produceva failed");
    }
}

/// One record as sent: where it went and what the service must do.
struct Sent {
    topic: Topic,
    offset: i64,
    name: String,
    key: Option<Vec<u8>>,
    headers: Headers,
    value: Option<Vec<u8>>,
    expect: Expect,
}

/// The records sent so far, with the offset each got.
#[derive(Default)]
struct SentLog {
    records: Vec<Sent>,
    next_offset: HashMap<Topic, i64>,
}

impl SentLog {
    fn push(&mut self, row: Case) {
        let offset = self.next_offset.entry(row.topic).or_insert(0);
        self.records.push(Sent {
            topic: row.topic,
            offset: *offset,
            name: row.name,
            key: row.key,
            headers: row.headers,
            value: row.value,
            expect: row.expect,
        });
        *offset += 1;
    }
}

/// Reads a topic's partition 0 from the beginning to its end.
fn read_all(cluster: &TestCluster, topic: &str) -> Vec<Record> {
    cluster.reader(topic).drain()
}

/// Reads the offsets the service's group committed on the consumed topics.
fn committed_offsets(bootstrap: &str, settings: &Settings) -> BTreeMap<Topic, Offset> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &settings.consumer_group)
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for topic in [Character, Channel, Map] {
        partitions.add_partition(topic.name(settings), 0);
    }
    let committed = reader.committed_offsets(partitions, PATIENCE).unwrap();
    [Character, Channel, Map]
        .into_iter()
        .map(|topic| {
            let element = committed.find_partition(topic.name(settings), 0).unwrap();
            (topic, element.offset())
        })
        .collect()
}

#[test]
fn bad_records_are_skipped_and_reported_once() {
    let mut settings = default_settings();
    settings.dead_letter_topic = Some(DEAD_LETTERS.into());
    let cluster = TestCluster::start(&settings);
    let service = ServiceThread::start(&cluster.bootstrap, &settings, &config_dir());
    let sender = Sender::new(&cluster.bootstrap);

    let rows = corpus();
    let bad_rows = rows.iter().filter(|r| matches!(r.expect, Bad(_))).count();
    assert!(bad_rows >= 50, "corpus has {bad_rows} bad records");

    // Every row, then a good record on the same topic.
    let mut sent = SentLog::default();
    for (index, row) in rows.into_iter().enumerate() {
        let (good_value, good_effect) = good_after(row.topic, index);
        let topic_name = row.topic.name(&settings).to_string();
        sender.send(
            &topic_name,
            row.key.as_deref(),
            row.value.as_deref(),
            &row.headers,
        );
        sender.send(&topic_name, None, Some(&good_value), &good());
        let after = format!("good record after {:?}", row.name);
        let topic = row.topic;
        sent.push(row);
        sent.push(case(
            topic,
            &after,
            None,
            good(),
            Some(good_value),
            good_effect,
        ));
    }

    // A trace header whose name is not UTF-8, on a LOGOUT aboard, then a
    // good LOGOUT.
    let raw_name: &[u8] = b"trace\xffparent";
    let trace = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let raw_name_logout = logout(7014, 1, DECK);
    let character_topic = settings.topics.character_status.clone();
    sender.send_with_raw_header_name(&character_topic, &raw_name_logout, raw_name, trace, &good());
    let mut as_copied = good();
    as_copied.push((
        String::from_utf8_lossy(raw_name).into_owned(),
        Some(trace.to_vec()),
    ));
    sent.push(case(
        Character,
        "header name not UTF-8",
        NO_KEY,
        as_copied,
        Some(raw_name_logout),
        Bad("malformed_header"),
    ));
    let (good_value, good_effect) = good_after(Character, sent.records.len());
    sender.send(&character_topic, None, Some(&good_value), &good());
    sent.push(case(
        Character,
        "good record after a header name not UTF-8",
        NO_KEY,
        good(),
        Some(good_value),
        good_effect,
    ));
    sender.flush();
    let sent = sent.records;

    // Wait until each consumer has accounted for every record sent to it.
    let sent_to = |topic: Topic| sent.iter().filter(|row| row.topic == topic).count() as u64;
    let deadline = WallInstant::now() + PATIENCE;
    loop {
        let counters = service.consumer_counters();
        let done = [Character, Channel, Map].into_iter().all(|topic| {
            let c = &counters[topic.name(&settings)];
            c.handled + c.ignored + c.bad.values().sum::<u64>() >= sent_to(topic)
        });
        if done {
            break;
        }
        assert!(
            WallInstant::now() < deadline,
            "consumers did not account for every record: {counters:#?}"
        );
        thread::sleep(Duration::from_millis(20));
    }

    // Counters: each record counted once, under its outcome.
    let counters = service.consumer_counters();
    for topic in [Character, Channel, Map] {
        let of_topic: Vec<&Sent> = sent.iter().filter(|row| row.topic == topic).collect();
        let mut bad = BTreeMap::new();
        for row in &of_topic {
            if let Bad(reason) = row.expect {
                *bad.entry(reason).or_insert(0u64) += 1;
            }
        }
        let ignored = of_topic.iter().filter(|row| row.expect == Ignored).count() as u64;
        let handled = of_topic.len() as u64 - ignored - bad.values().sum::<u64>();
        let actual = &counters[topic.name(&settings)];
        assert_eq!(actual.bad, bad, "{topic:?} bad records by reason");
        assert_eq!(actual.ignored, ignored, "{topic:?} ignored records");
        assert_eq!(actual.handled, handled, "{topic:?} handled records");
        assert_eq!(actual.read_errors, 0, "{topic:?} read errors");
    }

    // Presence and the channel registry hold exactly the good records' effects.
    let mut riders = BTreeSet::new();
    let mut live = BTreeSet::new();
    for row in &sent {
        match row.expect {
            Enter {
                character_id,
                map_id,
            } => {
                riders.insert((character_id, map_id));
            }
            Live {
                world_id,
                channel_id,
            } => {
                live.insert((world_id, channel_id));
            }
            Down {
                world_id,
                channel_id,
            } => {
                live.remove(&(world_id, channel_id));
            }
            _ => {}
        }
    }
    assert_eq!(riders_in_presence(&service), riders, "riders in presence");
    assert_eq!(service.live_channels(TENANT_A), live, "live channels");

    // Stop, so every queued batch is written, then read what was written.
    service.stop();

    let commands = read_all(&cluster, &settings.topics.character_command);
    let expected_logouts: Vec<&Sent> = sent
        .iter()
        .filter(|row| matches!(row.expect, Logout { .. }))
        .collect();
    assert_eq!(
        commands.len(),
        expected_logouts.len(),
        "one CHANGE_MAP per good LOGOUT and nothing else: {:#?}",
        commands.iter().map(|c| &c.json).collect::<Vec<_>>()
    );
    let mut by_character: HashMap<u64, &Record> = HashMap::new();
    for command in &commands {
        let previous = by_character.insert(command.character_id(), command);
        assert!(
            previous.is_none(),
            "character moved twice: {:#?}",
            command.json
        );
    }
    for row in expected_logouts {
        let Logout {
            character_id,
            world_id,
            channel_id,
        } = row.expect
        else {
            unreachable!()
        };
        let command = by_character
            .get(&(character_id as u64))
            .unwrap_or_else(|| panic!("no CHANGE_MAP for {:?}", row.name));
        let expected = json!({"worldId": world_id, "characterId": character_id, "type": "CHANGE_MAP",
                            "body": {"channelId": channel_id, "mapId": DOCK, "portalId": 0}});
        assert_eq!(command.json, expected, "CHANGE_MAP for {:?}", row.name);
        assert_eq!(
            command.key,
            Some(character_key(character_id)),
            "key for {:?}",
            row.name
        );
        assert_eq!(command.header("TENANT_ID"), Some(TENANT_A.as_bytes()));
    }

    // Dead letters: one copy of each bad record, with its reason and source.
    let copies = read_all(&cluster, DEAD_LETTERS);
    let bad_sent: Vec<&Sent> = sent
        .iter()
        .filter(|row| matches!(row.expect, Bad(_)))
        .collect();
    assert_eq!(
        copies.len(),
        bad_sent.len(),
        "one dead-letter copy per bad record"
    );
    let mut by_source: HashMap<String, &Record> = HashMap::new();
    for copy in &copies {
        let source = String::from_utf8(
            copy.header("DEAD_LETTER_SOURCE")
                .expect("source header")
                .to_vec(),
        )
        .unwrap();
        let previous = by_source.insert(source.clone(), copy);
        assert!(previous.is_none(), "two copies of {source}");
    }
    for row in bad_sent {
        let Bad(reason) = row.expect else {
            unreachable!()
        };
        let source = format!("{}/0/{}", row.topic.name(&settings), row.offset);
        let copy = by_source
            .get(&source)
            .unwrap_or_else(|| panic!("no dead-letter copy of {:?} ({source})", row.name));
        let stated =
            String::from_utf8_lossy(copy.header("DEAD_LETTER_REASON").unwrap()).into_owned();
        assert!(
            stated.starts_with(&format!("{reason}: ")),
            "{:?}: reason {stated:?}, expected {reason}",
            row.name
        );
        assert_eq!(copy.key, row.key, "key of the copy of {:?}", row.name);

        let value = row.value.clone().unwrap_or_default();
        let mut headers: Vec<(String, Vec<u8>)> = row
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().unwrap_or_default()))
            .collect();
        headers.push(("DEAD_LETTER_REASON".into(), stated.clone().into_bytes()));
        headers.push(("DEAD_LETTER_SOURCE".into(), source.clone().into_bytes()));
        if value.len() > MAX_DEAD_LETTER_VALUE_BYTES {
            headers.push((
                "DEAD_LETTER_TRUNCATED".into(),
                value.len().to_string().into_bytes(),
            ));
            assert!(copy.payload.is_empty(), "value of {:?} left out", row.name);
        } else {
            assert_eq!(copy.payload, value, "value of the copy of {:?}", row.name);
        }
        assert_eq!(
            copy.headers, headers,
            "headers of the copy of {:?}",
            row.name
        );
    }

    // The one STATUS_REQUEST of start-up is the only channel command.
    let status_requests = read_all(&cluster, &settings.topics.channel_status_command);
    assert_eq!(status_requests.len(), 1, "{status_requests:#?}");

    // Every record was committed: none is read again after a restart.
    let committed = committed_offsets(&cluster.bootstrap, &settings);
    for topic in [Character, Channel, Map] {
        assert_eq!(
            committed[&topic],
            Offset::Offset(sent_to(topic) as i64),
            "{topic:?} committed offset"
        );
    }
}

/// Start-up replays recent map-status history into presence before the
/// group consumer resumes. A record there with a header name that is not
/// UTF-8 is skipped, and the records around it are still replayed.
#[test]
fn history_skips_header_name_not_utf8() {
    let settings = default_settings();
    let cluster = TestCluster::start(&settings);
    let sender = Sender::new(&cluster.bootstrap);
    let map_topic = settings.topics.map_status.clone();
    sender.send(&map_topic, None, Some(&enter(8001, STAGING)), &good());
    sender.send_with_raw_header_name(
        &map_topic,
        &enter(8002, STAGING),
        b"trace\xffparent",
        b"00",
        &good(),
    );
    sender.send(&map_topic, None, Some(&enter(8003, DECK)), &good());
    sender.flush();

    // The group resumes after these three records, so only the history
    // replay reads them.
    let committer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cluster.bootstrap)
        .set("group.id", &settings.consumer_group)
        .create()
        .expect("create committer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&map_topic, 0, Offset::Offset(3))
        .unwrap();
    committer
        .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
        .expect("commit map-status offset");

    let service = ServiceThread::start(&cluster.bootstrap, &settings, &config_dir());
    assert_eq!(
        riders_in_presence(&service),
        BTreeSet::from([(8001, STAGING), (8003, DECK)])
    );
}
