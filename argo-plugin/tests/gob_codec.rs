//! The gob codec against real Go bytes: spec 50 §7's worked examples (exact bytes both ways),
//! streams recorded from Go 1.19 with Argo-shaped stand-in types, round trips, and property
//! tests that random, truncated or mutated input yields errors, never panics — for gob values
//! and for whole net/rpc request streams.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use rollout_router_argo_plugin::gob::{
    Decoder, Encoder, EncoderKind, GobError, GobStruct, GobValue, TypeDesc,
};
use rollout_router_argo_plugin::netrpc::{
    self, Reply, RequestHeader, ResponseHeader, request_header_type, response_header_type,
};
use rollout_router_argo_plugin::rpc_types::{
    PluginArgs, RpcError, RpcVerified, VerifyWeightResponse, WeightDestination, string_reply,
};
use serde_json::json;

mod common;
use common::expected_rollout_json;

/// Bytes written as hex pairs and "quoted ASCII", separated by spaces.
fn hx(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap();
            out.extend_from_slice(&quoted.as_bytes()[..end]);
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out.push(u8::from_str_radix(&rest[..end], 16).unwrap());
            rest = rest[end..].trim_start();
        }
    }
    out
}

fn string(s: &str) -> GobValue {
    GobValue::String(s.to_owned())
}

fn pair_type() -> TypeDesc {
    TypeDesc::structure(
        "Pair",
        vec![("Name", TypeDesc::String), ("Weight", TypeDesc::Int)],
    )
}

fn pair(name: &str, weight: i64) -> GobValue {
    GobValue::Struct(
        GobStruct::new("Pair")
            .with("Name", string(name))
            .with("Weight", GobValue::Int(weight)),
    )
}

const PAIR_STREAM: &str = "26 ff 81 03 01 01 04 \"Pair\" 01 ff 82 00 01 02 \
    01 04 \"Name\" 01 0c 00 01 06 \"Weight\" 01 04 00 00 00 \
    0d ff 82 01 06 \"canary\" 01 28 00 \
    0d ff 82 01 06 \"stable\" 01 05 00";

#[test]
fn spec_7_1_struct_values_encode_to_go_bytes() {
    let mut encoder = Encoder::new();
    let mut bytes = encoder.encode(&pair_type(), &pair("canary", 20)).unwrap();
    bytes.extend(encoder.encode(&pair_type(), &pair("stable", -3)).unwrap());
    assert_eq!(bytes, hx(PAIR_STREAM));
}

#[test]
fn spec_7_1_struct_values_decode() {
    let values = Decoder::new().decode_stream(&hx(PAIR_STREAM)).unwrap();
    assert_eq!(values, vec![pair("canary", 20), pair("stable", -3)]);
}

const REQUEST_TYPE: &str = "2f ff 81 03 01 01 07 \"Request\" 01 ff 82 00 01 02 \
    01 0d \"ServiceMethod\" 01 0c 00 01 03 \"Seq\" 01 06 00 00 00";

#[test]
fn spec_7_2_init_plugin_request() {
    let stream = hx(&format!(
        "{REQUEST_TYPE} 16 ff 82 01 11 \"Plugin.InitPlugin\" 00 03 10 00 00"
    ));
    let values = Decoder::new().decode_stream(&stream).unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(
        RequestHeader::from_gob(&values[0]).unwrap(),
        RequestHeader {
            service_method: "Plugin.InitPlugin".into(),
            seq: 0
        }
    );
    assert_eq!(values[1], GobValue::Interface(None));

    // Our encoder writes the same request bytes (the Go host's side, used by tests).
    let mut encoder = Encoder::new();
    let header = RequestHeader {
        service_method: "Plugin.InitPlugin".into(),
        seq: 0,
    };
    let mut bytes = encoder
        .encode(&request_header_type(), &header.to_gob())
        .unwrap();
    bytes.extend(
        encoder
            .encode(&TypeDesc::Interface, &GobValue::Interface(None))
            .unwrap(),
    );
    assert_eq!(bytes, stream);
}

