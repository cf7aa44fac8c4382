//! Property tests of the consumed-record decoders in `records`: random
//! bytes, mutated valid records, generated JSON and random header sets.
//! Every decoder must return `Ok` or `Err` and never panic, a decoded
//! record must carry the values of its JSON, and a valid record must
//! decode to what was encoded.
//!
//! Case counts are kept small enough that the whole file runs in a few
//! seconds in a debug build.

use atlas_transports::presence::Position;
use atlas_transports::records::{
    decode_channel_status, decode_character_status, decode_header_name, decode_map_status,
    decode_tenant, parse_payload, trace_headers, BadReason, ChannelStatus, CharacterStatus,
    MapStatus, MAX_RECORD_BYTES, TRACE_HEADERS,
};
use atlas_transports::tenant::Tenant;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};
use uuid::Uuid;

type Headers = Vec<(String, Option<Vec<u8>>)>;

const VALID_PAYLOADS: [&[u8]; 5] = [
    br#"{"worldId":0,"characterId":1234,"type":"LOGOUT","body":{"channelId":1,"mapId":200090010}}"#,
    br#"{"type":"STARTED","worldId":0,"channelId":1,"ipAddress":"10.0.0.5","port":8585}"#,
    br#"{"type":"SHUTDOWN","worldId":3,"channelId":20}"#,
    br#"{"transactionId":"5b0b3c1a-5a2b-4f7e-9c1d-111111111111","worldId":0,"channelId":1,"mapId":101000301,"type":"CHARACTER_ENTER","body":{"characterId":1234}}"#,
    br#"{"worldId":0,"channelId":1,"mapId":101000301,"type":"CHARACTER_EXIT","body":{"characterId":4294967295}}"#,
];

/// Field names the decoders look for, so generated objects reach past the
/// first missing field.
const FIELD_NAMES: [&str; 8] = [
    "type",
    "worldId",
    "channelId",
    "characterId",
    "mapId",
    "body",
    "ipAddress",
    "transactionId",
];

/// Type names the decoders branch on.
const TYPE_NAMES: [&str; 7] = [
    "LOGOUT",
    "LOGIN",
    "STARTED",
    "SHUTDOWN",
    "CHARACTER_ENTER",
    "CHARACTER_EXIT",
    "PAUSED",
];

fn config(cases: u32) -> Config {
    Config {
        cases,
        ..Config::default()
    }
}

fn good_headers() -> Headers {
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

/// Runs every payload decoder on `payload`. When `parse_payload` rejects
/// it, every decoder must reject it for the same reason.
fn decode_everything(payload: &[u8]) {
    let parsed = parse_payload(Some(payload));
    let character = decode_character_status(Some(payload));
    let channel = decode_channel_status(Some(payload));
    let map = decode_map_status(Some(payload));
    if parsed.is_err() {
        assert_eq!(character.map_err(|e| e.reason), Err(parsed_reason(payload)));
        assert_eq!(channel.map_err(|e| e.reason), Err(parsed_reason(payload)));
        assert_eq!(map.map_err(|e| e.reason), Err(parsed_reason(payload)));
    }
}

fn parsed_reason(payload: &[u8]) -> BadReason {
    parse_payload(Some(payload)).unwrap_err().reason
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Replace { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { at: usize },
    Repeat { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Replace { at, byte }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        at.prop_map(|at| Mutation::Remove { at }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, 1usize..16).prop_map(|(at, len)| Mutation::Repeat { at, len }),
    ]
}

/// Applies `mutation` at a position taken modulo the current length.
fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        if let Mutation::Insert { byte, .. } = mutation {
            bytes.push(*byte);
        }
        return;
    }
    match *mutation {
        Mutation::Flip { at, bit } => bytes[at % len] ^= 1 << bit,
        Mutation::Replace { at, byte } => bytes[at % len] = byte,
        Mutation::Insert { at, byte } => bytes.insert(at % (len + 1), byte),
        Mutation::Remove { at } => {
            bytes.remove(at % len);
        }
        Mutation::Truncate { at } => bytes.truncate(at % len),
        Mutation::Repeat { at, len: count } => {
            let start = at % len;
            let end = (start + count).min(len);
            let copy = bytes[start..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

/// JSON numbers the decoders must sort into in-range, out-of-range and
/// wrong-type: bytes, u32 bounds, negatives, floats and numbers past u64.
fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u8>().prop_map(|n| json!(n)),
        any::<u32>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(u32::MAX as u64 + 1)),
        Just(json!(256)),
        Just(json!(-1)),
        Just(json!(1.0)),
    ]
}

/// Any JSON value, nested a few levels, biased to the decoders' field names
/// and type names.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        proptest::sample::select(&TYPE_NAMES[..]).prop_map(|name| json!(name)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((field_name(), inner), 0..7)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(&FIELD_NAMES[..]).prop_map(str::to_string),
        1 => "[a-zA-Z]{0,8}",
    ]
}

