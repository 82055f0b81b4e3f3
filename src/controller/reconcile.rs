//! One Rollout's reconcile: desired traffic (engine) → each router's plan → apply → read back →
//! report (RolloutTraffic status, Events, metrics). Level-triggered: a reconcile that finds
//! everything in place sends no write.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use rollout_router_core::{
    DesiredTraffic, ObjectKey, ObjectSet, PluginConfig, RouteSpec, RouteState, Router,
};
use serde_json::{Value, json};

use super::apply::{self, ApplyError};
use super::context::{Context, RolloutKey};
use super::metrics::{ResultLabels, RolloutLabels, RouterLabels};
use super::status::{self, Outcome};
use crate::engine;
use crate::reconcile::{self as pure};
use crate::rollout::{ExperimentView, ReplicaSetView, Rollout};
use crate::routers;
use crate::traffic::{
    FINALIZER, ROLLOUT_LABEL, RolloutReference, RolloutTraffic, RolloutTrafficSpec,
};
use crate::validation;

/// Requeue while a router waits for the cluster (Istio's DestinationRule delay rule) or while a
/// weight is not yet verified.
const WAIT_REQUEUE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

type Routers = Vec<Box<dyn Router + Send + Sync>>;

/// The reconcile entry point for kube-runtime's `Controller`.
pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action> {
    let start = Instant::now();
    let key: RolloutKey = (obj.namespace().unwrap_or_default(), obj.name_any());
    let result = reconcile_rollout(&obj, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(start.elapsed().as_secs_f64());
    let label = match &result {
        Ok((_, label)) => *label,
        Err(_) => "error",
    };
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels { result: label })
        .inc();
    match result {
        Ok((action, label)) => {
            // A routing failure is reported in the status and requeued through `backoff`:
            // forgetting it here would pin every retry at the first delay.
            if label != "error" {
                ctx.succeeded(&key);
            }
            Ok(action)
        }
        Err(e) => Err(e),
    }
}

/// Transient errors retry with per-Rollout exponential backoff.
pub fn error_policy(obj: Arc<DynamicObject>, error: &Error, ctx: Arc<Context>) -> Action {
    let key: RolloutKey = (obj.namespace().unwrap_or_default(), obj.name_any());
    let delay = ctx.backoff(&key);
    tracing::warn!(rollout = %format!("{}/{}", key.0, key.1), error = %error_chain(error), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile_rollout(obj: &DynamicObject, ctx: &Context) -> Result<(Action, &'static str)> {
    // Until every cache has listed, an object absent from one may exist: deciding now would
    // report it missing. Becoming ready reconciles every Rollout (see `run::start`).
    if !ctx.ready.load(std::sync::atomic::Ordering::Acquire) {
        return Ok((Action::await_change(), "held"));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let uid = obj.uid().unwrap_or_default();
    let rkey: RolloutKey = (namespace.clone(), name.clone());
    let existing = ctx.rollout_traffic(&namespace, &name);

    // A RolloutTraffic being deleted, or left over from an earlier Rollout of the same name, is
    // released first: routing is handed back before anything new is programmed.
    if let Some(rt) = &existing {
        let stale = !rt.spec.rollout.uid.is_empty() && rt.spec.rollout.uid != uid;
        if rt.meta().deletion_timestamp.is_some() {
            finalize(ctx, rt).await?;
            return Ok((Action::requeue(Duration::from_secs(1)), "released"));
        }
        if stale {
            delete_traffic(ctx, rt).await?;
            return Ok((Action::requeue(Duration::from_secs(1)), "released"));
        }
    }

    let rollout: Rollout = match serde_json::to_value(obj).and_then(serde_json::from_value) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(rollout = %format!("{namespace}/{name}"), error = %e, "Rollout does not parse; ignored");
            return Ok((Action::await_change(), "invalid"));
        }
    };

    if rollout.plugin_block(&ctx.settings.plugin_key).is_none() {
        ctx.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&rkey);
        if let Some(rt) = existing {
            // The Rollout dropped the plugin block: deleting RolloutTraffic runs the release
            // (its finalizer keeps it until routing is handed back).
            delete_traffic(ctx, &rt).await?;
        }
        return Ok((Action::await_change(), "ok"));
    }

    let reference = object_reference(obj);
    let outcome = route(ctx, &rollout, &uid, existing.as_deref()).await;
    let (action, label) = match &outcome {
        Outcome::Invalid { .. } => (Action::await_change(), "invalid"),
        Outcome::Failed { transient, .. } => {
            let delay = if *transient {
                WAIT_REQUEUE
            } else {
                ctx.backoff(&rkey)
            };
            (Action::requeue(delay), "error")
        }
        Outcome::Routed {
            report, desired, ..
        } => {
            let label = if desired.hold.is_some() { "held" } else { "ok" };
            if report.verified == Some(false) {
                (Action::requeue(WAIT_REQUEUE), label)
            } else {
                (Action::requeue(ctx.settings.resync), label)
            }
        }
    };
    status::report(ctx, &rollout, existing.as_deref(), &reference, outcome).await?;
    Ok((action, label))
}

