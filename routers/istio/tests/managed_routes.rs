//! Table tests for managed routes: spec 10 §7, spec 40 items 26, 27, 34–36, 40, and the fixed
//! quirks #2767 (match fields never rewritten) and #2266 (delegate fields kept).

mod common;

use std::collections::BTreeMap;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{
    Hold, HoldReason, ObjectKey, RouteMatch, Router, RouterError, StringMatch,
};
use serde_json::{Value, json};

fn header_route(name: &str, matches: Value, destination: Value) -> Value {
    json!({"name": name, "match": matches, "route": [{"destination": destination, "weight": 100}]})
}

fn subset_rule() -> Value {
    dr(
        json!({"host": "checkout.shop.svc.cluster.local", "subsets": [
        {"name": "canary", "labels": {"app": "checkout", "rollouts-pod-template-hash": "c1"}},
        {"name": "stable", "labels": {"app": "checkout", "rollouts-pod-template-hash": "s1"}}]}),
    )
}

#[test]
fn header_route_shapes() {
    // §7.1 and §7.3: one match block per header (ORed, edge 40), exact/prefix/regex 1:1,
    // 100 % to the canary Service, inserted ahead of the user's routes.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = desired(20);
    d.managed_routes = vec![active_header(
        "beta",
        vec![
            ("x-beta", StringMatch::exact("on")),
            ("x-team", StringMatch::prefix("qa-")),
            ("user-agent", StringMatch::regex(".*Firefox.*")),
        ],
    )];
    let before = objects([vs(json!({"http": [primary(80, 20)]}))]);
    let (changes, after) = run(&router, &d, &before);
    let route = header_route(
        "beta",
        json!([
            {"headers": {"x-beta": {"exact": "on"}}},
            {"headers": {"x-team": {"prefix": "qa-"}}},
            {"headers": {"user-agent": {"regex": ".*Firefox.*"}}},
        ]),
        json!({"host": "canary-svc"}),
    );
    assert_eq!(
        changes,
        vec![patch_change(
            vs_key(),
            json!([
                // Inserted ahead of "primary": a stale plan (the route already there) fails.
                {"op": "test", "path": "/spec/http/0/name", "value": "primary"},
                {"op": "add", "path": "/spec/http/0", "value": route.clone()},
            ])
        )]
    );
    assert_vs_spec(&after, json!({"http": [route, primary(80, 20)]}));
}

#[test]
fn header_route_in_subset_mode_uses_destination_rule_host_subset_and_port() {
    // §7: host = DestinationRule spec.host (verbatim), subset = canary subset, port = the
    // weighted route's first destination port.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let mut d = subset_desired(20);
    d.managed_routes = vec![active_header(
        "beta",
        vec![("x-beta", StringMatch::exact("on"))],
    )];
    let weighted = json!({"name": "primary", "route": [
        {"destination": {"host": "checkout", "subset": "stable", "port": {"number": 8080}}, "weight": 80},
        {"destination": {"host": "checkout", "subset": "canary", "port": {"number": 8080}}, "weight": 20}]});
    let before = objects([subset_rule(), vs(json!({"http": [weighted.clone()]}))]);
    let (_, after) = run(&router, &d, &before);
    assert_vs_spec(
        &after,
        json!({"http": [
            header_route("beta", json!([{"headers": {"x-beta": {"exact": "on"}}}]),
                json!({"host": "checkout.shop.svc.cluster.local", "subset": "canary", "port": {"number": 8080}})),
            weighted,
        ]}),
    );
}

