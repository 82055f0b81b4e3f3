//! Istio traffic translation: turns a `DesiredTraffic` plus the current VirtualServices and
//! DestinationRule into guarded JSON patches, and reads the applied weights back
//! (spec `10-istio.md`). Pure: no client, no I/O.
//!
//! Layout: [`reference`] resolves object keys, `selection` picks the weighted routes,
//! `weights` splits one route, `managed_routes` builds header/mirror routes and their order,
//! `virtual_service` and `destination_rule` patch one object each, `guard` pins what each
//! array operation assumes, `delay` holds the DestinationRule delay rule.

mod delay;
mod destination;
mod destination_rule;
mod guard;
mod json;
mod managed_routes;
pub mod reference;
mod selection;
mod virtual_service;
mod weights;

use rollout_router_core::{
    Change, DesiredTraffic, IstioConfig, ManagedRoute, ObjectKey, ObjectSet, ObservedWeights,
    RolloutRef, RouteSpec, RouteState, Router, RouterError, WeightDestination,
};

pub use destination_rule::POD_TEMPLATE_HASH_LABEL;
pub use reference::{DESTINATION_RULE_KIND, GROUP, VIRTUAL_SERVICE_KIND};

use destination::Targets;
use destination_rule::SubsetHashes;
use virtual_service::{RouteIntent, VsPlan};
use weights::Split;

/// Argo's default `--istio-api-version`.
pub const DEFAULT_API_VERSION: &str = "networking.istio.io/v1alpha3";

/// Istio weights here are percentages: Argo rejects `maxTrafficWeight` with Istio and writes
/// `100 - canary - …` for the stable destination.
const ISTIO_TOTAL: i32 = 100;

/// The Istio router of one Rollout.
#[derive(Clone, Debug)]
pub struct IstioRouter {
    config: IstioConfig,
    api_version: String,
}

/// Which parts of the desired state a plan may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mode {
    weights: bool,
    hashes: bool,
    add_routes: bool,
}

/// One planning pass: what may change, and how `plan` and `release` differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pass {
    mode: Mode,
    /// `release`: a VirtualService or DestinationRule that does not exist has nothing to hand
    /// back. `plan`: it is an error.
    skip_missing: bool,
    /// Whether the VirtualService changes go before the DestinationRule's.
    vs_first: bool,
}

impl Mode {
    const FULL: Self = Self {
        weights: true,
        hashes: true,
        add_routes: true,
    };
    /// The delay rule holds (spec 10 §6.1): managed routes still change (spec 00 §4 step 3),
    /// weights only for the early reset (step 4), the DestinationRule not at all.
    const fn delayed(early_reset: bool) -> Self {
        Self {
            weights: early_reset,
            hashes: false,
            add_routes: true,
        }
    }
    /// `DesiredTraffic::hold`: keep weights and hashes; only removals happen.
    const HOLD: Self = Self {
        weights: false,
        hashes: false,
        add_routes: false,
    };
}

impl IstioRouter {
    pub fn new(config: IstioConfig) -> Self {
        Self {
            config,
            api_version: DEFAULT_API_VERSION.to_owned(),
        }
    }

