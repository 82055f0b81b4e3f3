//! The offline commands' scenarios: `plan` simulates a whole rollout, standing in for the
//! rollout controller (status and ReplicaSets per step); `render` runs one reconcile at the
//! Rollout's current status. Both run the engine and the routers exactly as the controller does
//! ([`crate::reconcile`]).

use rollout_router_core::{Change, DesiredTraffic, ObjectKey, ObjectSet, Router};
use serde::Serialize;
use serde_json::Value;

use crate::engine::{self, EngineError};
use crate::reconcile::{self, Report, RouterChanges, RouterFailure};
use crate::rollout::{
    CanaryStatus, ExperimentView, REVISION_ANNOTATION, ReplicaSetView, Rollout, RolloutStatus,
    TemplateStatus,
};

/// Hashes used when the input status does not name them.
pub const SYNTHETIC_STABLE_HASH: &str = "stable";
pub const SYNTHETIC_CANARY_HASH: &str = "canary";

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{phase}: {source}")]
    Router {
        phase: String,
        #[source]
        source: RouterFailure,
    },
    #[error("--abort-at {0}: the Rollout has {1} steps")]
    AbortOutOfRange(usize, usize),
}

/// Which moment of the simulated rollout an entry shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// The update was just applied: the new ReplicaSet exists with no available pods.
    Initial,
    /// At a step, with the canary scaled for it and available.
    Step,
    /// All steps done, not yet promoted.
    Promoting,
    /// Promoted: the new ReplicaSet is stable.
    Completed,
    /// Aborted.
    Aborted,
}

impl Phase {
    /// The `index` of a non-step entry: never a valid step position (documented in
    /// docs/plan-output.md).
    fn index(self, steps: usize) -> i64 {
        let steps = i64::try_from(steps).unwrap_or(i64::MAX - 2);
        match self {
            Self::Initial => -1,
            Self::Aborted => -2,
            Self::Promoting => steps,
            Self::Completed => steps + 1,
            Self::Step => 0,
        }
    }
}

/// One entry of `plan`'s output.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    pub index: i64,
    pub phase: Phase,
    /// The step, as written in the Rollout; `null` for non-step entries.
    pub step: Option<Value>,
    pub desired: DesiredTraffic,
    pub changes: Vec<RouterChanges>,
    /// Why a router holds the rest of the traffic change back for now (Istio's DestinationRule
    /// delay rule: a ReplicaSet is not fully available); the objects show what was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Every routing object after this entry's reconcile, complete.
    pub objects: Vec<Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanOutput {
    pub steps: Vec<PlanEntry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RenderOutput {
    pub desired: DesiredTraffic,
    pub changes: Vec<RouterChanges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    pub objects: Vec<Value>,
    pub report: Report,
}

/// The Rollout to simulate and what it routes.
pub struct Scenario<'a> {
    pub rollout: &'a Rollout,
    /// The Rollout as written (steps are echoed from it verbatim).
    pub rollout_json: &'a Value,
    pub replica_sets: &'a [ReplicaSetView],
    pub experiments: &'a [ExperimentView],
    pub objects: ObjectSet,
    pub routers: Vec<&'a dyn Router>,
}

impl Scenario<'_> {
    fn router_keys(&self, desired: &DesiredTraffic) -> Vec<ObjectKey> {
        let mut keys: Vec<ObjectKey> = self
            .routers
            .iter()
            .flat_map(|r| r.object_keys(&desired.rollout))
            .collect();
        keys.dedup();
        keys
    }

    fn routing_objects(&self, desired: &DesiredTraffic, objects: &ObjectSet) -> Vec<Value> {
        self.router_keys(desired)
            .iter()
            .filter_map(|k| objects.get(k).cloned())
            .collect()
    }
}

/// `render`: one reconcile at the Rollout's current status. Without ReplicaSets in the input,
/// they are assumed to be where the rollout controller puts them for that status (the canary
/// scaled for the current step and available, the stable at full size).
pub fn render(mut scenario: Scenario<'_>) -> Result<RenderOutput, SimulateError> {
    let rollout = scenario.rollout;
    let replica_sets = if scenario.replica_sets.is_empty() {
        let status = rollout.status();
        let stable = non_empty(&status.stable_rs, SYNTHETIC_STABLE_HASH);
        let canary = non_empty(&status.current_pod_hash, stable);
        Simulator::replica_sets_for(rollout, stable, canary, true)
    } else {
        scenario.replica_sets.to_vec()
    };
    let current = rollout
        .status()
        .canary
        .map(|c| c.current_experiment)
        .unwrap_or_default();
    let experiment = scenario.experiments.iter().find(|e| e.name == current);
    let desired = engine::desired_traffic(rollout, &replica_sets, experiment)?;
    let mut objects = std::mem::take(&mut scenario.objects);
    let fail = |source| SimulateError::Router {
        phase: "render".into(),
        source,
    };
    let (changes, waiting) =
        reconcile_until_settled(&desired, &scenario.routers, &mut objects).map_err(fail)?;
    let observed = reconcile::observe(&desired, &scenario.routers, &objects).map_err(fail)?;
    let report = reconcile::report(&desired, &observed);
    let objects = scenario.routing_objects(&desired, &objects);
    Ok(RenderOutput {
        desired,
        changes,
        waiting,
        objects,
        report,
    })
}

