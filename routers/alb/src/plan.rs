//! Planning: what the action, condition and bookkeeping annotations and the header-route paths
//! of each Ingress must be for a `DesiredTraffic` (spec 30 §2, §4, §5).

use rollout_router_core::json_patch::Patch;
use rollout_router_core::{AlbConfig, DesiredTraffic, RouteSpec, RouteState, RouterError};

use crate::action::{
    ForwardAction, STICKINESS_MAX_SECONDS, STICKINESS_MIN_SECONDS, Stickiness, TargetGroup,
};
use crate::bookkeeping::{MANAGED_ANNOTATIONS, ManagedAnnotations};
use crate::condition::conditions_annotation;
use crate::edit::IngressEdit;
use crate::ingress::{Ingress, annotation_key, split_managed_key, validate_action_backend};

/// ALB weights are percentages: Argo hard-codes 100 and rejects `maxTrafficWeight` for ALB.
pub const ALB_TOTAL_WEIGHT: i32 = 100;

/// The Services one Rollout programs into ALB actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets<'a> {
    /// The action name: `rootService`, else the stable Service.
    pub action_name: &'a str,
    /// Canary/stable in their current roles; the ping/pong pair whenever `pingPong` is set
    /// (ALB always prefers ping-pong, spec 00 §7).
    pub canary_service: &'a str,
    pub stable_service: &'a str,
}

impl<'a> Targets<'a> {
    pub fn new(config: &'a AlbConfig, desired: &'a DesiredTraffic) -> Result<Self, RouterError> {
        let root = config.root_service.as_deref().filter(|s| !s.is_empty());
        let (canary_service, stable_service) = match &desired.ping_pong {
            Some(pp) => {
                if root.is_none() {
                    return Err(RouterError::InvalidConfig {
                        field: "alb.rootService".into(),
                        message: "is required with pingPong: it names the action the Ingress rule uses, which must not change when ping and pong swap roles".into(),
                    });
                }
                (pp.canary_service.as_str(), pp.stable_service.as_str())
            }
            None => (
                desired.canary.service_name.as_str(),
                desired.stable.service_name.as_str(),
            ),
        };
        let action_name = root.unwrap_or(stable_service);
        if action_name.is_empty() {
            return Err(RouterError::InvalidConfig {
                field: "stableService".into(),
                message: "ALB needs a stableService (or alb.rootService) to name the action".into(),
            });
        }
        Ok(Self {
            action_name,
            canary_service,
            stable_service,
        })
    }
}

/// `TargetGroupStickinessConfig` when enabled, validated to AWS's bounds.
pub fn stickiness(config: &AlbConfig) -> Result<Option<Stickiness>, RouterError> {
    let Some(s) = config.stickiness_config.as_ref().filter(|s| s.enabled) else {
        return Ok(None);
    };
    if !(STICKINESS_MIN_SECONDS..=STICKINESS_MAX_SECONDS).contains(&s.duration_seconds) {
        return Err(RouterError::InvalidConfig {
            field: "alb.stickinessConfig.durationSeconds".into(),
            message: "TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!".into(),
        });
    }
    Ok(Some(Stickiness {
        enabled: true,
        duration_seconds: s.duration_seconds,
    }))
}

/// The weighted action of spec 30 §2.2: canary, additional destinations, stable last.
pub fn weight_action(
    config: &AlbConfig,
    desired: &DesiredTraffic,
    targets: &Targets<'_>,
) -> Result<ForwardAction, RouterError> {
    if desired.total != ALB_TOTAL_WEIGHT {
        return Err(RouterError::InvalidConfig {
            field: "trafficRouting.maxTrafficWeight".into(),
            message: format!(
                "ALB weights are percentages: maxTrafficWeight must be 100 (or unset), got {}",
                desired.total
            ),
        });
    }
    let port = config.service_port.to_string();
    let canary = i64::from(desired.canary.weight);
    let additional: i64 = desired.additional.iter().map(|d| i64::from(d.weight)).sum();
    let stable = i64::from(ALB_TOTAL_WEIGHT) - canary - additional;
    // Argo writes a negative stable weight here (spec 40 #52), which LBC rejects for the whole
    // Ingress; refusing keeps the last good action in place.
    if canary < 0 || stable < 0 || desired.additional.iter().any(|d| d.weight < 0) {
        return Err(RouterError::InvalidConfig {
            field: "weights".into(),
            message: format!(
                "canary {canary} + experiment destinations {additional} must be within 0..=100 (stable would get {stable})"
            ),
        });
    }
    let entry = |name: &str, weight: i64| TargetGroup {
        service_name: name.to_owned(),
        service_port: port.clone(),
        weight,
    };
    let mut target_groups = Vec::with_capacity(2 + desired.additional.len());
    target_groups.push(entry(targets.canary_service, canary));
    target_groups.extend(
        desired
            .additional
            .iter()
            .map(|d| entry(&d.service_name, i64::from(d.weight))),
    );
    target_groups.push(entry(targets.stable_service, stable));
    Ok(ForwardAction {
        target_groups,
        stickiness: stickiness(config)?,
    })
}

/// The action of a header route: 100 % to the canary Service (spec 30 §5.1).
pub fn route_action(
    config: &AlbConfig,
    targets: &Targets<'_>,
) -> Result<ForwardAction, RouterError> {
    Ok(ForwardAction {
        target_groups: vec![TargetGroup {
            service_name: targets.canary_service.to_owned(),
            service_port: config.service_port.to_string(),
            weight: i64::from(ALB_TOTAL_WEIGHT),
        }],
        stickiness: stickiness(config)?,
    })
}

