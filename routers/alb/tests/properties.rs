//! Property tests: over a whole rollout (steps, header routes, completion or abort, release),
//! the user's annotations, labels, rules and other spec fields survive, planning after applying
//! is a no-op, and the observed weights are the desired ones.

mod common;

use common::*;
use proptest::prelude::*;
use rollout_router_alb::AlbRouter;
use rollout_router_core::{DesiredTraffic, ManagedRoute, ObjectSet, Router, WeightCase};
use serde_json::{Map, Value, json};

const ROUTES: [&str; 2] = ["h1", "h2"];

fn user_annotations() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        prop_oneof![
            Just("alb.ingress.kubernetes.io/scheme".to_owned()),
            Just("alb.ingress.kubernetes.io/target-type".to_owned()),
            Just("alb.ingress.kubernetes.io/actions.ssl-redirect".to_owned()),
            "[a-z]{1,8}\\.example\\.com/[a-z-]{1,10}",
        ],
        "[ -~]{0,20}",
        0..5,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn user_path() -> impl Strategy<Value = Value> {
    prop_oneof![
        ("/[a-z]{0,6}", "svc-[a-c]").prop_map(|(p, s)| json!({"path": p, "pathType": "Prefix",
            "backend": {"service": {"name": s, "port": {"number": 8080}}}})),
        Just(json!({"path": "/static", "pathType": "Prefix",
            "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}}})),
        Just(json!({"path": "/ssl", "pathType": "Prefix",
            "backend": {"service": {"name": "ssl-redirect", "port": {"name": "use-annotation"}}}})),
    ]
}

/// A rule: host-only, or paths with (`true`) or without the action backend at some position.
fn rule() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z]{1,6}\\.example\\.com".prop_map(|h| json!({"host": h})),
        (
            prop::option::of("[a-z]{1,6}\\.example\\.com"),
            prop::collection::vec(user_path(), 0..3),
            any::<bool>(),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(host, mut paths, with_action, at)| {
                if with_action || paths.is_empty() {
                    let i = at.index(paths.len() + 1);
                    paths.insert(i, path("/", "shop-root"));
                }
                let mut rule = json!({"http": {"paths": paths}});
                if let Some(h) = host {
                    rule["host"] = json!(h);
                }
                rule
            }),
    ]
}

fn user_ingress(name: &str) -> impl Strategy<Value = Value> + use<> {
    let name = name.to_owned();
    (
        user_annotations(),
        prop::collection::btree_map("[a-z]{1,6}", "[a-z0-9]{0,6}", 0..3),
        prop::collection::vec(rule(), 1..4),
    )
        .prop_map(move |(annotations, labels, mut rules)| {
            // At least one rule must route the action Service (spec 30 §2.3).
            let routes_action = rules.iter().any(|r| r.to_string().contains("shop-root"));
            if !routes_action {
                rules.push(json!({"http": {"paths": [path("/", "shop-root")]}}));
            }
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": NS, "labels": labels,
                             "annotations": annotations, "resourceVersion": "7"},
                "spec": {"ingressClassName": "alb", "tls": [{"hosts": ["shop.example.com"]}], "rules": rules},
                "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}
            })
        })
}

#[derive(Clone, Debug)]
enum Ending {
    Complete,
    Abort,
}

#[derive(Clone, Debug)]
struct Scenario {
    ingresses: Vec<Value>,
    weights: Vec<i32>,
    /// Step index at which each route becomes active (None: never).
    route_at: [Option<usize>; 2],
    headers: Vec<(String, String)>,
    experiment: Option<i32>,
    ending: Ending,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(user_ingress("a"), 1..2),
        prop::collection::vec(user_ingress("b"), 0..2),
        prop::collection::vec(0..=90i32, 1..5),
        [prop::option::of(0..5usize), prop::option::of(0..5usize)],
        prop::collection::vec(("X-[A-Za-z]{1,3}", "[a-z<&>]{1,4}"), 1..4),
        prop::option::of(0..=10i32),
        prop_oneof![Just(Ending::Complete), Just(Ending::Abort)],
    )
        .prop_map(
            |(a, b, mut weights, route_at, headers, experiment, ending)| {
                weights.sort_unstable();
                Scenario {
                    ingresses: a.into_iter().chain(b).collect(),
                    weights,
                    route_at,
                    headers,
                    experiment,
                    ending,
                }
            },
        )
}

fn router(s: &Scenario) -> AlbRouter {
    let names: Vec<Value> = s
        .ingresses
        .iter()
        .map(|i| i["metadata"]["name"].clone())
        .collect();
    AlbRouter::new(config(
        json!({"ingresses": names, "servicePort": 80, "rootService": "shop-root"}),
    ))
}