/// More passes than any router needs: Istio's delayed plan takes two (the early changes, then
/// the wait); every other plan is done in one.
const MAX_PASSES: usize = 4;

/// Reconciles as the controller does until nothing changes: every pass's changes are applied
/// (the controller reconciles again when its writes come back through the watch). A router that
/// must wait ([`RouterError::Waiting`](rollout_router_core::RouterError::Waiting)) ends it
/// with its message; that is not a failure of the input.
fn reconcile_until_settled(
    desired: &DesiredTraffic,
    routers: &[&dyn Router],
    objects: &mut ObjectSet,
) -> Result<(Vec<RouterChanges>, Option<String>), RouterFailure> {
    let mut all: Vec<RouterChanges> = Vec::new();
    for _ in 0..MAX_PASSES {
        let pass = match reconcile::plan_and_apply(desired, routers, objects) {
            Ok(pass) => pass,
            Err(failure) if failure.source.is_transient() => {
                return Ok((all, Some(failure.to_string())));
            }
            Err(failure) => return Err(failure),
        };
        if !has_changes(&pass) {
            if all.is_empty() {
                all = pass;
            }
            break;
        }
        for planned in pass {
            match all.iter_mut().find(|c| c.router == planned.router) {
                Some(existing) => existing.changes.extend(planned.changes),
                None => all.push(planned),
            }
        }
    }
    Ok((all, None))
}

/// `plan`: the whole rollout from a fresh update to completion (or to an abort at `abort_at`).
pub fn plan(scenario: Scenario<'_>, abort_at: Option<usize>) -> Result<PlanOutput, SimulateError> {
    let steps = scenario
        .rollout
        .canary()
        .ok_or(EngineError::NotCanary)?
        .steps
        .len();
    if let Some(k) = abort_at
        && k >= steps
    {
        return Err(SimulateError::AbortOutOfRange(k, steps));
    }
    let mut sim = Simulator::new(scenario);
    let mut entries = vec![sim.entry(Phase::Initial, None)?];
    let last = abort_at.unwrap_or(steps.saturating_sub(1));
    for i in 0..steps.min(last + 1) {
        entries.push(sim.entry(Phase::Step, Some(i))?);
    }
    if abort_at.is_some() {
        entries.push(sim.entry(Phase::Aborted, None)?);
    } else {
        entries.push(sim.entry(Phase::Promoting, None)?);
        entries.push(sim.entry(Phase::Completed, None)?);
    }
    Ok(PlanOutput { steps: entries })
}

/// Stands in for the rollout controller: builds the status and ReplicaSets of each moment.
struct Simulator<'a> {
    scenario: Scenario<'a>,
    rollout: Rollout,
    objects: ObjectSet,
    stable_hash: String,
    canary_hash: String,
    /// The step the abort happened at (its canary size is kept for the abort entry).
    last_step: Option<usize>,
}

fn non_empty<'s>(value: &'s str, fallback: &'s str) -> &'s str {
    if value.is_empty() { fallback } else { value }
}

impl<'a> Simulator<'a> {
    fn new(mut scenario: Scenario<'a>) -> Self {
        let mut rollout = scenario.rollout.clone();
        let status = rollout.status();
        let stable_hash = non_empty(&status.stable_rs, SYNTHETIC_STABLE_HASH).to_owned();
        let canary_hash =
            if status.current_pod_hash.is_empty() || status.current_pod_hash == stable_hash {
                SYNTHETIC_CANARY_HASH.to_owned()
            } else {
                status.current_pod_hash.clone()
            };
        // A simulated update is at least revision 2 (header routes are never applied on the
        // first deployment), and the rollout controller has observed the spec.
        if rollout.revision().is_none_or(|r| r < 2) {
            rollout
                .metadata
                .annotations
                .insert(REVISION_ANNOTATION.into(), "2".into());
        }
        let generation = rollout.metadata.generation.unwrap_or(1);
        rollout.metadata.generation = Some(generation);
        rollout.status = Some(RolloutStatus {
            current_pod_hash: canary_hash.clone(),
            stable_rs: stable_hash.clone(),
            current_step_index: Some(0),
            observed_generation: Some(generation.to_string()),
            canary: Some(CanaryStatus {
                stable_ping_pong: status
                    .canary
                    .map(|c| c.stable_ping_pong)
                    .unwrap_or_default(),
                ..CanaryStatus::default()
            }),
            ..RolloutStatus::default()
        });
        let objects = std::mem::take(&mut scenario.objects);
        Self {
            scenario,
            rollout,
            objects,
            stable_hash,
            canary_hash,
            last_step: None,
        }
    }

