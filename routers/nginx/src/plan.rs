//! Planning: from the nginx configuration, the desired traffic and the current Ingresses to the
//! creates, guarded patches and deletes of the canary Ingresses (spec 20 §4, §6), and the
//! changes that hand everything back (`release`).

use rollout_router_core::json_patch::Patch;
use rollout_router_core::patch::PatchBuilder;
use rollout_router_core::{
    Change, DesiredTraffic, NginxConfig, ObjectKey, ObjectSet, RolloutRef, RouteSpec, RouteState,
    RouterError, SetHeaderRoute, pointer,
};
use serde_json::{Map, Value, json};

use crate::annotations::{
    self, CANARY, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL, HEADER_ANNOTATIONS, HEADER_ROUTE,
    INGRESS_CLASS, MANAGED_ANNOTATIONS, MANAGED_BY_LABEL, MANAGED_BY_VALUE, prefixed,
};
use crate::canary_ingress::{
    DerivedSpec, MANAGED_SPEC_FIELDS, canary_ingress_name, check_owned, is_ours, new_object,
};
use crate::header_route::{HeaderMatch, header_match};
use crate::ingress;

/// ingress-nginx's `canary-weight-total` when the annotation is absent; also Argo's default
/// `maxTrafficWeight`, so the annotation is only written for other totals.
pub const DEFAULT_WEIGHT_TOTAL: i32 = 100;

/// One configured stable Ingress and the canary Ingress derived from it.
pub(crate) struct IngressPair {
    pub stable: ObjectKey,
    pub canary: ObjectKey,
}

/// The configured stable Ingresses in configuration order (duplicates once) with their canary
/// Ingress keys, in the Rollout's namespace.
pub(crate) fn ingress_pairs(config: &NginxConfig, rollout: &RolloutRef) -> Vec<IngressPair> {
    let mut pairs: Vec<IngressPair> = Vec::new();
    for stable in config.stable_ingresses() {
        let stable = ingress::key(&rollout.namespace, stable);
        if pairs.iter().any(|p| p.stable == stable) {
            continue;
        }
        let canary = ingress::key(
            &rollout.namespace,
            &canary_ingress_name(&rollout.name, &stable.name),
        );
        pairs.push(IngressPair { stable, canary });
    }
    pairs
}

/// The canary and stable Service names the canary Ingress rewrites between.
fn services(desired: &DesiredTraffic) -> Result<(&str, &str), RouterError> {
    let canary = desired.canary.service_name.as_str();
    let stable = desired.stable.service_name.as_str();
    if canary.is_empty() || stable.is_empty() {
        return Err(RouterError::InvalidConfig {
            field: "spec.strategy.canary.canaryService".into(),
            message: "the nginx router needs canaryService and stableService (the stable Ingress \
                      routes to one fixed Service, so ping-pong alone cannot work)"
                .into(),
        });
    }
    if canary == stable {
        return Err(RouterError::InvalidConfig {
            field: "spec.strategy.canary.canaryService".into(),
            message: format!("must differ from stableService (both are `{canary}`)"),
        });
    }
    Ok((canary, stable))
}

/// What the single header slot of one canary Ingress must hold.
#[derive(Debug, PartialEq)]
enum HeaderSlot<'a> {
    /// No header route: the `canary-by-header*` annotations rollout-router wrote are removed.
    Empty,
    /// Leave the header annotations exactly as programmed (`RouteState::Unchanged`, or a hold).
    Keep,
    /// Program this route.
    Program { route: &'a str, header: HeaderMatch },
}