fn step(s: &Scenario, i: usize) -> DesiredTraffic {
    let mut d = desired(s.weights[i]);
    if let Some(w) = s.experiment {
        d.additional = vec![dest(w, "shop-exp")];
        d.stable.weight -= w;
    }
    d.managed_routes = ROUTES
        .iter()
        .zip(s.route_at)
        .map(|(name, at)| match at {
            Some(at) if at <= i => active(
                name,
                s.headers.iter().map(|(h, v)| header_match(h, v)).collect(),
            ),
            _ => unchanged(name),
        })
        .collect();
    d
}

fn ending(s: &Scenario) -> DesiredTraffic {
    let mut d = desired(0);
    d.case = match s.ending {
        Ending::Complete => WeightCase::B,
        Ending::Abort => WeightCase::C,
    };
    d.managed_routes = ROUTES
        .iter()
        .map(|n| absent(n))
        .collect::<Vec<ManagedRoute>>();
    d
}

/// The user's part of an Ingress: everything except our annotations and our paths.
fn user_view(ingress: &Value) -> Value {
    let mut v = ingress.clone();
    if let Some(a) = v["metadata"]["annotations"].as_object_mut() {
        a.retain(|k, _| {
            !(k == BOOK || k == ACTION || ROUTES.iter().any(|r| k.ends_with(&format!("s.{r}"))))
        });
    }
    if let Some(rules) = v["spec"]["rules"].as_array_mut() {
        for rule in rules {
            if let Some(paths) = rule["http"]["paths"].as_array_mut() {
                paths.retain(|p| {
                    let svc = p["backend"]["service"]["name"].as_str().unwrap_or_default();
                    !ROUTES.contains(&svc)
                });
            }
        }
    }
    v
}

#[allow(
    clippy::unwrap_used,
    reason = "test helper: a failed unwrap is the test failure"
)]
fn check_step(router: &AlbRouter, d: &DesiredTraffic, set: &mut ObjectSet, originals: &[Value]) {
    plan_apply(router, d, set);
    for original in originals {
        let name = original["metadata"]["name"].as_str().unwrap();
        let now = set.get(&key(name)).unwrap();
        assert_eq!(user_view(now), user_view(original), "user fields of {name}");
    }
    let observed = router.observe(d, set).unwrap();
    for o in &observed {
        assert_eq!(o.canary.weight, d.canary.weight);
        assert_eq!(o.stable.weight, d.stable.weight);
        assert_eq!(
            o.additional.iter().map(|a| a.weight).sum::<i32>(),
            d.additional_weight()
        );
        assert_eq!(o.verified, None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn user_fields_survive_a_whole_rollout(s in scenario()) {
        let router = router(&s);
        let mut set: ObjectSet = s.ingresses.iter().cloned().collect();
        for i in 0..s.weights.len() {
            check_step(&router, &step(&s, i), &mut set, &s.ingresses);
        }
        let end = ending(&s);
        check_step(&router, &end, &mut set, &s.ingresses);
        // After completion or abort only the action (100 % stable) and bookkeeping remain.
        for original in &s.ingresses {
            let name = original["metadata"]["name"].as_str().unwrap();
            let mut expected = original.clone();
            expected["metadata"]["annotations"][ACTION] =
                json!(action(&[("shop-canary", 0), ("shop-stable", 100)]));
            expected["metadata"]["annotations"][BOOK] =
                json!(r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root"]}"#);
            prop_assert_eq!(set.get(&key(name)).unwrap(), &expected);
        }
        // Release: the bookkeeping goes, the action stays at 100 % stable.
        let changes = router.release(&end, &set).unwrap();
        set.apply_all(&changes).unwrap();
        prop_assert_eq!(router.release(&snapshot(), &set).unwrap(), vec![]);
        for original in &s.ingresses {
            let name = original["metadata"]["name"].as_str().unwrap();
            let mut expected = original.clone();
            expected["metadata"]["annotations"][ACTION] = json!(action(&[("shop-stable", 100)]));
            prop_assert_eq!(set.get(&key(name)).unwrap(), &expected);
        }
    }

    #[test]
    fn release_mid_rollout_removes_routes(s in scenario()) {
        let router = router(&s);
        let mut set: ObjectSet = s.ingresses.iter().cloned().collect();
        for i in 0..s.weights.len() {
            let changes = router.plan(&step(&s, i), &set).unwrap();
            set.apply_all(&changes).unwrap();
        }
        let changes = router.release(&snapshot(), &set).unwrap();
        set.apply_all(&changes).unwrap();
        for original in &s.ingresses {
            let name = original["metadata"]["name"].as_str().unwrap();
            let mut expected = original.clone();
            expected["metadata"]["annotations"][ACTION] = json!(action(&[("shop-stable", 100)]));
            prop_assert_eq!(set.get(&key(name)).unwrap(), &expected);
        }
    }
}