/// Everything computed once per plan and shared by the Ingresses.
pub struct PlanInputs<'a> {
    pub config: &'a AlbConfig,
    pub desired: &'a DesiredTraffic,
    pub targets: Targets<'a>,
    /// `None` under a hold: weights stay as programmed.
    pub weight_action: Option<String>,
    pub route_action: String,
}

impl<'a> PlanInputs<'a> {
    pub fn new(config: &'a AlbConfig, desired: &'a DesiredTraffic) -> Result<Self, RouterError> {
        let targets = Targets::new(config, desired)?;
        for route in &desired.managed_routes {
            if route.name == targets.action_name {
                return Err(RouterError::InvalidConfig {
                    field: "trafficRouting.managedRoutes".into(),
                    message: format!(
                        "route `{}` has the name of the action Service; its annotations would overwrite the weighted action",
                        route.name
                    ),
                });
            }
        }
        let weight_action = if desired.is_held() {
            None
        } else {
            Some(weight_action(config, desired, &targets)?.to_annotation())
        };
        Ok(Self {
            config,
            desired,
            targets,
            weight_action,
            route_action: route_action(config, &targets)?.to_annotation(),
        })
    }

    /// The guarded patch that brings one Ingress to the desired state, `None` when it is there.
    pub fn plan_ingress(&self, ingress: Ingress<'_>) -> Result<Option<Patch>, RouterError> {
        let prefix = self.config.annotation_prefix();
        let rollout = self.desired.rollout.name.as_str();
        let action_name = self.targets.action_name;
        validate_action_backend(&ingress, action_name)?;
        let book = read_bookkeeping(&ingress)?;
        let mut edit = IngressEdit::new(ingress, book);

        if let Some(value) = &self.weight_action {
            let key = annotation_key(prefix, "actions", action_name);
            edit.book.add(rollout, &key);
            edit.set_annotation(key, value.clone());
        }

        for route in &self.desired.managed_routes {
            let name = route.name.as_str();
            let action_key = annotation_key(prefix, "actions", name);
            let conditions_key = annotation_key(prefix, "conditions", name);
            match &route.state {
                RouteState::Unchanged => {}
                RouteState::Active {
                    route: RouteSpec::SetMirrorRoute(_),
                } => {
                    return Err(RouterError::InvalidConfig {
                        field: format!("setMirrorRoute {name}"),
                        message: "ALB cannot mirror traffic".into(),
                    });
                }
                RouteState::Active {
                    route: RouteSpec::SetHeaderRoute(step),
                } if !step.matches.is_empty() => {
                    // Defensive: under a hold nothing is added or changed (the engine already
                    // turns Active into Unchanged then).
                    if self.desired.is_held() {
                        continue;
                    }
                    let conditions = conditions_annotation(&step.matches).map_err(|e| {
                        RouterError::InvalidConfig {
                            field: format!("setHeaderRoute {name}"),
                            message: e.message(),
                        }
                    })?;
                    edit.book.add(rollout, &action_key);
                    edit.book.add(rollout, &conditions_key);
                    edit.set_annotation(action_key, self.route_action.clone());
                    edit.set_annotation(conditions_key, conditions);
                    edit.ensure_route_path(name, action_name);
                }
                // An empty match list is a removal (spec 00 §1.4, spec 30 §5.1).
                RouteState::Active { .. } | RouteState::Absent => {
                    remove_route(&mut edit, rollout, name, &[action_key, conditions_key]);
                }
            }
        }

        // Routes this Rollout programmed that are no longer in `managedRoutes`: nothing would
        // ever remove them otherwise.
        let stale: Vec<(String, Vec<String>)> = stale_routes(&edit.book, rollout, self.desired)
            .into_iter()
            .filter(|(name, _)| name != action_name)
            .collect();
        for (name, keys) in stale {
            remove_route(&mut edit, rollout, &name, &keys);
        }

        let order: Vec<&str> = self
            .desired
            .managed_routes
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        edit.sort_paths(&order);
        Ok(edit.into_patch())
    }
}

/// Removes a header route's annotations, bookkeeping and paths (spec 30 §5.2, §5.3).
pub fn remove_route(edit: &mut IngressEdit<'_>, rollout: &str, name: &str, keys: &[String]) {
    for key in keys {
        edit.book.remove(rollout, key);
        edit.remove_annotation(key.clone());
    }
    edit.remove_route_paths(name);
}

/// The bookkeeping annotation of an Ingress; unparsable is an error (spec 30 §4).
pub fn read_bookkeeping(ingress: &Ingress<'_>) -> Result<ManagedAnnotations, RouterError> {
    ManagedAnnotations::parse(ingress.annotation(MANAGED_ANNOTATIONS)).map_err(|message| {
        RouterError::invalid_object(
            ingress.key,
            format!("metadata.annotations[{MANAGED_ANNOTATIONS}]"),
            message,
        )
    })
}

/// Header routes recorded for `rollout` (a `conditions.<name>` key) that are not in
/// `managedRoutes` any more, with all their recorded keys.
fn stale_routes(
    book: &ManagedAnnotations,
    rollout: &str,
    desired: &DesiredTraffic,
) -> Vec<(String, Vec<String>)> {
    let keys = book.keys(rollout).unwrap_or_default();
    let mut stale: Vec<(String, Vec<String>)> = Vec::new();
    for key in keys {
        if let Some(("conditions", name)) = split_managed_key(key)
            && desired.route(name).is_none()
            && !stale.iter().any(|(n, _)| n == name)
        {
            let route_keys = keys
                .iter()
                .filter(|k| split_managed_key(k).is_some_and(|(_, n)| n == name))
                .cloned()
                .collect();
            stale.push((name.to_owned(), route_keys));
        }
    }
    stale
}
