//! Reporting back: `RolloutTraffic` status (written only when it changes), Events on real
//! transitions, weight metrics and, with `--write-rollout-weights`, the Rollout's
//! `status.canary.weights` in Argo's shape.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch};
use kube::runtime::events::EventType;
use rollout_router_core::{DesiredTraffic, ObservedWeights};
use serde_json::json;

use super::context::Context;
use super::metrics::RouterLabels;
use super::reconcile::{Error, Result, active_routes, error_chain};
use crate::engine;
use crate::reconcile::Report;
use crate::rollout::Rollout;
use crate::traffic::{
    ActiveRoute, Condition, JournalEntry, LastError, ObjectWeights, RolloutTraffic,
    RolloutTrafficStatus, RouterStatus,
};

/// What one reconcile found.
pub enum Outcome {
    /// The Rollout's configuration cannot be applied: nothing is written until it changes.
    Invalid {
        reason: String,
        messages: Vec<String>,
    },
    /// Routing failed: a routing object does not fit (`invalid`), the cluster must catch up
    /// (`transient`), or a write failed.
    Failed {
        reason: String,
        message: String,
        transient: bool,
        desired: Option<Box<DesiredTraffic>>,
        journal: Vec<JournalEntry>,
        invalid: bool,
    },
    Routed {
        desired: Box<DesiredTraffic>,
        report: Report,
        observed: Vec<(String, Vec<ObservedWeights>)>,
        writes: usize,
        journal: Vec<JournalEntry>,
    },
}

impl Outcome {
    pub fn invalid(reason: &str, messages: Vec<String>) -> Self {
        Self::Invalid {
            reason: reason.to_owned(),
            messages,
        }
    }