    /// The API version to address VirtualService/DestinationRule with (Argo's
    /// `--istio-api-version`): `v1beta1` or `networking.istio.io/v1beta1`.
    pub fn with_api_version(mut self, version: &str) -> Self {
        self.api_version = if version.contains('/') {
            version.to_owned()
        } else {
            format!("{GROUP}/{version}")
        };
        self
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    pub fn config(&self) -> &IstioConfig {
        &self.config
    }

    /// Applies the delay rule (spec 10 §6.1) to a pass whose full result is `full`: `pass`
    /// plans again with the given [`Mode`].
    ///
    /// When the rule holds, Argo still applies managed-route changes and the early weight
    /// reset, then stops before the DestinationRule and the weights. Those changes come out
    /// first; once they are in place the result is [`RouterError::Waiting`]. Nothing waits when
    /// nothing needs to change, so a settled Rollout is not reported as delayed while a pod
    /// restarts (Argo errors on every reconcile then; docs/istio.md).
    fn delayed(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
        full: Vec<Change>,
        pass: impl Fn(Mode) -> Result<Vec<Change>, RouterError>,
    ) -> Result<Vec<Change>, RouterError> {
        if full.is_empty() {
            return Ok(full);
        }
        let Some(message) = delay::delay_reason(desired) else {
            return Ok(full);
        };
        // Spec 00 §4 step 4: only when the new ReplicaSet has no available pods and traffic
        // still reaches the canary (Argo reads its recorded weight; the objects say the same).
        let early_reset = delay::new_replica_set_unavailable(desired) == Some(true)
            && self.canary_receives_traffic(desired, objects)?;
        let partial = pass(Mode::delayed(early_reset))?;
        if partial.is_empty() {
            Err(RouterError::Waiting { message })
        } else {
            Ok(partial)
        }
    }

    /// Whether any weighted route of the existing VirtualServices sends traffic to the canary.
    fn canary_receives_traffic(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<bool, RouterError> {
        let namespace = self.rollout_namespace(&desired.rollout);
        let (canary_service, stable_service) = self.services(desired);
        let targets = self.targets(canary_service, stable_service, &desired.additional);
        let managed: Vec<&str> = desired
            .managed_routes
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        for config in self.config.virtual_services() {
            let key = reference::virtual_service_key(&config.name, namespace);
            let Some(vs) = objects.get(&key) else {
                continue;
            };
            let observed =
                virtual_service::observe(&key, vs, config, &targets, &managed, ("", ""))?;
            if observed.iter().any(|o| o.canary.weight > 0) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn rollout_namespace<'a>(&self, rollout: &'a RolloutRef) -> &'a str {
        &rollout.namespace
    }

    /// canarySvc / stableSvc (spec 10 §1).
    fn services<'a>(&self, desired: &'a DesiredTraffic) -> (&'a str, &'a str) {
        let (canary, stable) = (
            desired.canary.service_name.as_str(),
            desired.stable.service_name.as_str(),
        );
        match &desired.ping_pong {
            Some(pp) if canary.is_empty() && stable.is_empty() => {
                (pp.canary_service.as_str(), pp.stable_service.as_str())
            }
            _ => (canary, stable),
        }
    }

    fn targets(
        &self,
        canary_service: &str,
        stable_service: &str,
        additional: &[WeightDestination],
    ) -> Targets {
        let mut deduped: Vec<(String, i64)> = Vec::new();
        for a in additional.iter().filter(|a| !a.service_name.is_empty()) {
            // Two destinations with one Service collapse into one, the later weight winning.
            match deduped.iter_mut().find(|(s, _)| *s == a.service_name) {
                Some(entry) => entry.1 = i64::from(a.weight),
                None => deduped.push((a.service_name.clone(), i64::from(a.weight))),
            }
        }
        let dr = self.config.destination_rule.as_ref();
        Targets {
            canary_service: canary_service.to_owned(),
            stable_service: stable_service.to_owned(),
            canary_subset: dr.map(|d| d.canary_subset_name.clone()).unwrap_or_default(),
            stable_subset: dr.map(|d| d.stable_subset_name.clone()).unwrap_or_default(),
            additional_subsets: dr
                .map(|d| d.additional_subset_names.clone())
                .unwrap_or_default(),
            additional: deduped,
        }
    }

    /// The DestinationRule, when subset mode is configured.
    fn destination_rule<'a>(
        &self,
        namespace: &str,
        objects: &'a ObjectSet,
    ) -> Result<Option<(ObjectKey, &'a serde_json::Value)>, RouterError> {
        let Some(dr) = &self.config.destination_rule else {
            return Ok(None);
        };
        let key = reference::destination_rule_key(&dr.name, namespace);
        let object = objects
            .get(&key)
            .ok_or_else(|| RouterError::NotFound { key: key.clone() })?;
        Ok(Some((key, object)))
    }

    fn check_total(desired: &DesiredTraffic) -> Result<(), RouterError> {
        if desired.total != ISTIO_TOTAL {
            return Err(RouterError::InvalidConfig {
                field: "spec.strategy.canary.trafficRouting.maxTrafficWeight".into(),
                message: format!(
                    "Istio weights are percentages: maxTrafficWeight must be unset or 100, got {}",
                    desired.total
                ),
            });
        }
        Ok(())
    }

