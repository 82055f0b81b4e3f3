//! Handing Ingresses back when a Rollout stops routing through rollout-router (spec 30 §4.1,
//! spec 40 #58), driven by the bookkeeping annotation.
//!
//! What stays and what goes, and why:
//! * The weighted action (`actions.<rootService|stableService>`) is **kept** and reset to 100 % to
//!   the Service that is stable now (the last target group, with its port and stickiness). A rule
//!   of the Ingress points at it with `use-annotation`, so deleting it would break the Ingress
//!   (LBC rejects a `use-annotation` backend without an action); 100 % stable is what the Ingress
//!   did before the Rollout, and the user owns the annotation from now on.
//! * Header routes (`actions.<route>` + `conditions.<route>` and their `/*` paths) are removed:
//!   they only ever sent traffic to a canary that no longer exists. Argo gives up here (it finds
//!   no port for the route action) and leaves conditions behind.
//! * The Rollout's bookkeeping entry is removed (the annotation too when it becomes empty), and
//!   its entries in Argo's legacy `managed-alb-actions` annotation. Other Rollouts' entries stay.
//! * Settled Rollout (release case (a), the steady state): an Ingress whose rule routes through
//!   the action but that has no action annotation at all gets the 100 % stable action, because
//!   LBC cannot build that listener rule without it (Argo writes the action on every reconcile,
//!   steady state included, spec 30 §2.4). An existing action — the user's, whatever it says, or
//!   ours — is left alone. No bookkeeping entry is written for it: the controller's journal
//!   records the write, so deleting the Rollout removes exactly what was added.

use rollout_router_core::json_patch::Patch;
use rollout_router_core::{AlbConfig, DesiredTraffic, RolloutRef, RouterError};

use crate::action::{ForwardAction, TargetGroup};
use crate::bookkeeping::{LEGACY_MANAGED_ACTIONS, legacy_without};
use crate::edit::IngressEdit;
use crate::ingress::{Ingress, annotation_key, routes_through_action, split_managed_key};
use crate::plan::{ALB_TOTAL_WEIGHT, Targets, read_bookkeeping, remove_route, stickiness};

/// The weighted action a settled Rollout's Ingresses must carry when they have none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SteadyAction {
    /// The action name (`rootService`, else the stable Service) the Ingress rule must route to.
    pub action_name: String,
    /// `<prefix>/actions.<action_name>`.
    pub key: String,
    /// 100 % to the stable Service in its current role, in rollout-router's canonical bytes.
    pub value: String,
}

impl SteadyAction {
    /// `None` when `desired` is not a settled Rollout's steady state but the hand-back after the
    /// Rollout is gone (`Router::release` case (b): no stable pod-template hash). Then nothing is
    /// added: the journal's undo restores what the user had, which may be no action at all.
    pub fn for_release(
        config: &AlbConfig,
        desired: &DesiredTraffic,
    ) -> Result<Option<Self>, RouterError> {
        if desired.stable.pod_template_hash.is_empty() {
            return Ok(None);
        }
        let targets = Targets::new(config, desired)?;
        if targets.stable_service.is_empty() {
            return Ok(None);
        }
        // The form release leaves after every update (one target group), so a fresh Rollout and
        // a completed one look the same, and no target group for the canary Service is needed
        // while nothing is in progress. Argo writes `canary 0 / stable 100` here (docs/alb.md).
        let action = ForwardAction {
            target_groups: vec![TargetGroup {
                service_name: targets.stable_service.to_owned(),
                service_port: config.service_port.to_string(),
                weight: i64::from(ALB_TOTAL_WEIGHT),
            }],
            stickiness: stickiness(config)?,
        };
        Ok(Some(Self {
            action_name: targets.action_name.to_owned(),
            key: annotation_key(config.annotation_prefix(), "actions", targets.action_name),
            value: action.to_annotation(),
        }))
    }
}

/// The guarded patch that hands one Ingress back, `None` when the Rollout left nothing on it and
/// nothing is missing.
pub fn release_ingress(
    rollout: &RolloutRef,
    steady: Option<&SteadyAction>,
    ingress: Ingress<'_>,
) -> Result<Option<Patch>, RouterError> {
    let book = read_bookkeeping(&ingress)?;
    let keys: Vec<String> = book.keys(&rollout.name).unwrap_or_default().to_vec();
    let mut edit = IngressEdit::new(ingress, book);

    // A route is recorded with its condition; an action without a condition is the weighted one.
    let routes: Vec<&str> = keys
        .iter()
        .filter_map(|k| match split_managed_key(k) {
            Some(("conditions", name)) => Some(name),
            _ => None,
        })
        .collect();
    for key in &keys {
        let Some(("actions", name)) = split_managed_key(key) else {
            continue;
        };
        if routes.contains(&name) {
            continue;
        }
        let Some(current) = ingress.annotation(key) else {
            continue;
        };
        let action = ForwardAction::parse(current).map_err(|message| {
            RouterError::invalid_object(
                ingress.key,
                format!("metadata.annotations[{key}]"),
                message,
            )
        })?;
        let Some(stable) = action.target_groups.last() else {
            continue;
        };
        let reset = ForwardAction {
            target_groups: vec![TargetGroup {
                weight: i64::from(ALB_TOTAL_WEIGHT),
                ..stable.clone()
            }],
            stickiness: action.stickiness,
        };
        edit.set_annotation(key.clone(), reset.to_annotation());
    }
    for name in &routes {
        let route_keys: Vec<String> = keys
            .iter()
            .filter(|k| split_managed_key(k).is_some_and(|(_, n)| n == *name))
            .cloned()
            .collect();
        remove_route(&mut edit, &rollout.name, name, &route_keys);
    }
    edit.book.remove_rollout(&rollout.name);

    // Only when the key is absent: any value there (the user's own action, equivalent or not, or
    // the one reset above) is kept. The patch is guarded by the resourceVersion, so a concurrent
    // writer of the key wins.
    if let Some(steady) = steady
        && ingress.annotation_value(&steady.key).is_none()
        && routes_through_action(&ingress, &steady.action_name)
    {
        edit.add_missing_annotation(steady.key.clone(), steady.value.clone());
    }

    if let Some(legacy) = ingress.annotation(LEGACY_MANAGED_ACTIONS) {
        match legacy_without(legacy, &rollout.name) {
            None => edit.remove_annotation(LEGACY_MANAGED_ACTIONS.to_owned()),
            Some(rest) if rest != legacy => {
                edit.set_annotation(LEGACY_MANAGED_ACTIONS.to_owned(), rest);
            }
            Some(_) => {}
        }
    }
    Ok(edit.into_patch())
}
