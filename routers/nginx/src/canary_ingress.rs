//! The canary Ingress: its name (spec 20 §2), the spec derived from the stable Ingress (§3,
//! §3.1), the object rollout-router creates, and the ownership check before any update (§4.5).

use rollout_router_core::{ObjectKey, RolloutRef, RouterError};
use serde_json::{Map, Value, json};

use crate::annotations::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::ingress::{self, API_VERSION, KIND, ROLLOUT_API_VERSION, ROLLOUT_KIND};

/// Appended to `<rollout>-<stable ingress>`.
pub const CANARY_SUFFIX: &str = "-canary";
/// `<rollout>-<stable ingress>` is cut to this many characters so that the name with the suffix
/// stays within the 253 characters of a Kubernetes name.
const MAX_BASE_LEN: usize = 246;

/// The canary Ingress name, exactly as Argo names it so that migrating Rollouts keep their
/// canary Ingress: `<rollout>-<stable>` cut to 246 characters, then `-canary`.
pub fn canary_ingress_name(rollout: &str, stable_ingress: &str) -> String {
    let base: String = format!("{rollout}-{stable_ingress}")
        .chars()
        .take(MAX_BASE_LEN)
        .collect();
    format!("{base}{CANARY_SUFFIX}")
}

/// The part of the canary Ingress derived from the stable Ingress.
#[derive(Clone, Debug, PartialEq)]
pub struct DerivedSpec {
    /// `spec.ingressClassName` of the stable Ingress.
    pub ingress_class_name: Option<Value>,
    /// `spec.tls` of the stable Ingress, deep-copied.
    pub tls: Option<Value>,
    /// The rewritten rules (§3.1), a non-empty JSON array.
    pub rules: Value,
    /// The `kubernetes.io/ingress.class` annotation of the stable Ingress.
    pub class_annotation: Option<String>,
}

/// The `spec` fields rollout-router manages on the canary Ingress. `defaultBackend` is managed
/// as "absent": a default backend on a canary Ingress would catch traffic the stable Ingress
/// never sent to the canary.
pub const MANAGED_SPEC_FIELDS: [&str; 4] = ["ingressClassName", "tls", "rules", "defaultBackend"];

impl DerivedSpec {
    /// Derives the canary spec from the stable Ingress.
    ///
    /// Rules: every path whose backend is `stable_service` is rewritten to `canary_service`
    /// (port kept as written); a rule is kept with only its rewritten paths, and dropped when
    /// none was rewritten. Argo copies the other paths of such a rule unchanged (issue #3541),
    /// giving paths that never reached the stable Service a canary entry; rollout-router does
    /// not. Rules without `http`, and paths with a `resource` backend, are skipped (Argo
    /// crashes on them).
    pub fn from_stable(
        stable_key: &ObjectKey,
        stable: &Value,
        stable_service: &str,
        canary_service: &str,
    ) -> Result<Self, RouterError> {
        match ingress::api_version(stable) {
            Some(API_VERSION) => {}
            other => {
                return Err(RouterError::invalid_object(
                    stable_key,
                    "apiVersion",
                    format!(
                        "is {}; the nginx router supports {API_VERSION} Ingresses only",
                        other.unwrap_or("absent")
                    ),
                ));
            }
        }
        let rules = ingress::spec_field(stable, "rules")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|rule| canary_rule(rule, stable_service, canary_service))
            .collect::<Vec<_>>();
        if rules.is_empty() {
            return Err(RouterError::invalid_object(
                stable_key,
                "spec.rules",
                format!(
                    "no rule has a path whose backend is service `{stable_service}` (the \
                     stableService); the canary Ingress would route nothing"
                ),
            ));
        }
        Ok(Self {
            ingress_class_name: ingress::spec_field(stable, "ingressClassName")
                .filter(|v| !v.is_null())
                .cloned(),
            tls: ingress::spec_field(stable, "tls")
                .filter(|v| !v.is_null())
                .cloned(),
            rules: Value::Array(rules),
            class_annotation: ingress::annotation(stable, crate::annotations::INGRESS_CLASS)
                .map(str::to_owned),
        })
    }

    /// The desired value of one of [`MANAGED_SPEC_FIELDS`]; `None` means "absent".
    pub fn field(&self, name: &str) -> Option<&Value> {
        match name {
            "ingressClassName" => self.ingress_class_name.as_ref(),
            "tls" => self.tls.as_ref(),
            "rules" => Some(&self.rules),
            _ => None,
        }
    }

    /// The whole canary `spec`.
    pub fn to_spec(&self) -> Value {
        let mut spec = Map::new();
        for field in MANAGED_SPEC_FIELDS {
            if let Some(value) = self.field(field) {
                spec.insert(field.to_owned(), value.clone());
            }
        }
        Value::Object(spec)
    }
}