    fn n(rollout: &Rollout) -> i32 {
        rollout.spec.replicas.unwrap_or(1)
    }

    /// ReplicaSets for the Rollout's status: the canary at the size the step wants
    /// (`available` or with no pods available yet), the stable at full size.
    fn replica_sets_for(
        rollout: &Rollout,
        stable_hash: &str,
        canary_hash: &str,
        available: bool,
    ) -> Vec<ReplicaSetView> {
        let n = Self::n(rollout);
        let rs = |hash: &str, size: i32, avail: i32| ReplicaSetView {
            name: format!("{}-{hash}", rollout.metadata.name),
            pod_template_hash: hash.to_owned(),
            spec_replicas: size,
            replicas: size,
            available_replicas: avail,
        };
        if stable_hash == canary_hash {
            return vec![rs(stable_hash, n, n)];
        }
        let stable = rs(stable_hash, n, n);
        let wanted = engine::canary_replicas_wanted(rollout, std::slice::from_ref(&stable));
        let wanted = i32::try_from(wanted).unwrap_or(n);
        let dynamic = rollout.canary().is_some_and(|c| c.dynamic_stable_scale);
        let stable_size = if dynamic { (n - wanted).max(0) } else { n };
        vec![
            rs(stable_hash, stable_size, stable_size),
            rs(canary_hash, wanted, if available { wanted } else { 0 }),
        ]
    }

    /// A running Experiment for a weighted experiment step at `index`.
    fn experiment_for(&self, index: usize) -> Option<ExperimentView> {
        let step = self
            .rollout
            .canary()?
            .steps
            .get(index)?
            .experiment
            .as_ref()?;
        let name = format!(
            "{}-{}-{index}",
            self.rollout.metadata.name, self.canary_hash
        );
        Some(ExperimentView {
            name,
            phase: "Running".into(),
            template_statuses: step
                .templates
                .iter()
                .map(|t| TemplateStatus {
                    name: t.name.clone(),
                    service_name: format!("{}-{}", self.rollout.metadata.name, t.name),
                    pod_template_hash: format!("{}-{}", self.canary_hash, t.name),
                })
                .collect(),
        })
    }

    fn entry(&mut self, phase: Phase, step: Option<usize>) -> Result<PlanEntry, SimulateError> {
        let steps = self.rollout.canary().map_or(0, |c| c.steps.len());
        let mut status = self.rollout.status();
        let mut experiment = None;
        let (stable_hash, canary_hash, available) = match phase {
            Phase::Initial => (self.stable_hash.clone(), self.canary_hash.clone(), false),
            Phase::Step => {
                let i = step.unwrap_or(0);
                status.current_step_index = i32::try_from(i).ok();
                experiment = self.experiment_for(i);
                self.last_step = Some(i);
                (self.stable_hash.clone(), self.canary_hash.clone(), true)
            }
            Phase::Promoting => {
                status.current_step_index = i32::try_from(steps).ok();
                (self.stable_hash.clone(), self.canary_hash.clone(), true)
            }
            Phase::Completed => {
                status.current_step_index = i32::try_from(steps).ok();
                status.stable_rs = self.canary_hash.clone();
                (self.canary_hash.clone(), self.canary_hash.clone(), true)
            }
            Phase::Aborted => {
                status.abort = true;
                // Argo resets the index on abort.
                status.current_step_index = Some(0);
                (self.stable_hash.clone(), self.canary_hash.clone(), true)
            }
        };
        let canary_status = status.canary.get_or_insert_with(CanaryStatus::default);
        canary_status.current_experiment = experiment
            .as_ref()
            .map(|e| e.name.clone())
            .unwrap_or_default();
        self.rollout.status = Some(status);

        // The canary keeps the size of the step it was aborted at.
        let mut sized = self.rollout.clone();
        if phase == Phase::Aborted
            && let Some(s) = sized.status.as_mut()
        {
            s.abort = false;
            s.current_step_index = self.last_step.and_then(|i| i32::try_from(i).ok());
        }
        let replica_sets = Self::replica_sets_for(&sized, &stable_hash, &canary_hash, available);
        let desired = engine::desired_traffic(&self.rollout, &replica_sets, experiment.as_ref())?;

        let routers = &self.scenario.routers;
        let (changes, waiting) = reconcile_until_settled(&desired, routers, &mut self.objects)
            .map_err(|source| SimulateError::Router {
                phase: describe(phase, step),
                source,
            })?;
        // Argo records the weights it applied; the engine reads them back (spec 00 §5). A
        // traffic step that had to wait records nothing.
        if desired.hold.is_none()
            && waiting.is_none()
            && let Some(c) = self.rollout.status.as_mut().and_then(|s| s.canary.as_mut())
        {
            c.weights = Some(engine::recorded_weights(&desired));
        }
        let step_json = step.and_then(|i| {
            self.scenario
                .rollout_json
                .pointer(&format!("/spec/strategy/canary/steps/{i}"))
                .cloned()
        });
        Ok(PlanEntry {
            index: step.map_or_else(|| phase.index(steps), |i| i64::try_from(i).unwrap_or(0)),
            phase,
            step: step_json,
            objects: self.scenario.routing_objects(&desired, &self.objects),
            desired,
            changes,
            waiting,
        })
    }
}