/// Computes and applies the routing of one Rollout that carries the plugin block.
async fn route(
    ctx: &Context,
    rollout: &Rollout,
    uid: &str,
    existing: Option<&RolloutTraffic>,
) -> Outcome {
    let plugin_key = &ctx.settings.plugin_key;
    // The caller checked that the block is there.
    let config = match validation::plugin_config(rollout, plugin_key) {
        Ok(Some(config)) => config,
        Ok(None) => return Outcome::invalid("InvalidConfig", vec!["no plugin block".into()]),
        Err(e) => return Outcome::invalid("InvalidConfig", vec![e.to_string()]),
    };
    if let Some(message) = disabled_router(ctx, &config) {
        return Outcome::invalid("RouterDisabled", vec![message]);
    }
    let routers = routers::build(&config);
    let rref = rollout_ref(rollout, uid);
    let keys: Vec<ObjectKey> = routers.iter().flat_map(|r| r.object_keys(&rref)).collect();
    ctx.index
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .set((rref.namespace.clone(), rref.name.clone()), keys.clone());

    let errors = validation::validate(rollout, &config, &routers::as_dyn(&routers), plugin_key);
    if !errors.is_empty() {
        // A Rollout invalid from the start still gets its RolloutTraffic, so that the
        // InvalidConfig condition is visible there; an existing one keeps the snapshot it was
        // last routed with (its release must not follow an invalid edit).
        if existing.is_none() {
            let spec = traffic_spec(rollout, uid, plugin_key);
            if let Err(e) = ensure_traffic(ctx, rollout, uid, None, spec).await {
                return Outcome::failed("RolloutTrafficError", &e, false);
            }
        }
        return Outcome::invalid(
            "InvalidConfig",
            errors.iter().map(ToString::to_string).collect(),
        );
    }

    let (replica_sets, experiment) = inputs(ctx, rollout, uid);
    let desired = match engine::desired_traffic(rollout, &replica_sets, experiment.as_ref()) {
        Ok(d) => d,
        Err(e) => return Outcome::invalid("InvalidConfig", vec![e.to_string()]),
    };

    // Our own object first: it carries the finalizer that guarantees the release.
    let spec = traffic_spec(rollout, uid, plugin_key);
    if let Err(e) = ensure_traffic(ctx, rollout, uid, existing, spec).await {
        return Outcome::failed("RolloutTrafficError", &e, false);
    }

    let key = (rref.namespace.clone(), rref.name.clone());
    let mut journal = ctx
        .status_of(&key, existing)
        .map(|s| s.journal)
        .unwrap_or_default();
    let applied = apply_routing(ctx, &desired, &routers, &keys, &mut journal).await;
    let (objects, writes) = match applied {
        Ok(ok) => ok,
        Err(RoutingError::Router(failure)) => {
            let transient = failure.source.is_transient();
            let reason = if transient {
                "Waiting"
            } else {
                failure.source.reason()
            };
            return Outcome::Failed {
                reason: reason.to_owned(),
                message: failure.to_string(),
                transient,
                desired: Some(Box::new(desired)),
                journal,
                invalid: !transient,
            };
        }
        Err(RoutingError::Apply(e)) => return Outcome::failed("TrafficRoutingError", &e, false),
    };
    let observed_by_router: Vec<(String, Vec<rollout_router_core::ObservedWeights>)> = routers
        .iter()
        .map(|r| {
            (
                r.name().to_owned(),
                r.observe(&desired, &objects).unwrap_or_default(),
            )
        })
        .collect();
    let all: Vec<_> = observed_by_router
        .iter()
        .flat_map(|(_, o)| o.iter().cloned())
        .collect();
    let report = pure::report(&desired, &all);
    Outcome::Routed {
        desired: Box::new(desired),
        report,
        observed: observed_by_router,
        writes,
        journal,
    }
}