/// An encoder numbering types as the Go process of spec 50 §7.2 did.
fn go_numbered_reply_encoder() -> Encoder {
    let mut encoder = Encoder::new();
    encoder.pin_id(&response_header_type(), 66);
    encoder.pin_id(&Reply::empty_struct().ty, 67);
    encoder.pin_id(&RpcError::gob_type(), 68);
    encoder.pin_id(&VerifyWeightResponse::gob_type(), 73);
    encoder
}

fn response(encoder: &mut Encoder, method: &str, seq: u64, error: &str, reply: &Reply) -> Vec<u8> {
    let header = ResponseHeader {
        service_method: method.into(),
        seq,
        error: error.into(),
    };
    let mut bytes = encoder
        .encode(&response_header_type(), &header.to_gob())
        .unwrap();
    bytes.extend(encoder.encode(&reply.ty, &reply.value).unwrap());
    bytes
}

#[test]
fn spec_7_2_replies_encode_to_go_bytes() {
    let mut encoder = go_numbered_reply_encoder();
    let first = response(
        &mut encoder,
        "Plugin.InitPlugin",
        0,
        "",
        &RpcError::ok().reply(),
    );
    assert_eq!(
        first,
        hx("3a ff 83 03 01 01 08 \"Response\" 01 ff 84 00 01 03 \
            01 0d \"ServiceMethod\" 01 0c 00 01 03 \"Seq\" 01 06 00 01 05 \"Error\" 01 0c 00 00 00 \
            16 ff 84 01 11 \"Plugin.InitPlugin\" 00 \
            26 ff 87 03 01 01 08 \"RpcError\" 01 ff 88 00 01 01 01 0b \"ErrorString\" 01 0c 00 00 00 \
            03 ff 88 00")
    );
    let failed = response(
        &mut encoder,
        "Plugin.SetWeight",
        2,
        "",
        &RpcError::new("boom").reply(),
    );
    assert_eq!(
        failed,
        hx("17 ff 84 01 10 \"Plugin.SetWeight\" 01 02 00 09 ff 88 01 04 \"boom\" 00")
    );
    let verified = VerifyWeightResponse {
        verified: RpcVerified::Verified,
        err: RpcError::ok(),
    };
    let mut verify_body = Vec::new();
    verify_body.extend(
        encoder
            .encode(&verified.reply().ty, &verified.reply().value)
            .unwrap(),
    );
    assert_eq!(
        verify_body,
        hx(
            "38 ff 91 03 01 01 14 \"VerifyWeightResponse\" 01 ff 92 00 01 02 \
            01 08 \"Verified\" 01 04 00 01 03 \"Err\" 01 ff 88 00 00 00 \
            07 ff 92 01 02 01 00 00"
        )
    );
    let type_reply = string_reply("demo");
    assert_eq!(
        encoder.encode(&type_reply.ty, &type_reply.value).unwrap(),
        hx("07 0c 00 04 \"demo\"")
    );
}

#[test]
fn spec_7_4_control_stream() {
    // Dispense request body and reply body.
    let dispense = hx("19 0c 00 16 \"RpcTrafficRouterPlugin\"");
    assert_eq!(
        Decoder::new().decode_stream(&dispense).unwrap(),
        vec![string("RpcTrafficRouterPlugin")]
    );
    assert_eq!(
        Encoder::new()
            .encode(&TypeDesc::Uint, &GobValue::Uint(1))
            .unwrap(),
        hx("03 06 00 01")
    );

    // Ping: request (Request type already known on the stream), reply with struct{}.
    // Definitions alone are an incomplete stream (Go: io.ErrUnexpectedEOF), but they are learnt.
    let mut decoder = Decoder::new();
    assert_eq!(
        decoder.decode_stream(&hx(REQUEST_TYPE)),
        Err(GobError::Truncated)
    );
    let ping = decoder
        .decode_stream(&hx("13 ff 82 01 0c \"Control.Ping\" 01 01 00 03 02 00 01"))
        .unwrap();
    assert_eq!(
        RequestHeader::from_gob(&ping[0]).unwrap(),
        RequestHeader {
            service_method: "Control.Ping".into(),
            seq: 1
        }
    );
    assert_eq!(ping[1], GobValue::Bool(true));

    let mut encoder = go_numbered_reply_encoder();
    let _ = response(
        &mut encoder,
        "Plugin.InitPlugin",
        0,
        "",
        &RpcError::ok().reply(),
    );
    assert_eq!(
        response(&mut encoder, "Control.Ping", 1, "", &Reply::empty_struct()),
        hx("13 ff 84 01 0c \"Control.Ping\" 01 01 00 0a ff 85 03 01 02 ff 86 00 00 00 03 ff 86 00")
    );
    assert_eq!(
        response(
            &mut encoder,
            "Dispenser.Dispense",
            3,
            "unknown plugin type: Nope",
            &Reply::empty_struct()
        ),
        hx(
            "34 ff 84 01 12 \"Dispenser.Dispense\" 01 03 01 19 \"unknown plugin type: Nope\" 00 \
            03 ff 86 00"
        )
    );
}