    fn plan_pass(
        &self,
        desired: &DesiredTraffic,
        pass: Pass,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError> {
        let mode = pass.mode;
        Self::check_total(desired)?;
        let namespace = self.rollout_namespace(&desired.rollout);
        let (canary_service, stable_service) = self.services(desired);
        let targets = self.targets(canary_service, stable_service, &desired.additional);
        let dropped: i64 = desired
            .additional
            .iter()
            .filter(|a| a.service_name.is_empty())
            .map(|a| i64::from(a.weight))
            .sum();
        let split = mode.weights.then_some(Split {
            targets: &targets,
            canary: i64::from(desired.canary.weight),
            // Weight of experiment destinations without a Service stays with the stable.
            stable: i64::from(desired.stable.weight) + dropped,
        });
        let routes = desired
            .managed_routes
            .iter()
            .map(|r| {
                let intent = match &r.state {
                    RouteState::Active { route } if mode.add_routes => RouteIntent::Active(route),
                    RouteState::Active { .. } | RouteState::Unchanged => RouteIntent::Unchanged,
                    RouteState::Absent => RouteIntent::Absent,
                };
                (r.name.as_str(), intent)
            })
            .collect();
        let dr = match self.destination_rule(namespace, objects) {
            Err(RouterError::NotFound { .. }) if pass.skip_missing => None,
            found => found?,
        };
        let plan = self.vs_plan(
            &targets,
            split,
            routes,
            desired,
            dr.as_ref().map(|d| (&d.0, d.1)),
        );

        let mut vs_changes = Vec::new();
        for config in self.config.virtual_services() {
            let key = reference::virtual_service_key(&config.name, namespace);
            let vs = match objects.get(&key) {
                Some(vs) => vs,
                None if pass.skip_missing => continue,
                None => return Err(RouterError::NotFound { key }),
            };
            if let Some(patch) = plan.patch(&key, vs, config)? {
                vs_changes.push(Change::Patch { key, patch });
            }
        }

        let mut dr_change = None;
        if let (Some((key, rule)), Some(config), true) =
            (&dr, &self.config.destination_rule, mode.hashes)
        {
            let hashes = SubsetHashes {
                canary: &desired.canary.pod_template_hash,
                stable: &desired.stable.pod_template_hash,
                additional: desired
                    .additional
                    .iter()
                    .filter(|a| !a.service_name.is_empty())
                    .map(|a| (a.service_name.as_str(), a.pod_template_hash.as_str()))
                    .collect(),
            };
            if let Some(patch) = destination_rule::plan_hashes(key, rule, config, &hashes)? {
                dr_change = Some(Change::Patch {
                    key: key.clone(),
                    patch,
                });
            }
        }
        let mut changes = Vec::with_capacity(vs_changes.len() + 1);
        if pass.vs_first {
            changes.extend(vs_changes);
            changes.extend(dr_change);
        } else {
            changes.extend(dr_change);
            changes.extend(vs_changes);
        }
        Ok(changes)
    }

    fn vs_plan<'a>(
        &'a self,
        targets: &'a Targets,
        split: Option<Split<'a>>,
        routes: Vec<(&'a str, RouteIntent<'a>)>,
        desired: &'a DesiredTraffic,
        dr: Option<(&ObjectKey, &'a serde_json::Value)>,
    ) -> VsPlan<'a> {
        let managed = desired
            .managed_routes
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        let (route_host, route_subset) = match (dr, &self.config.destination_rule) {
            (Some((key, rule)), Some(config)) => (
                destination_rule::host(rule).ok_or_else(|| {
                    RouterError::invalid_object(
                        key,
                        "spec.host",
                        "must be set: managed routes send traffic to this host",
                    )
                }),
                Some(config.canary_subset_name.as_str()),
            ),
            _ => (Ok(targets.canary_service.as_str()), None),
        };
        VsPlan {
            targets,
            split,
            routes,
            managed,
            route_host,
            route_subset,
            built: Default::default(),
        }
    }
}

