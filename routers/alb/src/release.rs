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

use rollout_router_core::json_patch::Patch;
use rollout_router_core::{RolloutRef, RouterError};

use crate::action::{ForwardAction, TargetGroup};
use crate::bookkeeping::{LEGACY_MANAGED_ACTIONS, legacy_without};
use crate::edit::IngressEdit;
use crate::ingress::{Ingress, split_managed_key};
use crate::plan::{ALB_TOTAL_WEIGHT, read_bookkeeping, remove_route};

/// The guarded patch that hands one Ingress back, `None` when the Rollout left nothing on it.
pub fn release_ingress(
    rollout: &RolloutRef,
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