/// A router the Rollout configures but this controller runs without.
fn disabled_router(ctx: &Context, config: &PluginConfig) -> Option<String> {
    let s = &ctx.settings;
    let missing = [
        (config.istio.is_some() && !s.istio, "istio"),
        (config.nginx.is_some() && !s.nginx, "nginx"),
        (config.alb.is_some() && !s.alb, "alb"),
    ];
    missing.iter().find(|(m, _)| *m).map(|(_, name)| {
        format!(
            "the {name} router is disabled in this controller (its CRDs are not installed, or \
             --routers leaves it out)"
        )
    })
}

fn rollout_ref(rollout: &Rollout, uid: &str) -> rollout_router_core::RolloutRef {
    rollout_router_core::RolloutRef {
        namespace: rollout.metadata.namespace.clone(),
        name: rollout.metadata.name.clone(),
        uid: uid.to_owned(),
    }
}

/// The Rollout's ReplicaSets (current and stable hashes) and its current Experiment.
fn inputs(
    ctx: &Context,
    rollout: &Rollout,
    uid: &str,
) -> (Vec<ReplicaSetView>, Option<ExperimentView>) {
    let status = rollout.status();
    let weights = status.canary.as_ref().and_then(|c| c.weights.as_ref());
    let hashes = [
        status.current_pod_hash.as_str(),
        status.stable_rs.as_str(),
        weights.map_or("", |w| w.canary.pod_template_hash.as_str()),
        weights.map_or("", |w| w.stable.pod_template_hash.as_str()),
    ];
    let replica_sets = ctx
        .replica_sets_of(
            &rollout.metadata.namespace,
            &rollout.metadata.name,
            uid,
            &hashes,
        )
        .iter()
        .filter_map(|rs| serde_json::to_value(rs.as_ref()).ok())
        .filter_map(|v| ReplicaSetView::from_json(&v))
        .collect();
    let experiment = status
        .canary
        .as_ref()
        .map(|c| c.current_experiment.as_str())
        .filter(|n| !n.is_empty())
        .and_then(|name| {
            let kind = ctx.experiments.as_ref()?;
            let obj = kind.store.get(
                &kube::runtime::reflector::ObjectRef::new_with(name, kind.resource.clone())
                    .within(&rollout.metadata.namespace),
            )?;
            ExperimentView::from_json(&serde_json::to_value(obj.as_ref()).ok()?)
        });
    (replica_sets, experiment)
}