#[test]
fn mirror_route_shape_and_weight_sync() {
    // §7.2: match method/uri/headers, forwarded split copied from the weighted route (host,
    // subset, port, non-zero weight only), mirror to the canary, percentage.
    // §7.4: the forwarded split follows later weight changes.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let weighted = |s: i64, c: i64| {
        json!({"name": "primary", "timeout": "5s", "route": [
        {"destination": {"host": "stable-svc", "port": {"number": 80}}, "weight": s, "headers": {"request": {"set": {"x": "1"}}}},
        {"destination": {"host": "canary-svc", "port": {"number": 80}}, "weight": c}]})
    };
    let mut m = get_route_match("GET", "/api");
    m.headers = BTreeMap::from([("agent".to_owned(), StringMatch::regex(".*"))]);
    let mirror = |s: Value, c: Value| {
        let mut stable = json!({"destination": {"host": "stable-svc", "port": {"number": 80}}});
        let mut canary = json!({"destination": {"host": "canary-svc", "port": {"number": 80}}});
        if !s.is_null() {
            stable["weight"] = s;
        }
        if !c.is_null() {
            canary["weight"] = c;
        }
        json!({
            "name": "mirror",
            "match": [{"method": {"exact": "GET"}, "uri": {"prefix": "/api"}, "headers": {"agent": {"regex": ".*"}}}],
            "route": [stable, canary],
            "mirror": {"host": "canary-svc", "port": {"number": 80}},
            "mirrorPercentage": {"value": 35},
        })
    };
    let mut d = desired(0);
    d.managed_routes = vec![active_mirror("mirror", Some(35), vec![m])];
    let (_, after) = run(
        &router,
        &d,
        &objects([vs(json!({"http": [weighted(100, 0)]}))]),
    );
    assert_vs_spec(
        &after,
        json!({"http": [mirror(json!(100), Value::Null), weighted(100, 0)]}),
    );
    d.canary.weight = 40;
    d.stable.weight = 60;
    let (changes, after) = run(&router, &d, &after);
    assert_vs_spec(
        &after,
        json!({"http": [mirror(json!(60), json!(40)), weighted(60, 40)]}),
    );
    // Weights of the user route first (original indexes), then the mirror route in place.
    let ops = serde_json::to_value(&changes).unwrap()[0]["patch"].clone();
    assert_eq!(
        ops[ops.as_array().unwrap().len() - 2],
        json!({"op": "test", "path": "/spec/http/0/name", "value": "mirror"})
    );
    assert_eq!(
        ops[ops.as_array().unwrap().len() - 1]["op"],
        json!("replace")
    );
    assert_eq!(
        ops[ops.as_array().unwrap().len() - 1]["path"],
        json!("/spec/http/0")
    );
}

#[test]
fn mirror_route_default_percentage_and_empty_match_block() {
    // §7.2: percentage defaults to 100; `match: [{}]` becomes an empty (match-all) block.
    let router = host_router(vs_ref("checkout", &[]));
    let mut d = desired(10);
    d.managed_routes = vec![active_mirror("m", None, vec![RouteMatch::default()])];
    let (_, after) = run(
        &router,
        &d,
        &objects([vs(json!({"http": [primary(90, 10)]}))]),
    );
    assert_vs_spec(
        &after,
        json!({"http": [
            {"name": "m", "match": [{}], "route": [dest("stable-svc", 90), dest("canary-svc", 10)],
             "mirror": {"host": "canary-svc"}, "mirrorPercentage": {"value": 100}},
            primary(90, 10),
        ]}),
    );
}

#[test]
fn mirror_route_with_inferred_route_weights_both() {
    // Edge 27 [Argo quirk, fixed]: with routes omitted, a mirror route no longer steals the
    // weighting from the unnamed primary route.
    let router = host_router(vs_ref("checkout", &[]));
    let mut d = desired(0);
    d.managed_routes = vec![active_mirror(
        "m",
        Some(10),
        vec![get_route_match("GET", "/")],
    )];
    let user = json!({"route": [dest("stable-svc", 100), dest("canary-svc", 0)]});
    let (_, after) = run(&router, &d, &objects([vs(json!({"http": [user]}))]));
    d.canary.weight = 30;
    d.stable.weight = 70;
    let (_, after) = run(&router, &d, &after);
    let http = after.get(&vs_key()).unwrap()["spec"]["http"].clone();
    assert_eq!(
        http[0]["route"],
        json!([dest("stable-svc", 70), dest("canary-svc", 30)])
    );
    assert_eq!(
        http[1],
        json!({"route": [dest("stable-svc", 70), dest("canary-svc", 30)]})
    );
}

#[test]
fn mirror_route_without_a_weighted_route_is_an_error() {
    // §7.2 [Argo quirk: panic]: Argo indexes an empty destination list; here validation of the
    // weighted route reports what is missing first.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = desired(10);
    d.managed_routes = vec![active_mirror("m", None, vec![get_route_match("GET", "/")])];
    let set = objects([vs(json!({"http": [{"name": "primary", "route": []}]}))]);
    let err = router.plan(&d, &set).unwrap_err();
    assert_eq!(
        err,
        RouterError::InvalidObject {
            key: vs_key(),
            field: "spec.http[primary].route".into(),
            message: "Canary Service 'canary-svc' not found in route".into(),
        }
    );
    // Routes omitted and two unmanaged routes: no route to copy, an error instead of a panic.
    let router = host_router(vs_ref("checkout", &[]));
    let set = objects([vs(
        json!({"http": [primary(90, 10), {"route": [dest("x", 100)]}]}),
    )]);
    assert!(matches!(
        router.plan(&d, &set),
        Err(RouterError::InvalidObject { field, .. }) if field == "spec.http"
    ));
}

