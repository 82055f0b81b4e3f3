//! The desired-traffic engine: a pure function from a Rollout, its ReplicaSets and its current
//! Experiment to the [`DesiredTraffic`] every router programs. It follows Argo's decision
//! procedure (spec 00 §2, §3) and the level-triggered managed-route state function (§6.2), with
//! the quirk decisions written down in `docs/engine.md`.

use rollout_router_core::{
    DesiredTraffic, Hold, HoldReason, ManagedRoute, PingPongServices, ReplicaSetAvailability,
    RolloutRef, RouteSpec, RouteState, WeightCase, WeightDestination,
};

use crate::rollout::{
    CanaryStep, CanaryStrategy, ExperimentView, ReplicaSetView, Rollout, RolloutStatus,
    SetCanaryScale,
};

/// Why no desired state can be computed: the Rollout is not a canary.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("spec.strategy.canary: the Rollout is not a canary Rollout")]
    NotCanary,
}

/// Computes the desired traffic of `rollout`. `replica_sets` are the ReplicaSets owned by the
/// Rollout (any order); `experiment` is the Experiment named by
/// `status.canary.currentExperiment`, if it exists.
pub fn desired_traffic(
    rollout: &Rollout,
    replica_sets: &[ReplicaSetView],
    experiment: Option<&ExperimentView>,
) -> Result<DesiredTraffic, EngineError> {
    let canary = rollout.canary().ok_or(EngineError::NotCanary)?;
    let status = rollout.status();
    let ctx = Context::new(rollout, canary, &status, replica_sets, experiment);
    Ok(ctx.desired())
}

/// Everything derived once per evaluation (spec 00 §2).
struct Context<'a> {
    rollout: &'a Rollout,
    canary: &'a CanaryStrategy,
    status: &'a RolloutStatus,
    steps: &'a [CanaryStep],
    experiment: Option<&'a ExperimentView>,
    /// `spec.replicas`, default 1.
    n: i64,
    /// `maxTrafficWeight`, default 100.
    max: i64,
    /// `status.currentStepIndex` (absent ⇒ 0) when steps exist.
    index: Option<usize>,
    replica_sets: &'a [ReplicaSetView],
    new_rs: Option<&'a ReplicaSetView>,
    stable_rs: Option<&'a ReplicaSetView>,
    fully_promoted: bool,
    aborted: bool,
}

impl<'a> Context<'a> {
    fn new(
        rollout: &'a Rollout,
        canary: &'a CanaryStrategy,
        status: &'a RolloutStatus,
        replica_sets: &'a [ReplicaSetView],
        experiment: Option<&'a ExperimentView>,
    ) -> Self {
        let steps = canary.steps.as_slice();
        let find = |hash: &str| {
            (!hash.is_empty())
                .then(|| replica_sets.iter().find(|rs| rs.pod_template_hash == hash))
                .flatten()
        };
        let max = canary
            .traffic_routing
            .as_ref()
            .and_then(|t| t.max_traffic_weight)
            .map_or(100, i64::from);
        Self {
            rollout,
            canary,
            status,
            steps,
            experiment,
            n: i64::from(rollout.spec.replicas.unwrap_or(1)),
            max,
            index: (!steps.is_empty())
                .then(|| usize::try_from(status.current_step_index.unwrap_or(0)).unwrap_or(0)),
            replica_sets,
            new_rs: find(&status.current_pod_hash),
            stable_rs: find(&status.stable_rs),
            fully_promoted: status.stable_rs == status.current_pod_hash,
            aborted: status.abort,
        }
    }