fn describe(phase: Phase, step: Option<usize>) -> String {
    match (phase, step) {
        (Phase::Step, Some(i)) => format!("step {i}"),
        (Phase::Initial, _) => "before the first step".into(),
        (Phase::Promoting, _) => "after the last step".into(),
        (Phase::Completed, _) => "after promotion".into(),
        (Phase::Aborted, _) => "after the abort".into(),
        (Phase::Step, None) => "step".into(),
    }
}

/// Whether any router planned a change.
pub fn has_changes(changes: &[RouterChanges]) -> bool {
    changes.iter().any(|c| !c.changes.is_empty())
}

/// All changes, flattened.
pub fn all_changes(changes: &[RouterChanges]) -> impl Iterator<Item = &Change> {
    changes.iter().flat_map(|c| c.changes.iter())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::input::Input;
    use crate::routers;

    fn subset_label(objects: &[Value], subset: &str) -> Option<String> {
        let rule = objects.iter().find(|o| o["kind"] == "DestinationRule")?;
        rule.pointer("/spec/subsets")?
            .as_array()?
            .iter()
            .find(|s| s["name"] == subset)?
            .pointer("/labels/rollouts-pod-template-hash")?
            .as_str()
            .map(str::to_owned)
    }

    /// Istio's delay rule (spec 10 §6.1) through the simulation: the subsets keep selecting the
    /// stable pods while the new ReplicaSet has no available pod, and move at the first step.
    #[test]
    fn plan_shows_the_destination_rule_delay_before_the_first_step() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/istio-subset");
        let input = Input::load(&[dir], "rollout-router/traffic").unwrap();
        let scenario = Scenario {
            rollout: &input.rollout,
            rollout_json: &input.rollout_json,
            replica_sets: &input.replica_sets,
            experiments: &input.experiments,
            objects: input.objects.clone(),
            routers: routers::as_dyn(&input.routers),
        };
        let output = plan(scenario, None).unwrap();
        let (stable, canary) = ("5b8c7d6f4", "7f6d9c8b5");

        let initial = &output.steps[0];
        assert_eq!(initial.phase, Phase::Initial);
        assert_eq!(
            initial.waiting.as_deref(),
            Some(
                "istio router: delaying destination rule switch: ReplicaSet catalog-7f6d9c8b5 \
                 not fully available"
            )
        );
        assert!(!has_changes(&initial.changes));
        assert_eq!(
            subset_label(&initial.objects, "canary").as_deref(),
            Some(stable)
        );

        let first = &output.steps[1];
        assert_eq!((first.phase, first.waiting.as_deref()), (Phase::Step, None));
        let kinds: Vec<&str> = all_changes(&first.changes)
            .map(|c| c.key().kind.as_str())
            .collect();
        assert_eq!(kinds, ["DestinationRule", "VirtualService"]);
        assert_eq!(
            subset_label(&first.objects, "canary").as_deref(),
            Some(canary)
        );

        assert!(output.steps[1..].iter().all(|e| e.waiting.is_none()));
        let completed = output.steps.last().unwrap();
        assert_eq!(completed.phase, Phase::Completed);
        assert_eq!(
            (
                subset_label(&completed.objects, "canary"),
                subset_label(&completed.objects, "stable")
            ),
            (Some(canary.to_owned()), Some(canary.to_owned()))
        );
    }
}
