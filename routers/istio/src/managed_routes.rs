//! Managed HTTP routes (spec 10 §7): building header and mirror routes from their steps, and
//! the guarded operations that put the managed block, in `managedRoutes` order, ahead of the
//! user's routes. User routes are never moved, rewritten or reordered among themselves.

use std::borrow::Cow;

use rollout_router_core::patch::PatchBuilder;
use rollout_router_core::pointer;
use rollout_router_core::{SetHeaderRoute, SetMirrorRoute, StringMatch};
use serde_json::{Map, Value};

use crate::destination::DestinationView;
use crate::guard;
use crate::json::name_of;

/// Where managed routes send traffic (§7): the canary Service, or the DestinationRule's
/// `spec.host` plus the canary subset; the port of the weighted route's first destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CanaryTarget<'a> {
    pub host: &'a str,
    pub subset: Option<&'a str>,
    pub port: Option<u64>,
}

impl CanaryTarget<'_> {
    fn destination(&self) -> Value {
        destination(self.host, self.subset, self.port)
    }
}

fn destination(host: &str, subset: Option<&str>, port: Option<u64>) -> Value {
    let mut d = Map::new();
    d.insert("host".into(), Value::String(host.to_owned()));
    if let Some(subset) = subset.filter(|s| !s.is_empty()) {
        d.insert("subset".into(), Value::String(subset.to_owned()));
    }
    if let Some(port) = port {
        d.insert("port".into(), object([("number", Value::from(port))]));
    }
    Value::Object(d)
}

/// Argo `StringMatch` → Istio `StringMatch`: the same keys, empty values left out.
fn string_match(m: &StringMatch) -> Value {
    let mut out = Map::new();
    for (key, value) in [
        ("exact", &m.exact),
        ("prefix", &m.prefix),
        ("regex", &m.regex),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            out.insert(key.into(), Value::String(v.to_owned()));
        }
    }
    Value::Object(out)
}

/// Builds a JSON object from key/value pairs, in order. Plain inserts: `json!` with
/// non-literal values goes through serde and dominated plan time in the benchmark.
fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// §7.1: one match block per header match (blocks are ORed), 100 % to the canary.
pub(crate) fn header_route(step: &SetHeaderRoute, target: CanaryTarget<'_>) -> Value {
    let blocks: Vec<Value> = step
        .matches
        .iter()
        .map(|m| {
            let value = m
                .header_value
                .as_ref()
                .map_or_else(|| Value::Object(Map::new()), string_match);
            object([("headers", object([(m.header_name.as_str(), value)]))])
        })
        .collect();
    object([
        ("name", Value::String(step.name.clone())),
        ("match", Value::Array(blocks)),
        (
            "route",
            Value::Array(vec![object([
                ("destination", target.destination()),
                ("weight", Value::from(100)),
            ])]),
        ),
    ])
}

/// §7.2: forwards with the weighted route's split (`forwarded`, the weighted route's
/// destinations as they will be after this plan) and mirrors a percentage to the canary.
pub(crate) fn mirror_route(
    step: &SetMirrorRoute,
    target: CanaryTarget<'_>,
    forwarded: &[Value],
) -> Value {
    let blocks: Vec<Value> = step
        .matches
        .iter()
        .map(|m| {
            let mut block = Map::new();
            if let Some(method) = &m.method {
                block.insert("method".into(), string_match(method));
            }
            if let Some(path) = &m.path {
                block.insert("uri".into(), string_match(path));
            }
            if !m.headers.is_empty() {
                let headers: Map<String, Value> = m
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), string_match(v)))
                    .collect();
                block.insert("headers".into(), Value::Object(headers));
            }
            Value::Object(block)
        })
        .collect();
    object([
        ("name", Value::String(step.name.clone())),
        ("match", Value::Array(blocks)),
        (
            "route",
            Value::Array(forwarded.iter().map(forwarded_destination).collect()),
        ),
        ("mirror", target.destination()),
        (
            "mirrorPercentage",
            object([("value", Value::from(step.percentage_or_default()))]),
        ),
    ])
}

/// The copy of a weighted destination a mirror route forwards to: only host, subset, port
/// number and a non-zero weight (as Argo copies it).
fn forwarded_destination(entry: &Value) -> Value {
    let d = DestinationView::of(entry);
    let subset = (!d.subset.is_empty()).then_some(d.subset);
    let mut out = Map::new();
    out.insert("destination".into(), destination(d.host, subset, d.port));
    if let Some(w) = d.weight.filter(|w| *w != 0) {
        out.insert("weight".into(), Value::from(w));
    }
    Value::Object(out)
}

