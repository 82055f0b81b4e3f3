//! One reconcile's pure part, shared by the controller and the offline commands: every router
//! plans against the current objects, in Argo's fixed provider order, and its changes are applied
//! to the object set before the next router plans; then the weights are read back.

use rollout_router_core::{
    Change, DesiredTraffic, ObjectSet, ObservedWeights, RouteState, Router, RouterError, WeightCase,
};
use serde::Serialize;

/// The changes one router planned.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterChanges {
    pub router: &'static str,
    pub changes: Vec<Change>,
}

/// A router that failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{router} router: {source}")]
pub struct RouterFailure {
    pub router: &'static str,
    #[source]
    pub source: RouterError,
}

/// What a reconcile does with the routing objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// An update is in progress (or an abort is still stepping down): every router plans.
    Route,
    /// Nothing is in progress — fully promoted, or aborted with the canary at 0 and no managed
    /// route active: routing is handed back (`Router::release`): managed routes removed,
    /// 100 % stable, the NGINX canary Ingress deleted. Releasing is idempotent, so a settled
    /// Rollout is never written to again until its next update.
    Release,
}

/// The mode for `desired` (see [`Mode`]).
pub fn mode(desired: &DesiredTraffic) -> Mode {
    let settled = desired.hold.is_none()
        && desired.canary.weight == 0
        && desired.additional.iter().all(|a| a.weight == 0)
        && desired
            .managed_routes
            .iter()
            .all(|r| !matches!(r.state, RouteState::Active { .. }));
    match desired.case {
        WeightCase::B | WeightCase::C if settled => Mode::Release,
        _ => Mode::Route,
    }
}

/// Plans (or, in [`Mode::Release`], releases) every router and applies the changes to
/// `objects` (as the API server would). Stops at the first router error, like Argo, which
/// aborts the remaining providers.
pub fn plan_and_apply(
    desired: &DesiredTraffic,
    routers: &[&dyn Router],
    objects: &mut ObjectSet,
) -> Result<Vec<RouterChanges>, RouterFailure> {
    let mode = mode(desired);
    let mut planned = Vec::with_capacity(routers.len());
    for router in routers {
        let fail = |source| RouterFailure {
            router: router.name(),
            source,
        };
        let changes = match mode {
            Mode::Route => router.plan(desired, objects),
            Mode::Release => router.release(desired, objects),
        }
        .map_err(fail)?;
        objects.apply_all(&changes).map_err(|e| {
            fail(RouterError::InvalidConfig {
                field: String::new(),
                message: format!("planned change does not apply: {e}"),
            })
        })?;
        planned.push(RouterChanges {
            router: router.name(),
            changes,
        });
    }
    Ok(planned)
}

/// What the objects apply now, per router.
pub fn observe(
    desired: &DesiredTraffic,
    routers: &[&dyn Router],
    objects: &ObjectSet,
) -> Result<Vec<ObservedWeights>, RouterFailure> {
    let mut observed = Vec::new();
    for router in routers {
        observed.extend(
            router
                .observe(desired, objects)
                .map_err(|source| RouterFailure {
                    router: router.name(),
                    source,
                })?,
        );
    }
    Ok(observed)
}

/// The applied weight to report: the weights every weighted place agrees on, or, when they
/// disagree, the first place that differs from the desired weight (so a partial application is
/// never reported as done).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub canary_weight: Option<i32>,
    pub stable_weight: Option<i32>,
    /// `true` when every place was verified, `false` when one was not, `null` when no router
    /// could ask its data plane.
    pub verified: Option<bool>,
}

pub fn report(desired: &DesiredTraffic, observed: &[ObservedWeights]) -> Report {
    let chosen = observed
        .iter()
        .find(|o| {
            o.canary.weight != desired.canary.weight || o.stable.weight != desired.stable.weight
        })
        .or_else(|| observed.first());
    let verified = if observed.iter().any(|o| o.verified == Some(false)) {
        Some(false)
    } else if !observed.is_empty() && observed.iter().all(|o| o.verified == Some(true)) {
        Some(true)
    } else {
        None
    };
    Report {
        canary_weight: chosen.map(|o| o.canary.weight),
        stable_weight: chosen.map(|o| o.stable.weight),
        verified,
    }
}
