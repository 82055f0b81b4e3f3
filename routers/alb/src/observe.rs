//! Reading back what the Ingresses apply: the weighted action as the AWS Load Balancer
//! Controller will read it, per Ingress. `verified` stays `None`: only AWS can confirm the
//! target-group weights (see [`crate::verify`]).

use rollout_router_core::{AlbConfig, ObservedWeights, RouterError, WeightDestination};

use crate::action::ForwardAction;
use crate::ingress::{Ingress, annotation_key, backend_service};
use crate::plan::Targets;

/// The weights the action of one Ingress applies. Target groups are matched to canary and
/// stable by Service name (not position), so a ping-pong role swap reads correctly before the
/// action is rewritten; the other target groups are reported as additional, in action order.
pub fn observe_ingress(
    config: &AlbConfig,
    targets: &Targets<'_>,
    route_names: &[&str],
    ingress: Ingress<'_>,
) -> Result<ObservedWeights, RouterError> {
    let key = annotation_key(config.annotation_prefix(), "actions", targets.action_name);
    let field = format!("metadata.annotations[{key}]");
    let value = ingress.annotation(&key).ok_or_else(|| {
        RouterError::invalid_object(
            ingress.key,
            &field,
            "is missing: the Ingress is not programmed",
        )
    })?;
    let action = ForwardAction::parse(value)
        .map_err(|message| RouterError::invalid_object(ingress.key, &field, message))?;
    let destination = |name: &str, weight: i64| WeightDestination {
        weight: clamp(weight),
        service_name: name.to_owned(),
        pod_template_hash: String::new(),
    };
    let canary = destination(
        targets.canary_service,
        action.weight_of(targets.canary_service).unwrap_or(0),
    );
    let stable = destination(
        targets.stable_service,
        action.weight_of(targets.stable_service).unwrap_or(0),
    );
    let additional = action
        .target_groups
        .iter()
        .filter(|tg| {
            tg.service_name != targets.canary_service && tg.service_name != targets.stable_service
        })
        .map(|tg| destination(&tg.service_name, tg.weight))
        .collect();
    Ok(ObservedWeights {
        object: ingress.key.clone(),
        location: format!("actions.{}", targets.action_name),
        canary,
        stable,
        additional,
        verified: None,
        managed_routes: present_routes(config, route_names, &ingress),
    })
}

/// Managed routes programmed on the Ingress (their action annotation exists), in the order of
/// their paths, then any without a path.
fn present_routes(config: &AlbConfig, route_names: &[&str], ingress: &Ingress<'_>) -> Vec<String> {
    let prefix = config.annotation_prefix();
    let programmed: Vec<&str> = route_names
        .iter()
        .copied()
        .filter(|r| {
            ingress
                .annotation_value(&annotation_key(prefix, "actions", r))
                .is_some()
        })
        .collect();
    let mut found: Vec<String> = Vec::new();
    for rule in ingress.rules() {
        for path in rule.paths.iter().flatten() {
            if let Some(name) = backend_service(path)
                && programmed.contains(&name)
                && !found.iter().any(|f| f == name)
            {
                found.push(name.to_owned());
            }
        }
    }
    for name in programmed {
        if !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
    }
    found
}

fn clamp(weight: i64) -> i32 {
    i32::try_from(weight).unwrap_or(if weight < 0 { i32::MIN } else { i32::MAX })
}
