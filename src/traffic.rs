//! `RolloutTraffic` (`rollout-router.io/v1alpha1`): rollout-router's own object, one per Rollout
//! (same name and namespace, owned by the Rollout). Its status is the mesh team's dashboard —
//! desired / applied / verified weight per router and per routing object, the active managed
//! routes, conditions — and it carries the journal that lets rollout-router hand routing back
//! exactly (see `journal.rs`).
//!
//! The spec is written by rollout-router only: it snapshots what is needed to undo the routing
//! when the Rollout is gone (the plugin block and the Services it programmed).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// API group of rollout-router's own resources.
pub const GROUP: &str = "rollout-router.io";
/// Finalizer on `RolloutTraffic` that keeps it until routing has been handed back.
pub const FINALIZER: &str = "rollout-router.io/release";
/// Label on every `RolloutTraffic`: the name of the Rollout (for `kubectl get -l`).
pub const ROLLOUT_LABEL: &str = "rollout-router.io/rollout";

/// What rollout-router routes for one Rollout. Written by rollout-router only.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rollout-router.io",
    version = "v1alpha1",
    kind = "RolloutTraffic",
    plural = "rollouttraffics",
    shortname = "rtraffic",
    namespaced,
    status = "RolloutTrafficStatus",
    printcolumn = r#"{"name":"Rollout","type":"string","jsonPath":".spec.rollout.name"}"#,
    printcolumn = r#"{"name":"Step","type":"string","jsonPath":".status.step"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredWeight"}"#,
    printcolumn = r#"{"name":"Applied","type":"integer","jsonPath":".status.appliedWeight"}"#,
    printcolumn = r#"{"name":"Verified","type":"string","jsonPath":".status.verified"}"#,
    printcolumn = r#"{"name":"Routes","type":"string","jsonPath":".status.routes"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrafficSpec {
    /// The Rollout this object belongs to.
    pub rollout: RolloutReference,
    /// The plugin block (`trafficRouting.plugins[<key>]`) as last routed: used to hand the
    /// routing objects back when the Rollout is deleted or drops the block.
    #[serde(default)]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub routing: Value,
    /// The Services the routers programmed (spec `canaryService`/`stableService`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub canary_service: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_service: String,
    /// `managedRoutes` names, in order, as last routed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutReference {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// What rollout-router wants, what the objects say, and why when they differ.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrafficStatus {
    /// `metadata.generation` of the Rollout this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the Rollout is: `3/8`, `promoting`, `completed`, `aborted`, `released`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    /// Which row of the weight table (spec 00 §3) gave the desired weight.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub weight_case: String,
    /// Desired canary weight (out of `totalWeight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_weight: Option<i32>,
    /// Canary weight the routing objects apply, read back (the lowest agreement: a partially
    /// applied change is never reported as done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_weight: Option<i32>,
    /// `true`/`false` when a data plane was asked; absent when no router can verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// `maxTrafficWeight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_weight: Option<i32>,
    /// Canary and stable pod-template hashes the routing is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub canary_hash: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_hash: String,
    /// Active managed routes, comma separated, for the printer column.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub routes: String,
    /// Active managed routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_routes: Vec<ActiveRoute>,
    /// Per router, per routing object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<RouterStatus>,
    /// Why nothing may change now (generation not observed, stable capacity), when held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last error, with its chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// The inverse of every change rollout-router made to objects it does not own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveRoute {
    pub name: String,
    /// `header` or `mirror`.
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouterStatus {
    /// `istio`, `nginx` or `alb`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectWeights>,
}

/// One weighted place of one routing object (a route, an Ingress, an ALB action).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectWeights {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Where in the object: `http[primary]`, `tcp[0]`, `actions.app-root`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    pub desired_weight: i32,
    pub applied_weight: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Managed routes present in the object, in object order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<String>,
}

/// A condition in the shape of `metav1.Condition`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `InvalidConfig` or `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// RFC 3339; changes only when `status` changes.
    pub last_transition_time: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub reason: String,
    /// The error and its causes, outermost first, joined by `: `.
    pub message: String,
    /// RFC 3339.
    pub time: String,
}

/// The inverse of one field rollout-router changed in an object it does not own: where, what
/// it was before rollout-router first touched it, and what rollout-router last wrote there.
/// Undo restores `original` only while the field still holds `written`: a user's edit made in
/// between wins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub namespace: String,
    pub name: String,
    /// `metadata.uid` of the object when the entry was recorded: a user object deleted and
    /// re-created under the same name is not the one the entry describes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The field, as a list of steps from the object root: a member name, or an array element
    /// found by what identifies it (e.g. `{"name": "primary"}`), so that routes inserted or
    /// removed in between do not make the entry point at the wrong element.
    #[schemars(schema_with = "preserve_unknown_array")]
    pub path: Vec<Value>,
    /// The value before rollout-router's first change; absent when the field did not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_any")]
    pub original: Option<Value>,
    /// The value rollout-router last wrote; absent when it removed the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_any")]
    pub written: Option<Value>,
}

fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

fn preserve_unknown_array(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "x-kubernetes-preserve-unknown-fields": true },
    })
}

fn preserve_unknown_any(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
