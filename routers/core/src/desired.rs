//! The desired traffic state: what every router must make its objects say. It is computed by
//! the engine (a pure function of the Rollout, its ReplicaSets and its Experiment) and consumed
//! by every router's `plan`.

use serde::{Deserialize, Serialize};

use crate::matches::{SetHeaderRoute, SetMirrorRoute};

/// The Rollout a desired state belongs to: names derived objects (NGINX canary Ingress), owner
/// references and per-Rollout bookkeeping (ALB managed annotations).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRef {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// One weighted destination, in Argo's `WeightDestination` shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    pub weight: i32,
    /// Service name. For canary/stable this is the Service the routers program (the spec's
    /// `canaryService`/`stableService`); see [`DesiredTraffic::ping_pong`] for ping-pong.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_template_hash: String,
}

/// Which row of the weight decision table (spec 00 §3) produced the weight. Carried for
/// explanation (`plan`, status, logs); routers must not branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightCase {
    /// A: dynamic rollback to stable: hold the previous canary weight and hash.
    A,
    /// B: fully promoted: weight 0.
    B,
    /// C: aborted.
    C,
    /// D: the new ReplicaSet is absent or has no available pods.
    D,
    /// E: promote-full requested.
    E,
    /// F1: canary still scaling for the current step: previous setWeight.
    F1,
    /// F2: at the current step: current setWeight.
    F2,
    /// F3: all steps done, not yet promoted: MAX.
    F3,
    /// G: no steps.
    G,
}

/// Why nothing may change right now. While a hold is set, routers keep the weights and hashes
/// that are programmed (they still remove managed routes whose state is [`RouteState::Absent`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub reason: HoldReason,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldReason {
    /// `status.observedGeneration` is behind `metadata.generation`: the rollout controller has
    /// not caught up with the spec yet (spec 00 §11). Everything is held, removals too.
    GenerationNotObserved,
    /// The stable ReplicaSet cannot take its share of traffic (spec 00 §2.5). Removals of
    /// managed routes still happen; additions, hash and weight changes wait.
    StableCapacity,
}

/// The desired state of one managed route (`managedRoutes` entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRoute {
    pub name: String,
    #[serde(flatten)]
    pub state: RouteState,
}

/// What a router must do with one managed route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum RouteState {
    /// The route must exist with this configuration.
    Active {
        #[serde(flatten)]
        route: RouteSpec,
    },
    /// The route must not exist.
    Absent,
    /// Keep whatever is programmed: do not add, remove or change it (case A, and additions
    /// while a [`Hold`] is in force).
    Unchanged,
}

/// The configuration of an active managed route: the step that defines it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteSpec {
    SetHeaderRoute(SetHeaderRoute),
    SetMirrorRoute(SetMirrorRoute),
}

/// Ping-pong Services in their current roles (spec 00 §7): `stablePingPong == "ping"` makes
/// ping the stable Service and pong the canary Service, and the other way round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingPongServices {
    pub canary_service: String,
    pub stable_service: String,
}

/// Availability of one of the Rollout's ReplicaSets. Routers that must not point traffic at
/// pods that cannot serve yet read it (Istio's DestinationRule delay rule, spec 10 §6.1).
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

/// Everything a router needs to program one Rollout's traffic.
///
/// Invariants the engine guarantees (and property tests check): `0 <= canary.weight <= total`,
/// every additional weight is `>= 0`, and `stable.weight = total - canary.weight - Σ additional
/// >= 0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredTraffic {
    pub rollout: RolloutRef,
    /// `maxTrafficWeight` (default 100): the unit of every weight here.
    pub total: i32,
    pub canary: WeightDestination,
    pub stable: WeightDestination,
    /// Weighted experiment destinations, in the order of the Experiment's template statuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional: Vec<WeightDestination>,
    /// Ping-pong Services when `pingPong` is configured. Which pair a router programs is the
    /// router's rule (ALB: always ping-pong; Istio: only when canary/stable are both empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_pong: Option<PingPongServices>,
    /// Managed routes in `managedRoutes` order (= precedence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<ManagedRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    pub case: WeightCase,
    /// `status.currentStepIndex` as the engine read it (absent with no steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_index: Option<i32>,
    /// The Rollout's ReplicaSets, ordered by name (empty when the caller does not know them,
    /// e.g. a release after the Rollout was deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_sets: Vec<ReplicaSetAvailability>,
    /// Argo's "abortLike": `status.abort`, or the dynamic rollback to stable of case A. The
    /// canary ReplicaSet's availability then no longer matters (an abort must complete even
    /// when the canary pods are broken).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aborting: bool,
}

impl DesiredTraffic {
    /// Whether weights and hashes must be left as they are programmed.
    pub fn is_held(&self) -> bool {
        self.hold.is_some()
    }

    /// The managed routes that must exist, with their configuration.
    pub fn active_routes(&self) -> impl Iterator<Item = (&str, &RouteSpec)> {
        self.managed_routes.iter().filter_map(|r| match &r.state {
            RouteState::Active { route } => Some((r.name.as_str(), route)),
            _ => None,
        })
    }

    /// The desired state of the managed route `name`, if it is in `managedRoutes`.
    pub fn route(&self, name: &str) -> Option<&RouteState> {
        self.managed_routes
            .iter()
            .find(|r| r.name == name)
            .map(|r| &r.state)
    }

    /// The ReplicaSet carrying `hash`, if it is listed.
    pub fn replica_set(&self, hash: &str) -> Option<&ReplicaSetAvailability> {
        (!hash.is_empty())
            .then(|| {
                self.replica_sets
                    .iter()
                    .find(|rs| rs.pod_template_hash == hash)
            })
            .flatten()
    }

    /// Sum of the additional (experiment) weights.
    pub fn additional_weight(&self) -> i32 {
        self.additional.iter().map(|d| d.weight).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matches::{HeaderRoutingMatch, StringMatch};

    #[test]
    fn managed_route_json_shape() {
        let r = ManagedRoute {
            name: "h1".into(),
            state: RouteState::Active {
                route: RouteSpec::SetHeaderRoute(SetHeaderRoute {
                    name: "h1".into(),
                    matches: vec![HeaderRoutingMatch {
                        header_name: "X-Beta".into(),
                        header_value: Some(StringMatch::exact("on")),
                    }],
                }),
            },
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "h1", "state": "active", "setHeaderRoute": {
                "name": "h1", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "on"}}]}})
        );
        let back: ManagedRoute = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let absent = ManagedRoute {
            name: "m".into(),
            state: RouteState::Absent,
        };
        assert_eq!(
            serde_json::to_value(&absent).unwrap(),
            serde_json::json!({"name": "m", "state": "absent"})
        );
    }
}