/// Generates JSON objects with the decoders' fields, each present or not and
/// of any type. Most of the time `type` is one of the known names.
fn event_object() -> impl Strategy<Value = Map<String, Value>> {
    let kind = prop_oneof![
        4 => proptest::sample::select(&TYPE_NAMES[..]).prop_map(|name| json!(name)),
        1 => json_value(),
    ];
    let body = proptest::collection::vec((field_name(), json_number()), 0..4)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()));
    let maybe = |strategy: BoxedStrategy<Value>| proptest::option::weighted(0.9, strategy);
    (
        maybe(kind.boxed()),
        maybe(json_number().boxed()),
        maybe(json_number().boxed()),
        maybe(json_number().boxed()),
        maybe(json_number().boxed()),
        maybe(prop_oneof![4 => body, 1 => json_value()].boxed()),
    )
        .prop_map(|(kind, world, channel, character, map, body)| {
            let mut object = Map::new();
            for (name, value) in [
                ("type", kind),
                ("worldId", world),
                ("channelId", channel),
                ("characterId", character),
                ("mapId", map),
                ("body", body),
            ] {
                if let Some(value) = value {
                    object.insert(name.to_string(), value);
                }
            }
            object
        })
}

fn as_byte(value: &Value) -> u8 {
    u8::try_from(value.as_u64().expect("accepted as a whole number")).expect("accepted as a byte")
}

fn as_u32(value: &Value) -> u32 {
    u32::try_from(value.as_u64().expect("accepted as a whole number")).expect("accepted as a u32")
}