    pub fn failed(reason: &str, error: &dyn std::error::Error, transient: bool) -> Self {
        Self::Failed {
            reason: reason.to_owned(),
            message: error_chain(error),
            transient,
            desired: None,
            journal: Vec::new(),
            invalid: false,
        }
    }
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// A condition; keeps `lastTransitionTime` when the status did not change.
fn condition(
    old: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_owned();
    let last_transition_time = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(now);
    Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The three conditions: `Ready` (with its reason), and `InvalidConfig` / `Degraded`, each
/// `True` with a reason and message when given, else `False`/`AsExpected`.
fn conditions(
    old: &[Condition],
    ready: (bool, &str, &str),
    invalid: Option<(&str, &str)>,
    degraded: Option<(&str, &str)>,
    generation: Option<i64>,
) -> Vec<Condition> {
    let flag = |type_: &str, set: Option<(&str, &str)>| {
        let (reason, message) = set.unwrap_or(("AsExpected", ""));
        condition(old, type_, set.is_some(), reason, message, generation)
    };
    vec![
        condition(old, "Ready", ready.0, ready.1, ready.2, generation),
        flag("InvalidConfig", invalid),
        flag("Degraded", degraded),
    ]
}

fn step_text(rollout: &Rollout, desired: Option<&DesiredTraffic>) -> String {
    let status = rollout.status();
    let steps = rollout.canary().map_or(0, |c| c.steps.len());
    if status.abort {
        return "aborted".to_owned();
    }
    if let Some(d) = desired
        && d.case == rollout_router_core::WeightCase::B
    {
        return "completed".to_owned();
    }
    match status.current_step_index {
        Some(i) if (i as usize) >= steps && steps > 0 => "promoting".to_owned(),
        Some(i) => format!("{i}/{steps}"),
        None if steps == 0 => String::new(),
        None => format!("0/{steps}"),
    }
}

/// Writes the status (when it changed), emits Events, updates metrics.
pub async fn report(
    ctx: &Context,
    rollout: &Rollout,
    existing: Option<&RolloutTraffic>,
    reference: &ObjectReference,
    outcome: Outcome,
) -> Result<()> {
    let key = (
        rollout.metadata.namespace.clone(),
        rollout.metadata.name.clone(),
    );
    let old = ctx.status_of(&key, existing).unwrap_or_default();
    let generation = rollout.metadata.generation;
    let mut new = old.clone();
    new.observed_generation = generation;
    let mut events: Vec<(EventType, &'static str, String)> = Vec::new();
    match &outcome {
        Outcome::Invalid { reason, messages } => {
            let message = messages.join("; ");
            new.conditions = conditions(
                &old.conditions,
                (false, reason, &message),
                Some((reason, &message)),
                None,
                generation,
            );
            new.step = step_text(rollout, None);
            set_error(&mut new, &old, reason, &message);
            if old.last_error.as_ref().map(|e| &e.message) != Some(&message) {
                events.push((EventType::Warning, "InvalidConfig", message));
            }
        }
        Outcome::Failed {
            reason,
            message,
            transient,
            desired,
            journal,
            invalid,
        } => {
            let failure = Some((reason.as_str(), message.as_str()));
            new.conditions = conditions(
                &old.conditions,
                (false, reason, message),
                failure.filter(|_| *invalid),
                failure.filter(|_| !*invalid && !*transient),
                generation,
            );
            if let Some(d) = desired {
                fill_desired(&mut new, rollout, d);
            }
            if !journal.is_empty() || desired.is_some() {
                new.journal = journal.clone();
            }
            set_error(&mut new, &old, reason, message);
            if !*transient && old.last_error.as_ref().map(|e| &e.message) != Some(message) {
                let reason = if *invalid {
                    "InvalidConfig"
                } else {
                    "TrafficRoutingError"
                };
                events.push((EventType::Warning, reason, message.clone()));
            }
        }
        Outcome::Routed {
            desired,
            report,
            observed,
            writes,
            journal,
        } => {
            fill_desired(&mut new, rollout, desired);
            new.applied_weight = report.canary_weight;
            new.verified = report.verified;
            new.journal = journal.clone();
            new.last_error = None;
            let names: Vec<String> = observed
                .iter()
                .flat_map(|(_, places)| {
                    places.iter().flat_map(|p| p.managed_routes.iter().cloned())
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            // Active routes in `managedRoutes` order, as present in the objects.
            let order: Vec<String> = desired
                .managed_routes
                .iter()
                .map(|r| r.name.clone())
                .collect();
            let mut present: Vec<String> = order
                .iter()
                .filter(|n| names.contains(n))
                .cloned()
                .collect();
            present.extend(names.iter().filter(|n| !order.contains(n)).cloned());
            let kinds = active_routes(desired);
            new.active_routes = present
                .iter()
                .map(|n| ActiveRoute {
                    name: n.clone(),
                    kind: kinds
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, kind)| (*kind).to_owned())
                        .unwrap_or_else(|| super::reconcile::route_kind(rollout, n).to_owned()),
                })
                .collect();
            new.routes = present.join(",");
            new.routers = observed
                .iter()
                .map(|(router, places)| RouterStatus {
                    name: router.clone(),
                    objects: places
                        .iter()
                        .map(|p| ObjectWeights {
                            kind: p.object.kind.clone(),
                            namespace: p.object.namespace.clone(),
                            name: p.object.name.clone(),
                            location: p.location.clone(),
                            desired_weight: desired.canary.weight,
                            applied_weight: p.canary.weight,
                            verified: p.verified,
                            managed_routes: p.managed_routes.clone(),
                        })
                        .collect(),
                })
                .collect();
            let applied = report.canary_weight == Some(desired.canary.weight);
            let ready = applied && report.verified != Some(false);
            let (reason, message) = if let Some(hold) = &desired.hold {
                ("Held", hold.message.clone())
            } else if ready {
                (
                    "Applied",
                    format!("canary weight {} applied", desired.canary.weight),
                )
            } else if !applied {
                (
                    "NotApplied",
                    format!(
                        "desired canary weight {}, applied {:?}",
                        desired.canary.weight, report.canary_weight
                    ),
                )
            } else {
                (
                    "NotVerified",
                    "the data plane has not confirmed the weight yet".to_owned(),
                )
            };
            new.conditions = conditions(
                &old.conditions,
                (ready, reason, &message),
                None,
                None,
                generation,
            );
            // Events on real transitions.
            if old.applied_weight != new.applied_weight
                && let Some(to) = new.applied_weight
            {
                let note = match old.applied_weight {
                    Some(from) => format!("Traffic weight updated from {from} to {to}"),
                    None => format!("Traffic weight updated to {to}"),
                };
                events.push((EventType::Normal, "TrafficWeightUpdated", note));
            }
            let before: Vec<&String> = old.active_routes.iter().map(|r| &r.name).collect();
            let after: Vec<&String> = new.active_routes.iter().map(|r| &r.name).collect();
            for r in &new.active_routes {
                if !before.contains(&&r.name) {
                    events.push((
                        EventType::Normal,
                        "ManagedRouteAdded",
                        format!("{} route {} added", r.kind, r.name),
                    ));
                }
            }
            for r in &old.active_routes {
                if !after.contains(&&r.name) {
                    events.push((
                        EventType::Normal,
                        "ManagedRouteRemoved",
                        format!("{} route {} removed", r.kind, r.name),
                    ));
                }
            }
            // Drift: everything was in place for this same target, yet something had to be
            // written — someone changed a managed field.
            let converged_before = old.desired_weight == Some(desired.canary.weight)
                && old.applied_weight == old.desired_weight
                && old.canary_hash == new.canary_hash
                && old.stable_hash == new.stable_hash
                && old.routes == new.routes
                && old.step == new.step
                && old.last_error.is_none()
                && !old.conditions.is_empty();
            if converged_before && *writes > 0 {
                for (router, _) in observed {
                    ctx.metrics
                        .drift_corrections
                        .get_or_create(&RouterLabels {
                            router: router.clone(),
                        })
                        .inc();
                }
                events.push((
                    EventType::Normal,
                    "DriftCorrected",
                    format!("{writes} routing change(s) made outside rollout-router were put back"),
                ));
            }
            ctx.set_weights(desired, observed);
            if ctx.settings.write_rollout_weights {
                write_rollout_weights(ctx, rollout, desired, report.verified).await?;
            }
        }
    }
    for (type_, reason, note) in events {
        ctx.publish(reference, type_, reason, note).await;
    }
    // Routed / Failed come after `ensure_traffic`, which created a missing RolloutTraffic in
    // this very reconcile: its status must be written now, or the journal of what this
    // reconcile wrote to user objects is lost (a 404 is handled below).
    let created = !matches!(outcome, Outcome::Invalid { .. });
    if new != old && ctx.may_write() && (existing.is_some() || created) {
        let api: Api<RolloutTraffic> =
            Api::namespaced(ctx.client.clone(), &rollout.metadata.namespace);
        let patch: json_patch::Patch =
            serde_json::from_value(json!([{"op": "add", "path": "/status", "value": new}]))
                .map_err(|e| Error::Internal(e.to_string()))?;
        match api
            .patch_status(
                &rollout.metadata.name,
                &ctx.patch_params(),
                &Patch::Json::<()>(patch),
            )
            .await
        {
            Ok(written) => ctx.remember_status(key, Some((new, written.metadata.resource_version))),
            Err(kube::Error::Api(e)) if e.code == 404 => ctx.remember_status(key, None),
            Err(e) => {
                ctx.remember_status(key, None);
                return Err(e.into());
            }
        }
    }
    Ok(())
}

fn set_error(
    new: &mut RolloutTrafficStatus,
    old: &RolloutTrafficStatus,
    reason: &str,
    message: &str,
) {
    let same = old
        .last_error
        .as_ref()
        .is_some_and(|e| e.reason == reason && e.message == message);
    new.last_error = if same {
        old.last_error.clone()
    } else {
        Some(LastError {
            reason: reason.to_owned(),
            message: message.to_owned(),
            time: now(),
        })
    };
}

fn fill_desired(new: &mut RolloutTrafficStatus, rollout: &Rollout, desired: &DesiredTraffic) {
    new.step = step_text(rollout, Some(desired));
    new.weight_case = format!("{:?}", desired.case);
    new.desired_weight = Some(desired.canary.weight);
    new.total_weight = Some(desired.total);
    new.canary_hash = desired.canary.pod_template_hash.clone();
    new.stable_hash = desired.stable.pod_template_hash.clone();
    new.hold = desired.hold.as_ref().map(|h| h.message.clone());
}

/// `status.canary.weights` on the Rollout, exactly as Argo writes it (spec 00 §5), only when it
/// changed.
async fn write_rollout_weights(
    ctx: &Context,
    rollout: &Rollout,
    desired: &DesiredTraffic,
    verified: Option<bool>,
) -> Result<()> {
    let mut weights = engine::recorded_weights(desired);
    weights.verified = verified;
    let current = rollout.status().canary.and_then(|c| c.weights);
    if current.as_ref() == Some(&weights) || !ctx.may_write() {
        return Ok(());
    }
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &rollout.metadata.namespace,
        &ctx.rollout_resource,
    );
    let patch = json!({"status": {"canary": {"weights": weights}}});
    api.patch_status(
        &rollout.metadata.name,
        &ctx.patch_params(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}