fn mini_args_type() -> TypeDesc {
    let destination = TypeDesc::structure(
        "WeightDestination",
        vec![
            ("Weight", TypeDesc::Int),
            ("ServiceName", TypeDesc::String),
            ("PodTemplateHash", TypeDesc::String),
        ],
    );
    TypeDesc::structure(
        "MiniArgs",
        vec![
            (
                "Rollout",
                TypeDesc::structure(
                    "MiniRollout",
                    vec![("Name", TypeDesc::String), ("Namespace", TypeDesc::String)],
                ),
            ),
            ("DesiredWeight", TypeDesc::Int),
            (
                "AdditionalDestinations",
                TypeDesc::slice("[]main.WeightDestination", destination),
            ),
        ],
    )
}

fn mini_args(weight: i64, destinations: Vec<GobValue>) -> GobValue {
    let mut args = GobStruct::new("MiniArgs")
        .with(
            "Rollout",
            GobValue::Struct(
                GobStruct::new("MiniRollout")
                    .with("Name", string("ro"))
                    .with("Namespace", string("ns")),
            ),
        )
        .with("DesiredWeight", GobValue::Int(weight));
    if !destinations.is_empty() {
        args = args.with("AdditionalDestinations", GobValue::Slice(destinations));
    }
    GobValue::Struct(args)
}

fn experiment_destination() -> GobValue {
    GobValue::Struct(
        GobStruct::new("WeightDestination")
            .with("Weight", GobValue::Int(5))
            .with("ServiceName", string("exp-svc"))
            .with("PodTemplateHash", string("abc")),
    )
}

const MINI_ARGS_GOB: &[u8] = include_bytes!("fixtures/mini_args.gob");
const UPDATE_HASH_GOB: &[u8] = include_bytes!("fixtures/update_hash_args.gob");

/// Spec 50 §7.3's interface packing, against bytes a fresh Go 1.19 process wrote.
#[test]
fn interface_arguments_encode_exactly_like_go() {
    let mut encoder = Encoder::new();
    let mut bytes = encoder
        .encode_interface(
            "MiniArgs",
            &mini_args_type(),
            &mini_args(60, vec![experiment_destination()]),
        )
        .unwrap();
    bytes.extend(
        encoder
            .encode_interface("MiniArgs", &mini_args_type(), &mini_args(10, vec![]))
            .unwrap(),
    );
    assert_eq!(bytes, MINI_ARGS_GOB);
}

#[test]
fn interface_arguments_decode() {
    let values = Decoder::new().decode_stream(MINI_ARGS_GOB).unwrap();
    let wrap = |v| GobValue::Interface(Some(Box::new(("MiniArgs".to_owned(), v))));
    assert_eq!(
        values,
        vec![
            wrap(mini_args(60, vec![experiment_destination()])),
            wrap(mini_args(10, vec![])),
        ]
    );
}

/// A whole Argo-shaped `UpdateHashArgs` (metadata, timestamps, pod template with resources,
/// the plugin config block, steps and status) as recorded from Go, decoded to Argo's JSON.
#[test]
fn recorded_update_hash_args_become_argo_json() {
    let values = Decoder::new().decode_stream(UPDATE_HASH_GOB).unwrap();
    assert_eq!(values.len(), 1);
    let PluginArgs::UpdateHash(args) = PluginArgs::from_gob(&values[0]).unwrap() else {
        panic!("not UpdateHashArgs");
    };
    assert_eq!(args.canary_hash, "7bf84f9696");
    assert_eq!(args.stable_hash, "5d58bd77d4");
    assert_eq!(
        args.additional_destinations,
        vec![WeightDestination {
            weight: 10,
            service_name: "shop-exp".into(),
            pod_template_hash: "6c8fd9d9f".into()
        }]
    );
    assert_eq!(args.rollout, expected_rollout_json());
}