impl Router for IstioRouter {
    fn name(&self) -> &'static str {
        "istio"
    }

    fn object_keys(&self, rollout: &RolloutRef) -> Vec<ObjectKey> {
        let namespace = self.rollout_namespace(rollout);
        self.config
            .virtual_services()
            .map(|vs| reference::virtual_service_key(&vs.name, namespace))
            .chain(
                self.config
                    .destination_rule
                    .iter()
                    .map(|dr| reference::destination_rule_key(&dr.name, namespace)),
            )
            .collect()
    }

    /// Istio expresses every header and mirror match Argo accepts; this rejects what Argo lets
    /// through but Istio cannot mean: a header match without exactly one of exact / prefix /
    /// regex (Argo does not validate mirror header values), and a mirror percentage outside
    /// 0..=100.
    fn validate_route(&self, route: &RouteSpec) -> Result<(), String> {
        match route {
            RouteSpec::SetHeaderRoute(step) => {
                for (i, m) in step.matches.iter().enumerate() {
                    if m.header_value.as_ref().is_none_or(|v| v.kinds_set() != 1) {
                        return Err(format!(
                            "match[{i}].headerValue: set exactly one of exact, prefix, regex"
                        ));
                    }
                }
                Ok(())
            }
            RouteSpec::SetMirrorRoute(step) => {
                if let Some(p) = step.percentage.filter(|p| !(0..=100).contains(p)) {
                    return Err(format!("percentage: must be within 0..=100, got {p}"));
                }
                for (i, m) in step.matches.iter().enumerate() {
                    for (field, value) in [("method", &m.method), ("path", &m.path)] {
                        if value.as_ref().is_some_and(|v| v.kinds_set() != 1) {
                            return Err(format!(
                                "match[{i}].{field}: set exactly one of exact, prefix, regex"
                            ));
                        }
                    }
                    for (name, value) in &m.headers {
                        if value.kinds_set() != 1 {
                            return Err(format!(
                                "match[{i}].headers.{name}: set exactly one of exact, prefix, regex"
                            ));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Weights, managed routes and DestinationRule hashes (spec 10 §3–§7), under the delay
    /// rule of §6.1 (which may return [`RouterError::Waiting`]).
    fn plan(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError> {
        let pass = |mode| Pass {
            mode,
            skip_missing: false,
            // Spec 00 §4: the early reset (step 4) moves traffic off a new canary without
            // available pods before step 5 re-points the subsets (#4564); otherwise the subsets
            // move first, so that after a promotion the stable subset selects the new pods
            // before the canary's share moves to it. Without ReplicaSets, a weight of 0 stands
            // for "leaving the canary".
            vs_first: delay::new_replica_set_unavailable(desired)
                .unwrap_or(desired.canary.weight == 0),
        };
        if desired.is_held() {
            // Argo stops before the delay rule when the stable cannot take its share (spec 00
            // §4 step 2): only removals happen, and nothing waits.
            return self.plan_pass(desired, pass(Mode::HOLD), objects);
        }
        let full = self.plan_pass(desired, pass(Mode::FULL), objects)?;
        self.delayed(desired, objects, full, |mode| {
            self.plan_pass(desired, pass(mode), objects)
        })
    }

    /// 100 % to the stable destination of every selected route (experiment destinations
    /// removed, `additionalSubsetNames` weights kept), the managed routes named in `desired`
    /// removed, and with a stable hash both the canary and stable subsets pointed at it (the
    /// DestinationRule first, so no request reaches a subset that still selects the old
    /// canary after the weights move). Missing objects are skipped. The delay rule applies as
    /// in `plan`.
    fn release(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError> {
        let (canary_service, stable_service) = self.services(desired);
        if self.config.destination_rule.is_none()
            && (canary_service.is_empty() || stable_service.is_empty())
        {
            return Err(RouterError::InvalidConfig {
                field: "canaryService".into(),
                message: "releasing a host-level split needs the canary and stable Service \
                          names (or the ping-pong pair) in the desired traffic"
                    .into(),
            });
        }
        let stable_hash = &desired.stable.pod_template_hash;
        let released = DesiredTraffic {
            canary: WeightDestination {
                weight: 0,
                service_name: desired.canary.service_name.clone(),
                pod_template_hash: stable_hash.clone(),
            },
            stable: WeightDestination {
                weight: desired.total,
                ..desired.stable.clone()
            },
            additional: Vec::new(),
            managed_routes: desired
                .managed_routes
                .iter()
                .map(|r| ManagedRoute {
                    name: r.name.clone(),
                    state: RouteState::Absent,
                })
                .collect(),
            hold: None,
            ..desired.clone()
        };
        let pass = |mode| Pass {
            mode,
            skip_missing: true,
            vs_first: false,
        };
        // Without a hash (the Rollout is gone) the DestinationRule stays as it is: the
        // controller's journal restores its labels.
        let full_mode = Mode {
            hashes: !stable_hash.is_empty(),
            ..Mode::FULL
        };
        let full = self.plan_pass(&released, pass(full_mode), objects)?;
        self.delayed(desired, objects, full, |mode| {
            self.plan_pass(&released, pass(mode), objects)
        })
    }

    fn observe(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<ObservedWeights>, RouterError> {
        let namespace = self.rollout_namespace(&desired.rollout);
        let (canary_service, stable_service) = self.services(desired);
        let targets = self.targets(canary_service, stable_service, &desired.additional);
        let managed: Vec<&str> = desired
            .managed_routes
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        // In subset mode the hashes are what the subsets select now; host-level Services are
        // not this router's objects, so their hashes are not reported.
        let hashes = match (
            self.destination_rule(namespace, objects)?,
            &self.config.destination_rule,
        ) {
            (Some((_, rule)), Some(config)) => (
                destination_rule::subset_hash(rule, &config.canary_subset_name).unwrap_or_default(),
                destination_rule::subset_hash(rule, &config.stable_subset_name).unwrap_or_default(),
            ),
            _ => ("", ""),
        };
        let mut out = Vec::new();
        for config in self.config.virtual_services() {
            let key = reference::virtual_service_key(&config.name, namespace);
            let vs = objects
                .get(&key)
                .ok_or_else(|| RouterError::NotFound { key: key.clone() })?;
            out.extend(virtual_service::observe(
                &key, vs, config, &targets, &managed, hashes,
            )?);
        }
        Ok(out)
    }
}
