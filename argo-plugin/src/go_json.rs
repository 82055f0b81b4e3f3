//! Turns a decoded Go value (an Argo `v1alpha1.Rollout`, a `SetHeaderRoute`…) into the JSON Argo
//! itself would write, so the rest of rollout-router reads one Rollout model.
//!
//! Gob carries Go field names, not JSON tags. The JSON name is the Go name with its leading
//! capital run lower-cased (Go's acronym style: `APIVersion` → `apiVersion`, `UID` → `uid`,
//! `SNIHosts` → `sniHosts`), except for the names listed in [`JSON_NAME_EXCEPTIONS`], which were
//! checked against Argo's `pkg/apis/rollouts/v1alpha1/types.go` and Kubernetes' types.
//!
//! What gob cannot carry (spec 50 §6.8) stays absent: zero scalars, nil pointers and pointers to
//! zero look alike. Two Argo step shapes are restored because Argo's validation leaves only one
//! reading: a canary step with no field at all is `setWeight: 0`, and a `setCanaryScale` with no
//! field is `replicas: 0` (same canary size as `weight: 0`).

use serde_json::{Map, Value};

use crate::gob::time::GoTime;
use crate::gob::{EncoderKind, GobStruct, GobValue};

/// Go field names whose JSON tag is not the lower-camel form of the name.
pub const JSON_NAME_EXCEPTIONS: &[(&str, &str)] = &[
    ("ObjectMeta", "metadata"),
    ("ListMeta", "metadata"),
    ("ALBs", "albs"),
    ("HPAReplicas", "HPAReplicas"),
];

/// Embedded Go structs whose fields JSON inlines into the parent (`json:",inline"`).
pub const INLINED_FIELDS: &[&str] = &[
    "TypeMeta",
    "RolloutAnalysis",
    "VolumeSource",
    "ProbeHandler",
    "PersistentVolumeSource",
];

/// Fields of type `json.RawMessage` (or `runtime.RawExtension`-like raw bytes) whose bytes are
/// JSON text to embed, not binary to base64: `RolloutTrafficRouting.Plugins` values,
/// `PluginStep.Config`, `StepPluginStatus.Status`, `FieldsV1.Raw`.
pub const RAW_JSON_FIELDS: &[&str] = &["Plugins", "Config", "Status", "Raw"];

/// The JSON name of a Go field (see the module documentation).
pub fn json_name(go_name: &str) -> String {
    if let Some((_, json)) = JSON_NAME_EXCEPTIONS.iter().find(|(go, _)| *go == go_name) {
        return (*json).to_owned();
    }
    let chars: Vec<char> = go_name.chars().collect();
    let run = chars.iter().take_while(|c| c.is_ascii_uppercase()).count();
    // In `SNIHosts` the run is `SNIH`; its last capital starts the next word and stays.
    let lower = if run > 1 && chars.get(run).is_some_and(|c| c.is_ascii_lowercase()) {
        run - 1
    } else {
        run
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < lower {
                c.to_ascii_lowercase()
            } else {
                *c
            }
        })
        .collect()
}

/// Converts a decoded Go value to Argo's JSON.
pub fn to_json(value: &GobValue) -> Value {
    convert(value, None)
}

/// `field`: the Go field name this value sits under (decides raw-JSON bytes).
fn convert(value: &GobValue, field: Option<&str>) -> Value {
    match value {
        GobValue::Bool(b) => Value::Bool(*b),
        GobValue::Int(n) => Value::from(*n),
        GobValue::Uint(n) => Value::from(*n),
        GobValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        GobValue::Complex(re, im) => Value::Array(vec![
            convert(&GobValue::Float(*re), None),
            convert(&GobValue::Float(*im), None),
        ]),
        GobValue::Bytes(bytes) => bytes_to_json(bytes, field),
        GobValue::String(s) => Value::String(s.clone()),
        GobValue::Struct(s) => struct_to_json(s),
        GobValue::Slice(items) | GobValue::Array(items) => {
            Value::Array(items.iter().map(|item| convert(item, field)).collect())
        }
        GobValue::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries {
                map.insert(map_key(key), convert(value, field));
            }
            Value::Object(map)
        }
        GobValue::Interface(None) => Value::Null,
        GobValue::Interface(Some(inner)) => convert(&inner.1, field),
        GobValue::Encoded {
            type_name,
            kind,
            bytes,
        } => encoded_to_json(type_name, *kind, bytes),
    }
}

