//! Property tests: for random VirtualServices and DestinationRules carrying routes, fields and
//! destinations rollout-router does not manage, driving a rollout (every step, then completion
//! or abort) (a) leaves every unmanaged byte identical, (b) planning again after applying
//! changes nothing, (c) the observed weights equal the desired ones, (d) every operation of
//! every plan is guarded by a preceding `test` (`common::check_guarded`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

mod common;

use common::*;
use proptest::prelude::*;
use rollout_router_core::{DesiredTraffic, ManagedRoute, ObjectSet, Router, StringMatch};
use rollout_router_istio::IstioRouter;
use serde_json::{Map, Value, json};

const MANAGED: [&str; 2] = ["hdr", "mir"];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[a-z~/ ]{0,6}".prop_map(Value::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z/~]{1,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Unknown fields to sprinkle on an object (keys chosen not to collide with Istio fields the
/// router reads or writes).
fn extras() -> BoxedStrategy<Vec<(String, Value)>> {
    prop::collection::vec(("x-[a-z/~]{1,6}", any_json()), 0..3).boxed()
}

fn with(mut object: Value, extras: &[(String, Value)]) -> Value {
    if let Some(map) = object.as_object_mut() {
        for (k, v) in extras {
            map.insert(k.clone(), v.clone());
        }
    }
    object
}

#[derive(Clone, Debug)]
struct World {
    subset_mode: bool,
    vs: Value,
    dr: Value,
}

fn host(subset_mode: bool, canary: bool) -> Value {
    if subset_mode {
        json!({"host": "checkout", "subset": if canary { "canary" } else { "stable" }})
    } else {
        json!({"host": if canary { "canary-svc.shop.svc.cluster.local" } else { "stable-svc" }})
    }
}

fn user_route() -> BoxedStrategy<Value> {
    (
        prop::option::of("user-[a-z]{1,4}"),
        extras(),
        prop::collection::vec(
            (
                prop_oneof!["canary-svc", "stable-svc", "other", "checkout"],
                0..100i64,
            ),
            1..3,
        ),
    )
        .prop_map(|(name, extra, dests)| {
            let mut r = Map::new();
            if let Some(n) = name {
                r.insert("name".into(), json!(n));
            }
            r.insert(
                "match".into(),
                json!([{"uri": {"prefix": "/u"}, "withoutHeaders": {"x": {"exact": "1"}}}]),
            );
            r.insert(
                "route".into(),
                dests
                    .into_iter()
                    .map(|(h, w)| json!({"destination": {"host": h}, "weight": w}))
                    .collect(),
            );
            with(Value::Object(r), &extra)
        })
        .boxed()
}

fn world() -> impl Strategy<Value = World> {
    (
        (
            any::<bool>(),
            prop::collection::vec(user_route(), 0..3),
            prop::collection::vec(user_route(), 0..3),
        ),
        (extras(), extras(), extras()),
        prop::collection::vec(("idle-[a-z]{1,3}", any::<bool>()), 0..2),
        (extras(), extras(), 0..3usize),
    )
        .prop_map(
            |((subset_mode, before, after), (spec_extra, route_extra, dest_extra), idle, (dr_extra, subset_extra, foreign))| {
                let mut destinations = vec![
                    with(json!({"destination": host(subset_mode, false), "weight": 100}), &dest_extra),
                    json!({"destination": host(subset_mode, true), "weight": 0}),
                ];
                // Foreign destinations without weight are never touched.
                for (h, explicit_zero) in idle {
                    let mut d = json!({"destination": {"host": h}});
                    if explicit_zero {
                        d["weight"] = json!(0);
                    }
                    destinations.push(d);
                }
                let primary = with(json!({"name": "primary", "route": destinations}), &route_extra);
                let mut http = before;
                http.push(primary);
                http.extend(after);
                let vs = vs(with(json!({"hosts": ["checkout"], "http": http}), &spec_extra));
                let mut subsets: Vec<Value> = (0..foreign)
                    .map(|i| json!({"name": format!("foreign-{i}"), "labels": {"rollouts-pod-template-hash": "f"}}))
                    .collect();
                subsets.insert(
                    foreign.min(1),
                    with(json!({"name": "canary", "labels": {"app": "checkout", "rollouts-pod-template-hash": "old"}}), &subset_extra),
                );
                subsets.push(json!({"name": "stable", "labels": {"rollouts-pod-template-hash": "old"}}));
                let dr = dr(with(json!({"host": "checkout", "subsets": subsets}), &dr_extra));
                World { subset_mode, vs, dr }
            },
        )
}

#[derive(Clone, Debug)]
struct Step {
    weight: i32,
    experiment: i32,
    header: u8,
    mirror: u8,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0..=100i32, 0..=10i32, 0..3u8, 0..3u8).prop_map(|(weight, e, header, mirror)| Step {
            weight,
            experiment: e.min(100 - weight),
            header,
            mirror,
        }),
        1..6,
    )
}

fn route_state(name: &str, choice: u8, step: usize) -> ManagedRoute {
    match (name, choice) {
        (_, 0) => absent(name),
        (_, 1) => unchanged(name),
        ("hdr", _) => active_header(name, vec![("x-step", StringMatch::exact(step.to_string()))]),
        _ => active_mirror(
            name,
            Some(10 + step as i32),
            vec![get_route_match("GET", "/")],
        ),
    }
}