/// The spec snapshot; `managedRoutes` are the Rollout's, in order (the names the engine's
/// desired traffic lists).
fn traffic_spec(rollout: &Rollout, uid: &str, plugin_key: &str) -> RolloutTrafficSpec {
    let canary = rollout.canary();
    RolloutTrafficSpec {
        rollout: RolloutReference {
            name: rollout.metadata.name.clone(),
            uid: uid.to_owned(),
        },
        routing: rollout
            .plugin_block(plugin_key)
            .cloned()
            .unwrap_or(Value::Null),
        canary_service: canary.map(|c| c.canary_service.clone()).unwrap_or_default(),
        stable_service: canary.map(|c| c.stable_service.clone()).unwrap_or_default(),
        managed_routes: canary
            .and_then(|c| c.traffic_routing.as_ref())
            .map(|t| t.managed_routes.iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default(),
    }
}

/// Creates the RolloutTraffic (owned by the Rollout, with the release finalizer) or updates its
/// spec snapshot when it changed.
async fn ensure_traffic(
    ctx: &Context,
    rollout: &Rollout,
    uid: &str,
    existing: Option<&RolloutTraffic>,
    spec: RolloutTrafficSpec,
) -> Result<()> {
    let namespace = &rollout.metadata.namespace;
    let api: Api<RolloutTraffic> = Api::namespaced(ctx.client.clone(), namespace);
    match existing {
        Some(rt) if rt.spec == spec && rt.finalizers().iter().any(|f| f == FINALIZER) => Ok(()),
        Some(rt) => {
            if !ctx.may_write() {
                return Ok(());
            }
            let mut patch = vec![json!({"op": "replace", "path": "/spec", "value": spec})];
            if !rt.finalizers().iter().any(|f| f == FINALIZER) {
                if rt.meta().finalizers.is_some() {
                    patch.push(
                        json!({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}),
                    );
                } else {
                    patch.push(
                        json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}),
                    );
                }
            }
            let patch: json_patch::Patch = serde_json::from_value(Value::Array(patch))
                .map_err(|e| Error::Internal(e.to_string()))?;
            let patched = api
                .patch(
                    &rt.name_any(),
                    &ctx.patch_params(),
                    &Patch::Json::<()>(patch),
                )
                .await?;
            ctx.remember_traffic(rt.resource_version(), patched);
            Ok(())
        }
        None => {
            if !ctx.may_write() {
                return Ok(());
            }
            let mut rt = RolloutTraffic::new(&rollout.metadata.name, spec);
            rt.metadata.namespace = Some(namespace.clone());
            rt.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
            rt.metadata.labels = Some(
                [(ROLLOUT_LABEL.to_owned(), rollout.metadata.name.clone())]
                    .into_iter()
                    .collect(),
            );
            rt.metadata.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: ctx.rollout_resource.api_version.clone(),
                    kind: ctx.rollout_resource.kind.clone(),
                    name: rollout.metadata.name.clone(),
                    uid: uid.to_owned(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                },
            ]);
            match api
                .create(
                    &PostParams {
                        field_manager: Some(ctx.settings.manager.clone()),
                        ..Default::default()
                    },
                    &rt,
                )
                .await
            {
                Ok(created) => {
                    ctx.remember_traffic(None, created);
                    Ok(())
                }
                // Created by a previous reconcile the cache has not seen yet.
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
    }
}

async fn delete_traffic(ctx: &Context, rt: &RolloutTraffic) -> Result<()> {
    if !ctx.may_write() || rt.meta().deletion_timestamp.is_some() {
        return Ok(());
    }
    let api: Api<RolloutTraffic> =
        Api::namespaced(ctx.client.clone(), &rt.namespace().unwrap_or_default());
    match api.delete(&rt.name_any(), &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug)]
pub enum RoutingError {
    Router(pure::RouterFailure),
    Apply(ApplyError),
}

