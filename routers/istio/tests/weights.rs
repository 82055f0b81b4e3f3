//! Table tests for weighted routes: spec 10 §2–§5 and §9, spec 40 items 26–30, 37, 38, 41.

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{
    IstioConfig, IstioVirtualService, ObjectKey, PingPongServices, Router, RouterError, TcpRoute,
    TlsRoute,
};
use rollout_router_istio::IstioRouter;
use serde_json::{Value, json};

fn invalid(field: &str, message: &str) -> RouterError {
    RouterError::InvalidObject {
        key: vs_key(),
        field: field.into(),
        message: message.into(),
    }
}

#[test]
fn host_level_set_weight_20() {
    // §4 example: only the two weights change, guarded by the route name and the hosts.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let before = objects([vs(
        json!({"hosts": ["checkout"], "http": [primary(100, 0)]}),
    )]);
    let (changes, after) = run(&router, &desired(20), &before);
    assert_eq!(
        changes,
        vec![patch_change(
            vs_key(),
            json!([
                {"op": "test", "path": "/spec/http/0/name", "value": "primary"},
                {"op": "test", "path": "/spec/http/0/route/0/destination/host", "value": "stable-svc"},
                {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 80},
                {"op": "test", "path": "/spec/http/0/route/1/destination/host", "value": "canary-svc"},
                {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 20},
            ])
        )]
    );
    assert_vs_spec(
        &after,
        json!({"hosts": ["checkout"], "http": [primary(80, 20)]}),
    );
}

#[test]
fn already_correct_route_produces_no_change() {
    // §4 / edge 41: a patch only when a value differs.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let set = objects([vs(json!({"http": [primary(80, 20)]}))]);
    assert_eq!(router.plan(&desired(20), &set).unwrap(), vec![]);
}

#[test]
fn zero_weight_is_written_explicitly_and_absent_weight_is_added() {
    let router = host_router(vs_ref("checkout", &[]));
    let before = objects([vs(json!({"http": [{"route": [
        {"destination": {"host": "stable-svc"}},
        dest("canary-svc", 30),
    ]}]}))]);
    let (changes, after) = run(&router, &desired(0), &before);
    assert_eq!(
        changes,
        vec![patch_change(
            vs_key(),
            json!([
                // Unnamed: the whole route is its identity.
                {"op": "test", "path": "/spec/http/0", "value": {"route": [
                    {"destination": {"host": "stable-svc"}},
                    dest("canary-svc", 30),
                ]}},
                {"op": "test", "path": "/spec/http/0/route/0/destination/host", "value": "stable-svc"},
                {"op": "add", "path": "/spec/http/0/route/0/weight", "value": 100},
                {"op": "test", "path": "/spec/http/0/route/1/destination/host", "value": "canary-svc"},
                {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 0},
            ])
        )]
    );
    assert_vs_spec(
        &after,
        json!({"http": [{"route": [dest("stable-svc", 100), dest("canary-svc", 0)]}]}),
    );
}

#[test]
fn fqdn_hosts_compare_by_first_label_and_are_preserved() {
    // §2.1, edge 37/38: the namespace part of the host is kept as written.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let before = objects([vs(json!({"http": [{"name": "primary", "route": [
        dest("stable-svc.shop.svc.cluster.local", 100),
        dest("canary-svc.shop.svc.cluster.local", 0),
        dest(".weird", 7),
    ]}]}))]);
    let (_, after) = run(&router, &desired(40), &before);
    assert_vs_spec(
        &after,
        json!({"http": [{"name": "primary", "route": [
            dest("stable-svc.shop.svc.cluster.local", 60),
            dest("canary-svc.shop.svc.cluster.local", 40),
            dest(".weird", 7),
        ]}]}),
    );
}

#[test]
fn only_selected_named_routes_are_weighted() {
    // §3.1 and §4: other routes are never touched.
    let router = host_router(vs_ref("checkout", &["primary", "secondary"]));
    let other = json!({"name": "other", "route": [dest("stable-svc", 100), dest("canary-svc", 0)]});
    let secondary =
        json!({"name": "secondary", "route": [dest("canary-svc", 0), dest("stable-svc", 100)]});
    let before = objects([vs(
        json!({"http": [other.clone(), primary(100, 0), secondary]}),
    )]);
    let (_, after) = run(&router, &desired(10), &before);
    assert_vs_spec(
        &after,
        json!({"http": [other, primary(90, 10),
            {"name": "secondary", "route": [dest("canary-svc", 10), dest("stable-svc", 90)]}]}),
    );
}