    /// The current step, when the index points inside the steps.
    fn current_step(&self) -> Option<&'a CanaryStep> {
        self.index.and_then(|i| self.steps.get(i))
    }

    /// Steps from `from` (inclusive) down to 0.
    fn steps_back_from(&self, from: usize) -> impl Iterator<Item = &'a CanaryStep> + 'a {
        let end = from.saturating_add(1).min(self.steps.len());
        self.steps[..end].iter().rev()
    }

    /// Argo `GetCurrentSetWeight` (spec 00 §2.1).
    fn current_set_weight(&self) -> i64 {
        if self.aborted {
            return 0;
        }
        match (self.index, self.current_step()) {
            (Some(i), Some(_)) => self
                .steps_back_from(i)
                .find_map(|s| s.set_weight)
                .map_or(0, i64::from),
            _ => self.max,
        }
    }

    /// The latest setWeight before the current step (current step excluded).
    fn previous_set_weight(&self) -> i64 {
        match self.index {
            Some(i) if i > 0 => self
                .steps_back_from(i - 1)
                .find_map(|s| s.set_weight)
                .map_or(0, i64::from),
            _ => 0,
        }
    }

    fn available(rs: Option<&ReplicaSetView>) -> i64 {
        rs.map_or(0, |rs| i64::from(rs.available_replicas))
    }

    fn recorded_weights(&self) -> Option<&'a crate::rollout::TrafficWeights> {
        self.status.canary.as_ref()?.weights.as_ref()
    }

    /// `ceil(w × N / MAX)` for non-negative operands.
    fn replicas_for_weight(&self, weight: i64) -> i64 {
        if self.max <= 0 {
            return 0;
        }
        (weight.max(0) * self.n + self.max - 1) / self.max
    }

    fn min_pods(&self, x: i64) -> i64 {
        if x == 0 {
            return 0;
        }
        match self.canary.min_pods_per_replica_set {
            Some(min) => x.max(i64::from(min).min(self.n)),
            None => x,
        }
    }

    /// `progressThresholdMet(rs, wanted)` (spec 00 §2.4).
    fn progress_threshold_met(&self, rs: Option<&ReplicaSetView>, wanted: i64) -> bool {
        let Some(rs) = rs else { return false };
        let available = i64::from(rs.available_replicas);
        match &self.canary.replica_progress_threshold {
            Some(t) if t.value >= 0 => {
                if t.kind == "Percent" {
                    wanted == 0
                        || (available as f64 / wanted as f64) * 100.0 + 1e-10 >= f64::from(t.value)
                } else {
                    available >= i64::from(t.value)
                }
            }
            _ => i64::from(rs.spec_replicas) == wanted && available == wanted,
        }
    }

    /// The active `setCanaryScale` (spec 00 §2.4).
    fn active_canary_scale(&self) -> Option<&'a SetCanaryScale> {
        let i = self.index?;
        self.current_step()?;
        if self.aborted && self.canary.abort_scale_down_delay_seconds != Some(0) {
            return None;
        }
        let scale = self
            .steps_back_from(i)
            .find_map(|s| s.set_canary_scale.as_ref())?;
        (!scale.match_traffic_weight).then_some(scale)
    }

    /// How many canary pods the current step wants (spec 00 §2.4, `canaryWanted`).
    fn canary_wanted(&self) -> i64 {
        let (scs_replicas, weight) = if self.status.promote_full
            || self.status.stable_rs.is_empty()
            || self.status.current_pod_hash == self.status.stable_rs
        {
            (None, self.max)
        } else {
            match self.active_canary_scale() {
                Some(SetCanaryScale {
                    replicas: Some(r), ..
                }) => (Some(i64::from(*r)), 0),
                Some(SetCanaryScale {
                    weight: Some(w), ..
                }) => (None, i64::from(*w)),
                _ => (None, self.desired_canary_weight()),
            }
        };
        let mut wanted =
            scs_replicas.unwrap_or_else(|| self.min_pods(self.replicas_for_weight(weight)));
        if self.canary.dynamic_stable_scale {
            wanted = self.min_pods(wanted);
        }
        wanted
    }

    /// `atDesiredReplicaCounts()` (spec 00 §2.4).
    fn at_desired_replica_counts(&self) -> bool {
        if !self.progress_threshold_met(self.new_rs, self.canary_wanted()) {
            return false;
        }
        if !self.canary.dynamic_stable_scale {
            // Without dynamic stable scale the stable must be fully created at N.
            return self.stable_rs.is_some_and(|rs| {
                i64::from(rs.spec_replicas) == self.n && i64::from(rs.replicas) == self.n
            });
        }
        true
    }

    /// `desiredCanaryWeight()` (spec 00 §3.2): reverse stepping on an aborted dynamic-stable-
    /// scale Rollout, otherwise the current setWeight.
    fn desired_canary_weight(&self) -> i64 {
        if let (true, true, Some(new_rs), Some(stable_rs)) = (
            self.aborted,
            self.canary.dynamic_stable_scale,
            self.new_rs,
            self.stable_rs,
        ) {
            let expected = self.n - i64::from(stable_rs.available_replicas);
            let canary_pods = match self.canary.abort_scale_down_delay_seconds {
                // An explicit delay must not bound the weight by the canary size (#4898).
                Some(delay) if delay != 0 => expected,
                _ => expected.max(i64::from(new_rs.available_replicas)),
            };
            return self
                .steps
                .iter()
                .rev()
                .filter_map(|s| s.set_weight.map(i64::from))
                .find(|&w| self.replicas_for_weight(w) < canary_pods)
                .unwrap_or(0);
        }
        self.current_set_weight()
    }

    /// `abortOrRollbackWeight()` (spec 00 §3.2), with the fix for Argo #4841: once the stable
    /// ReplicaSet is fully available the weight is 0 instead of parking at the smallest step.
    fn abort_or_rollback_weight(&self) -> i64 {
        let (Some(stable_rs), Some(_)) = (self.stable_rs, self.new_rs) else {
            return 0;
        };
        if !self.canary.dynamic_stable_scale || self.n == 0 {
            return 0;
        }
        let d = self.desired_canary_weight();
        let s = self.max * i64::from(stable_rs.available_replicas) / self.n;
        if s >= self.max {
            return 0;
        }
        let e = (self.max - s).max(0);
        let Some(weights) = self.recorded_weights() else {
            return e.max(d);
        };
        let c = i64::from(weights.canary.weight);
        if d <= 0 {
            e.min(c)
        } else if s < self.max - d {
            c
        } else {
            d.min(c)
        }
    }

    /// Case A condition: spec reverted to the stable template mid-update, with DSS.
    fn dynamic_rollback_to_stable(&self) -> bool {
        let (Some(weights), Some(new_rs)) = (self.recorded_weights(), self.new_rs) else {
            return false;
        };
        self.fully_promoted
            && self.canary.dynamic_stable_scale
            && weights.canary.pod_template_hash != new_rs.pod_template_hash
            && i64::from(new_rs.available_replicas) < self.n
    }

    /// Weighted experiment destinations (spec 00 §2.3). Destinations without a Service name
    /// are skipped: Argo would send weight to `host: ""` (#4890).
    fn experiment_destinations(&self) -> Vec<WeightDestination> {
        let Some(i) = self.index else {
            return Vec::new();
        };
        if self.current_step().is_none() {
            return Vec::new();
        }
        let Some(step) = self.steps_back_from(i).find_map(|s| s.experiment.as_ref()) else {
            return Vec::new();
        };
        let current = self
            .status
            .canary
            .as_ref()
            .map(|c| c.current_experiment.as_str());
        let Some(experiment) = self.experiment.filter(|e| {
            current.is_some_and(|name| !name.is_empty() && e.name == name) && e.phase == "Running"
        }) else {
            return Vec::new();
        };
        experiment
            .template_statuses
            .iter()
            .filter(|ts| !ts.service_name.is_empty())
            .filter_map(|ts| {
                let template = step.templates.iter().find(|t| t.name == ts.name)?;
                Some(WeightDestination {
                    weight: template.weight?,
                    service_name: ts.service_name.clone(),
                    pod_template_hash: ts.pod_template_hash.clone(),
                })
            })
            .collect()
    }

    /// The weight decision table (spec 00 §3): `(case, weight, additional)`.
    fn decide(&self) -> (WeightCase, i64, Vec<WeightDestination>) {
        if self.dynamic_rollback_to_stable() {
            return (WeightCase::A, self.abort_or_rollback_weight(), Vec::new());
        }
        if self.fully_promoted {
            return (WeightCase::B, 0, Vec::new());
        }
        if self.aborted {
            return (WeightCase::C, self.abort_or_rollback_weight(), Vec::new());
        }
        if Self::available(self.new_rs) == 0 {
            return (WeightCase::D, 0, self.experiment_destinations());
        }
        if self.status.promote_full {
            let weight = if self.canary.dynamic_stable_scale {
                if self.n == 0 {
                    0
                } else {
                    self.max * Self::available(self.new_rs) / self.n
                }
            } else {
                self.recorded_weights()
                    .map_or(0, |w| i64::from(w.canary.weight))
            };
            return (WeightCase::E, weight, Vec::new());
        }
        match self.index {
            Some(_) if !self.at_desired_replica_counts() => (
                WeightCase::F1,
                self.previous_set_weight(),
                self.experiment_destinations(),
            ),
            Some(i) if i != self.steps.len() => (
                WeightCase::F2,
                self.current_set_weight(),
                self.experiment_destinations(),
            ),
            Some(_) => (WeightCase::F3, self.max, Vec::new()),
            None => (WeightCase::G, 0, Vec::new()),
        }
    }

    /// The managed-route state function (spec 00 §6.2), before the capacity guard.
    fn managed_routes(&self, case: WeightCase) -> Vec<ManagedRoute> {
        let names = self
            .canary
            .traffic_routing
            .as_ref()
            .map(|t| {
                t.managed_routes
                    .iter()
                    .map(|r| r.name.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if case == WeightCase::A {
            return names
                .into_iter()
                .map(|name| ManagedRoute {
                    name,
                    state: RouteState::Unchanged,
                })
                .collect();
        }
        let routes_active = !self.fully_promoted
            && !self.aborted
            && !self.status.promote_full
            && Self::available(self.new_rs) > 0
            && self.rollout.revision().is_some_and(|r| r > 1)
            && !self.steps.is_empty();
        let last = self
            .index
            .map(|i| i.min(self.steps.len().saturating_sub(1)));
        names
            .into_iter()
            .map(|name| {
                let defining = last.and_then(|last| {
                    self.steps_back_from(last)
                        .find(|s| s.managed_route_name() == Some(name.as_str()))
                });
                let route = defining.and_then(|step| {
                    if let Some(h) = step
                        .set_header_route
                        .as_ref()
                        .filter(|h| !h.matches.is_empty())
                    {
                        Some(RouteSpec::SetHeaderRoute(h.clone()))
                    } else {
                        step.set_mirror_route
                            .as_ref()
                            .filter(|m| !m.matches.is_empty())
                            .map(|m| RouteSpec::SetMirrorRoute(m.clone()))
                    }
                });
                let state = match route {
                    Some(route) if routes_active => RouteState::Active { route },
                    _ => RouteState::Absent,
                };
                ManagedRoute { name, state }
            })
            .collect()
    }

    /// `stableCanTake(desiredWeight)` (spec 00 §2.5).
    fn stable_can_take(&self, weight: i64) -> bool {
        let Some(stable_rs) = self.stable_rs else {
            return false;
        };
        let required = if self.max > 0 {
            (self.max - weight) * self.n / self.max
        } else {
            0
        };
        i64::from(stable_rs.available_replicas) >= required
            || self.progress_threshold_met(Some(stable_rs), required)
    }

    /// Whether the rollout controller has observed the current spec. Argo writes
    /// `status.observedGeneration` as a decimal string; a value that is absent or not a number
    /// (old Argo versions wrote a hash) cannot be compared and does not hold.
    fn generation_hold(&self) -> Option<Hold> {
        let generation = self.rollout.metadata.generation?;
        let observed: i64 = self
            .status
            .observed_generation
            .as_deref()?
            .trim()
            .parse()
            .ok()?;
        (observed != generation).then(|| Hold {
            reason: HoldReason::GenerationNotObserved,
            message: format!(
                "status.observedGeneration {observed} does not match metadata.generation {generation}: \
                 waiting for the rollout controller"
            ),
        })
    }

    fn ping_pong(&self) -> Option<PingPongServices> {
        let pp = self.canary.ping_pong.as_ref()?;
        let stable_is_ping = self
            .status
            .canary
            .as_ref()
            .is_some_and(|c| c.stable_ping_pong == "ping");
        Some(if stable_is_ping {
            PingPongServices {
                canary_service: pp.pong_service.clone(),
                stable_service: pp.ping_service.clone(),
            }
        } else {
            PingPongServices {
                canary_service: pp.ping_service.clone(),
                stable_service: pp.pong_service.clone(),
            }
        })
    }

    /// The ReplicaSets as routers see them, ordered by name so that the same cluster state
    /// gives the same desired state whatever order the cache lists them in.
    fn replica_set_availability(&self) -> Vec<ReplicaSetAvailability> {
        let mut list: Vec<ReplicaSetAvailability> = self
            .replica_sets
            .iter()
            .map(|rs| ReplicaSetAvailability {
                name: rs.name.clone(),
                pod_template_hash: rs.pod_template_hash.clone(),
                replicas: rs.spec_replicas,
                available_replicas: rs.available_replicas,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    fn desired(&self) -> DesiredTraffic {
        let (case, raw_weight, raw_additional) = self.decide();
        let mut managed_routes = self.managed_routes(case);

        // Clamp into [0, MAX] (Argo #4424), then fit the experiment weights into what is left
        // so that stable never goes below zero.
        let max = i32::try_from(self.max.max(0)).unwrap_or(i32::MAX);
        let weight = i32::try_from(raw_weight.clamp(0, i64::from(max))).unwrap_or(0);
        let mut room = max - weight;
        let additional: Vec<WeightDestination> = raw_additional
            .into_iter()
            .map(|mut d| {
                d.weight = d.weight.clamp(0, room);
                room -= d.weight;
                d
            })
            .collect();

        let canary_hash = if case == WeightCase::A {
            self.recorded_weights()
                .map(|w| w.canary.pod_template_hash.clone())
                .unwrap_or_default()
        } else {
            self.new_rs
                .map(|rs| rs.pod_template_hash.clone())
                .unwrap_or_default()
        };
        let stable_hash = self
            .stable_rs
            .map(|rs| rs.pod_template_hash.clone())
            .unwrap_or_default();

        let hold = if let Some(hold) = self.generation_hold() {
            for route in &mut managed_routes {
                route.state = RouteState::Unchanged;
            }
            Some(hold)
        } else if !self.stable_can_take(raw_weight) {
            for route in &mut managed_routes {
                if matches!(route.state, RouteState::Active { .. }) {
                    route.state = RouteState::Unchanged;
                }
            }
            Some(Hold {
                reason: HoldReason::StableCapacity,
                message: match self.stable_rs {
                    None => "no stable ReplicaSet yet (status.stableRS): routing waits for the \
                             first stable version"
                        .to_owned(),
                    Some(rs) => format!(
                        "stable ReplicaSet {} has {} available pods, fewer than its share of \
                         traffic needs",
                        rs.name, rs.available_replicas
                    ),
                },
            })
        } else {
            None
        };

        let meta = &self.rollout.metadata;
        DesiredTraffic {
            rollout: RolloutRef {
                namespace: meta.namespace.clone(),
                name: meta.name.clone(),
                uid: meta.uid.clone(),
            },
            total: max,
            canary: WeightDestination {
                weight,
                service_name: self.canary.canary_service.clone(),
                pod_template_hash: canary_hash,
            },
            stable: WeightDestination {
                weight: room,
                service_name: self.canary.stable_service.clone(),
                pod_template_hash: stable_hash,
            },
            additional,
            ping_pong: self.ping_pong(),
            managed_routes,
            hold,
            case,
            step_index: self.index.and_then(|i| i32::try_from(i).ok()),
            replica_sets: self.replica_set_availability(),
            // Argo's abortLike (spec 10 §6.1): case A is the dynamic rollback.
            aborting: self.aborted || case == WeightCase::A,
        }
    }
}

/// How many pods the rollout controller scales the canary ReplicaSet to at the Rollout's
/// current status (used by the `plan` simulation to stand in for Argo).
pub fn canary_replicas_wanted(rollout: &Rollout, replica_sets: &[ReplicaSetView]) -> i64 {
    let Some(canary) = rollout.canary() else {
        return 0;
    };
    let status = rollout.status();
    Context::new(rollout, canary, &status, replica_sets, None).canary_wanted()
}

/// The `status.canary.weights` Argo would record for `desired` (spec 00 §5): used by the plan
/// simulation as Argo's memory, and by `--write-rollout-weights`.
pub fn recorded_weights(desired: &DesiredTraffic) -> crate::rollout::TrafficWeights {
    crate::rollout::TrafficWeights {
        canary: desired.canary.clone(),
        stable: desired.stable.clone(),
        additional: desired.additional.clone(),
        verified: None,
    }
}
