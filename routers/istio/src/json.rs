//! Small typed readers over the plain JSON of Istio objects, so that the rest of the crate does
//! not chain `value["spec"]["http"][i]` pokes. Objects stay `serde_json::Value` on purpose: every
//! field rollout-router does not manage must survive byte for byte.

use serde_json::Value;

/// `object[key]` as a string, if it is one.
pub(crate) fn str_field<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// `object[key]` as an array slice, if it is one.
pub(crate) fn array_field<'a>(object: &'a Value, key: &str) -> Option<&'a [Value]> {
    object.get(key).and_then(Value::as_array).map(Vec::as_slice)
}

/// `object.spec[key]` as an array slice (a VirtualService route section, DestinationRule
/// subsets).
pub(crate) fn spec_array<'a>(object: &'a Value, key: &str) -> Option<&'a [Value]> {
    object.get("spec").and_then(|spec| array_field(spec, key))
}

/// The `name` of a route or subset; `None` when absent or empty (Argo treats both alike).
pub(crate) fn name_of(item: &Value) -> Option<&str> {
    str_field(item, "name").filter(|n| !n.is_empty())
}

/// `object[key]` as a non-negative integer (ports).
pub(crate) fn u64_field(object: &Value, key: &str) -> Option<u64> {
    object.get(key).and_then(Value::as_u64)
}