fn bytes_to_json(bytes: &[u8], field: Option<&str>) -> Value {
    if field.is_some_and(|f| RAW_JSON_FIELDS.contains(&f))
        && let Ok(json) = serde_json::from_slice::<Value>(bytes)
    {
        return json;
    }
    // encoding/json writes other []byte as standard base64.
    Value::String(base64(bytes))
}

fn encoded_to_json(type_name: &str, kind: EncoderKind, bytes: &[u8]) -> Value {
    let is_time = matches!(type_name, "Time" | "MicroTime");
    if is_time
        && kind != EncoderKind::TextMarshaler
        && let Some(time) = GoTime::from_binary(bytes)
    {
        if time.is_zero() {
            return Value::Null;
        }
        return time
            .to_rfc3339(type_name == "MicroTime")
            .map_or(Value::Null, Value::String);
    }
    Value::String(base64(bytes))
}

fn map_key(key: &GobValue) -> String {
    match key {
        GobValue::String(s) => s.clone(),
        GobValue::Int(n) => n.to_string(),
        GobValue::Uint(n) => n.to_string(),
        GobValue::Bool(b) => b.to_string(),
        other => convert(other, None).to_string(),
    }
}

/// The Go type of a struct value. Gob names a type after the place it was first met: a struct
/// first reached as a map value (`ResourceList`'s `Quantity`) travels with an empty name, so
/// anonymous structs are recognised by their transmitted fields.
fn struct_kind(s: &GobStruct) -> &str {
    let only = |allowed: &[&str]| {
        !s.fields.is_empty() && s.fields.iter().all(|(f, _)| allowed.contains(&f.as_ref()))
    };
    match s.type_name.as_ref() {
        "" if only(&["Format"]) => "Quantity",
        "" if only(&["Type", "IntVal", "StrVal"]) => "IntOrString",
        name => name,
    }
}

fn struct_to_json(s: &GobStruct) -> Value {
    let kind = struct_kind(s);
    match kind {
        "IntOrString" => return int_or_string(s),
        // A Quantity's amount lives in unexported fields: only `Format` travels. An empty
        // string says "unknown" and still deserializes as a Kubernetes quantity.
        "Quantity" => return Value::String(String::new()),
        _ => {}
    }
    let mut map = Map::with_capacity(s.fields.len());
    for (name, value) in &s.fields {
        if INLINED_FIELDS.contains(&name.as_ref())
            && let Value::Object(inner) = convert(value, Some(name))
        {
            map.extend(inner);
            continue;
        }
        map.insert(json_name(name), convert(value, Some(name)));
    }
    restore_lost_zeroes(kind, &mut map);
    Value::Object(map)
}

/// JSON fields Argo always writes (no `omitempty`) or whose zero value validation implies.
fn restore_lost_zeroes(type_name: &str, map: &mut Map<String, Value>) {
    match type_name {
        "WeightDestination" => {
            map.entry("weight").or_insert(Value::from(0));
        }
        "CanaryStep" if map.is_empty() => {
            map.insert("setWeight".into(), Value::from(0));
        }
        "SetCanaryScale" if map.is_empty() => {
            map.insert("replicas".into(), Value::from(0));
        }
        _ => {}
    }
}

