//! The DestinationRule delay rule (spec 10 §6.1): in pure subset mode, do not re-point subsets
//! (nor move weights) while a scaled-up canary or stable ReplicaSet is not fully available, so
//! a subset never selects pods that cannot serve yet (#2507, #4612); and the early weight reset
//! of spec 00 §4 step 4 that may still happen before it.
//!
//! Both read the ReplicaSets the engine puts into [`DesiredTraffic::replica_sets`]; without
//! them (a desired state built by hand, a release after the Rollout was deleted) the rule
//! never fires.

use rollout_router_core::DesiredTraffic;

/// Why subsets and weights must not move yet, or `None`. Only in pure subset mode
/// (canaryService and stableService both empty, whatever else is configured, even without a
/// DestinationRule), as in Argo.
pub(crate) fn delay_reason(desired: &DesiredTraffic) -> Option<String> {
    if !desired.canary.service_name.is_empty() || !desired.stable.service_name.is_empty() {
        return None;
    }
    let canary = desired.canary.pod_template_hash.as_str();
    let stable = desired.stable.pod_template_hash.as_str();
    desired
        .replica_sets
        .iter()
        .filter(|rs| rs.replicas != 0)
        .filter(|rs| {
            let h = rs.pod_template_hash.as_str();
            !h.is_empty() && (h == stable || h == canary)
        })
        // An abort (or a dynamic rollback) must complete even when the canary pods are broken.
        .filter(|rs| !(desired.aborting && rs.pod_template_hash == canary))
        .find(|rs| !rs.fully_available())
        .map(|rs| {
            format!(
                "delaying destination rule switch: ReplicaSet {} not fully available",
                rs.name
            )
        })
}

/// The condition spec 00 §4 step 4 puts on the new ReplicaSet (the one carrying the canary
/// hash): absent or without available pods. `None` when `desired` lists no ReplicaSets, i.e.
/// nothing is known.
///
/// In case A (dynamic rollback) Argo's new ReplicaSet is the stable one while the canary hash
/// is the previous canary's; this looks at the latter (routers do not branch on the case).
/// It differs only when the stable ReplicaSet is partly available, the previous canary has no
/// pod left and the held weight moved: the weight then follows it before the rule lifts
/// (written down in docs/istio.md).
pub(crate) fn new_replica_set_unavailable(desired: &DesiredTraffic) -> Option<bool> {
    if desired.replica_sets.is_empty() {
        return None;
    }
    Some(
        desired
            .replica_set(&desired.canary.pod_template_hash)
            .is_none_or(|rs| rs.available_replicas <= 0),
    )
}
