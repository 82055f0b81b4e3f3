//! Typed read access to Ingress JSON: the few fields the nginx router looks at, kept in one
//! place so the rest of the crate never walks `value["spec"]["rules"]` chains.

use rollout_router_core::{ObjectKey, RolloutRef};
use serde_json::{Map, Value};

/// API group of the Ingresses this router reads and writes.
pub const GROUP: &str = "networking.k8s.io";
/// Kind of the stable and canary Ingresses.
pub const KIND: &str = "Ingress";
/// The only Ingress API version supported (`extensions/v1beta1` and
/// `networking.k8s.io/v1beta1` were removed in Kubernetes 1.22).
pub const API_VERSION: &str = "networking.k8s.io/v1";

/// API version and kind of the owner rollout-router puts on the canary Ingress.
pub const ROLLOUT_API_VERSION: &str = "argoproj.io/v1alpha1";
pub const ROLLOUT_KIND: &str = "Rollout";

/// Key of the Ingress `name` in `namespace`.
pub fn key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::new(GROUP, KIND, namespace, name)
}

fn metadata(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata")?.as_object()
}

/// `metadata.annotations`, when it is a map.
pub fn annotations(object: &Value) -> Option<&Map<String, Value>> {
    metadata(object)?.get("annotations")?.as_object()
}

/// `metadata.labels`, when it is a map.
pub fn labels(object: &Value) -> Option<&Map<String, Value>> {
    metadata(object)?.get("labels")?.as_object()
}

/// One annotation's value, when it is a string.
pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    annotations(object)?.get(key)?.as_str()
}

/// One label's value, when it is a string.
pub fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    labels(object)?.get(key)?.as_str()
}

/// `metadata.uid`, the precondition of deletes and the guard of patches.
pub fn uid(object: &Value) -> Option<&str> {
    metadata(object)?.get("uid")?.as_str()
}

/// `apiVersion` as written.
pub fn api_version(object: &Value) -> Option<&str> {
    object.get("apiVersion")?.as_str()
}

/// One field of `spec`.
pub fn spec_field<'a>(object: &'a Value, field: &str) -> Option<&'a Value> {
    object.get("spec")?.as_object()?.get(field)
}

/// Whether the object has a `spec` map at all.
pub fn has_spec(object: &Value) -> bool {
    object.get("spec").is_some_and(Value::is_object)
}

/// The controller ownerReference (`controller: true`), as Kubernetes allows at most one.
pub struct ControllerRef<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

pub fn controller_ref(object: &Value) -> Option<ControllerRef<'_>> {
    metadata(object)?
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            let field = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or_default();
            ControllerRef {
                kind: field("kind"),
                name: field("name"),
                uid: field("uid"),
            }
        })
}

/// Whether `object` is controlled by the Rollout `rollout` (kind, name and UID all match; the
/// UID alone decides in Kubernetes, kind and name make an offline plan without UIDs safe).
pub fn controlled_by(object: &Value, rollout: &RolloutRef) -> bool {
    controller_ref(object)
        .is_some_and(|r| r.kind == ROLLOUT_KIND && r.name == rollout.name && r.uid == rollout.uid)
}
