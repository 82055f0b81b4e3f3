//! nginx traffic translation: derives a canary Ingress from each stable Ingress and programs the
//! ingress-nginx canary annotations (weight, and header routes beyond Argo) on it; reads the
//! applied weights back. Pure: no client, no I/O (spec 20, spec 40 §C).

pub mod annotations;
pub mod canary_ingress;
pub mod header_route;
pub mod ingress;
mod observe;
mod plan;

use rollout_router_core::{
    Change, DesiredTraffic, NginxConfig, ObjectKey, ObjectSet, ObservedWeights, RolloutRef,
    RouteSpec, Router, RouterError,
};

pub use canary_ingress::canary_ingress_name;
pub use header_route::{HeaderMatch, HeaderValue, header_match, validate_header_route_steps};
pub use plan::DEFAULT_WEIGHT_TOTAL;

/// The nginx router of one Rollout's `nginx` configuration block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxRouter {
    config: NginxConfig,
}

impl NginxRouter {
    pub fn new(config: NginxConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &NginxConfig {
        &self.config
    }
}

impl Router for NginxRouter {
    fn name(&self) -> &'static str {
        "nginx"
    }

    /// Each stable Ingress, then its canary Ingress (which may be absent), in configuration
    /// order.
    fn object_keys(&self, rollout: &RolloutRef) -> Vec<ObjectKey> {
        plan::ingress_pairs(&self.config, rollout)
            .into_iter()
            .flat_map(|pair| [pair.stable, pair.canary])
            .collect()
    }

    /// Mirror routes are rejected; header routes must map onto one `canary-by-header` (see
    /// [`header_match`]) and must not compete with a static header annotation from the
    /// configuration. Whether two header routes would be active at once needs the whole step
    /// list: see [`validate_header_route_steps`].
    fn validate_route(&self, route: &RouteSpec) -> Result<(), String> {
        match route {
            RouteSpec::SetMirrorRoute(mirror) => Err(format!(
                "setMirrorRoute `{}`: ingress-nginx cannot mirror traffic per route (its canary \
                 annotations only split or select requests), so the nginx router does not \
                 support mirror routes",
                mirror.name
            )),
            // A step without match removes the route: always expressible.
            RouteSpec::SetHeaderRoute(step) if step.matches.is_empty() => Ok(()),
            RouteSpec::SetHeaderRoute(step) => {
                header_match(step).map_err(|e| format!("setHeaderRoute `{}`: {e}", step.name))?;
                let prefix = self.config.annotation_prefix();
                let static_annotations =
                    annotations::from_config(&self.config).map_err(|e| e.to_string())?;
                if let Some(key) = annotations::HEADER_ANNOTATIONS
                    .iter()
                    .map(|n| annotations::prefixed(prefix, n))
                    .find(|k| static_annotations.contains_key(k))
                {
                    return Err(format!(
                        "setHeaderRoute `{}`: the nginx configuration already sets `{key}` \
                         (additionalIngressAnnotations/canaryIngressAnnotations); a canary \
                         Ingress has a single header slot, so use either the static annotation \
                         or setHeaderRoute steps",
                        step.name
                    ));
                }
                Ok(())
            }
        }
    }

    fn plan(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError> {
        plan::Planner::new(&self.config)?.plan(desired, objects)
    }

    /// Deletes the canary Ingress this Rollout controls; only `desired.rollout` matters (the
    /// stable Ingress is never written, so there is nothing else to hand back).
    fn release(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError> {
        Ok(plan::release(&self.config, &desired.rollout, objects))
    }

    fn observe(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<ObservedWeights>, RouterError> {
        observe::observe(&self.config, desired, objects)
    }
}
