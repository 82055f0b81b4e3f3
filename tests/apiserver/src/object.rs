//! Reading and writing the `metadata` of objects kept as JSON: the one place that pokes at
//! object fields by name.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value};

/// `metadata` of an object, if it has one.
pub(crate) fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata` of an object, created when missing. `obj` must be a JSON object (callers check).
pub(crate) fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let entry = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

/// A string field of `metadata`; empty strings count as absent, as in Go.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name")
}

pub(crate) fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace")
}

pub(crate) fn uid(obj: &Value) -> Option<&str> {
    meta_str(obj, "uid")
}

pub(crate) fn resource_version(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion")
}

pub(crate) fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

pub(crate) fn generation(obj: &Value) -> i64 {
    meta(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub(crate) fn labels(obj: &Value) -> BTreeMap<String, String> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    if let Some(m) = meta_mut(obj) {
        if finalizers.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert(
                "finalizers".into(),
                finalizers.iter().map(|f| Value::from(f.as_str())).collect(),
            );
        }
    }
}

/// One entry of `metadata.ownerReferences`.
#[derive(Clone, Debug)]
pub(crate) struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub uid: String,
}

pub(crate) fn owner_references(obj: &Value) -> Vec<OwnerRef> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| {
                    Some(OwnerRef {
                        api_version: r.get("apiVersion")?.as_str()?.to_string(),
                        kind: r.get("kind")?.as_str()?.to_string(),
                        uid: r.get("uid")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Drops the owner references whose uid is in `uids`.
pub(crate) fn remove_owner_references(obj: &mut Value, uids: &[String]) {
    let Some(m) = meta_mut(obj) else { return };
    let Some(refs) = m.get_mut("ownerReferences").and_then(Value::as_array_mut) else {
        return;
    };
    refs.retain(|r| {
        let uid = r.get("uid").and_then(Value::as_str).unwrap_or_default();
        !uids.iter().any(|u| u == uid)
    });
    if refs.is_empty() {
        m.remove("ownerReferences");
    }
}

pub(crate) fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(m) = meta_mut(obj) {
        m.insert(field.to_string(), value);
    }
}

pub(crate) fn remove_meta(obj: &mut Value, field: &str) {
    if let Some(m) = meta_mut(obj) {
        m.remove(field);
    }
}

/// Copies `field` of `from`'s metadata into `to`'s (or removes it when `from` has none).
pub(crate) fn copy_meta(from: &Value, to: &mut Value, field: &str) {
    match meta(from).and_then(|m| m.get(field)) {
        Some(v) => set_meta(to, field, v.clone()),
        None => remove_meta(to, field),
    }
}

/// The current time as Kubernetes writes `creationTimestamp`: RFC 3339, whole seconds, UTC.
pub(crate) fn now_rfc3339() -> String {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random 64-bit number (std's randomly keyed SipHash over a counter: no extra dependency).
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A version-4 UUID string, as kube-apiserver assigns to `metadata.uid`.
pub(crate) fn new_uid() -> String {
    let hi = random_u64();
    let lo = random_u64();
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// The 5-character suffix kube-apiserver appends to `generateName`.
pub(crate) fn name_suffix() -> String {
    // k8s.io/apimachinery/pkg/util/rand: no vowels, no confusable digits.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = random_u64();
    let mut s = String::with_capacity(5);
    for _ in 0..5 {
        let i = usize::try_from(n % ALPHABET.len() as u64).unwrap_or(0);
        s.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'x')));
        n /= ALPHABET.len() as u64;
    }
    s
}
