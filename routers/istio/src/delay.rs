//! The DestinationRule delay rule (spec 10 §6.1): in pure subset mode, do not re-point subsets
//! (nor move weights) while a scaled-up canary or stable ReplicaSet is not fully available, so
//! a subset never selects pods that cannot serve yet (#2507, #4612).
//!
//! `DesiredTraffic` does not carry ReplicaSet availability yet; until it does, callers that know
//! it pass a [`ReplicaSetStatus`] to [`crate::IstioRouter::plan_with_replica_sets`], and
//! [`rollout_router_core::Router::plan`] plans without the rule (no information = no delay).

use rollout_router_core::DesiredTraffic;
use serde::{Deserialize, Serialize};

/// Availability of one ReplicaSet of the Rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetAvailability {
    pub name: String,
    /// Its `rollouts-pod-template-hash` label.
    pub pod_template_hash: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
}

impl ReplicaSetAvailability {
    /// Argo's `fullyAvailable`: scaled up and every desired pod available.
    pub fn fully_available(&self) -> bool {
        self.replicas > 0 && self.available_replicas > 0 && self.replicas <= self.available_replicas
    }
}

/// What the delay rule needs beyond `DesiredTraffic`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetStatus {
    /// The Rollout's ReplicaSets (any order; only those carrying the canary or stable hash
    /// matter).
    pub replica_sets: Vec<ReplicaSetAvailability>,
    /// `status.abort`, or a dynamic rollback to stable (spec 00 §3 case A): the canary
    /// ReplicaSet is then ignored, so an abort completes even when the canary pods are broken.
    pub aborting: bool,
}

impl ReplicaSetStatus {
    /// What `DesiredTraffic` tells about availability today: nothing, so the rule never fires.
    /// When `DesiredTraffic` gains the fields listed in the module docs, fill them in here.
    pub fn from_desired(desired: &DesiredTraffic) -> Self {
        let _ = desired;
        Self::default()
    }

    /// Why subsets must not move yet, or `None`. Only in pure subset mode (canaryService and
    /// stableService both empty, whatever else is configured), as in Argo.
    pub fn delay_reason(&self, desired: &DesiredTraffic) -> Option<String> {
        if !desired.canary.service_name.is_empty() || !desired.stable.service_name.is_empty() {
            return None;
        }
        let canary = desired.canary.pod_template_hash.as_str();
        let stable = desired.stable.pod_template_hash.as_str();
        self.replica_sets
            .iter()
            .filter(|rs| rs.replicas != 0)
            .filter(|rs| {
                let h = rs.pod_template_hash.as_str();
                !h.is_empty() && (h == stable || h == canary)
            })
            .filter(|rs| !(self.aborting && rs.pod_template_hash == canary))
            .find(|rs| !rs.fully_available())
            .map(|rs| {
                format!(
                    "delaying destination rule switch: ReplicaSet {} not fully available",
                    rs.name
                )
            })
    }
}