#[test]
fn malformed_inputs_are_errors() {
    let cases: Vec<(&str, Vec<u8>, GobError)> = vec![
        (
            "value of an undefined type",
            hx("03 ff 82 00"),
            GobError::UnknownType(65),
        ),
        (
            "definition below the user range",
            hx("03 7d 03 00"),
            GobError::InvalidTypeId(63),
        ),
        (
            "integer wider than 8 bytes",
            hx("02 f7 00"),
            GobError::InvalidInteger,
        ),
        (
            "string longer than the message",
            hx("04 0c 00 09 61"),
            GobError::LengthTooLarge(9),
        ),
        (
            "message longer than the stream",
            hx("05 0c 00"),
            GobError::Truncated,
        ),
        (
            "non-zero singleton delta",
            hx("03 0c 01 00"),
            GobError::NonZeroSingletonDelta,
        ),
        (
            "trailing bytes",
            hx("04 06 00 01 07"),
            GobError::TrailingData,
        ),
        ("empty message", hx("00"), GobError::EmptyMessage),
        (
            "nested non-nil interface",
            hx(
                "15 ff 81 03 01 01 01 \"S\" 01 ff 82 00 01 01 01 01 \"I\" 01 10 00 00 00 \
                06 ff 82 01 01 \"x\" 00",
            ),
            GobError::NestedInterface("x".into()),
        ),
        (
            "field number past the definition",
            hx(&format!(
                "{} 03 ff 82 03",
                &PAIR_STREAM[..PAIR_STREAM.find(" 0d").unwrap()]
            )),
            GobError::FieldOutOfRange(65),
        ),
    ];
    for (what, bytes, expected) in cases {
        assert_eq!(
            Decoder::new().decode_stream(&bytes).err(),
            Some(expected),
            "{what}"
        );
    }
    // A duplicate definition is rejected.
    let definition = &hx(PAIR_STREAM)[..39];
    let twice = [definition, definition].concat();
    assert_eq!(
        Decoder::new().decode_stream(&twice).err(),
        Some(GobError::DuplicateType(65))
    );
}

#[test]
fn time_values_keep_their_encoder_kind() {
    let time_type = TypeDesc::Encoded {
        name: "Time".into(),
        kind: EncoderKind::GobEncoder,
    };
    let ty = TypeDesc::structure("Meta", vec![("CreationTimestamp", time_type)]);
    let value = GobValue::Struct(GobStruct::new("Meta").with(
        "CreationTimestamp",
        GobValue::Encoded {
            type_name: "Time".into(),
            kind: EncoderKind::GobEncoder,
            bytes: vec![1, 0, 0, 0, 14, 221, 202, 120, 217, 0, 0, 0, 0, 255, 255],
        },
    ));
    let bytes = Encoder::new().encode(&ty, &value).unwrap();
    assert_eq!(
        Decoder::new().decode_stream(&bytes).unwrap(),
        vec![value.clone()]
    );
    assert_eq!(
        rollout_router_argo_plugin::go_json::to_json(&value),
        json!({"creationTimestamp": "2024-05-06T07:08:09Z"})
    );
}

// ---- property tests ----

fn destination_type() -> TypeDesc {
    TypeDesc::structure(
        "WeightDestination",
        vec![
            ("Weight", TypeDesc::Int),
            ("ServiceName", TypeDesc::String),
            ("PodTemplateHash", TypeDesc::String),
        ],
    )
}

fn rich_type() -> TypeDesc {
    TypeDesc::structure(
        "Rich",
        vec![
            ("Name", TypeDesc::String),
            ("Count", TypeDesc::Int),
            ("Seq", TypeDesc::Uint),
            ("On", TypeDesc::Bool),
            ("Raw", TypeDesc::Bytes),
            ("Ratio", TypeDesc::Float),
            (
                "Labels",
                TypeDesc::map("map[string]string", TypeDesc::String, TypeDesc::String),
            ),
            (
                "Items",
                TypeDesc::slice("[]WeightDestination", destination_type()),
            ),
            ("Inner", destination_type()),
            (
                "When",
                TypeDesc::Encoded {
                    name: "Time".into(),
                    kind: EncoderKind::GobEncoder,
                },
            ),
        ],
    )
}