/// The canary version of one stable rule, or `None` when no path uses the stable Service.
fn canary_rule(rule: &Value, stable_service: &str, canary_service: &str) -> Option<Value> {
    let paths = rule.get("http")?.get("paths")?.as_array()?;
    let rewritten: Vec<Value> = paths
        .iter()
        .filter(|path| backend_service(path) == Some(stable_service))
        .map(|path| {
            let mut path = path.clone();
            if let Some(name) = path.pointer_mut("/backend/service/name") {
                *name = Value::String(canary_service.to_owned());
            }
            path
        })
        .collect();
    if rewritten.is_empty() {
        return None;
    }
    let mut rule = rule.clone();
    if let Some(paths) = rule.pointer_mut("/http/paths") {
        *paths = Value::Array(rewritten);
    }
    Some(rule)
}

fn backend_service(path: &Value) -> Option<&str> {
    path.pointer("/backend/service/name")?.as_str()
}

/// The canary Ingress rollout-router creates: owned by the Rollout, labelled as managed by
/// rollout-router.
pub fn new_object(
    rollout: &RolloutRef,
    name: &str,
    annotations: Map<String, Value>,
    spec: &DerivedSpec,
) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": rollout.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": ROLLOUT_API_VERSION,
                "kind": ROLLOUT_KIND,
                "name": rollout.name,
                "uid": rollout.uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec.to_spec(),
    })
}

/// Refuses an Ingress with the canary's name that this Rollout does not control (never adopted
/// silently, spec 40 #47), or that another manager labelled as its own.
///
/// An Ingress controlled by this Rollout without rollout-router's label is Argo's own canary
/// Ingress of the same Rollout: it is taken over (the label is added), which is the migration
/// path from Argo's built-in nginx routing.
pub fn check_owned(
    key: &ObjectKey,
    existing: &Value,
    rollout: &RolloutRef,
) -> Result<(), RouterError> {
    if !ingress::controlled_by(existing, rollout) {
        let message = match ingress::controller_ref(existing) {
            Some(r) => format!(
                "it is controlled by {} `{}` (uid `{}`), not by Rollout `{}` (uid `{}`); rename \
                 or delete it",
                r.kind, r.name, r.uid, rollout.name, rollout.uid
            ),
            None => format!(
                "it has no controller ownerReference to Rollout `{}`; rename or delete it",
                rollout.name
            ),
        };
        return Err(RouterError::NotOwned {
            key: key.clone(),
            message,
        });
    }
    match ingress::label(existing, MANAGED_BY_LABEL) {
        Some(manager) if manager != MANAGED_BY_VALUE => Err(RouterError::NotOwned {
            key: key.clone(),
            message: format!("label {MANAGED_BY_LABEL} says it is managed by `{manager}`"),
        }),
        _ => Ok(()),
    }
}

/// Whether `key`/`object` is a canary Ingress rollout-router created for `rollout`: named like
/// one of its canary Ingresses, controlled by it and labelled as rollout-router's. Used to find
/// the canary Ingresses of stable Ingresses that are no longer configured.
pub fn is_ours(key: &ObjectKey, object: &Value, rollout: &RolloutRef) -> bool {
    let base: String = format!("{}-", rollout.name)
        .chars()
        .take(MAX_BASE_LEN)
        .collect();
    key.namespace == rollout.namespace
        && key.name.starts_with(&base)
        && key.name.ends_with(CANARY_SUFFIX)
        && ingress::controlled_by(object, rollout)
        && ingress::label(object, MANAGED_BY_LABEL) == Some(MANAGED_BY_VALUE)
}