/// Generates one header: a tenant or trace header name (or any other), with a
/// value that is missing, empty, well-formed or random.
fn header() -> impl Strategy<Value = (String, Option<Vec<u8>>)> {
    let name = prop_oneof![
        4 => proptest::sample::select(vec![
            "TENANT_ID", "REGION", "MAJOR_VERSION", "MINOR_VERSION",
            "traceparent", "tracestate", "uber-trace-id", "tenant_id",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ];
    let value = prop_oneof![
        Just(None),
        Just(Some(Vec::new())),
        Just(Some(b"083839c6-c47c-42a6-9585-76492795d123".to_vec())),
        any::<[u8; 2]>().prop_map(|pair| Some(pair.to_vec())),
        "[A-Z]{1,4}".prop_map(|text| Some(text.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(Some),
    ];
    (name, value)
}

/// One edit of a valid header set.
#[derive(Clone, Debug)]
enum HeaderEdit {
    Remove(usize),
    Repeat(usize),
    ClearValue(usize),
    SetValue(usize, Vec<u8>),
    Mutate(usize, Mutation),
    Add(String, Option<Vec<u8>>),
    Swap(usize, usize),
}

fn header_edit() -> impl Strategy<Value = HeaderEdit> {
    let index = any::<usize>();
    prop_oneof![
        index.prop_map(HeaderEdit::Remove),
        index.prop_map(HeaderEdit::Repeat),
        index.prop_map(HeaderEdit::ClearValue),
        (index, proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(at, value)| HeaderEdit::SetValue(at, value)),
        (index, mutation()).prop_map(|(at, edit)| HeaderEdit::Mutate(at, edit)),
        header().prop_map(|(name, value)| HeaderEdit::Add(name, value)),
        (index, index).prop_map(|(a, b)| HeaderEdit::Swap(a, b)),
    ]
}

fn edit_headers(headers: &mut Headers, edit: &HeaderEdit) {
    let len = headers.len();
    if len == 0 {
        if let HeaderEdit::Add(name, value) = edit {
            headers.push((name.clone(), value.clone()));
        }
        return;
    }
    match edit {
        HeaderEdit::Remove(at) => {
            headers.remove(at % len);
        }
        HeaderEdit::Repeat(at) => headers.push(headers[at % len].clone()),
        HeaderEdit::ClearValue(at) => headers[at % len].1 = None,
        HeaderEdit::SetValue(at, value) => headers[at % len].1 = Some(value.clone()),
        HeaderEdit::Mutate(at, mutation) => {
            if let Some(value) = headers[at % len].1.as_mut() {
                apply(value, mutation);
            }
        }
        HeaderEdit::Add(name, value) => headers.push((name.clone(), value.clone())),
        HeaderEdit::Swap(a, b) => headers.swap(a % len, b % len),
    }
}

/// Checks what `decode_tenant` promises of a header set it accepts: each
/// tenant header appears once, with a value of the contract's form.
fn check_accepted_tenant(headers: &Headers, tenant: &Tenant) {
    let only = |name: &str| {
        let values: Vec<&Option<Vec<u8>>> = headers
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value)
            .collect();
        assert_eq!(values.len(), 1, "{name} appears once in {headers:?}");
        values[0].clone().expect("accepted header has a value")
    };
    // UUID text is case-insensitive, so upper-case hex digits decode too.
    assert_eq!(
        only("TENANT_ID").to_ascii_lowercase(),
        tenant.id.hyphenated().to_string().as_bytes()
    );
    assert_eq!(only("REGION"), tenant.region.as_bytes());
    assert!(!tenant.region.trim().is_empty());
    assert_eq!(only("MAJOR_VERSION"), tenant.major_version.to_be_bytes());
    assert_eq!(only("MINOR_VERSION"), tenant.minor_version.to_be_bytes());
}

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn random_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&payload);
        let _ = decode_character_status(None);
    }

    #[test]
    fn mutated_records_never_panic(
        which in 0..VALID_PAYLOADS.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut payload = VALID_PAYLOADS[which].to_vec();
        for mutation in &mutations {
            apply(&mut payload, mutation);
        }
        decode_everything(&payload);
    }

    #[test]
    fn random_headers_never_panic(
        headers in proptest::collection::vec(header(), 0..8),
    ) {
        if let Ok(tenant) = decode_tenant(&headers) {
            check_accepted_tenant(&headers, &tenant);
        }
        for (name, value) in trace_headers(&headers) {
            prop_assert!(TRACE_HEADERS.contains(&name.as_str()));
            prop_assert!(headers.contains(&(name, Some(value))));
        }
    }

    #[test]
    fn header_names_decode_when_utf8(name in proptest::collection::vec(any::<u8>(), 0..32)) {
        let decoded = decode_header_name(&name);
        prop_assert_eq!(decoded.ok(), String::from_utf8(name).ok());
    }

    #[test]
    fn mutated_headers_never_panic(edits in proptest::collection::vec(header_edit(), 1..5)) {
        let mut headers = good_headers();
        for edit in &edits {
            edit_headers(&mut headers, edit);
        }
        if let Ok(tenant) = decode_tenant(&headers) {
            check_accepted_tenant(&headers, &tenant);
        }
        let _ = trace_headers(&headers);
    }
}