#[test]
fn managed_route_needs_spec_http() {
    // §7: "spec.http not found".
    let router = host_router(vs_ref("checkout", &[]));
    let mut d = desired(10);
    d.managed_routes = vec![active_header("h", vec![("x", StringMatch::exact("1"))])];
    let set = objects([vs(
        json!({"tcp": [{"route": [dest("stable-svc", 90), dest("canary-svc", 10)]}]}),
    )]);
    assert_eq!(
        router.plan(&d, &set),
        Err(RouterError::InvalidObject {
            key: vs_key(),
            field: "spec.http".into(),
            message: "spec.http not found: cannot add managed route 'h'".into(),
        })
    );
}

#[test]
fn managed_routes_follow_managed_routes_order_and_removal() {
    // §7.5: managed routes in managedRoutes order above every user route; §7.6: routes that
    // are Absent are removed; user routes keep their relative order and bytes.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let h = |name: &str| {
        header_route(
            name,
            json!([{"headers": {"x": {"exact": name}}}]),
            json!({"host": "canary-svc"}),
        )
    };
    let user_a = json!({"name": "static", "match": [{"uri": {"prefix": "/static"}}], "route": [dest("cdn", 100)]});
    let before = objects([vs(
        json!({"http": [user_a.clone(), h("second"), primary(80, 20)]}),
    )]);
    let mut d = desired(20);
    d.managed_routes = vec![
        active_header("first", vec![("x", StringMatch::exact("first"))]),
        active_header("second", vec![("x", StringMatch::exact("second"))]),
    ];
    let (changes, after) = run(&router, &d, &before);
    assert_eq!(
        changes,
        vec![patch_change(
            vs_key(),
            json!([
                {"op": "test", "path": "/spec/http/1/name", "value": "second"},
                {"op": "remove", "path": "/spec/http/1"},
                {"op": "test", "path": "/spec/http/0/name", "value": "static"},
                {"op": "add", "path": "/spec/http/0", "value": h("first")},
                {"op": "test", "path": "/spec/http/1/name", "value": "static"},
                {"op": "add", "path": "/spec/http/1", "value": h("second")},
            ])
        )]
    );
    assert_vs_spec(
        &after,
        json!({"http": [h("first"), h("second"), user_a.clone(), primary(80, 20)]}),
    );
    // "first" removed, "second" left as programmed.
    d.managed_routes = vec![absent("first"), unchanged("second")];
    let (changes, after) = run(&router, &d, &after);
    assert_eq!(
        changes,
        vec![patch_change(
            vs_key(),
            json!([
                {"op": "test", "path": "/spec/http/0/name", "value": "first"},
                {"op": "remove", "path": "/spec/http/0"},
            ])
        )]
    );
    assert_vs_spec(
        &after,
        json!({"http": [h("second"), user_a.clone(), primary(80, 20)]}),
    );
    // Completion: everything Absent → the user's VirtualService again.
    let mut done = desired(0);
    done.managed_routes = vec![absent("first"), absent("second")];
    let (_, after) = run(&router, &done, &after);
    assert_vs_spec(&after, json!({"http": [user_a, primary(100, 0)]}));
}

#[test]
fn reordering_never_duplicates_unnamed_routes() {
    // Edge 34 [Argo quirk, fixed]: ordering is by position, so two unnamed user routes stay two.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let u1 = json!({"match": [{"uri": {"prefix": "/a"}}], "route": [dest("a", 100)]});
    let u2 = json!({"match": [{"uri": {"prefix": "/b"}}], "route": [dest("b", 100)]});
    let mut d = desired(20);
    d.managed_routes = vec![active_header("h", vec![("x", StringMatch::exact("1"))])];
    let (_, after) = run(
        &router,
        &d,
        &objects([vs(
            json!({"http": [u1.clone(), primary(80, 20), u2.clone()]}),
        )]),
    );
    assert_vs_spec(
        &after,
        json!({"http": [
            header_route("h", json!([{"headers": {"x": {"exact": "1"}}}]), json!({"host": "canary-svc"})),
            u1, primary(80, 20), u2]}),
    );
}

#[test]
fn duplicate_managed_routes_collapse_to_one() {
    // Edge 36 (#2887): a route with the step's name is replaced, never duplicated; stray
    // copies are removed.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let stale = header_route(
        "h",
        json!([{"headers": {"x": {"exact": "old"}}}]),
        json!({"host": "canary-svc"}),
    );
    let fresh = header_route(
        "h",
        json!([{"headers": {"x": {"exact": "new"}}}]),
        json!({"host": "canary-svc"}),
    );
    let mut d = desired(20);
    d.managed_routes = vec![active_header("h", vec![("x", StringMatch::exact("new"))])];
    let (_, after) = run(
        &router,
        &d,
        &objects([vs(json!({"http": [stale.clone(), primary(80, 20), stale]}))]),
    );
    assert_vs_spec(&after, json!({"http": [fresh, primary(80, 20)]}));
}

