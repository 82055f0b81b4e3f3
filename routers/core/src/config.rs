//! The router configuration a Rollout carries under
//! `spec.strategy.canary.trafficRouting.plugins["rollout-router/traffic"]`. Field names are
//! Argo's (`istio`, `nginx`, `alb` blocks), so moving a Rollout from Argo's built-in routing to
//! rollout-router is a cut-and-paste.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::serde_util::null_as_default;

/// A configuration problem, naming the field path and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// JSON-ish path of the offending field, e.g.
    /// `spec.strategy.canary.steps[2].setHeaderRoute.match[0].headerValue`.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with `prefix` put in front of its field path.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// The `rollout-router/traffic` plugin block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbConfig>,
}

/// Argo's `istio` block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<IstioVirtualService>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub virtual_services: Vec<IstioVirtualService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_rule: Option<IstioDestinationRule>,
}

impl IstioConfig {
    /// The configured VirtualService references (`virtualService` or `virtualServices`).
    pub fn virtual_services(&self) -> impl Iterator<Item = &IstioVirtualService> {
        self.virtual_service
            .iter()
            .chain(self.virtual_services.iter())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioVirtualService {
    /// `name` or `name.namespace` (a trailing `.cluster.local` is tolerated).
    pub name: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub routes: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub tls_routes: Vec<TlsRoute>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub tcp_routes: Vec<TcpRoute>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub sni_hosts: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioDestinationRule {
    pub name: String,
    pub canary_subset_name: String,
    pub stable_subset_name: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub additional_subset_names: Vec<String>,
}

/// Argo's `nginx` block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NginxConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_ingress: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub stable_ingresses: Vec<String>,
    /// Defaults to `nginx.ingress.kubernetes.io` when absent or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    /// Keys get the annotation prefix.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub additional_ingress_annotations: BTreeMap<String, String>,
    /// Keys used verbatim.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub canary_ingress_annotations: BTreeMap<String, String>,
}

impl NginxConfig {
    pub const DEFAULT_ANNOTATION_PREFIX: &'static str = "nginx.ingress.kubernetes.io";

    pub fn annotation_prefix(&self) -> &str {
        self.annotation_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(Self::DEFAULT_ANNOTATION_PREFIX)
    }

    /// The configured stable Ingress names (`stableIngress` or `stableIngresses`).
    pub fn stable_ingresses(&self) -> impl Iterator<Item = &str> {
        self.stable_ingress
            .iter()
            .chain(self.stable_ingresses.iter())
            .map(String::as_str)
    }
}

/// Argo's `alb` block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlbConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub ingresses: Vec<String>,
    /// Required (Argo's CRD marks it so); used in every target group entry.
    pub service_port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_service: Option<String>,
    /// Defaults to `alb.ingress.kubernetes.io` when absent or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness_config: Option<StickinessConfig>,
}

impl AlbConfig {
    pub const DEFAULT_ANNOTATION_PREFIX: &'static str = "alb.ingress.kubernetes.io";

    pub fn annotation_prefix(&self) -> &str {
        self.annotation_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(Self::DEFAULT_ANNOTATION_PREFIX)
    }