#[test]
fn route_selection_errors() {
    // §3.1 / §3.4 / §10: errors name the VirtualService, the field and what is missing.
    let cases: Vec<(IstioVirtualService, Value, RouterError)> = vec![
        (
            vs_ref("checkout", &["missing"]),
            json!({"http": [primary(100, 0)]}),
            invalid(
                "spec.http",
                "HTTP Route 'missing' is not found in the defined Virtual Service.",
            ),
        ),
        (
            vs_ref("checkout", &[]),
            json!({"http": [{"route": [dest("stable-svc", 100), dest("canary-svc", 0)]}, primary(100, 0)]}),
            invalid(
                "spec.http",
                "spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes",
            ),
        ),
        (
            vs_ref("checkout", &["primary"]),
            json!({"http": [{"name": "primary", "route": [dest("stable-svc", 100)]}]}),
            invalid(
                "spec.http[primary].route",
                "Canary Service 'canary-svc' not found in route",
            ),
        ),
        (
            vs_ref("checkout", &[]),
            json!({"http": [{"route": [dest("canary-svc", 100)]}]}),
            invalid(
                "spec.http[0].route",
                "Stable Service 'stable-svc' not found in route",
            ),
        ),
        (
            vs_ref("checkout", &[]),
            json!({"hosts": ["checkout"]}),
            invalid(
                "spec",
                "Unable to get any of the HTTP, TCP or TLS routes for the Istio VirtualService",
            ),
        ),
    ];
    for (config, spec, error) in cases {
        let router = host_router(config);
        assert_eq!(
            router.plan(&desired(20), &objects([vs(spec.clone())])),
            Err(error),
            "{spec}"
        );
    }
}

#[test]
fn missing_virtual_service_is_not_found() {
    let router = host_router(vs_ref("checkout", &[]));
    assert_eq!(
        router.plan(&desired(20), &objects([])),
        Err(RouterError::NotFound { key: vs_key() })
    );
}

#[test]
fn single_named_route_is_inferred() {
    // Edge 26 (#4055): exactly one HTTP route is weighted even when named.
    let router = host_router(vs_ref("checkout", &[]));
    let (_, after) = run(
        &router,
        &desired(30),
        &objects([vs(json!({"http": [primary(100, 0)]}))]),
    );
    assert_vs_spec(&after, json!({"http": [primary(70, 30)]}));
}

#[test]
fn inferred_route_next_to_managed_routes_keeps_being_weighted() {
    // Edge 26 [Argo quirk #4741, fixed]: one named route plus managed routes; Argo selects
    // nothing and weights silently stay. Here the one unmanaged route is weighted.
    let router = host_router(vs_ref("checkout", &[]));
    let mut d = desired(50);
    d.managed_routes = vec![unchanged("h1")];
    let h1 = json!({"name": "h1", "match": [{"headers": {"x": {"exact": "1"}}}],
                    "route": [{"destination": {"host": "canary-svc"}, "weight": 100}]});
    let before = objects([vs(json!({"http": [h1.clone(), primary(100, 0)]}))]);
    let (_, after) = run(&router, &d, &before);
    assert_vs_spec(&after, json!({"http": [h1, primary(50, 50)]}));
}

