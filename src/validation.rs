//! Whether a Rollout is rollout-router's, and whether its routing configuration can be applied
//! (spec 00 §9, adapted: header routes are allowed on NGINX, ALB header values must be exact,
//! what a router cannot express is rejected here by that router). Every error names the field.

use std::collections::BTreeSet;

use rollout_router_core::{PluginConfig, RouteSpec, Router, StringMatch, ValidationError};

use crate::rollout::{CanaryStrategy, Rollout};

const CANARY: &str = "spec.strategy.canary";

/// The router blocks Argo Rollouts programs itself when they sit directly in `trafficRouting`.
const BUILTIN_BLOCKS: [&str; 3] = ["istio", "nginx", "alb"];

/// Where the plugin block lives, for error paths.
pub fn plugin_path(plugin_key: &str) -> String {
    format!("{CANARY}.trafficRouting.plugins[\"{plugin_key}\"]")
}

/// Parses the plugin block of a Rollout that carries one. `Ok(None)`: not ours.
pub fn plugin_config(
    rollout: &Rollout,
    plugin_key: &str,
) -> Result<Option<PluginConfig>, ValidationError> {
    let Some(block) = rollout.plugin_block(plugin_key) else {
        return Ok(None);
    };
    PluginConfig::from_value(block)
        .map(Some)
        .map_err(|e| e.under(&plugin_path(plugin_key)))
}

/// Checks the Rollout against its configuration and the routers built from it. Returns every
/// problem found, not just the first.
pub fn validate(
    rollout: &Rollout,
    config: &PluginConfig,
    routers: &[&dyn Router],
    plugin_key: &str,
) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let Some(canary) = rollout.canary() else {
        errors.push(ValidationError::new(
            CANARY,
            "rollout-router routes canary Rollouts only; this Rollout has no canary strategy",
        ));
        return errors;
    };
    let tr = canary.traffic_routing.as_ref();
    let max = tr.and_then(|t| t.max_traffic_weight).unwrap_or(100);
    let mut err =
        |field: String, message: String| errors.push(ValidationError::new(field, message));

    if rollout.metadata.name.is_empty() {
        err("metadata.name".into(), "must not be empty".into());
    }

    // Two writers of the same objects fight: refuse Argo's built-in block next to ours.
    for block in BUILTIN_BLOCKS {
        let ours = match block {
            "istio" => config.istio.is_some(),
            "nginx" => config.nginx.is_some(),
            _ => config.alb.is_some(),
        };
        if ours && tr.is_some_and(|t| t.builtin.contains_key(block)) {
            err(
                format!("{CANARY}.trafficRouting.{block}"),
                format!(
                    "Argo Rollouts' built-in {block} routing is configured as well as {}: two \
                     controllers would write the same objects; keep only the plugin block",
                    plugin_path(plugin_key)
                ),
            );
        }
    }

    services(canary, config, plugin_key, &mut err);

    if canary.dynamic_stable_scale && canary.scale_down_delay_seconds.is_some() {
        err(
            format!("{CANARY}.dynamicStableScale"),
            "cannot be combined with scaleDownDelaySeconds".into(),
        );
    }
    if let Some(m) = tr.and_then(|t| t.max_traffic_weight) {
        if m <= 0 {
            err(
                format!("{CANARY}.trafficRouting.maxTrafficWeight"),
                format!("must be > 0, got {m}"),
            );
        } else if m != 100 && (config.istio.is_some() || config.alb.is_some()) {
            err(
                format!("{CANARY}.trafficRouting.maxTrafficWeight"),
                format!(
                    "is {m}, but Istio and ALB weights are percentages: maxTrafficWeight is \
                     supported with nginx only"
                ),
            );
        }
    }

    let managed: Vec<&str> = tr
        .map(|t| t.managed_routes.iter().map(|r| r.name.as_str()).collect())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (i, name) in managed.iter().enumerate() {
        if name.is_empty() {
            err(
                format!("{CANARY}.trafficRouting.managedRoutes[{i}].name"),
                "must not be empty".into(),
            );
        } else if !seen.insert(*name) {
            err(
                format!("{CANARY}.trafficRouting.managedRoutes[{i}].name"),
                format!("duplicate managed route {name:?}"),
            );
        }
    }

    for (i, step) in canary.steps.iter().enumerate() {
        let at = format!("{CANARY}.steps[{i}]");
        if let Some(w) = step.set_weight
            && !(0..=max).contains(&w)
        {
            err(
                format!("{at}.setWeight"),
                format!("must be in [0, {max}], got {w}"),
            );
        }
        let route = if let Some(h) = &step.set_header_route {
            for (j, m) in h.matches.iter().enumerate() {
                let mat = format!("{at}.setHeaderRoute.match[{j}]");
                if m.header_name.is_empty() {
                    err(format!("{mat}.headerName"), "must not be empty".into());
                }
                match &m.header_value {
                    None => err(format!("{mat}.headerValue"), "is required".into()),
                    Some(v) => string_match(v, format!("{mat}.headerValue"), &mut err),
                }
            }
            Some(("setHeaderRoute", RouteSpec::SetHeaderRoute(h.clone())))
        } else if let Some(m) = &step.set_mirror_route {
            for (j, rm) in m.matches.iter().enumerate() {
                let mat = format!("{at}.setMirrorRoute.match[{j}]");
                if let Some(method) = &rm.method {
                    string_match(method, format!("{mat}.method"), &mut err);
                }
                if let Some(path) = &rm.path {
                    string_match(path, format!("{mat}.path"), &mut err);
                }
                // Argo does not validate mirror header values; we do.
                for (name, value) in &rm.headers {
                    string_match(value, format!("{mat}.headers.{name}"), &mut err);
                }
            }
            if let Some(p) = m.percentage
                && !(0..=100).contains(&p)
            {
                err(
                    format!("{at}.setMirrorRoute.percentage"),
                    format!("must be in [0, 100], got {p}"),
                );
            }
            Some(("setMirrorRoute", RouteSpec::SetMirrorRoute(m.clone())))
        } else {
            None
        };
        if let Some((kind, route)) = route {
            let name = match &route {
                RouteSpec::SetHeaderRoute(h) => h.name.as_str(),
                RouteSpec::SetMirrorRoute(m) => m.name.as_str(),
            };
            if !managed.contains(&name) {
                err(
                    format!("{at}.{kind}.name"),
                    format!(
                        "route {name:?} must be listed in {CANARY}.trafficRouting.managedRoutes"
                    ),
                );
            }
            // An empty match removes the route: every router can remove.
            let removal = match &route {
                RouteSpec::SetHeaderRoute(h) => h.matches.is_empty(),
                RouteSpec::SetMirrorRoute(m) => m.matches.is_empty(),
            };
            if !removal {
                for router in routers {
                    if let Err(message) = router.validate_route(&route) {
                        err(
                            format!("{at}.{kind}"),
                            format!("{} router: {message}", router.name()),
                        );
                    }
                }
            }
        }
        if let Some(e) = &step.experiment
            && e.templates.iter().any(|t| t.weight.is_some())
            && config.istio.is_none()
            && config.alb.is_none()
        {
            err(
                format!("{at}.experiment.templates"),
                "weighted experiment templates need Istio or ALB routing: an NGINX canary \
                 Ingress has a single canary backend"
                    .into(),
            );
        }
    }
    // ingress-nginx has one header slot per canary Ingress: at most one header route at a time.
    if config.nginx.is_some() {
        let header_steps = canary
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.set_header_route.as_ref().map(|h| (i, h)));
        if let Err(e) = rollout_router_nginx::validate_header_route_steps(header_steps) {
            let e = e.under(CANARY);
            errors.push(ValidationError::new(
                e.field,
                format!("nginx router: {}", e.message),
            ));
        }
    }
    errors
}