proptest! {
    #![proptest_config(config(1_000))]

    /// Generated JSON objects with the decoders' fields in any type: an
    /// accepted record contains exactly the values of its JSON.
    #[test]
    fn decoded_values_match_the_json(object in event_object()) {
        let payload = serde_json::to_vec(&object).unwrap();
        decode_everything(&payload);

        match decode_character_status(Some(&payload)) {
            Ok(CharacterStatus::Logout { world_id, channel_id, character_id, map_id }) => {
                prop_assert_eq!(&object["type"], "LOGOUT");
                prop_assert_eq!(world_id, as_byte(&object["worldId"]));
                prop_assert_eq!(character_id, as_u32(&object["characterId"]));
                prop_assert_eq!(channel_id, as_byte(&object["body"]["channelId"]));
                prop_assert_eq!(map_id, as_u32(&object["body"]["mapId"]));
            }
            Ok(CharacterStatus::Other(kind)) => {
                prop_assert_ne!(kind.as_str(), "LOGOUT");
                prop_assert_eq!(&object["type"], kind.as_str());
            }
            Err(_) => {}
        }

        if let Ok(status) = decode_channel_status(Some(&payload)) {
            let kind = if status.started { "STARTED" } else { "SHUTDOWN" };
            prop_assert_eq!(&object["type"], kind);
            prop_assert_eq!(status.world_id, as_byte(&object["worldId"]));
            prop_assert_eq!(status.channel_id, as_byte(&object["channelId"]));
        }

        match decode_map_status(Some(&payload)) {
            Ok(MapStatus::CharacterMoved { position, character_id, entered }) => {
                let kind = if entered { "CHARACTER_ENTER" } else { "CHARACTER_EXIT" };
                prop_assert_eq!(&object["type"], kind);
                prop_assert_eq!(position.world_id, as_byte(&object["worldId"]));
                prop_assert_eq!(position.channel_id, as_byte(&object["channelId"]));
                prop_assert_eq!(position.map_id, as_u32(&object["mapId"]));
                prop_assert_eq!(character_id, as_u32(&object["body"]["characterId"]));
            }
            Ok(MapStatus::Other(kind)) => {
                prop_assert!(kind != "CHARACTER_ENTER" && kind != "CHARACTER_EXIT");
            }
            Err(_) => {}
        }
    }

    /// Any JSON value at all, nested up to a few levels.
    #[test]
    fn any_json_never_panics(value in json_value()) {
        decode_everything(&serde_json::to_vec(&value).unwrap());
    }

    /// Valid events built from their values decode back to the same values,
    /// whatever extra fields they carry.
    #[test]
    fn valid_records_round_trip(
        world_id in any::<u8>(),
        channel_id in any::<u8>(),
        character_id in any::<u32>(),
        map_id in any::<u32>(),
        entered in any::<bool>(),
        started in any::<bool>(),
        extra in json_value(),
    ) {
        let logout = json!({
            "worldId": world_id, "characterId": character_id, "type": "LOGOUT",
            "body": {"channelId": channel_id, "mapId": map_id, "extra": extra},
        });
        prop_assert_eq!(
            decode_character_status(Some(logout.to_string().as_bytes())).unwrap(),
            CharacterStatus::Logout { world_id, channel_id, character_id, map_id }
        );

        let channel = json!({
            "type": if started { "STARTED" } else { "SHUTDOWN" },
            "worldId": world_id, "channelId": channel_id, "extra": extra,
        });
        prop_assert_eq!(
            decode_channel_status(Some(channel.to_string().as_bytes())).unwrap(),
            ChannelStatus { world_id, channel_id, started }
        );

        let moved = json!({
            "transactionId": Uuid::nil().to_string(),
            "worldId": world_id, "channelId": channel_id, "mapId": map_id,
            "type": if entered { "CHARACTER_ENTER" } else { "CHARACTER_EXIT" },
            "body": {"characterId": character_id, "extra": extra},
        });
        let position = Position { world_id, channel_id, map_id };
        prop_assert_eq!(
            decode_map_status(Some(moved.to_string().as_bytes())).unwrap(),
            MapStatus::CharacterMoved { position, character_id, entered }
        );
    }

    /// A tenant's own headers, in any order and among other headers,
    /// decode to that tenant.
    #[test]
    fn tenant_headers_round_trip(
        id in any::<[u8; 16]>(),
        region in "[A-Z]{1,4}",
        major_version in any::<u16>(),
        minor_version in any::<u16>(),
        others in proptest::collection::vec(("x-[a-z]{1,6}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8))), 0..3),
        rotation in any::<usize>(),
    ) {
        let tenant = Tenant { id: Uuid::from_bytes(id), region, major_version, minor_version };
        let mut headers: Headers = tenant
            .kafka_headers()
            .into_iter()
            .map(|(name, value)| (name.to_string(), Some(value)))
            .chain(others)
            .collect();
        let len = headers.len();
        headers.rotate_left(rotation % len);
        prop_assert_eq!(decode_tenant(&headers).unwrap(), tenant);
    }
}

#[test]
fn oversized_payload_is_rejected_before_parsing() {
    let mut payload = VALID_PAYLOADS[0].to_vec();
    payload.resize(MAX_RECORD_BYTES + 1, b' ');
    assert_eq!(parsed_reason(&payload), BadReason::Oversized);
}
