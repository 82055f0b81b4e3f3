//! Invariants over random stable Ingresses, configurations and step sequences: the stable
//! Ingress is never modified, fields rollout-router does not manage on the canary Ingress
//! survive, and planning again after applying changes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code (helpers included): a panic is the failure report, as clippy.toml allows in tests"
)]

mod common;

use common::*;
use proptest::prelude::*;
use rollout_router_core::{
    Change, DesiredTraffic, ManagedRoute, NginxConfig, RouteState, Router, StringMatch,
};
use rollout_router_nginx::NginxRouter;
use serde_json::{Value, json};

fn path_strategy() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["/", "/api", "/static", "/v2"]),
        prop::sample::select(vec!["shop-stable", "assets", "admin"]),
        prop_oneof![
            (1u16..9000).prop_map(|n| json!({"number": n})),
            Just(json!({"name": "http"})),
        ],
    )
        .prop_map(|(p, svc, port)| {
            json!({"path": p, "pathType": "Prefix", "backend": {"service": {"name": svc, "port": port}}})
        })
}

fn stable_strategy() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "shop.example.com",
                    "www.example.com",
                    "api.example.com",
                ]),
                prop::collection::vec(path_strategy(), 1..4),
            ),
            1..4,
        ),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(rules, tls, class, default_backend)| {
            let mut rules: Vec<Value> = rules
                .into_iter()
                .map(|(host, paths)| json!({"host": host, "http": {"paths": paths}}))
                .collect();
            // At least one path must use the stable Service (otherwise planning is an error).
            rules[0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("shop-stable");
            let mut stable = stable_ingress();
            stable["spec"]["rules"] = json!(rules);
            let spec = stable["spec"].as_object_mut().unwrap();
            if !tls {
                spec.remove("tls");
            }
            if !class {
                spec.remove("ingressClassName");
            }
            if default_backend {
                spec.insert(
                    "defaultBackend".into(),
                    json!({"service": {"name": "shop-stable", "port": {"number": 80}}}),
                );
            }
            stable
        })
}

fn config_strategy() -> impl Strategy<Value = NginxConfig> {
    (
        prop::option::of(prop::sample::select(vec![
            "nginx.ingress.kubernetes.io",
            "custom.io",
        ])),
        prop::collection::btree_map(
            prop::sample::select(vec!["canary-by-cookie", "load-balance", "upstream-hash-by"]),
            "[a-z]{1,5}",
            0..3,
        ),
        prop::collection::btree_map(
            prop::sample::select(vec!["example.com/owner", "example.com/team"]),
            "[a-z]{1,5}",
            0..2,
        ),
    )
        .prop_map(|(prefix, additional, canary)| NginxConfig {
            annotation_prefix: prefix.map(str::to_owned),
            additional_ingress_annotations: additional
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            canary_ingress_annotations: canary
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ..config()
        })
}

fn route_strategy() -> impl Strategy<Value = Option<ManagedRoute>> {
    let matches = prop_oneof![
        "[a-z]{1,4}".prop_map(StringMatch::exact),
        "[a-z.]{1,4}".prop_map(StringMatch::prefix),
        "[a-z]{1,3}\\.\\*".prop_map(StringMatch::regex),
    ];
    prop_oneof![
        Just(None),
        Just(Some(route("h1", RouteState::Absent))),
        Just(Some(route("h1", RouteState::Unchanged))),
        prop::collection::vec(matches, 1..3).prop_map(|values| {
            Some(active(
                "h1",
                values.into_iter().map(|v| header("X-Canary", v)).collect(),
            ))
        }),
    ]
}

/// One reconcile: the desired state, and whether someone edits the canary Ingress before it.
#[derive(Clone, Debug)]
struct Step {
    weight_percent: i32,
    total: i32,
    route: Option<ManagedRoute>,
    held: bool,
    tamper: Option<(String, String)>,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    (
        0..=100i32,
        prop::sample::select(vec![100, 1000]),
        route_strategy(),
        prop::bool::weighted(0.2),
        prop::option::of(("user\\.example\\.com/[a-z]{1,3}", "[a-z0-9]{0,4}")),
    )
        .prop_map(|(weight_percent, total, route, held, tamper)| Step {
            weight_percent,
            total,
            route,
            held,
            tamper,
        })
}

fn desired_of(step: &Step) -> DesiredTraffic {
    let mut d = desired_total(step.weight_percent * step.total / 100, step.total);
    d.managed_routes = step.route.clone().into_iter().collect();
    if step.held { held(d) } else { d }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn stable_untouched_unmanaged_survive_and_plans_converge(
        stable in stable_strategy(),
        config in config_strategy(),
        steps in prop::collection::vec(step_strategy(), 1..8),
    ) {
        let router = NginxRouter::new(config.clone());
        let prefix = config.annotation_prefix().to_owned();
        let mut set = objects([stable.clone()]);
        // Fields other people put on the canary Ingress: they must all survive.
        let mut theirs: Vec<(String, String)> = Vec::new();
        for step in &steps {
            if let (Some((k, v)), Some(canary)) = (&step.tamper, set.get(&canary_key()).cloned()) {
                let mut canary = canary;
                canary["metadata"]["annotations"][k] = json!(v);
                canary["metadata"]["labels"][k] = json!(v);
                canary["metadata"]["finalizers"] = json!(["user.example.com/keep"]);
                canary["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
                set.insert(canary);
                theirs.retain(|(key, _)| key != k);
                theirs.push((k.clone(), v.clone()));
            }
            let desired = desired_of(step);
            let before = set.get(&canary_key()).cloned();
            let (changes, after) = plan_apply(&router, &desired, &set);
            prop_assert!(changes.iter().all(|c| *c.key() == canary_key()), "{changes:?}");
            let deletes = changes.iter().filter(|c| matches!(c, Change::Delete { .. })).count();
            prop_assert_eq!(deletes, 0);
            prop_assert_eq!(after.get(&key("shop-public")), Some(&stable));
            if let Some(canary) = after.get(&canary_key()) {
                for (k, v) in &theirs {
                    prop_assert_eq!(&canary["metadata"]["annotations"][k], &json!(v));
                    prop_assert_eq!(&canary["metadata"]["labels"][k], &json!(v));
                }
                if !theirs.is_empty() {
                    prop_assert_eq!(&canary["metadata"]["finalizers"], &json!(["user.example.com/keep"]));
                    prop_assert_eq!(&canary["status"]["loadBalancer"]["ingress"][0]["ip"], "10.0.0.1");
                }
                let weight = &canary["metadata"]["annotations"][format!("{prefix}/canary-weight")];
                if step.held {
                    let before = before.expect("no creation under a hold");
                    prop_assert_eq!(weight, &before["metadata"]["annotations"][format!("{prefix}/canary-weight")]);
                } else {
                    prop_assert_eq!(weight, &json!(desired.canary.weight.to_string()));
                }
                prop_assert_eq!(canary["spec"].get("defaultBackend"), None);
            } else {
                prop_assert!(step.held);
            }
            let observed = router.observe(&desired, &after).unwrap();
            if !step.held {
                prop_assert_eq!(observed[0].canary.weight, desired.canary.weight);
                prop_assert_eq!(observed[0].stable.weight, desired.stable.weight);
            }
            set = after;
        }
        // Handing back deletes exactly the canary Ingress.
        let released = router.release(&snapshot(), &set).unwrap();
        set.apply_all(&released).unwrap();
        prop_assert_eq!(set, objects([stable]));
    }
}