#[test]
fn experiment_destinations_are_appended_in_service_order() {
    // §4 example: weighted experiment (template weight 10) during setWeight 20.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let d = with_experiment(
        with_experiment(desired(20), "zz-exp-svc", 5),
        "ro-exp-svc",
        10,
    );
    let (changes, after) = run(
        &router,
        &d,
        &objects([vs(json!({"http": [primary(100, 0)]}))]),
    );
    assert_eq!(
        changes,
        vec![patch_change(
            vs_key(),
            json!([
                {"op": "test", "path": "/spec/http/0/name", "value": "primary"},
                {"op": "test", "path": "/spec/http/0/route/0/destination/host", "value": "stable-svc"},
                {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 65},
                {"op": "test", "path": "/spec/http/0/route/1/destination/host", "value": "canary-svc"},
                {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 20},
                // Appends pin the whole list, so a stale plan cannot append twice.
                {"op": "test", "path": "/spec/http/0/route", "value": [dest("stable-svc", 65), dest("canary-svc", 20)]},
                {"op": "add", "path": "/spec/http/0/route/-", "value": dest("ro-exp-svc", 10)},
                {"op": "test", "path": "/spec/http/0/route", "value": [dest("stable-svc", 65), dest("canary-svc", 20), dest("ro-exp-svc", 10)]},
                {"op": "add", "path": "/spec/http/0/route/-", "value": dest("zz-exp-svc", 5)},
            ])
        )]
    );
    assert_vs_spec(
        &after,
        json!({"http": [{"name": "primary", "route": [
            dest("stable-svc", 65), dest("canary-svc", 20), dest("ro-exp-svc", 10), dest("zz-exp-svc", 5)]}]}),
    );
}

#[test]
fn ended_experiment_destinations_are_deleted_from_the_end() {
    // Edge 28 (#4831): weighted foreign destinations go, in descending index order, after
    // the weight edits; weight-0 foreign destinations stay.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let before = objects([vs(json!({"http": [{"name": "primary", "route": [
        dest("stable-svc", 60), dest("exp-a", 10), dest("canary-svc", 20), dest("exp-b", 10),
        dest("idle", 0),
    ]}]}))]);
    let (changes, after) = run(&router, &desired(20), &before);
    assert_eq!(
        changes,
        vec![patch_change(
            vs_key(),
            json!([
                {"op": "test", "path": "/spec/http/0/name", "value": "primary"},
                {"op": "test", "path": "/spec/http/0/route/0/destination/host", "value": "stable-svc"},
                {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 80},
                {"op": "test", "path": "/spec/http/0/route/3/destination/host", "value": "exp-b"},
                {"op": "remove", "path": "/spec/http/0/route/3"},
                {"op": "test", "path": "/spec/http/0/route/1/destination/host", "value": "exp-a"},
                {"op": "remove", "path": "/spec/http/0/route/1"},
            ])
        )]
    );
    assert_vs_spec(
        &after,
        json!({"http": [{"name": "primary", "route": [
            dest("stable-svc", 80), dest("canary-svc", 20), dest("idle", 0)]}]}),
    );
}

#[test]
fn duplicate_experiment_services_collapse_and_empty_names_are_skipped() {
    // §4: same serviceName → one destination (later weight), both subtracted from stable.
    // Edge 24 [Argo quirk, fixed]: an empty serviceName gets no destination; its weight
    // stays with the stable destination instead of being black-holed.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let d = with_experiment(
        with_experiment(with_experiment(desired(20), "exp", 5), "exp", 10),
        "",
        7,
    );
    let (_, after) = run(
        &router,
        &d,
        &objects([vs(json!({"http": [primary(100, 0)]}))]),
    );
    assert_vs_spec(
        &after,
        json!({"http": [{"name": "primary", "route": [
            dest("stable-svc", 65), dest("canary-svc", 20), dest("exp", 10)]}]}),
    );
}

#[test]
fn additional_subset_weights_are_kept_and_stable_is_floored() {
    // Edge 29: additionalSubsetNames keep the user's weight, subtracted from stable, floor 0.
    let mut config = dr_config();
    config.additional_subset_names = vec!["legacy".into()];
    let router = IstioRouter::new(IstioConfig {
        virtual_service: Some(vs_ref("checkout", &["primary"])),
        destination_rule: Some(config),
        ..IstioConfig::default()
    });
    let rule = dr(json!({"host": "checkout", "subsets": [
        {"name": "canary", "labels": {"rollouts-pod-template-hash": "c1"}},
        {"name": "stable", "labels": {"rollouts-pod-template-hash": "s1"}}]}));
    for (canary, legacy, stable) in [(20i32, 10, 70), (95, 10, 0)] {
        let before = objects([
            rule.clone(),
            vs(json!({"http": [{"name": "primary", "route": [
                sdest("checkout", "stable", 90), sdest("checkout", "canary", 0), sdest("checkout", "legacy", legacy)]}]})),
        ]);
        let (_, after) = run(&router, &subset_desired(canary), &before);
        assert_vs_spec(
            &after,
            json!({"http": [{"name": "primary", "route": [
                sdest("checkout", "stable", stable), sdest("checkout", "canary", canary.into()), sdest("checkout", "legacy", legacy)]}]}),
        );
    }
}