/// Decides the header slot from the desired managed routes and the route the canary Ingress
/// carries now (`current`, from its bookkeeping annotation).
fn header_slot<'a>(
    desired: &'a DesiredTraffic,
    current: Option<&str>,
) -> Result<HeaderSlot<'a>, RouterError> {
    let mut wanted: Option<(&str, &SetHeaderRoute)> = None;
    for route in &desired.managed_routes {
        match &route.state {
            RouteState::Active {
                route: RouteSpec::SetMirrorRoute(_),
            } => {
                return Err(RouterError::InvalidConfig {
                    field: format!("managedRoutes[{}]", route.name),
                    message: "ingress-nginx cannot mirror traffic per route: the nginx router \
                              does not support setMirrorRoute"
                        .into(),
                });
            }
            // Argo treats a step without match as a removal; so does the nginx router.
            RouteState::Active {
                route: RouteSpec::SetHeaderRoute(step),
            } if !step.matches.is_empty() => {
                if let Some((other, _)) = wanted {
                    return Err(two_routes(&route.name, other));
                }
                wanted = Some((route.name.as_str(), step));
            }
            _ => {}
        }
    }
    let current_state = current.map(|name| desired.route(name));
    let current_kept = matches!(current_state, Some(Some(RouteState::Unchanged)));
    if desired.is_held() {
        // Under a hold only removals happen: a route that is programmed stays unless it must be
        // absent (or is no longer managed at all); nothing is added.
        return Ok(match current_state {
            Some(Some(RouteState::Unchanged | RouteState::Active { .. })) => HeaderSlot::Keep,
            _ => HeaderSlot::Empty,
        });
    }
    match (wanted, current) {
        (Some((name, _)), Some(other)) if current_kept && other != name => {
            Err(two_routes(name, other))
        }
        (Some((name, step)), _) => {
            let header = header_match(step).map_err(|message| RouterError::InvalidConfig {
                field: format!("managedRoutes[{name}].setHeaderRoute"),
                message,
            })?;
            Ok(HeaderSlot::Program {
                route: name,
                header,
            })
        }
        (None, Some(_)) if current_kept => Ok(HeaderSlot::Keep),
        (None, _) => Ok(HeaderSlot::Empty),
    }
}

fn two_routes(name: &str, other: &str) -> RouterError {
    RouterError::InvalidConfig {
        field: format!("managedRoutes[{name}]"),
        message: format!(
            "header routes `{other}` and `{name}` would be active at once: an ingress-nginx \
             canary Ingress has a single header slot (canary-by-header)"
        ),
    }
}

/// Computes the canary Ingress changes for one Rollout.
pub(crate) struct Planner<'a> {
    config: &'a NginxConfig,
    prefix: &'a str,
    /// §3.2 steps 2–3, already prefixed.
    config_annotations: Map<String, Value>,
}

impl<'a> Planner<'a> {
    pub fn new(config: &'a NginxConfig) -> Result<Self, RouterError> {
        Ok(Self {
            config,
            prefix: config.annotation_prefix(),
            config_annotations: annotations::from_config(config)?,
        })
    }

    fn key(&self, name: &str) -> String {
        prefixed(self.prefix, name)
    }