/// Adds the operations that make `http` start with exactly `block` (managed routes in
/// `managedRoutes` order) followed by the user's routes in their existing order; every other
/// route named in `managed` is removed. Routes are compared by position, never matched by
/// name alone, so unnamed or duplicate user routes are never duplicated (edge case 34).
///
/// Every operation is preceded by a `test` of what it assumes (the route it removes or
/// replaces, the route an insertion goes ahead of, the whole list before an append), so a
/// patch planned from a stale copy fails instead of inserting a managed route twice. `edited`
/// holds the destinations of the routes the weight operations already in `ops` change (by
/// index in `http`): those tests see the routes as the patch leaves them by then.
pub(crate) fn emit_block(
    ops: &mut PatchBuilder,
    http: &[Value],
    edited: &[(usize, Vec<Value>)],
    block: &[(&str, &Value)],
    managed: &[&str],
) {
    let is_managed = |r: &Value| name_of(r).is_some_and(|n| managed.contains(&n));
    // First drop managed routes that must not exist at all (not in the block, or a second
    // copy of a name), so that the ones that stay can be kept where they are.
    let mut seen: Vec<&str> = Vec::new();
    let mut drop = vec![false; http.len()];
    for (i, route) in http.iter().enumerate() {
        if let Some(name) = name_of(route).filter(|n| managed.contains(n)) {
            drop[i] = seen.contains(&name) || !block.iter().any(|(n, _)| *n == name);
            seen.push(name);
        }
    }
    for (i, route) in http.iter().enumerate().rev() {
        if drop[i] {
            guard::element(ops, pointer!["spec", "http", i], route);
            ops.remove(pointer!["spec", "http", i]);
        }
    }
    // The routes that stay, with their index in `http`.
    let kept: Vec<(usize, &Value)> = http.iter().enumerate().filter(|(i, _)| !drop[*i]).collect();
    let rest: Vec<&Value> = kept.iter().map(|(_, r)| *r).collect();

    let in_place = rest
        .iter()
        .zip(block)
        .take_while(|(have, (_, want))| *have == want)
        .count();
    let aligned = block
        .iter()
        .enumerate()
        .skip(in_place)
        .all(|(k, (name, _))| rest.get(k).and_then(|r| name_of(r)) == Some(*name))
        && !rest.iter().skip(block.len()).any(|r| is_managed(r));
    if aligned {
        // Same routes in the same places; only contents differ (a mirror route following a
        // weight change, a step whose match changed): replace them where they are.
        for (k, (_, want)) in block.iter().enumerate().skip(in_place) {
            if rest[k] != *want {
                guard::element(ops, pointer!["spec", "http", k], rest[k]);
                ops.replace(pointer!["spec", "http", k], (*want).clone());
            }
        }
        return;
    }
    for (i, route) in rest.iter().enumerate().skip(in_place).rev() {
        if is_managed(route) {
            guard::element(ops, pointer!["spec", "http", i], route);
            ops.remove(pointer!["spec", "http", i]);
        }
    }
    // Now the list is `block[..in_place]` followed by the user's routes: each insertion goes
    // just ahead of the first user route, or at the end of the managed routes when there is
    // none.
    let first_user = kept
        .iter()
        .skip(in_place)
        .find(|(_, r)| !is_managed(r))
        .map(|(i, route)| match edited.iter().find(|(e, _)| e == i) {
            // An unnamed weighted route is pinned whole, as the weight operations leave it.
            Some((_, destinations)) if name_of(route).is_none() => {
                let mut route = (*route).clone();
                if let Some(fields) = route.as_object_mut() {
                    fields.insert("route".into(), Value::Array(destinations.clone()));
                }
                Cow::Owned(route)
            }
            _ => Cow::Borrowed(*route),
        });
    for (k, (_, want)) in block.iter().enumerate().skip(in_place) {
        match &first_user {
            Some(route) => guard::element(ops, pointer!["spec", "http", k], route),
            None => guard::array(
                ops,
                pointer!["spec", "http"],
                block[..k].iter().map(|(_, v)| *v),
            ),
        }
        ops.add(pointer!["spec", "http", k], (*want).clone());
    }
}