#[test]
fn managed_routes_in_every_virtual_service() {
    // §5: header and mirror routes are created in every listed VirtualService.
    let router = rollout_router_istio::IstioRouter::new(rollout_router_core::IstioConfig {
        virtual_services: vec![
            vs_ref("checkout", &["primary"]),
            vs_ref("internal", &["primary"]),
        ],
        ..Default::default()
    });
    let mut d = desired(20);
    d.managed_routes = vec![active_header("h", vec![("x", StringMatch::exact("1"))])];
    let before = objects([
        vs(json!({"http": [primary(80, 20)]})),
        vs_named("internal", NS, json!({"http": [primary(80, 20)]})),
    ]);
    let (changes, after) = run(&router, &d, &before);
    assert_eq!(changes.len(), 2);
    let route = header_route(
        "h",
        json!([{"headers": {"x": {"exact": "1"}}}]),
        json!({"host": "canary-svc"}),
    );
    for name in ["checkout", "internal"] {
        let key = ObjectKey::new("networking.istio.io", "VirtualService", NS, name);
        assert_eq!(
            after.get(&key).unwrap(),
            &vs_named(name, NS, json!({"http": [route.clone(), primary(80, 20)]}))
        );
    }
}

#[test]
fn hold_removes_absent_routes_but_adds_nothing() {
    // Under a hold: Absent routes go, Active routes not yet present are not added, weights stay.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let old = header_route(
        "old",
        json!([{"headers": {"x": {"exact": "1"}}}]),
        json!({"host": "canary-svc"}),
    );
    let mut d = desired(50);
    d.hold = Some(Hold {
        reason: HoldReason::StableCapacity,
        message: "wait".into(),
    });
    d.managed_routes = vec![
        absent("old"),
        active_header("new", vec![("x", StringMatch::exact("2"))]),
    ];
    let (_, after) = run(
        &router,
        &d,
        &objects([vs(json!({"http": [old, primary(80, 20)]}))]),
    );
    assert_vs_spec(&after, json!({"http": [primary(80, 20)]}));
}

#[test]
fn user_match_fields_and_delegate_fields_are_never_rewritten() {
    // Fixed quirks #2767 (withoutHeaders and other match fields) and #2266 (a delegate
    // VirtualService keeps `retries` and every other field): only the weights move.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let spec = |s: i64, c: i64| {
        json!({
            "exportTo": ["."],
            "http": [
                {"name": "primary",
                 "match": [{"uri": {"prefix": "/"}, "withoutHeaders": {"x-internal": {"exact": "1"}}, "ignoreUriCase": true}],
                 "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx"},
                 "timeout": "10s",
                 "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}]},
                 "futureIstioField": {"x": [1, 2.5, null]},
                 "route": [
                    {"destination": {"host": "stable-svc"}, "weight": s, "headers": {"response": {"remove": ["x"]}}},
                    {"destination": {"host": "canary-svc"}, "weight": c}]},
            ],
        })
    };
    let mut d = desired(30);
    d.managed_routes = vec![active_header("h", vec![("x", StringMatch::exact("1"))])];
    let (_, after) = run(&router, &d, &objects([vs(spec(100, 0))]));
    let mut expected = spec(70, 30);
    expected["http"].as_array_mut().unwrap().insert(
        0,
        header_route(
            "h",
            json!([{"headers": {"x": {"exact": "1"}}}]),
            json!({"host": "canary-svc"}),
        ),
    );
    assert_vs_spec(&after, expected);
}

#[test]
fn validate_route_rejects_what_istio_cannot_mean() {
    use rollout_router_core::RouteSpec;
    let router = host_router(vs_ref("checkout", &[]));
    let ok_header =
        RouteSpec::SetHeaderRoute(header_step("h", vec![("x", StringMatch::exact("1"))]));
    assert_eq!(router.validate_route(&ok_header), Ok(()));
    let two_kinds = StringMatch {
        exact: Some("a".into()),
        prefix: Some("b".into()),
        regex: None,
    };
    let bad_header = RouteSpec::SetHeaderRoute(header_step("h", vec![("x", two_kinds.clone())]));
    assert_eq!(
        router.validate_route(&bad_header),
        Err("match[0].headerValue: set exactly one of exact, prefix, regex".into())
    );
    let mut m = get_route_match("GET", "/");
    m.headers.insert("agent".into(), two_kinds);
    let bad_mirror = RouteSpec::SetMirrorRoute(mirror_step("m", None, vec![m]));
    assert_eq!(
        router.validate_route(&bad_mirror),
        Err("match[0].headers.agent: set exactly one of exact, prefix, regex".into())
    );
    let pct = RouteSpec::SetMirrorRoute(mirror_step(
        "m",
        Some(150),
        vec![get_route_match("GET", "/")],
    ));
    assert_eq!(
        router.validate_route(&pct),
        Err("percentage: must be within 0..=100, got 150".into())
    );
}