    /// The changes that bring every canary Ingress to `desired`. Any error stops planning and
    /// no change is returned.
    pub fn plan(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError> {
        let (canary_service, stable_service) = services(desired)?;
        let rollout = &desired.rollout;
        let pairs = ingress_pairs(self.config, rollout);
        let mut changes = Vec::new();
        for pair in &pairs {
            let stable = objects
                .get(&pair.stable)
                .ok_or_else(|| RouterError::NotFound {
                    key: pair.stable.clone(),
                })?;
            let derived =
                DerivedSpec::from_stable(&pair.stable, stable, stable_service, canary_service)?;
            match objects.get(&pair.canary) {
                // Creating the canary Ingress is the first weight change; like Argo, it waits
                // for the stable capacity guard (and any other hold).
                None if desired.is_held() => {}
                None => {
                    let slot = header_slot(desired, None)?;
                    let annotations = self.annotations(desired, &derived, None, &slot)?;
                    changes.push(Change::Create {
                        key: pair.canary.clone(),
                        object: new_object(rollout, &pair.canary.name, annotations, &derived),
                    });
                }
                Some(existing) => {
                    check_owned(&pair.canary, existing, rollout)?;
                    let current = ingress::annotation(existing, HEADER_ROUTE);
                    let slot = header_slot(desired, current)?;
                    let annotations = self.annotations(desired, &derived, Some(existing), &slot)?;
                    if let Some(patch) = self.update(existing, &annotations, &derived) {
                        changes.push(Change::Patch {
                            key: pair.canary.clone(),
                            patch,
                        });
                    }
                }
            }
        }
        // Deleting a canary Ingress moves its traffic to stable: a weight change, so not under
        // a hold (the stable capacity guard may be what holds).
        if !desired.is_held() {
            changes.extend(stale_canaries(&pairs, rollout, objects));
        }
        Ok(changes)
    }

    /// The desired annotations of one canary Ingress (§3.2 plus the header slot and the
    /// bookkeeping), in override order.
    fn annotations(
        &self,
        desired: &DesiredTraffic,
        derived: &DerivedSpec,
        existing: Option<&Value>,
        slot: &HeaderSlot<'_>,
    ) -> Result<Map<String, Value>, RouterError> {
        let mut out = Map::new();
        let mut put = |key: String, value: &str| {
            out.insert(key, Value::String(value.to_owned()));
        };
        let existing_value = |key: &str| existing.and_then(|e| ingress::annotation(e, key));
        if let Some(class) = &derived.class_annotation {
            put(INGRESS_CLASS.to_owned(), class);
        }
        for (key, value) in &self.config_annotations {
            put(key.clone(), value.as_str().unwrap_or_default());
        }
        put(self.key(CANARY), "true");
        if desired.is_held() {
            // Keep the weight as programmed, with the total it is a share of.
            for name in [CANARY_WEIGHT, CANARY_WEIGHT_TOTAL] {
                let key = self.key(name);
                if let Some(value) = existing_value(&key) {
                    put(key, value);
                }
            }
        } else {
            put(self.key(CANARY_WEIGHT), &desired.canary.weight.to_string());
            if desired.total != DEFAULT_WEIGHT_TOTAL {
                put(self.key(CANARY_WEIGHT_TOTAL), &desired.total.to_string());
            }
        }
        if *slot != HeaderSlot::Empty {
            let header_keys: Vec<String> = HEADER_ANNOTATIONS.iter().map(|n| self.key(n)).collect();
            if let Some(key) = header_keys
                .iter()
                .find(|k| self.config_annotations.contains_key(*k))
            {
                return Err(RouterError::InvalidConfig {
                    field: "nginx.additionalIngressAnnotations".into(),
                    message: format!(
                        "sets `{key}`, but setHeaderRoute steps use the canary Ingress' single \
                         header slot; remove the static header annotation"
                    ),
                });
            }
            match slot {
                HeaderSlot::Program { route, header } => {
                    for (key, value) in header.annotations(self.prefix) {
                        put(key, &value);
                    }
                    put(HEADER_ROUTE.to_owned(), route);
                }
                _ => {
                    for key in header_keys.into_iter().chain([HEADER_ROUTE.to_owned()]) {
                        if let Some(value) = existing_value(&key) {
                            put(key, value);
                        }
                    }
                }
            }
        }
        let mut keys: Vec<&str> = out.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let managed = keys.join(",");
        out.insert(MANAGED_ANNOTATIONS.to_owned(), Value::String(managed));
        Ok(out)
    }

    /// The guarded patch that brings an existing canary Ingress to the desired state, touching
    /// only what rollout-router manages: its label, the annotations it wrote or wants, and the
    /// managed `spec` fields. `None` when everything is in place.
    fn update(
        &self,
        existing: &Value,
        annotations: &Map<String, Value>,
        derived: &DerivedSpec,
    ) -> Option<Patch> {
        let mut patch = PatchBuilder::new();
        // The ownership check was made on this very object: fail if it was replaced meanwhile.
        if let Some(uid) = ingress::uid(existing) {
            patch.test(pointer!["metadata", "uid"], json!(uid));
        }
        match ingress::labels(existing) {
            None => {
                patch.add(
                    pointer!["metadata", "labels"],
                    json!({ MANAGED_BY_LABEL: MANAGED_BY_VALUE }),
                );
            }
            Some(labels) if !labels.contains_key(MANAGED_BY_LABEL) => {
                patch.add(
                    pointer!["metadata", "labels", MANAGED_BY_LABEL],
                    json!(MANAGED_BY_VALUE),
                );
            }
            Some(_) => {}
        }
        match ingress::annotations(existing) {
            None => {
                patch.add(
                    pointer!["metadata", "annotations"],
                    Value::Object(annotations.clone()),
                );
            }
            Some(current) => {
                for (key, want) in annotations {
                    match current.get(key) {
                        Some(have) if have == want => {}
                        Some(have) => {
                            let path = pointer!["metadata", "annotations", key];
                            patch.test(path.clone(), have.clone());
                            patch.replace(path, want.clone());
                        }
                        None => {
                            patch.add(pointer!["metadata", "annotations", key], want.clone());
                        }
                    }
                }
                for key in self.previously_managed(current) {
                    if annotations.contains_key(&key) {
                        continue;
                    }
                    if let Some(have) = current.get(&key) {
                        let path = pointer!["metadata", "annotations", key];
                        patch.test(path.clone(), have.clone());
                        patch.remove(path);
                    }
                }
            }
        }
        if ingress::has_spec(existing) {
            for field in MANAGED_SPEC_FIELDS {
                let path = || pointer!["spec", field];
                match (ingress::spec_field(existing, field), derived.field(field)) {
                    (Some(have), Some(want)) if have == want => {}
                    (Some(have), Some(want)) => {
                        patch.test(path(), have.clone());
                        patch.replace(path(), want.clone());
                    }
                    (None, Some(want)) => {
                        patch.add(path(), want.clone());
                    }
                    (Some(have), None) => {
                        patch.test(path(), have.clone());
                        patch.remove(path());
                    }
                    (None, None) => {}
                }
            }
        } else {
            patch.add(pointer!["spec"], derived.to_spec());
        }
        patch.build_if_changed()
    }

    /// Annotations rollout-router wrote on this canary Ingress before (its bookkeeping), plus
    /// the weight annotations and the header-route bookkeeping, which are always its own.
    fn previously_managed(&self, current: &Map<String, Value>) -> Vec<String> {
        let mut keys: Vec<String> = current
            .get(MANAGED_ANNOTATIONS)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        keys.extend(
            [CANARY, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL]
                .iter()
                .map(|n| self.key(n)),
        );
        keys.push(HEADER_ROUTE.to_owned());
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// Deletes of rollout-router's canary Ingresses of this Rollout whose stable Ingress is no
/// longer configured (Argo leaves them behind, issue #4751).
fn stale_canaries(pairs: &[IngressPair], rollout: &RolloutRef, objects: &ObjectSet) -> Vec<Change> {
    objects
        .of_kind(ingress::GROUP, ingress::KIND, &rollout.namespace)
        .filter(|(key, object)| {
            !pairs.iter().any(|p| p.canary == **key || p.stable == **key)
                && is_ours(key, object, rollout)
        })
        .map(|(key, object)| delete(key, object))
        .collect()
}

fn delete(key: &ObjectKey, object: &Value) -> Change {
    Change::Delete {
        key: key.clone(),
        uid: ingress::uid(object).map(str::to_owned),
    }
}

/// The changes that hand routing back when the Rollout stops routing through nginx: every
/// canary Ingress this Rollout controls is deleted (all traffic goes to the stable Ingress). An
/// Ingress with a canary's name that the Rollout does not control is left alone: it was never
/// rollout-router's.
pub(crate) fn release(
    config: &NginxConfig,
    rollout: &RolloutRef,
    objects: &ObjectSet,
) -> Vec<Change> {
    let pairs = ingress_pairs(config, rollout);
    let mut changes: Vec<Change> = pairs
        .iter()
        .filter_map(|pair| {
            let object = objects.get(&pair.canary)?;
            check_owned(&pair.canary, object, rollout)
                .is_ok()
                .then(|| delete(&pair.canary, object))
        })
        .collect();
    changes.extend(stale_canaries(&pairs, rollout, objects));
    changes
}