/// Values whose present fields are non-zero (zero fields are omitted on the wire, so a round
/// trip returns them absent).
fn destination_value() -> impl Strategy<Value = GobValue> {
    (
        proptest::option::of(any::<i64>().prop_filter("non-zero", |n| *n != 0)),
        proptest::option::of("[a-z0-9-]{1,12}"),
        proptest::option::of("[a-f0-9]{1,10}"),
    )
        .prop_map(|(weight, service, hash)| {
            let mut s = GobStruct::new("WeightDestination");
            if let Some(w) = weight {
                s = s.with("Weight", GobValue::Int(w));
            }
            if let Some(v) = service {
                s = s.with("ServiceName", GobValue::String(v));
            }
            if let Some(v) = hash {
                s = s.with("PodTemplateHash", GobValue::String(v));
            }
            GobValue::Struct(s)
        })
}

fn rich_value() -> impl Strategy<Value = GobValue> {
    (
        proptest::option::of("\\PC{1,20}"),
        proptest::option::of(any::<i64>().prop_filter("non-zero", |n| *n != 0)),
        proptest::option::of(1..=u64::MAX),
        any::<bool>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..40)),
        proptest::option::of(
            any::<f64>().prop_filter("non-zero, comparable", |f| *f != 0.0 && !f.is_nan()),
        ),
        proptest::option::of(proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..5)),
        proptest::option::of(proptest::collection::vec(destination_value(), 1..4)),
        destination_value(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
    )
        .prop_map(
            |(name, count, seq, on, raw, ratio, labels, items, inner, when)| {
                let mut s = GobStruct::new("Rich");
                if let Some(v) = name {
                    s = s.with("Name", GobValue::String(v));
                }
                if let Some(v) = count {
                    s = s.with("Count", GobValue::Int(v));
                }
                if let Some(v) = seq {
                    s = s.with("Seq", GobValue::Uint(v));
                }
                if on {
                    s = s.with("On", GobValue::Bool(true));
                }
                if let Some(v) = raw {
                    s = s.with("Raw", GobValue::Bytes(v));
                }
                if let Some(v) = ratio {
                    s = s.with("Ratio", GobValue::Float(v));
                }
                if let Some(v) = labels {
                    let entries = v
                        .into_iter()
                        .map(|(k, v)| (GobValue::String(k), GobValue::String(v)))
                        .collect();
                    s = s.with("Labels", GobValue::Map(entries));
                }
                if let Some(v) = items {
                    s = s.with("Items", GobValue::Slice(v));
                }
                s = s.with("Inner", inner);
                if let Some(bytes) = when {
                    s = s.with(
                        "When",
                        GobValue::Encoded {
                            type_name: "Time".into(),
                            kind: EncoderKind::GobEncoder,
                            bytes,
                        },
                    );
                }
                GobValue::Struct(s)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(values in proptest::collection::vec(rich_value(), 1..4)) {
        let mut encoder = Encoder::new();
        let mut bytes = Vec::new();
        for value in &values {
            bytes.extend(encoder.encode(&rich_type(), value).unwrap());
        }
        prop_assert_eq!(Decoder::new().decode_stream(&bytes).unwrap(), values);
    }

    #[test]
    fn interface_round_trip(value in rich_value()) {
        let bytes = Encoder::new().encode_interface("Rich", &rich_type(), &value).unwrap();
        let decoded = Decoder::new().decode_stream(&bytes).unwrap();
        prop_assert_eq!(
            decoded,
            vec![GobValue::Interface(Some(Box::new(("Rich".to_owned(), value))))]
        );
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Decoder::new().decode_stream(&bytes);
        // Also as a single message body, where lengths inside are attacker-chosen.
        let _ = Decoder::new().feed(&bytes);
    }

    #[test]
    fn truncated_streams_are_errors(cut in 0..UPDATE_HASH_GOB.len()) {
        // The recorded argument is one top-level value spread over many messages: every
        // proper prefix is incomplete.
        let result = Decoder::new().decode_stream(&UPDATE_HASH_GOB[..cut]);
        prop_assert!(result.is_err() || result.as_ref().is_ok_and(|v| v.is_empty()));
        if cut > 0 {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn mutated_streams_never_panic(
        flips in proptest::collection::vec((0..UPDATE_HASH_GOB.len(), any::<u8>()), 1..8)
    ) {
        let mut bytes = UPDATE_HASH_GOB.to_vec();
        for (at, value) in flips {
            bytes[at] = value;
        }
        if let Ok(values) = Decoder::new().decode_stream(&bytes) {
            for value in &values {
                // Whatever decodes must also convert without panicking.
                let _ = PluginArgs::from_gob(value);
                let _ = rollout_router_argo_plugin::go_json::to_json(value);
            }
        }
    }
}

/// Every proper prefix of each recorded stream (not a sample): an error, never a value.
#[test]
fn every_truncation_of_the_recorded_streams_is_an_error() {
    for (name, stream) in [
        ("update_hash_args", UPDATE_HASH_GOB),
        ("mini_args", MINI_ARGS_GOB),
    ] {
        for cut in 1..stream.len() {
            let result = Decoder::new().decode_stream(&stream[..cut]);
            // mini_args holds two top-level values: a cut between them decodes the first.
            let complete_first = result.as_ref().is_ok_and(|v| v.len() == 1);
            assert!(
                result.is_err() || (name == "mini_args" && complete_first),
                "{name} cut at {cut}: {result:?}"
            );
        }
    }
}

/// A whole net/rpc request stream as the Go host writes it: header, then the interface body.
fn request_stream() -> Vec<u8> {
    let mut encoder = Encoder::new();
    let header = RequestHeader {
        service_method: "Plugin.SetWeight".into(),
        seq: 7,
    };
    let mut bytes = encoder
        .encode(&request_header_type(), &header.to_gob())
        .unwrap();
    bytes.extend(
        encoder
            .encode_interface(
                "MiniArgs",
                &mini_args_type(),
                &mini_args(60, vec![experiment_destination()]),
            )
            .unwrap(),
    );
    bytes
}

/// Reads requests until the stream ends or breaks; returns the complete ones and the ending.
fn read_requests(bytes: &[u8]) -> (Vec<netrpc::ReadRequest>, Result<(), netrpc::RpcError>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut reader = netrpc::RequestReader::new(bytes);
        let mut requests = Vec::new();
        loop {
            match reader.next_request().await {
                Ok(Some(request)) => requests.push(request),
                Ok(None) => return (requests, Ok(())),
                Err(e) => return (requests, Err(e)),
            }
        }
    })
}

#[test]
fn a_whole_request_stream_reads_back() {
    let (requests, end) = read_requests(&request_stream());
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(requests.len(), 1);
    let (header, body) = &requests[0];
    assert_eq!(
        (header.service_method.as_str(), header.seq),
        ("Plugin.SetWeight", 7)
    );
    assert!(body.is_ok(), "{body:?}");
}

#[test]
fn every_truncated_request_breaks_the_stream() {
    let stream = request_stream();
    for cut in 1..stream.len() {
        let (requests, end) = read_requests(&stream[..cut]);
        assert!(
            requests.is_empty() && end.is_err(),
            "cut at {cut}: {requests:?} {end:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes on an RPC stream: whatever is read, the reader ends (error or end of
    /// stream) without panicking.
    #[test]
    fn random_request_streams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_requests(&bytes);
    }

    /// A real request stream with bytes changed: no panic, and whatever body decodes also
    /// converts to call arguments (or an error) without panicking.
    #[test]
    fn mutated_request_streams_never_panic(
        flips in proptest::collection::vec((0..request_stream().len(), any::<u8>()), 1..6)
    ) {
        let mut bytes = request_stream();
        for (at, value) in flips {
            bytes[at] = value;
        }
        let (requests, _) = read_requests(&bytes);
        for (_, body) in &requests {
            if let Ok(body) = body {
                let _ = PluginArgs::from_gob(body);
            }
        }
    }
}
