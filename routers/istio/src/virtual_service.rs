//! One VirtualService: the guarded patch that gives its weighted routes the split and its HTTP
//! section the managed routes (spec 10 §3, §4, §7), and the weights it applies now.
//!
//! Only these fields are ever written: `weight` of canary/stable/experiment destinations of
//! the weighted routes, experiment destinations appended to / foreign weighted destinations
//! removed from those routes (§4), and whole managed routes. Everything else — other routes,
//! `match` blocks (`withoutHeaders`, #2767), `retries`, `timeout`, delegate fields (#2266),
//! unknown fields — is left byte for byte.

use std::cell::RefCell;
use std::rc::Rc;

use rollout_router_core::patch::PatchBuilder;
use rollout_router_core::{
    IstioVirtualService, ObjectKey, ObservedWeights, RouteSpec, RouterError, WeightDestination,
    json_patch,
};
use serde_json::Value;

use crate::destination::{DestinationView, Role, Targets};
use crate::json::{array_field, name_of, spec_array};
use crate::managed_routes::{self, CanaryTarget};
use crate::selection::{self, Section};
use crate::weights::{RouteEdit, Split};

/// What to do with one managed route in this plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteIntent<'a> {
    Active(&'a RouteSpec),
    Absent,
    Unchanged,
}

/// A managed route built once per plan: its name, the weighted destinations it was built
/// from, and the route.
pub(crate) type BuiltRoute<'a> = (&'a str, Option<Vec<Value>>, Rc<Value>);

/// A managed route that must exist: borrowed from the object (unchanged) or built.
type Wanted<'v> = (&'v str, Option<&'v Value>, Option<Rc<Value>>);

/// Everything a VirtualService plan needs besides the object and its reference.
#[derive(Clone, Debug)]
pub(crate) struct VsPlan<'a> {
    pub targets: &'a Targets,
    /// `None` while weights are held.
    pub split: Option<Split<'a>>,
    /// Managed routes in `managedRoutes` order.
    pub routes: Vec<(&'a str, RouteIntent<'a>)>,
    /// Names of `managedRoutes`.
    pub managed: Vec<&'a str>,
    /// Host and subset managed routes send to; the host is `Err` when it cannot be resolved
    /// (subset mode with a DestinationRule without `spec.host`), reported only when needed.
    pub route_host: Result<&'a str, RouterError>,
    pub route_subset: Option<&'a str>,
    /// Managed routes built for earlier VirtualServices of this plan, by name and the
    /// weighted destinations they were built from: with several VirtualServices sharing one
    /// split, each route is built once (building JSON dominated plan time).
    pub built: RefCell<Vec<BuiltRoute<'a>>>,
}

impl<'a> VsPlan<'a> {
    /// The patch for `vs`, or `None` when it already says what it should.
    pub fn patch(
        &self,
        key: &ObjectKey,
        vs: &Value,
        config: &IstioVirtualService,
    ) -> Result<Option<json_patch::Patch>, RouterError> {
        let selected = selection::weighted_routes(key, vs, config, &self.managed, self.targets)?;
        let http = spec_array(vs, Section::Http.key());
        let primary =
            http.and_then(|h| selection::primary_http_route(h, &config.routes, &self.managed));
        let mut ops = PatchBuilder::new();
        // The primary route's destinations once this patch is applied: mirror routes copy them
        // so their forwarded share follows the weights (§7.4).
        let mut primary_after: Option<Vec<Value>> = None;
        let any_active = self
            .routes
            .iter()
            .any(|(_, i)| matches!(i, RouteIntent::Active(_)));
        // HTTP routes whose destinations the weight operations change, with the destinations
        // after them: the managed-route operations come next and test routes as they are then.
        let mut http_edits: Vec<(usize, Vec<Value>)> = Vec::new();
        for route in &selected {
            let routes = spec_array(vs, route.section.key()).unwrap_or_default();
            let Some(value) = routes.get(route.index) else {
                continue;
            };
            let destinations = array_field(value, "route").unwrap_or_default();
            let edit = self
                .split
                .map(|split| RouteEdit::plan(destinations, split))
                .unwrap_or_default();
            edit.emit(&mut ops, route.section, route.index, value);
            if route.section == Section::Http && !edit.is_empty() {
                http_edits.push((route.index, edit.apply(destinations)));
            }
            if any_active && route.section == Section::Http && Some(route.index) == primary {
                primary_after = Some(edit.apply(destinations));
            }
        }
        if any_active && primary_after.is_none() {
            primary_after = primary
                .and_then(|i| http.and_then(|h| h.get(i)))
                .map(|r| array_field(r, "route").unwrap_or_default().to_vec());
        }

        // Managed routes that must exist, in `managedRoutes` order: built ones are shared with
        // the other VirtualServices of this plan, unchanged ones are borrowed from the object.
        let mut block: Vec<Wanted<'_>> = Vec::new();
        for &(name, intent) in &self.routes {
            if block.iter().any(|(n, _, _)| *n == name) {
                continue;
            }
            match intent {
                RouteIntent::Absent => {}
                RouteIntent::Unchanged => {
                    if let Some(existing) =
                        http.and_then(|h| h.iter().find(|r| name_of(r) == Some(name)))
                    {
                        block.push((name, Some(existing), None));
                    }
                }
                RouteIntent::Active(spec) => {
                    if http.is_none() {
                        return Err(RouterError::invalid_object(
                            key,
                            "spec.http",
                            format!("spec.http not found: cannot add managed route '{name}'"),
                        ));
                    }
                    let cached = self
                        .built
                        .borrow()
                        .iter()
                        .find(|(n, p, _)| *n == name && p.as_deref() == primary_after.as_deref())
                        .map(|(_, _, v)| Rc::clone(v));
                    let value = match cached {
                        Some(value) => value,
                        None => {
                            let value = Rc::new(self.managed_route(
                                key,
                                name,
                                spec,
                                primary_after.as_deref(),
                            )?);
                            self.built.borrow_mut().push((
                                name,
                                primary_after.clone(),
                                Rc::clone(&value),
                            ));
                            value
                        }
                    };
                    block.push((name, None, Some(value)));
                }
            }
        }
        let block: Vec<(&str, &Value)> = block
            .iter()
            .filter_map(|(n, borrowed, built)| Some((*n, borrowed.or(built.as_deref())?)))
            .collect();
        if let Some(http) = http {
            managed_routes::emit_block(&mut ops, http, &http_edits, &block, &self.managed);
        }
        Ok(ops.build_if_changed())
    }

