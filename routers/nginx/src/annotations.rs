//! The annotation and label keys of the canary Ingress, and the annotations derived from the
//! nginx configuration (spec 20 §3.2 steps 1–3).

use std::collections::BTreeMap;

use rollout_router_core::{NginxConfig, RouterError};
use serde_json::{Map, Value};

/// Ingress class annotation, the only annotation copied from the stable Ingress (§3.2 step 1).
pub const INGRESS_CLASS: &str = "kubernetes.io/ingress.class";

/// Canary annotation names; each is used under the configured `annotationPrefix`.
pub const CANARY: &str = "canary";
pub const CANARY_WEIGHT: &str = "canary-weight";
pub const CANARY_WEIGHT_TOTAL: &str = "canary-weight-total";
pub const CANARY_BY_HEADER: &str = "canary-by-header";
pub const CANARY_BY_HEADER_VALUE: &str = "canary-by-header-value";
pub const CANARY_BY_HEADER_PATTERN: &str = "canary-by-header-pattern";

/// The weight annotations are rollout-router's alone: configuration cannot set them.
pub const WEIGHT_ANNOTATIONS: [&str; 3] = [CANARY, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL];
/// The annotations a header route programs (one header slot per canary Ingress).
pub const HEADER_ANNOTATIONS: [&str; 3] = [
    CANARY_BY_HEADER,
    CANARY_BY_HEADER_VALUE,
    CANARY_BY_HEADER_PATTERN,
];

/// Bookkeeping: the annotation keys rollout-router wrote on the canary Ingress, sorted and
/// comma-separated (annotation keys cannot contain commas). It lets a later plan remove exactly
/// the annotations that are no longer desired while leaving everybody else's alone.
pub const MANAGED_ANNOTATIONS: &str = "rollout-router.io/managed-annotations";
/// Bookkeeping: the managed route whose header match the `canary-by-header*` annotations carry.
pub const HEADER_ROUTE: &str = "rollout-router.io/header-route";

/// Label marking the canary Ingress as rollout-router's, with [`MANAGED_BY_VALUE`].
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "rollout-router";

/// `<prefix>/<name>`.
pub fn prefixed(prefix: &str, name: &str) -> String {
    format!("{prefix}/{name}")
}

/// The annotations the configuration asks for, in the override order of §3.2:
/// `additionalIngressAnnotations` (prefixed unless the key already starts with the prefix), then
/// `canaryIngressAnnotations` verbatim. The weight annotations are left out: rollout-router
/// decides them (Argo lets a configured `canary-weight-total` through when `maxTrafficWeight` is
/// unset, where it silently rescales every weight).
///
/// Two `additionalIngressAnnotations` keys that become the same annotation are rejected: Argo
/// picks one at random (Go map order). The result is in override order (each map sorted by
/// key, as the configuration maps are), which is the order the canary Ingress shows them in.
pub fn from_config(config: &NginxConfig) -> Result<Map<String, Value>, RouterError> {
    let prefix = config.annotation_prefix();
    let weight_keys: Vec<String> = WEIGHT_ANNOTATIONS
        .iter()
        .map(|n| prefixed(prefix, n))
        .collect();
    let mut out = Map::new();
    let mut source: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in &config.additional_ingress_annotations {
        let full = if key.starts_with(prefix) {
            key.clone()
        } else {
            prefixed(prefix, key)
        };
        if let Some(other) = source.insert(full.clone(), key) {
            return Err(RouterError::InvalidConfig {
                field: "nginx.additionalIngressAnnotations".into(),
                message: format!(
                    "keys `{other}` and `{key}` both set annotation `{full}`; keep one of them"
                ),
            });
        }
        out.insert(full, Value::String(value.clone()));
    }
    for (key, value) in &config.canary_ingress_annotations {
        out.insert(key.clone(), Value::String(value.clone()));
    }
    out.retain(|k, _| !weight_keys.contains(k));
    Ok(out)
}
