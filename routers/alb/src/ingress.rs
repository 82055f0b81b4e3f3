//! Typed reading of a user's Ingress (`networking.k8s.io/v1`, and the `v1beta1` backend shape):
//! annotations, rule paths and their backends. All JSON poking of Ingresses lives here.

use rollout_router_core::{ObjectKey, RouterError};
use serde_json::{Map, Value, json};

/// The port name that makes the AWS Load Balancer Controller read `actions.<service>` instead of
/// forwarding to the Service (spec 30 §2.3).
pub const USE_ANNOTATION: &str = "use-annotation";
/// Path and path type of the path rollout-router inserts for a header route (spec 30 §5.1).
pub const ROUTE_PATH: &str = "/*";
pub const ROUTE_PATH_TYPE: &str = "ImplementationSpecific";

/// The Kubernetes API group and kind of the objects this router edits.
pub const GROUP: &str = "networking.k8s.io";
pub const KIND: &str = "Ingress";

/// A read-only view of one Ingress.
#[derive(Clone, Copy, Debug)]
pub struct Ingress<'a> {
    pub key: &'a ObjectKey,
    value: &'a Value,
}

/// One rule's paths (`None` when the rule has no `http.paths`, e.g. a host-only rule).
#[derive(Clone, Debug, PartialEq)]
pub struct RulePaths {
    pub index: usize,
    pub paths: Option<Vec<Value>>,
}

impl<'a> Ingress<'a> {
    pub fn new(key: &'a ObjectKey, value: &'a Value) -> Self {
        Self { key, value }
    }

    /// Whether backends use the `v1beta1` shape (`serviceName`/`servicePort`).
    pub fn legacy_backends(&self) -> bool {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.ends_with("/v1beta1"))
    }

    /// `metadata.annotations`, `None` when absent or `null`.
    pub fn annotations(&self) -> Option<&'a Map<String, Value>> {
        self.value.get("metadata")?.get("annotations")?.as_object()
    }

    /// The raw value of one annotation (kept raw so `test` guards compare what is there).
    pub fn annotation_value(&self, key: &str) -> Option<&'a Value> {
        self.annotations()?.get(key)
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.annotation_value(key)?.as_str()
    }

    pub fn resource_version(&self) -> Option<&'a Value> {
        self.value.get("metadata")?.get("resourceVersion")
    }

    /// Every rule with its paths, in order.
    pub fn rules(&self) -> Vec<RulePaths> {
        let rules = self
            .value
            .get("spec")
            .and_then(|s| s.get("rules"))
            .and_then(Value::as_array);
        rules
            .map(|rules| {
                rules
                    .iter()
                    .enumerate()
                    .map(|(index, rule)| RulePaths {
                        index,
                        paths: rule
                            .get("http")
                            .and_then(|h| h.get("paths"))
                            .and_then(Value::as_array)
                            .cloned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The load balancer host names the AWS Load Balancer Controller published in the status.
    pub fn load_balancer_hostnames(&self) -> Vec<String> {
        self.value
            .get("status")
            .and_then(|s| s.get("loadBalancer"))
            .and_then(|l| l.get("ingress"))
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e.get("hostname").and_then(Value::as_str))
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The Service a path's backend names (`None` for `resource` backends, which Argo panics on).
pub fn backend_service(path: &Value) -> Option<&str> {
    let backend = path.get("backend")?;
    backend
        .get("service")
        .and_then(|s| s.get("name"))
        .or_else(|| backend.get("serviceName"))
        .and_then(Value::as_str)
}

/// Whether a path's backend port is the name `use-annotation`.
pub fn uses_annotation(path: &Value) -> bool {
    let Some(backend) = path.get("backend") else {
        return false;
    };
    let port = backend
        .get("service")
        .and_then(|s| s.get("port"))
        .and_then(|p| p.get("name"))
        .or_else(|| backend.get("servicePort"));
    port.and_then(Value::as_str) == Some(USE_ANNOTATION)
}

/// Whether some rule path sends traffic through the action `action_name`: its backend names
/// that Service with the port name `use-annotation`, so LBC needs `actions.<action_name>` to build
/// the listener rule.
pub fn routes_through_action(ingress: &Ingress<'_>, action_name: &str) -> bool {
    ingress.rules().iter().any(|rule| {
        rule.paths
            .iter()
            .flatten()
            .any(|p| backend_service(p) == Some(action_name) && uses_annotation(p))
    })
}

/// Field path of a path's backend port, for error messages.
pub fn backend_port_field(rule: usize, path: usize, legacy: bool) -> String {
    let port = if legacy {
        "servicePort"
    } else {
        "service.port"
    };
    format!("spec.rules[{rule}].http.paths[{path}].backend.{port}")
}

/// The path rollout-router inserts for header route `route`.
pub fn route_path(route: &str, legacy: bool) -> Value {
    let backend = if legacy {
        json!({"serviceName": route, "servicePort": USE_ANNOTATION})
    } else {
        json!({"service": {"name": route, "port": {"name": USE_ANNOTATION}}})
    };
    json!({"path": ROUTE_PATH, "pathType": ROUTE_PATH_TYPE, "backend": backend})
}

/// Checks spec 30 §2.3: some rule path has a backend naming `action_name`, and every such
/// backend uses port name `use-annotation` (Argo does not check the port; without it LBC ignores
/// the action and sends everything to the Service directly, so weights silently do nothing).
pub fn validate_action_backend(
    ingress: &Ingress<'_>,
    action_name: &str,
) -> Result<(), RouterError> {
    let legacy = ingress.legacy_backends();
    let mut found = false;
    for rule in ingress.rules() {
        for (j, path) in rule.paths.iter().flatten().enumerate() {
            if backend_service(path) != Some(action_name) {
                continue;
            }
            if !uses_annotation(path) {
                return Err(RouterError::invalid_object(
                    ingress.key,
                    backend_port_field(rule.index, j, legacy),
                    format!(
                        "the backend for Service `{action_name}` must use the port name `{USE_ANNOTATION}` so that the AWS Load Balancer Controller forwards through the action annotation"
                    ),
                ));
            }
            found = true;
        }
    }
    if found {
        Ok(())
    } else {
        Err(RouterError::invalid_object(
            ingress.key,
            "spec.rules",
            format!(
                "ingress `{}` has no rules using service {action_name} backend: add a path whose backend is Service `{action_name}` with port name `{USE_ANNOTATION}`",
                ingress.key.name
            ),
        ))
    }
}

/// Annotation key `<prefix>/<kind>.<name>` (`kind` is `actions` or `conditions`).
pub fn annotation_key(prefix: &str, kind: &str, name: &str) -> String {
    format!("{prefix}/{kind}.{name}")
}

/// Splits an annotation key written by Argo or rollout-router into (`actions`|`conditions`,
/// name), whatever the prefix was when it was written.
pub fn split_managed_key(key: &str) -> Option<(&'static str, &str)> {
    if let Some((_, name)) = key.split_once("/actions.") {
        Some(("actions", name))
    } else if let Some((_, name)) = key.split_once("/conditions.") {
        Some(("conditions", name))
    } else {
        None
    }
}