fn desired_for(world: &World, weight: i32, canary_hash: &str, stable_hash: &str) -> DesiredTraffic {
    let mut d = if world.subset_mode {
        subset_desired(weight)
    } else {
        desired(weight)
    };
    d.canary.pod_template_hash = canary_hash.into();
    d.stable.pod_template_hash = stable_hash.into();
    d
}

/// The VirtualService without what rollout-router manages: managed routes, the canary/stable
/// weights of the weighted route, experiment destinations.
fn mask_vs(vs: &Value) -> Value {
    let mut vs = vs.clone();
    let http = vs["spec"]["http"].as_array_mut().unwrap();
    http.retain(|r| !r["name"].as_str().is_some_and(|n| MANAGED.contains(&n)));
    for r in http.iter_mut().filter(|r| r["name"] == "primary") {
        let dests = r["route"].as_array_mut().unwrap();
        dests.retain(|d| d["destination"]["host"] != "exp-svc");
        for d in dests.iter_mut().take(2) {
            d["weight"] = Value::Null;
        }
    }
    vs
}

fn mask_dr(dr: &Value) -> Value {
    let mut dr = dr.clone();
    for s in dr["spec"]["subsets"].as_array_mut().unwrap() {
        if s["name"] == "canary" || s["name"] == "stable" {
            s["labels"]
                .as_object_mut()
                .unwrap()
                .remove("rollouts-pod-template-hash");
        }
    }
    dr
}

fn router(world: &World) -> IstioRouter {
    if world.subset_mode {
        subset_router(vs_ref("checkout", &["primary"]))
    } else {
        host_router(vs_ref("checkout", &["primary"]))
    }
}

/// Plans and applies one desired state, checking (b) and (c).
fn step(
    router: &IstioRouter,
    d: &DesiredTraffic,
    set: &ObjectSet,
) -> Result<ObjectSet, TestCaseError> {
    let changes = router
        .plan(d, set)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    check_guarded(&changes).map_err(TestCaseError::fail)?;
    let mut after = set.clone();
    after
        .apply_all(&changes)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(router.plan(d, &after).unwrap(), vec![]);
    let observed = router.observe(d, &after).unwrap();
    prop_assert_eq!(observed.len(), 1);
    prop_assert_eq!(observed[0].canary.weight, d.canary.weight);
    prop_assert_eq!(observed[0].stable.weight, d.stable.weight);
    let additional: Vec<(String, i32)> = observed[0]
        .additional
        .iter()
        .map(|a| (a.service_name.clone(), a.weight))
        .collect();
    let wanted: Vec<(String, i32)> = d
        .additional
        .iter()
        .map(|a| (a.service_name.clone(), a.weight))
        .collect();
    prop_assert_eq!(additional, wanted);
    Ok(after)
}

fn drive(world: &World, steps: &[Step], abort: bool) -> Result<(), TestCaseError> {
    let router = router(world);
    let mut set = objects([world.vs.clone(), world.dr.clone()]);
    for (i, s) in steps.iter().enumerate() {
        let mut d = desired_for(world, s.weight, "new", "old");
        if s.experiment > 0 {
            d = with_experiment(d, "exp-svc", s.experiment);
        }
        d.managed_routes = vec![
            route_state("hdr", s.header, i),
            route_state("mir", s.mirror, i),
        ];
        set = step(&router, &d, &set)?;
        prop_assert_eq!(mask_vs(set.get(&vs_key()).unwrap()), mask_vs(&world.vs));
        if world.subset_mode {
            prop_assert_eq!(mask_dr(set.get(&dr_key()).unwrap()), mask_dr(&world.dr));
        }
    }
    let (canary_hash, stable_hash) = if abort {
        ("new", "old")
    } else {
        ("new", "new")
    };
    let mut end = desired_for(world, 0, canary_hash, stable_hash);
    end.managed_routes = vec![absent("hdr"), absent("mir")];
    set = step(&router, &end, &set)?;
    // The VirtualService is exactly the user's again, byte for byte.
    prop_assert_eq!(set.get(&vs_key()).unwrap(), &world.vs);
    if world.subset_mode {
        let mut expected = world.dr.clone();
        for s in expected["spec"]["subsets"].as_array_mut().unwrap() {
            let hash = match s["name"].as_str() {
                Some("canary") => canary_hash,
                Some("stable") => stable_hash,
                _ => continue,
            };
            s["labels"]["rollouts-pod-template-hash"] = json!(hash);
        }
        prop_assert_eq!(set.get(&dr_key()).unwrap(), &expected);
    } else {
        prop_assert_eq!(set.get(&dr_key()).unwrap(), &world.dr);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rollout_then_completion_keeps_unmanaged_bytes(world in world(), steps in steps()) {
        drive(&world, &steps, false)?;
    }

    #[test]
    fn rollout_then_abort_keeps_unmanaged_bytes(world in world(), steps in steps()) {
        drive(&world, &steps, true)?;
    }
}
