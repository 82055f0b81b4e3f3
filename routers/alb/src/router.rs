//! [`AlbRouter`]: the `Router` implementation the controller and the `plan` command call.

use rollout_router_core::{
    AlbConfig, Change, DesiredTraffic, ObjectKey, ObjectSet, ObservedWeights, RolloutRef,
    RouteSpec, Router, RouterError,
};

use crate::condition::exact_values;
use crate::ingress::{GROUP, Ingress, KIND};
use crate::observe::observe_ingress;
use crate::plan::{PlanInputs, Targets, weight_action};
use crate::release::{SteadyAction, release_ingress};
use crate::verify::{
    ExpectedTargetGroup, TargetGroupRole, VerificationRequest, resource_tag_value,
};

/// Translates desired traffic into annotations on the user's AWS Load Balancer Controller
/// Ingresses (spec 30). Every configured Ingress is brought to the desired state in each plan
/// (Argo stops at the first unchanged one, spec 40 #51).
#[derive(Clone, Debug)]
pub struct AlbRouter {
    config: AlbConfig,
}

impl AlbRouter {
    pub fn new(config: AlbConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &AlbConfig {
        &self.config
    }

    /// The configured Ingress names, without empty or repeated names.
    fn ingress_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self.config.ingresses().filter(|n| !n.is_empty()) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    fn ingresses<'a>(
        &'a self,
        namespace: &str,
        objects: &'a ObjectSet,
    ) -> impl Iterator<Item = (ObjectKey, Option<&'a serde_json::Value>)> + 'a {
        let namespace = namespace.to_owned();
        self.ingress_names().into_iter().map(move |name| {
            let key = ObjectKey::new(GROUP, KIND, namespace.clone(), name);
            let value = objects.get(&key);
            (key, value)
        })
    }

    /// What to ask AWS to verify the weights of `desired` (spec 30 §6), one request per
    /// Ingress; hand each to a [`crate::TargetGroupVerifier`].
    pub fn verification_requests(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<VerificationRequest>, RouterError> {
        let targets = Targets::new(&self.config, desired)?;
        let action = weight_action(&self.config, desired, &targets)?;
        let last = action.target_groups.len().saturating_sub(1);
        self.ingresses(&desired.rollout.namespace, objects)
            .map(|(key, value)| {
                let value = value.ok_or_else(|| RouterError::NotFound { key: key.clone() })?;
                let ingress = Ingress::new(&key, value);
                let target_groups = action
                    .target_groups
                    .iter()
                    .enumerate()
                    .map(|(i, tg)| ExpectedTargetGroup {
                        role: match i {
                            0 => TargetGroupRole::Canary,
                            i if i == last => TargetGroupRole::Stable,
                            _ => TargetGroupRole::Additional,
                        },
                        service_name: tg.service_name.clone(),
                        resource_tag_value: resource_tag_value(
                            &key,
                            &tg.service_name,
                            self.config.service_port,
                        ),
                        weight: tg.weight,
                    })
                    .collect();
                Ok(VerificationRequest {
                    load_balancer_hostnames: ingress.load_balancer_hostnames(),
                    ingress: key,
                    target_groups,
                })
            })
            .collect()
    }
}

impl Router for AlbRouter {
    fn name(&self) -> &'static str {
        "alb"
    }

    fn object_keys(&self, rollout: &RolloutRef) -> Vec<ObjectKey> {
        self.ingress_names()
            .into_iter()
            .map(|name| ObjectKey::new(GROUP, KIND, rollout.namespace.clone(), name))
            .collect()
    }

    fn validate_route(&self, route: &RouteSpec) -> Result<(), String> {
        match route {
            RouteSpec::SetMirrorRoute(_) => Err(
                "ALB cannot mirror traffic: setMirrorRoute is not supported with the alb router"
                    .into(),
            ),
            RouteSpec::SetHeaderRoute(step) => exact_values(&step.matches)
                .map(drop)
                .map_err(|e| e.message()),
        }
    }

    fn plan(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError> {
        let inputs = PlanInputs::new(&self.config, desired)?;
        let mut changes = Vec::new();
        // Every Ingress, also after an unchanged one (Argo returns early there, spec 40 #51).
        for (key, value) in self.ingresses(&desired.rollout.namespace, objects) {
            let value = value.ok_or_else(|| RouterError::NotFound { key: key.clone() })?;
            if let Some(patch) = inputs.plan_ingress(Ingress::new(&key, value))? {
                changes.push(Change::Patch { key, patch });
            }
        }
        Ok(changes)
    }

    fn release(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError> {
        let rollout = &desired.rollout;
        let steady = SteadyAction::for_release(&self.config, desired)?;
        let mut changes = Vec::new();
        for (key, value) in self.ingresses(&rollout.namespace, objects) {
            // A deleted Ingress has nothing left to hand back.
            let Some(value) = value else { continue };
            if let Some(patch) =
                release_ingress(rollout, steady.as_ref(), Ingress::new(&key, value))?
            {
                changes.push(Change::Patch { key, patch });
            }
        }
        Ok(changes)
    }

    fn observe(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<ObservedWeights>, RouterError> {
        let targets = Targets::new(&self.config, desired)?;
        let routes: Vec<&str> = desired
            .managed_routes
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        self.ingresses(&desired.rollout.namespace, objects)
            .map(|(key, value)| {
                let value = value.ok_or_else(|| RouterError::NotFound { key: key.clone() })?;
                observe_ingress(&self.config, &targets, &routes, Ingress::new(&key, value))
            })
            .collect()
    }
}