#[test]
fn tls_routes_by_port_and_sni_hosts() {
    // §3.2: a route matches when its single port and its SNI set equal the entry's.
    let tls = |port: Option<i64>, hosts: &[&str]| TlsRoute {
        port,
        sni_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
    };
    let route = |matches: Value| json!({"match": matches, "route": [dest("stable-svc", 100), dest("canary-svc", 0)]});
    let spec = json!({"tls": [
        route(json!([{"port": 443, "sniHosts": ["a.example.com"]}, {"port": 443, "sniHosts": ["b.example.com"]}])),
        route(json!([{"port": 443, "sniHosts": ["b.example.com", "a.example.com"]}])),
        route(json!([{"port": 443, "sniHosts": ["a.example.com"]}, {"port": 8443, "sniHosts": ["b.example.com"]}])),
        route(json!([{"sniHosts": ["c.example.com"]}])),
    ]});
    let weighted = |indexes: &[usize]| {
        let mut expected = spec.clone();
        for &i in indexes {
            expected["tls"][i]["route"] = json!([dest("stable-svc", 75), dest("canary-svc", 25)]);
        }
        vs(expected)
    };
    let cases: Vec<(Vec<TlsRoute>, Result<Value, RouterError>)> = vec![
        (
            vec![tls(Some(443), &["a.example.com", "b.example.com"])],
            Ok(weighted(&[0, 1])),
        ),
        (vec![tls(None, &["c.example.com"])], Ok(weighted(&[3]))),
        (
            vec![tls(Some(443), &["a.example.com"])],
            Err(invalid(
                "spec.tls",
                "No matching TLS routes found in the defined Virtual Service.",
            )),
        ),
        (
            vec![],
            Err(invalid(
                "spec.tls",
                "spec.tls[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.tlsRoutes",
            )),
        ),
    ];
    for (tls_routes, expected) in cases {
        let router = host_router(IstioVirtualService {
            name: "checkout".into(),
            tls_routes: tls_routes.clone(),
            ..Default::default()
        });
        let result = router
            .plan(&desired(25), &objects([vs(spec.clone())]))
            .map(|changes| {
                assert_guarded(&changes);
                let mut set = objects([vs(spec.clone())]);
                set.apply_all(&changes).unwrap();
                set.get(&vs_key()).unwrap().clone()
            });
        assert_eq!(result, expected, "{tls_routes:?}");
    }
}

#[test]
fn single_tls_and_tcp_routes_without_config() {
    // Edge 30 (#2502): TLS-only / TCP-only VirtualServices with their single route.
    for section in ["tls", "tcp"] {
        let router = host_router(vs_ref("checkout", &[]));
        let before = objects([vs(json!({section: [{"match": [{"port": 3000}],
            "route": [dest("stable-svc", 100), dest("canary-svc", 0)]}]}))]);
        let (changes, after) = run(&router, &desired(10), &before);
        assert_eq!(
            changes,
            vec![patch_change(
                vs_key(),
                json!([
                    {"op": "test", "path": format!("/spec/{section}/0"), "value": {"match": [{"port": 3000}],
                        "route": [dest("stable-svc", 100), dest("canary-svc", 0)]}},
                    {"op": "test", "path": format!("/spec/{section}/0/route/0/destination/host"), "value": "stable-svc"},
                    {"op": "replace", "path": format!("/spec/{section}/0/route/0/weight"), "value": 90},
                    {"op": "test", "path": format!("/spec/{section}/0/route/1/destination/host"), "value": "canary-svc"},
                    {"op": "replace", "path": format!("/spec/{section}/0/route/1/weight"), "value": 10},
                ])
            )]
        );
        assert_vs_spec(
            &after,
            json!({section: [{"match": [{"port": 3000}], "route": [dest("stable-svc", 90), dest("canary-svc", 10)]}]}),
        );
    }
}

