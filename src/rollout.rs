//! The part of Argo's `argoproj.io/v1alpha1` Rollout that routing reads (spec 00 §1), plus
//! the ReplicaSet and Experiment views the engine needs. Unknown fields are tolerated (serde
//! ignores them); `null`, `[]` and absent mean the same (spec 00 §1.4).

use std::collections::BTreeMap;

use rollout_router_core::serde_util::null_as_default;
use rollout_router_core::{SetHeaderRoute, SetMirrorRoute, WeightDestination};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The plugin key under `trafficRouting.plugins` that opts a Rollout in.
pub const DEFAULT_PLUGIN_KEY: &str = "rollout-router/traffic";
/// Label carrying the pod-template hash on ReplicaSets and pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "rollouts-pod-template-hash";
/// Annotation with the Rollout's integer revision.
pub const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RolloutSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RolloutStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Argo defaults a missing value to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub strategy: Strategy,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub canary_service: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub stable_service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_pong: Option<PingPong>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub steps: Vec<CanaryStep>,
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_as_default"
    )]
    pub dynamic_stable_scale: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pods_per_replica_set: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingPong {
    #[serde(default)]
    pub ping_service: String,
    #[serde(default)]
    pub pong_service: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaProgressThreshold {
    /// `Percent` or `Pods` (Argo treats any type other than `Percent` like `Pods`).
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRouting {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub managed_routes: Vec<ManagedRouteName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub plugins: BTreeMap<String, Value>,
    /// Argo's own router blocks (`istio`, `nginx`, `alb`, `smi`, …): kept so validation can
    /// refuse a Rollout that asks Argo and rollout-router to write the same objects.
    #[serde(flatten)]
    pub builtin: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedRouteName {
    #[serde(default)]
    pub name: String,
}

/// One canary step. Exactly one field is normally set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_mirror_route: Option<SetMirrorRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Value>,
}

impl CanaryStep {
    /// The managed-route name this step programs, if it is a header or mirror step.
    pub fn managed_route_name(&self) -> Option<&str> {
        self.set_header_route
            .as_ref()
            .map(|h| h.name.as_str())
            .or_else(|| self.set_mirror_route.as_ref().map(|m| m.name.as_str()))
    }

    /// A short human description, e.g. `setWeight: 20`.
    pub fn describe(&self) -> String {
        if let Some(w) = self.set_weight {
            format!("setWeight: {w}")
        } else if let Some(h) = &self.set_header_route {
            if h.matches.is_empty() {
                format!("setHeaderRoute: {} (remove)", h.name)
            } else {
                format!("setHeaderRoute: {}", h.name)
            }
        } else if let Some(m) = &self.set_mirror_route {
            if m.matches.is_empty() {
                format!("setMirrorRoute: {} (remove)", m.name)
            } else {
                format!(
                    "setMirrorRoute: {} ({}%)",
                    m.name,
                    m.percentage_or_default()
                )
            }
        } else if self.pause.is_some() {
            "pause".to_owned()
        } else if let Some(e) = &self.experiment {
            format!("experiment ({} templates)", e.templates.len())
        } else if self.set_canary_scale.is_some() {
            "setCanaryScale".to_owned()
        } else if self.analysis.is_some() {
            "analysis".to_owned()
        } else if self.plugin.is_some() {
            "plugin".to_owned()
        } else {
            "(empty step)".to_owned()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStep {
    #[serde(default, deserialize_with = "null_as_default")]
    pub templates: Vec<ExperimentTemplate>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentTemplate {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_as_default"
    )]
    pub match_traffic_weight: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub current_pod_hash: String,
    #[serde(
        default,
        rename = "stableRS",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub stable_rs: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_as_default"
    )]
    pub abort: bool,
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_as_default"
    )]
    pub promote_full: bool,
    /// Argo writes the observed `metadata.generation` as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub current_experiment: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub stable_ping_pong: String,
}

/// Argo's `TrafficWeights` (spec 00 §5), exactly as Argo serializes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    pub canary: WeightDestination,
    pub stable: WeightDestination,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub additional: Vec<WeightDestination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

impl Rollout {
    pub fn canary(&self) -> Option<&CanaryStrategy> {
        self.spec.strategy.canary.as_ref()
    }

    pub fn traffic_routing(&self) -> Option<&TrafficRouting> {
        self.canary()?.traffic_routing.as_ref()
    }

    /// The rollout-router plugin block under `plugin_key`, if this Rollout opts in.
    pub fn plugin_block(&self, plugin_key: &str) -> Option<&Value> {
        self.traffic_routing()?.plugins.get(plugin_key)
    }

    /// The revision annotation as an integer (absent or unparsable: `None`).
    pub fn revision(&self) -> Option<i64> {
        self.metadata
            .annotations
            .get(REVISION_ANNOTATION)?
            .trim()
            .parse()
            .ok()
    }

    pub fn status(&self) -> RolloutStatus {
        self.status.clone().unwrap_or_default()
    }
}

/// What the engine needs of a ReplicaSet owned by the Rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetView {
    pub name: String,
    /// The `rollouts-pod-template-hash` label.
    pub pod_template_hash: String,
    pub spec_replicas: i32,
    pub replicas: i32,
    pub available_replicas: i32,
}

impl ReplicaSetView {
    /// Reads a ReplicaSet manifest (`apps/v1`); `None` without the pod-template-hash label.
    pub fn from_json(object: &Value) -> Option<Self> {
        let metadata = object.get("metadata")?;
        let hash = metadata
            .get("labels")?
            .get(POD_TEMPLATE_HASH_LABEL)?
            .as_str()?;
        let int = |v: Option<&Value>| v.and_then(Value::as_i64).map_or(0, |n| n as i32);
        let status = object.get("status");
        Some(Self {
            name: metadata
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            pod_template_hash: hash.to_owned(),
            // Kubernetes defaults spec.replicas to 1.
            spec_replicas: object
                .get("spec")
                .and_then(|s| s.get("replicas"))
                .and_then(Value::as_i64)
                .map_or(1, |n| n as i32),
            replicas: int(status.and_then(|s| s.get("replicas"))),
            available_replicas: int(status.and_then(|s| s.get("availableReplicas"))),
        })
    }
}

/// What the engine needs of the Rollout's current Experiment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentView {
    pub name: String,
    pub phase: String,
    pub template_statuses: Vec<TemplateStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub pod_template_hash: String,
}

impl ExperimentView {
    /// Reads an Experiment manifest (`argoproj.io/v1alpha1`).
    pub fn from_json(object: &Value) -> Option<Self> {
        let name = object.get("metadata")?.get("name")?.as_str()?.to_owned();
        let status = object.get("status");
        let phase = status
            .and_then(|s| s.get("phase"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let template_statuses = status
            .and_then(|s| s.get("templateStatuses"))
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        Some(Self {
            name,
            phase,
            template_statuses,
        })
    }
}