    /// The configured Ingress names (`ingress` or `ingresses`).
    pub fn ingresses(&self) -> impl Iterator<Item = &str> {
        self.ingress
            .iter()
            .chain(self.ingresses.iter())
            .map(String::as_str)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StickinessConfig {
    pub enabled: bool,
    pub duration_seconds: i64,
}

impl PluginConfig {
    /// Parses the plugin block. Errors name the field path inside the block (prefix them with
    /// where the block lives via [`ValidationError::under`]).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ValidationError> {
        let config: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            ValidationError::new(field, e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Structural checks of the block itself (spec 00 §9, "exactly one of"). Checks that need
    /// the steps or the services are the Rollout validation's.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.istio.is_none() && self.nginx.is_none() && self.alb.is_none() {
            return Err(ValidationError::new(
                "",
                "configures no router: set at least one of istio, nginx, alb",
            ));
        }
        if let Some(istio) = &self.istio {
            exactly_one(
                "istio",
                "virtualService",
                istio.virtual_service.is_some(),
                "virtualServices",
                !istio.virtual_services.is_empty(),
            )?;
            for (i, vs) in istio.virtual_services().enumerate() {
                let at = if istio.virtual_service.is_some() {
                    "istio.virtualService".to_owned()
                } else {
                    format!("istio.virtualServices[{i}]")
                };
                if vs.name.is_empty() {
                    return Err(ValidationError::new(
                        format!("{at}.name"),
                        "must not be empty",
                    ));
                }
            }
            if let Some(dr) = &istio.destination_rule {
                for (field, value) in [
                    ("name", &dr.name),
                    ("canarySubsetName", &dr.canary_subset_name),
                    ("stableSubsetName", &dr.stable_subset_name),
                ] {
                    if value.is_empty() {
                        return Err(ValidationError::new(
                            format!("istio.destinationRule.{field}"),
                            "must not be empty",
                        ));
                    }
                }
                if dr.canary_subset_name == dr.stable_subset_name {
                    return Err(ValidationError::new(
                        "istio.destinationRule.canarySubsetName",
                        "must differ from stableSubsetName",
                    ));
                }
            }
        }
        if let Some(nginx) = &self.nginx {
            exactly_one(
                "nginx",
                "stableIngress",
                nginx
                    .stable_ingress
                    .as_deref()
                    .is_some_and(|s| !s.is_empty()),
                "stableIngresses",
                !nginx.stable_ingresses.is_empty(),
            )?;
        }
        if let Some(alb) = &self.alb {
            exactly_one(
                "alb",
                "ingress",
                alb.ingress.as_deref().is_some_and(|s| !s.is_empty()),
                "ingresses",
                !alb.ingresses.is_empty(),
            )?;
            if !(1..=65535).contains(&alb.service_port) {
                return Err(ValidationError::new(
                    "alb.servicePort",
                    format!(
                        "must be a port number in 1..=65535, got {}",
                        alb.service_port
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn exactly_one(
    block: &str,
    a: &str,
    a_set: bool,
    b: &str,
    b_set: bool,
) -> Result<(), ValidationError> {
    match (a_set, b_set) {
        (true, false) | (false, true) => Ok(()),
        (true, true) => Err(ValidationError::new(
            format!("{block}.{b}"),
            format!("set exactly one of {a} and {b}, not both"),
        )),
        (false, false) => Err(ValidationError::new(
            format!("{block}.{a}"),
            format!("set exactly one of {a} and {b}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_argo_field_names() {
        let c = PluginConfig::from_value(&json!({
            "istio": {
                "virtualService": {"name": "vs.other", "routes": ["primary"],
                    "tlsRoutes": [{"port": 443, "sniHosts": ["a.example.com"]}], "tcpRoutes": [{"port": 3000}]},
                "destinationRule": {"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable"}
            },
            "nginx": {"stableIngress": "ing", "additionalIngressAnnotations": {"canary-by-header": "X"}},
            "alb": {"ingresses": ["a", "b"], "servicePort": 443, "stickinessConfig": {"enabled": true, "durationSeconds": 60}}
        }))
        .unwrap();
        let istio = c.istio.as_ref().unwrap();
        assert_eq!(istio.virtual_services().count(), 1);
        assert_eq!(
            istio.virtual_service.as_ref().unwrap().tls_routes[0].sni_hosts,
            ["a.example.com"]
        );
        assert_eq!(
            c.nginx.as_ref().unwrap().annotation_prefix(),
            "nginx.ingress.kubernetes.io"
        );
        assert_eq!(
            c.alb.as_ref().unwrap().ingresses().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            c.alb.as_ref().unwrap().annotation_prefix(),
            "alb.ingress.kubernetes.io"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({}), "", "configures no router"),
            (
                json!({"istio": {}}),
                "istio.virtualService",
                "set exactly one",
            ),
            (
                json!({"istio": {"virtualService": {"name": "a"}, "virtualServices": [{"name": "b"}]}}),
                "istio.virtualServices",
                "not both",
            ),
            (
                json!({"istio": {"virtualServce": {"name": "a"}}}),
                "istio.virtualServce",
                "unknown field `virtualServce`",
            ),
            (
                json!({"istio": {"virtualService": {"name": 3}}}),
                "istio.virtualService.name",
                "invalid type",
            ),
            (
                json!({"nginx": {"stableIngress": ""}}),
                "nginx.stableIngress",
                "set exactly one",
            ),
            (
                json!({"alb": {"ingress": "i"}}),
                "alb",
                "missing field `servicePort`",
            ),
            (
                json!({"alb": {"ingress": "i", "servicePort": 0}}),
                "alb.servicePort",
                "1..=65535",
            ),
            (
                json!({"istio": {"virtualService": {"name": "v"}, "destinationRule": {"name": "d", "canarySubsetName": "s", "stableSubsetName": "s"}}}),
                "istio.destinationRule.canarySubsetName",
                "must differ",
            ),
        ];
        for (input, field, message) in cases {
            let err = PluginConfig::from_value(&input).unwrap_err();
            assert_eq!(err.field, field, "{input}: {err}");
            assert!(err.message.contains(message), "{input}: {err}");
        }
    }

    #[test]
    fn under_prefixes_paths() {
        let e = ValidationError::new("istio.virtualService", "x").under("spec.plugins");
        assert_eq!(e.field, "spec.plugins.istio.virtualService");
        assert_eq!(ValidationError::new("", "x").under("p").field, "p");
    }
}
