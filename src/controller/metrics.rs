//! Prometheus metrics served on `/metrics` (reference: docs/operations.md).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    pub namespace: String,
    pub rollout: String,
    pub router: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PatchLabels {
    pub router: String,
    pub kind: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouterLabels {
    pub router: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub desired_weight: Family<RolloutLabels, Gauge>,
    pub applied_weight: Family<RolloutLabels, Gauge>,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub patches: Family<PatchLabels, Counter>,
    pub conflicts: Family<RouterLabels, Counter>,
    pub drift_corrections: Family<RouterLabels, Counter>,
    pub leader: Gauge,
    pub rollouts: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rollout_router");
        let desired_weight = Family::<RolloutLabels, Gauge>::default();
        let applied_weight = Family::<RolloutLabels, Gauge>::default();
        let reconciles = Family::<ResultLabels, Counter>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let patches = Family::<PatchLabels, Counter>::default();
        let conflicts = Family::<RouterLabels, Counter>::default();
        let drift_corrections = Family::<RouterLabels, Counter>::default();
        let leader = Gauge::default();
        let rollouts = Gauge::default();
        registry.register(
            "desired_weight",
            "Desired canary weight per Rollout and router",
            desired_weight.clone(),
        );
        registry.register(
            "applied_weight",
            "Canary weight the routing objects apply, read back, per Rollout and router",
            applied_weight.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles by result (ok, held, invalid, error)",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one Rollout reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "patches",
            "Writes to routing objects by router, kind and outcome (applied, conflict, error)",
            patches.clone(),
        );
        registry.register(
            "conflicts",
            "Guarded writes refused because the object changed meanwhile (re-planned)",
            conflicts.clone(),
        );
        registry.register(
            "drift_corrections",
            "Routing objects changed by someone else and put back",
            drift_corrections.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease (only the leader writes)",
            leader.clone(),
        );
        registry.register(
            "rollouts",
            "Rollouts routed by rollout-router",
            rollouts.clone(),
        );
        Self {
            registry,
            desired_weight,
            applied_weight,
            reconciles,
            reconcile_duration,
            patches,
            conflicts,
            drift_corrections,
            leader,
            rollouts,
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }

    pub fn patch(&self, router: &str, kind: &str, outcome: &'static str) {
        self.patches
            .get_or_create(&PatchLabels {
                router: router.to_owned(),
                kind: kind.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn forget_rollout(&self, namespace: &str, rollout: &str, routers: &[String]) {
        for router in routers {
            let labels = RolloutLabels {
                namespace: namespace.to_owned(),
                rollout: rollout.to_owned(),
                router: router.clone(),
            };
            self.desired_weight.remove(&labels);
            self.applied_weight.remove(&labels);
        }
    }
}