#[test]
fn tcp_routes_by_port() {
    // §3.3.
    let spec = json!({"tcp": [
        {"match": [{"port": 3000}], "route": [dest("stable-svc", 100), dest("canary-svc", 0)]},
        {"match": [{"port": 4000}], "route": [dest("stable-svc", 100), dest("canary-svc", 0)]},
    ]});
    let config = |port| IstioVirtualService {
        name: "checkout".into(),
        tcp_routes: vec![TcpRoute { port: Some(port) }],
        ..Default::default()
    };
    let (_, after) = run(
        &host_router(config(4000)),
        &desired(5),
        &objects([vs(spec.clone())]),
    );
    let mut expected = spec.clone();
    expected["tcp"][1]["route"] = json!([dest("stable-svc", 95), dest("canary-svc", 5)]);
    assert_vs_spec(&after, expected);
    assert_eq!(
        host_router(config(5000)).plan(&desired(5), &objects([vs(spec)])),
        Err(invalid(
            "spec.tcp",
            "No matching TCP routes found in the defined Virtual Service."
        ))
    );
}

#[test]
fn unrelated_tcp_section_is_validated_too() {
    // §3.4 consequence / edge 30: every present section is processed.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let set = objects([vs(
        json!({"http": [primary(100, 0)], "tcp": [{"route": [dest("db", 100)]}]}),
    )]);
    assert_eq!(
        router.plan(&desired(20), &set),
        Err(invalid(
            "spec.tcp[0].route",
            "Canary Service 'canary-svc' not found in route"
        ))
    );
}

#[test]
fn several_virtual_services_with_namespace_references() {
    // §5 and §1: `name.namespace`; each has its own routes; the same desired state.
    let router = IstioRouter::new(IstioConfig {
        virtual_services: vec![
            vs_ref("checkout", &["primary"]),
            vs_ref("edge.gateways", &[]),
        ],
        ..IstioConfig::default()
    });
    let edge_key = ObjectKey::new("networking.istio.io", "VirtualService", "gateways", "edge");
    assert_eq!(
        router.object_keys(&rollout()),
        vec![vs_key(), edge_key.clone()]
    );
    let before = objects([
        vs(json!({"http": [primary(100, 0)]})),
        vs_named(
            "edge",
            "gateways",
            json!({"gateways": ["public"], "http": [{"route": [
            dest("stable-svc.shop.svc.cluster.local", 100), dest("canary-svc.shop.svc.cluster.local", 0)]}]}),
        ),
    ]);
    let (changes, after) = run(&router, &desired(50), &before);
    assert_eq!(
        changes.iter().map(|c| c.key().clone()).collect::<Vec<_>>(),
        vec![vs_key(), edge_key.clone()]
    );
    assert_vs_spec(&after, json!({"http": [primary(50, 50)]}));
    assert_eq!(
        after.get(&edge_key).unwrap(),
        &vs_named(
            "edge",
            "gateways",
            json!({"gateways": ["public"], "http": [{"route": [
            dest("stable-svc.shop.svc.cluster.local", 50), dest("canary-svc.shop.svc.cluster.local", 50)]}]})
        )
    );
}

#[test]
fn an_invalid_virtual_service_blocks_every_change() {
    // Bad input => error and no changes, even for the VirtualServices that are fine.
    let router = IstioRouter::new(IstioConfig {
        virtual_services: vec![
            vs_ref("checkout", &["primary"]),
            vs_ref("broken", &["primary"]),
        ],
        ..IstioConfig::default()
    });
    let set = objects([
        vs(json!({"http": [primary(100, 0)]})),
        vs_named("broken", NS, json!({"http": []})),
    ]);
    let broken = ObjectKey::new("networking.istio.io", "VirtualService", NS, "broken");
    assert_eq!(
        router.plan(&desired(50), &set),
        Err(RouterError::InvalidObject {
            key: broken,
            field: "spec".into(),
            message:
                "Unable to get any of the HTTP, TCP or TLS routes for the Istio VirtualService"
                    .into()
        })
    );
}