    fn managed_route(
        &self,
        key: &ObjectKey,
        name: &str,
        spec: &RouteSpec,
        primary: Option<&[Value]>,
    ) -> Result<Value, RouterError> {
        let host = self.route_host.clone()?;
        let port = primary
            .and_then(|d| d.first())
            .and_then(|d| DestinationView::of(d).port);
        let target = CanaryTarget {
            host,
            subset: self.route_subset,
            port,
        };
        Ok(match spec {
            RouteSpec::SetHeaderRoute(step) => managed_routes::header_route(step, target),
            RouteSpec::SetMirrorRoute(step) => {
                // Argo indexes an empty list and panics here (§7.2); say what is missing.
                let forwarded = primary.filter(|d| !d.is_empty()).ok_or_else(|| {
                    RouterError::invalid_object(
                        key,
                        "spec.http",
                        format!(
                            "mirror route '{name}' copies the destinations of the weighted HTTP \
                             route, but no weighted route with destinations is selected (set \
                             virtualService.routes, or keep exactly one unmanaged HTTP route)"
                        ),
                    )
                })?;
                managed_routes::mirror_route(step, target, forwarded)
            }
        })
    }
}

/// The weights `vs` applies now, one entry per weighted route.
pub(crate) fn observe(
    key: &ObjectKey,
    vs: &Value,
    config: &IstioVirtualService,
    targets: &Targets,
    managed: &[&str],
    hashes: (&str, &str),
) -> Result<Vec<ObservedWeights>, RouterError> {
    let selected = selection::weighted_routes(key, vs, config, managed, targets)?;
    let present: Vec<String> = spec_array(vs, Section::Http.key())
        .unwrap_or_default()
        .iter()
        .filter_map(name_of)
        .filter(|n| managed.contains(n))
        .map(str::to_owned)
        .collect();
    let mut out = Vec::with_capacity(selected.len());
    for route in selected {
        let routes = spec_array(vs, route.section.key()).unwrap_or_default();
        let destinations = routes
            .get(route.index)
            .and_then(|r| array_field(r, "route"))
            .unwrap_or_default();
        let alone = destinations.len() == 1;
        let mut canary = WeightDestination {
            service_name: targets.canary_service.clone(),
            pod_template_hash: hashes.0.to_owned(),
            ..WeightDestination::default()
        };
        let mut stable = WeightDestination {
            service_name: targets.stable_service.clone(),
            pod_template_hash: hashes.1.to_owned(),
            ..WeightDestination::default()
        };
        let mut additional: Vec<WeightDestination> = Vec::new();
        for entry in destinations {
            let d = DestinationView::of(entry);
            // Istio sends everything to a lone destination whatever its weight says.
            let weight =
                i32::try_from(d.weight.unwrap_or(if alone { 100 } else { 0 })).unwrap_or(i32::MAX);
            match targets.role(&d) {
                Role::Canary => canary.weight += weight,
                Role::Stable => stable.weight += weight,
                Role::Additional(i) => additional.push(WeightDestination {
                    weight,
                    service_name: targets.additional[i].0.clone(),
                    pod_template_hash: String::new(),
                }),
                Role::Ignored | Role::AdditionalSubset | Role::Foreign => {}
            }
        }
        out.push(ObservedWeights {
            object: key.clone(),
            location: route.label,
            canary,
            stable,
            additional,
            verified: None,
            managed_routes: present.clone(),
        });
    }
    Ok(out)
}