/// Plans every router against the cached objects and applies the changes. A guarded patch that
/// fails its `test` (someone edited the object meanwhile) makes the whole plan start again from
/// objects read fresh from the API server, with growing backoff.
async fn apply_routing(
    ctx: &Context,
    desired: &DesiredTraffic,
    routers: &Routers,
    keys: &[ObjectKey],
    journal: &mut Vec<crate::traffic::JournalEntry>,
) -> Result<(ObjectSet, usize), RoutingError> {
    let fresh = std::sync::atomic::AtomicBool::new(false);
    let journal_cell = std::sync::Mutex::new(std::mem::take(journal));
    let attempt = || async {
        let objects = if fresh.swap(true, std::sync::atomic::Ordering::AcqRel) {
            apply::read_fresh(ctx, keys)
                .await
                .map_err(RoutingError::Apply)?
        } else {
            apply::read_cached(ctx, keys)
        };
        let mut planned = objects.clone();
        let changes = {
            let dyn_routers = routers::as_dyn(routers);
            pure::plan_and_apply(desired, &dyn_routers, &mut planned)
        }
        .map_err(RoutingError::Router)?;
        let mut current = objects;
        let mut writes = 0;
        for rc in &changes {
            for change in &rc.changes {
                let mut j = journal_cell
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                apply::apply(
                    ctx,
                    rc.router,
                    change,
                    &mut current,
                    &desired.rollout.uid,
                    &mut j,
                )
                .await
                .map_err(RoutingError::Apply)?;
                *journal_cell.lock().unwrap_or_else(|e| e.into_inner()) = j;
                writes += 1;
            }
        }
        Ok((current, writes))
    };
    let result = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_secs(2))
                .with_max_times(5)
                .with_jitter(),
        )
        .sleep(tokio::time::sleep)
        .when(|e| matches!(e, RoutingError::Apply(a) if a.is_conflict()))
        .notify(|e, after| {
            if let RoutingError::Apply(a) = e {
                ctx.metrics
                    .conflicts
                    .get_or_create(&RouterLabels { router: a.router().to_owned() })
                    .inc();
                tracing::info!(rollout = %format!("{}/{}", desired.rollout.namespace, desired.rollout.name), error = %a, retry_in = ?after, "object changed meanwhile; planning again from fresh state");
            }
        })
        .await;
    *journal = journal_cell.into_inner().unwrap_or_else(|e| e.into_inner());
    result
}