/// `intstr.IntOrString{Type, IntVal, StrVal}` → a JSON number or string (Type 1 = String).
fn int_or_string(s: &GobStruct) -> Value {
    let is_string = s.field("Type").and_then(GobValue::as_i64) == Some(1);
    if is_string {
        Value::String(
            s.field("StrVal")
                .and_then(GobValue::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    } else {
        Value::from(s.field("IntVal").and_then(GobValue::as_i64).unwrap_or(0))
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32| char::from(ALPHABET[(n & 63) as usize]);
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sextet(n >> 18));
        out.push(sextet(n >> 12));
        out.push(if chunk.len() > 1 { sextet(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn json_names_follow_argo_tags() {
        let cases = [
            ("Name", "name"),
            ("APIVersion", "apiVersion"),
            ("UID", "uid"),
            ("ALB", "alb"),
            ("ALBs", "albs"),
            ("SMI", "smi"),
            ("ARN", "arn"),
            ("SNIHosts", "sniHosts"),
            ("TCPRoutes", "tcpRoutes"),
            ("TLSRoutes", "tlsRoutes"),
            ("HPAReplicas", "HPAReplicas"),
            ("StableRS", "stableRS"),
            ("ObjectMeta", "metadata"),
            ("CurrentPodHash", "currentPodHash"),
            ("PodIP", "podIP"),
            ("FieldsV1", "fieldsV1"),
            ("SELinuxOptions", "seLinuxOptions"),
            ("HTTPGet", "httpGet"),
            ("MaxTrafficWeight", "maxTrafficWeight"),
            ("", ""),
        ];
        for (go, json) in cases {
            assert_eq!(json_name(go), json, "{go}");
        }
    }

    #[test]
    fn base64_matches_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    fn s(name: &str) -> GobStruct {
        GobStruct::new(name)
    }

    #[test]
    fn special_types() {
        let time = GoTime {
            unix_seconds: 1_714_979_289,
            nanos: 5,
        };
        let value = GobValue::Struct(
            s("Example")
                .with(
                    "TypeMeta",
                    GobValue::Struct(
                        s("TypeMeta")
                            .with("Kind", GobValue::String("Rollout".into()))
                            .with(
                                "APIVersion",
                                GobValue::String("argoproj.io/v1alpha1".into()),
                            ),
                    ),
                )
                .with(
                    "CreationTimestamp",
                    GobValue::Encoded {
                        type_name: "Time".into(),
                        kind: EncoderKind::GobEncoder,
                        bytes: time.to_binary(),
                    },
                )
                .with(
                    "MaxSurge",
                    GobValue::Struct(
                        s("IntOrString")
                            .with("Type", GobValue::Int(1))
                            .with("StrVal", GobValue::String("25%".into())),
                    ),
                )
                .with("MaxUnavailable", GobValue::Struct(s("IntOrString")))
                .with(
                    "Limits",
                    GobValue::Map(vec![(
                        GobValue::String("cpu".into()),
                        GobValue::Struct(
                            s("Quantity").with("Format", GobValue::String("DecimalSI".into())),
                        ),
                    )]),
                )
                .with(
                    "Plugins",
                    GobValue::Map(vec![(
                        GobValue::String("rollout-router/traffic".into()),
                        GobValue::Bytes(br#"{"istio":{"virtualService":{"name":"vs"}}}"#.to_vec()),
                    )]),
                )
                .with("Data", GobValue::Bytes(b"hi".to_vec()))
                .with(
                    "Steps",
                    GobValue::Slice(vec![
                        GobValue::Struct(s("CanaryStep")),
                        GobValue::Struct(
                            s("CanaryStep")
                                .with("SetCanaryScale", GobValue::Struct(s("SetCanaryScale"))),
                        ),
                    ]),
                )
                .with("Canary", GobValue::Struct(s("WeightDestination"))),
        );
        assert_eq!(
            to_json(&value),
            json!({
                "kind": "Rollout",
                "apiVersion": "argoproj.io/v1alpha1",
                "creationTimestamp": "2024-05-06T07:08:09Z",
                "maxSurge": "25%",
                "maxUnavailable": 0,
                "limits": {"cpu": ""},
                "plugins": {"rollout-router/traffic": {"istio": {"virtualService": {"name": "vs"}}}},
                "data": "aGk=",
                "steps": [{"setWeight": 0}, {"setCanaryScale": {"replicas": 0}}],
                "canary": {"weight": 0}
            })
        );
    }

    #[test]
    fn invalid_raw_json_falls_back_to_base64() {
        let value =
            GobValue::Struct(s("PluginStep").with("Config", GobValue::Bytes(b"{".to_vec())));
        assert_eq!(to_json(&value), json!({"config": "ew=="}));
    }
}