#[test]
fn ping_pong_services_when_canary_and_stable_are_empty() {
    // §9: the ping/pong pair in their current roles; hosts never change, only weights.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = subset_desired(100);
    d.ping_pong = Some(PingPongServices {
        canary_service: "pong".into(),
        stable_service: "ping".into(),
    });
    let before = objects([vs(
        json!({"http": [{"name": "primary", "route": [dest("ping", 100), dest("pong", 0)]}]}),
    )]);
    let (_, after) = run(&router, &d, &before);
    assert_vs_spec(
        &after,
        json!({"http": [{"name": "primary", "route": [dest("ping", 0), dest("pong", 100)]}]}),
    );
    // Promotion swaps the roles: the 100 % Service is now stable, no traffic moves.
    d.ping_pong = Some(PingPongServices {
        canary_service: "ping".into(),
        stable_service: "pong".into(),
    });
    d.canary.weight = 0;
    d.stable.weight = 100;
    assert_eq!(router.plan(&d, &after).unwrap(), vec![]);
}

#[test]
fn canary_and_stable_services_win_over_ping_pong() {
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = desired(10);
    d.ping_pong = Some(PingPongServices {
        canary_service: "pong".into(),
        stable_service: "ping".into(),
    });
    let (_, after) = run(
        &router,
        &d,
        &objects([vs(json!({"http": [primary(100, 0)]}))]),
    );
    assert_vs_spec(&after, json!({"http": [primary(90, 10)]}));
}

#[test]
fn hold_keeps_weights() {
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = desired(50);
    d.hold = Some(rollout_router_core::Hold {
        reason: rollout_router_core::HoldReason::StableCapacity,
        message: "stable cannot take 50%".into(),
    });
    assert_eq!(
        router
            .plan(&d, &objects([vs(json!({"http": [primary(90, 10)]}))]))
            .unwrap(),
        vec![]
    );
}

#[test]
fn max_traffic_weight_other_than_100_is_rejected() {
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = desired(5);
    d.total = 1000;
    d.stable.weight = 995;
    assert!(matches!(
        router.plan(&d, &objects([vs(json!({"http": [primary(100, 0)]}))])),
        Err(RouterError::InvalidConfig { .. })
    ));
}

#[test]
fn unnamed_route_guards_use_destination_host_and_subset() {
    // A concurrent edit that reorders destinations makes the patch fail instead of moving
    // weight to the wrong place.
    let router = subset_router(vs_ref("checkout", &[]));
    let rule = dr(json!({"host": "checkout", "subsets": [
        {"name": "canary", "labels": {"rollouts-pod-template-hash": "c1"}},
        {"name": "stable", "labels": {"rollouts-pod-template-hash": "s1"}}]}));
    let before = objects([
        rule,
        vs(
            json!({"http": [{"route": [sdest("checkout", "stable", 100), sdest("checkout", "canary", 0)]}]}),
        ),
    ]);
    let changes = router.plan(&subset_desired(30), &before).unwrap();
    assert_guarded(&changes);
    assert_eq!(
        changes,
        vec![patch_change(
            vs_key(),
            json!([
                {"op": "test", "path": "/spec/http/0", "value": {"route": [sdest("checkout", "stable", 100), sdest("checkout", "canary", 0)]}},
                {"op": "test", "path": "/spec/http/0/route/0/destination/host", "value": "checkout"},
                {"op": "test", "path": "/spec/http/0/route/0/destination/subset", "value": "stable"},
                {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 70},
                {"op": "test", "path": "/spec/http/0/route/1/destination/host", "value": "checkout"},
                {"op": "test", "path": "/spec/http/0/route/1/destination/subset", "value": "canary"},
                {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 30},
            ])
        )]
    );
    let mut raced = objects([vs(
        json!({"http": [{"route": [sdest("checkout", "canary", 0), sdest("checkout", "stable", 100)]}]}),
    )]);
    let untouched = raced.clone();
    assert!(raced.apply_all(&changes).is_err());
    assert_eq!(raced, untouched);
}