/// Hands routing back for a RolloutTraffic being deleted (the Rollout was deleted or dropped
/// the plugin block): each router's release, then the journal's undo; then the finalizer goes.
pub async fn finalize(ctx: &Context, rt: &RolloutTraffic) -> Result<()> {
    if !rt.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let namespace = rt.namespace().unwrap_or_default();
    let name = rt.name_any();
    let journal = rt
        .status
        .as_ref()
        .map(|s| s.journal.clone())
        .unwrap_or_default();
    let (mut report, mut unreleased) = (Vec::new(), Vec::new());
    match PluginConfig::from_value(&rt.spec.routing) {
        Ok(config) => {
            let routers = routers::build(&config);
            let desired = release_snapshot(rt, &namespace);
            let keys: Vec<ObjectKey> = routers
                .iter()
                .flat_map(|r| r.object_keys(&desired.rollout))
                .chain(journal.iter().map(journal_key))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let attempt = || async {
                let objects = apply::read_fresh(ctx, &keys).await?;
                let mut released = objects.clone();
                let mut journal = journal.clone();
                let mut changes = Vec::new();
                let mut unreleased = Vec::new();
                for router in &routers {
                    let planned = match router.release(&desired, &released) {
                        Ok(planned) => planned,
                        // The objects do not fit the configuration (e.g. a route it names is
                        // not there, so it was never routed): retrying cannot help, and the
                        // journal below still undoes every field rollout-router changed.
                        Err(e) if !e.is_transient() => {
                            unreleased.push(format!("{} router: {e}", router.name()));
                            continue;
                        }
                        Err(e) => {
                            return Err(ApplyError::Planned(format!(
                                "{} router: {e}",
                                router.name()
                            )));
                        }
                    };
                    // Release's own writes are journaled too, so that undo sees them as
                    // rollout-router's and not as a user's edit.
                    for change in &planned {
                        crate::journal::apply_recorded(&mut journal, &mut released, change, |o| {
                            !apply::owned_by(o, &rt.spec.rollout.uid)
                        })
                        .map_err(|e| ApplyError::Planned(e.to_string()))?;
                    }
                    changes.extend(planned.into_iter().map(|c| (router.name(), c)));
                }
                let undo = crate::journal::undo(&journal, &released);
                let skipped: Vec<String> =
                    undo.not_restored.iter().map(ToString::to_string).collect();
                changes.extend(undo.changes.into_iter().map(|c| ("journal", c)));
                let mut current = objects;
                let mut scratch = Vec::new();
                for (router, change) in &changes {
                    apply::apply(
                        ctx,
                        router,
                        change,
                        &mut current,
                        &rt.spec.rollout.uid,
                        &mut scratch,
                    )
                    .await?;
                }
                Ok::<_, ApplyError>((skipped, unreleased))
            };
            if !ctx.may_write() {
                return Ok(());
            }
            (report, unreleased) = attempt
                .retry(
                    ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(50))
                        .with_max_delay(Duration::from_secs(2))
                        .with_max_times(5),
                )
                .sleep(tokio::time::sleep)
                .when(ApplyError::is_conflict)
                .await?;
        }
        Err(e) => {
            tracing::warn!(rollouttraffic = %format!("{namespace}/{name}"), error = %e, "the routing snapshot does not parse; nothing to release");
        }
    }
    if !ctx.may_write() {
        return Ok(());
    }
    // Events go to the Rollout while it exists, else to the RolloutTraffic.
    let reference = ctx
        .rollout(&namespace, &name)
        .map(|r| object_reference(&r))
        .unwrap_or_else(|| rt.object_ref(&()));
    let note = match (report.is_empty(), unreleased.is_empty()) {
        (true, true) => "Routing handed back: managed routes removed, 100% stable, every field rollout-router changed restored".to_owned(),
        (false, true) => format!(
            "Routing handed back; kept the user's later edits of: {}",
            report.join("; ")
        ),
        (true, false) => format!(
            "Routing handed back from the journal only (every field rollout-router changed \
             restored); the routing objects no longer fit the configuration: {}",
            unreleased.join("; ")
        ),
        (false, false) => format!(
            "Routing handed back from the journal only; kept the user's later edits of: {}; the \
             routing objects no longer fit the configuration: {}",
            report.join("; "),
            unreleased.join("; ")
        ),
    };
    let (type_, reason) = if report.is_empty() && unreleased.is_empty() {
        (EventType::Normal, "RoutingReleased")
    } else {
        (EventType::Warning, "ReleaseIncomplete")
    };
    ctx.publish(&reference, type_, reason, note).await;
    let api: Api<RolloutTraffic> = Api::namespaced(ctx.client.clone(), &namespace);
    let finalizers: Vec<String> = rt.finalizers().to_vec();
    let remaining: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
        {"op": "replace", "path": "/metadata/finalizers", "value": remaining},
    ]))
    .map_err(|e| Error::Internal(e.to_string()))?;
    match api
        .patch(&name, &ctx.patch_params(), &Patch::Json::<()>(patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    let routers: Vec<String> = ["istio", "nginx", "alb"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    ctx.metrics.forget_rollout(&namespace, &name, &routers);
    ctx.remember_status((namespace.clone(), name.clone()), None);
    Ok(())
}

fn journal_key(entry: &crate::traffic::JournalEntry) -> ObjectKey {
    ObjectKey::new(&entry.group, &entry.kind, &entry.namespace, &entry.name)
}

/// The desired traffic a release works from when the Rollout is gone: the Services and managed
/// routes from the snapshot, 100 % stable, and no hashes (the journal restores the labels).
fn release_snapshot(rt: &RolloutTraffic, namespace: &str) -> DesiredTraffic {
    let total = rt
        .status
        .as_ref()
        .and_then(|s| s.total_weight)
        .unwrap_or(100);
    DesiredTraffic {
        rollout: rollout_router_core::RolloutRef {
            namespace: namespace.to_owned(),
            name: rt.spec.rollout.name.clone(),
            uid: rt.spec.rollout.uid.clone(),
        },
        total,
        canary: rollout_router_core::WeightDestination {
            weight: 0,
            service_name: rt.spec.canary_service.clone(),
            pod_template_hash: String::new(),
        },
        stable: rollout_router_core::WeightDestination {
            weight: total,
            service_name: rt.spec.stable_service.clone(),
            pod_template_hash: String::new(),
        },
        additional: Vec::new(),
        ping_pong: None,
        managed_routes: rt
            .spec
            .managed_routes
            .iter()
            .map(|name| rollout_router_core::ManagedRoute {
                name: name.clone(),
                state: RouteState::Absent,
            })
            .collect(),
        hold: None,
        case: rollout_router_core::WeightCase::B,
        step_index: None,
        replica_sets: Vec::new(),
        aborting: false,
    }
}

pub fn object_reference(obj: &DynamicObject) -> ObjectReference {
    ObjectReference {
        api_version: obj.types.as_ref().map(|t| t.api_version.clone()),
        kind: obj.types.as_ref().map(|t| t.kind.clone()),
        name: obj.metadata.name.clone(),
        namespace: obj.metadata.namespace.clone(),
        uid: obj.metadata.uid.clone(),
        resource_version: None,
        field_path: None,
    }
}

/// The kind of a managed route, from the Rollout's steps.
pub fn route_kind(rollout: &Rollout, name: &str) -> &'static str {
    let steps = rollout
        .canary()
        .map(|c| c.steps.as_slice())
        .unwrap_or_default();
    for step in steps {
        if step
            .set_mirror_route
            .as_ref()
            .is_some_and(|m| m.name == name)
        {
            return "mirror";
        }
        if step
            .set_header_route
            .as_ref()
            .is_some_and(|h| h.name == name)
        {
            return "header";
        }
    }
    "header"
}

/// `error: cause: cause`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

impl Context {
    pub fn patch_params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.settings.manager.clone()),
            ..Default::default()
        }
    }

    /// Publishes an Event (only when this replica may write). Failures are logged, not
    /// returned: an Event is never worth failing a reconcile.
    pub async fn publish(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let level_warn = type_ == EventType::Warning;
        let target = format!(
            "{}/{}",
            reference.namespace.as_deref().unwrap_or_default(),
            reference.name.as_deref().unwrap_or_default()
        );
        if level_warn {
            tracing::warn!(object = %target, reason, "{note}");
        } else {
            tracing::info!(object = %target, reason, "{note}");
        }
        if !self.may_write() {
            return;
        }
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1024).collect()),
            action: "Route".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::warn!(object = %target, error = %e, "could not publish Event");
        }
    }

    pub fn set_weights(
        &self,
        desired: &DesiredTraffic,
        observed: &[(String, Vec<rollout_router_core::ObservedWeights>)],
    ) {
        for (router, places) in observed {
            let labels = RolloutLabels {
                namespace: desired.rollout.namespace.clone(),
                rollout: desired.rollout.name.clone(),
                router: router.clone(),
            };
            self.metrics
                .desired_weight
                .get_or_create(&labels)
                .set(i64::from(desired.canary.weight));
            let applied = places
                .iter()
                .find(|p| p.canary.weight != desired.canary.weight)
                .or(places.first())
                .map_or(0, |p| p.canary.weight);
            self.metrics
                .applied_weight
                .get_or_create(&labels)
                .set(i64::from(applied));
        }
    }
}

/// Whether `route` is active in `desired`.
pub fn active_routes(desired: &DesiredTraffic) -> Vec<(String, &'static str)> {
    desired
        .managed_routes
        .iter()
        .filter_map(|r| match &r.state {
            RouteState::Active {
                route: RouteSpec::SetHeaderRoute(_),
            } => Some((r.name.clone(), "header")),
            RouteState::Active {
                route: RouteSpec::SetMirrorRoute(_),
            } => Some((r.name.clone(), "mirror")),
            _ => None,
        })
        .collect()
}