fn services(
    canary: &CanaryStrategy,
    config: &PluginConfig,
    plugin_key: &str,
    err: &mut impl FnMut(String, String),
) {
    let (c, s) = (&canary.canary_service, &canary.stable_service);
    if !c.is_empty() && c == s {
        err(
            format!("{CANARY}.canaryService"),
            format!("must differ from stableService ({s:?})"),
        );
    }
    let ping_pong = canary.ping_pong.as_ref();
    let required = config.nginx.is_some()
        || (config.alb.is_some() && ping_pong.is_none())
        || config
            .istio
            .as_ref()
            .is_some_and(|i| i.destination_rule.is_none() && ping_pong.is_none());
    if required {
        for (field, value) in [("canaryService", c), ("stableService", s)] {
            if value.is_empty() {
                err(
                    format!("{CANARY}.{field}"),
                    "is required with this routing (nginx, ALB without pingPong, or Istio \
                     host-level splitting)"
                        .into(),
                );
            }
        }
    }
    if let Some(pp) = ping_pong {
        if pp.ping_service.is_empty() || pp.pong_service.is_empty() {
            err(
                format!("{CANARY}.pingPong"),
                "needs both pingService and pongService".into(),
            );
        } else if pp.ping_service == pp.pong_service {
            err(
                format!("{CANARY}.pingPong.pongService"),
                "must differ from pingService".into(),
            );
        }
        if config.nginx.is_some() {
            err(
                format!("{CANARY}.pingPong"),
                "is supported with Istio and ALB only, not nginx".into(),
            );
        }
        if config
            .alb
            .as_ref()
            .is_some_and(|a| a.root_service.as_deref().unwrap_or("").is_empty())
        {
            err(
                format!("{}.alb.rootService", plugin_path(plugin_key)),
                "is required with pingPong (it names the ALB action)".into(),
            );
        }
    }
}

fn string_match(m: &StringMatch, field: String, err: &mut impl FnMut(String, String)) {
    if m.kinds_set() != 1 {
        err(field, "must set exactly one of exact, prefix, regex".into());
    }
}
