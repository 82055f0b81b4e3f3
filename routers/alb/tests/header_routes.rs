//! Spec 30 §5 (header routes), §9 (the complete example), spec 40 #54, and `validate_route`.

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_alb::AlbRouter;
use rollout_router_core::{
    HeaderRoutingMatch, Hold, HoldReason, ManagedRoute, RouteSpec, RouteState, Router,
    SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use serde_json::{Value, json};

const QA_ACTION: &str = "alb.ingress.kubernetes.io/actions.qa";
const QA_CONDITIONS: &str = "alb.ingress.kubernetes.io/conditions.qa";

fn with_routes(weight: i32, routes: Vec<ManagedRoute>) -> rollout_router_core::DesiredTraffic {
    let mut d = desired(weight);
    d.managed_routes = routes;
    d
}

fn shop_ingress() -> Value {
    ingress(
        "shop",
        json!({"kubernetes.io/ingress.class": "alb"}),
        json!([{"http": {"paths": [path("/", "shop-root")]}}]),
    )
}

// §9: the complete example of the spec, object for object.
#[test]
fn complete_example() {
    let router = root_router();
    let mut set = objects([shop_ingress()]);
    plan_apply(&router, &desired(30), &mut set);
    let changes = plan_apply(
        &router,
        &with_routes(30, vec![active("qa", vec![header_match("X-Env", "qa")])]),
        &mut set,
    );
    assert_eq!(changes.len(), 1);
    let expected = ingress(
        "shop",
        json!({
            "kubernetes.io/ingress.class": "alb",
            ACTION: r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":30},{"ServiceName":"shop-stable","ServicePort":"80","Weight":70}]}}"#,
            BOOK: r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root","alb.ingress.kubernetes.io/actions.qa","alb.ingress.kubernetes.io/conditions.qa"]}"#,
            QA_ACTION: r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":100}]}}"#,
            QA_CONDITIONS: r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Env","values":["qa"]}}]"#,
        }),
        json!([{"http": {"paths": [
            {"path": "/*", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "qa", "port": {"name": "use-annotation"}}}},
            path("/", "shop-root")
        ]}}]),
    );
    assert_eq!(set.get(&key("shop")).unwrap(), &expected);
}

// §5.1: the exact patch of adding a header route.
#[test]
fn adding_a_route_patch() {
    let router = root_router();
    let mut set = objects([shop_ingress()]);
    plan_apply(&router, &desired(30), &mut set);
    let changes = plan_apply(
        &router,
        &with_routes(30, vec![active("qa", vec![header_match("X-Env", "qa")])]),
        &mut set,
    );
    let book_before = r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root"]}"#;
    assert_eq!(
        patches(&changes)[0]["patch"],
        json!([
            {"op": "test", "path": "/metadata/annotations/rollouts.argoproj.io~1managed-alb-annotations", "value": book_before},
            {"op": "test", "path": "/spec/rules/0/http/paths", "value": [path("/", "shop-root")]},
            {"op": "add", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1actions.qa",
             "value": r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":100}]}}"#},
            {"op": "add", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1conditions.qa",
             "value": r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Env","values":["qa"]}}]"#},
            {"op": "replace", "path": "/metadata/annotations/rollouts.argoproj.io~1managed-alb-annotations",
             "value": r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root","alb.ingress.kubernetes.io/actions.qa","alb.ingress.kubernetes.io/conditions.qa"]}"#},
            {"op": "replace", "path": "/spec/rules/0/http/paths", "value": [route_path("qa"), path("/", "shop-root")]}
        ])
    );
}

// §5.1: conditions table (byte for byte).
#[test]
fn conditions_values() {
    let cases: Vec<(&str, Vec<HeaderRoutingMatch>, &str)> = vec![
        (
            "one header",
            vec![header_match("X-Canary", "yes")],
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Canary","values":["yes"]}}]"#,
        ),
        (
            "same name merged in order, duplicates kept; names in first-seen order",
            vec![
                header_match("X-Canary", "yes"),
                header_match("X-Team", "qa"),
                header_match("X-Canary", "true"),
                header_match("X-Canary", "yes"),
            ],
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Canary","values":["yes","true","yes"]}},{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Team","values":["qa"]}}]"#,
        ),
        (
            "names compared case-sensitively",
            vec![header_match("X-Env", "a"), header_match("x-env", "b")],
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Env","values":["a"]}},{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"x-env","values":["b"]}}]"#,
        ),
        (
            "Go escaping of <, >, &",
            vec![header_match("X-Q", "a<b>&c\"")],
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Q","values":["a\u003cb\u003e\u0026c\""]}}]"#,
        ),
    ];
    for (name, matches, expected) in cases {
        let router = root_router();
        let mut set = objects([shop_ingress()]);
        plan_apply(
            &router,
            &with_routes(10, vec![active("qa", matches)]),
            &mut set,
        );
        let a = annotations(&set, "shop");
        assert_eq!(a[QA_CONDITIONS], json!(expected), "{name}");
        let parsed: Value = serde_json::from_str(expected).unwrap();
        assert!(parsed.is_array(), "{name}");
    }
}

// §5.1: stickiness in the route action, ping-pong canary as its target.
#[test]
fn route_action_is_ping_pong_aware_and_sticky() {
    let router = AlbRouter::new(config(
        json!({"ingress": "shop", "servicePort": 80, "rootService": "shop-root",
        "stickinessConfig": {"enabled": true, "durationSeconds": 60}}),
    ));
    let mut set = objects([shop_ingress()]);
    let mut d = with_routes(10, vec![active("qa", vec![header_match("X-Env", "qa")])]);
    d.ping_pong = Some(rollout_router_core::PingPongServices {
        canary_service: "shop-pong".into(),
        stable_service: "shop-ping".into(),
    });
    plan_apply(&router, &d, &mut set);
    assert_eq!(
        annotations(&set, "shop")[QA_ACTION],
        json!(
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-pong","ServicePort":"80","Weight":100}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":60}}}"#
        )
    );
}

// §5.1 sorting: managed paths first in managedRoutes order, user paths keep their order; a
// route added later still lands in managedRoutes order.
#[test]
fn paths_sorted_by_managed_routes() {
    let router = root_router();
    let mut set = objects([ingress(
        "shop",
        json!({}),
        json!([{"http": {"paths": [path("/api", "shop-api"), path("/", "shop-root")]}}]),
    )]);
    plan_apply(
        &router,
        &with_routes(
            10,
            vec![unchanged("h1"), active("h2", vec![header_match("A", "1")])],
        ),
        &mut set,
    );
    plan_apply(
        &router,
        &with_routes(
            10,
            vec![active("h1", vec![header_match("B", "2")]), unchanged("h2")],
        ),
        &mut set,
    );
    assert_eq!(
        rules(&set, "shop"),
        json!([{"http": {"paths": [route_path("h1"), route_path("h2"), path("/api", "shop-api"), path("/", "shop-root")]}}])
    );
}

// Spec 40 #54 (fixed): the route path goes into the rules that route the action Service, not
// into rules for other hosts/services (Argo inserts it everywhere, open PR #3727); rules without
// http are left alone.
#[test]
fn route_path_only_in_rules_of_the_action() {
    let router = root_router();
    let other_host = json!({"host": "admin.example.com", "http": {"paths": [path("/", "admin")]}});
    let mut set = objects([ingress(
        "shop",
        json!({}),
        json!([{"host": "shop.example.com", "http": {"paths": [path("/", "shop-root")]}},
               other_host.clone(),
               {"host": "bare.example.com"},
               {"host": "www.example.com", "http": {"paths": [path("/", "shop-root")]}}]),
    )]);
    plan_apply(
        &router,
        &with_routes(10, vec![active("qa", vec![header_match("X", "1")])]),
        &mut set,
    );
    assert_eq!(
        rules(&set, "shop"),
        json!([{"host": "shop.example.com", "http": {"paths": [route_path("qa"), path("/", "shop-root")]}},
               other_host,
               {"host": "bare.example.com"},
               {"host": "www.example.com", "http": {"paths": [route_path("qa"), path("/", "shop-root")]}}])
    );
}

// v1beta1 Ingresses get the v1beta1 backend shape.
#[test]
fn v1beta1_route_path() {
    let router = root_router();
    let mut beta = ingress(
        "shop",
        json!({}),
        json!([{"http": {"paths": [
        {"path": "/", "backend": {"serviceName": "shop-root", "servicePort": "use-annotation"}}]}}]),
    );
    beta["apiVersion"] = json!("networking.k8s.io/v1beta1");
    let mut set = objects([beta]);
    plan_apply(
        &router,
        &with_routes(10, vec![active("qa", vec![header_match("X", "1")])]),
        &mut set,
    );
    assert_eq!(
        rules(&set, "shop")[0]["http"]["paths"][0],
        json!({"path": "/*", "pathType": "ImplementationSpecific", "backend": {"serviceName": "qa", "servicePort": "use-annotation"}})
    );
}

/// An Ingress with route qa programmed, and the state before it.
fn programmed() -> (
    AlbRouter,
    rollout_router_core::ObjectSet,
    rollout_router_core::ObjectSet,
) {
    let router = root_router();
    let mut set = objects([shop_ingress()]);
    plan_apply(&router, &desired(20), &mut set);
    let before = set.clone();
    plan_apply(
        &router,
        &with_routes(20, vec![active("qa", vec![header_match("X-Env", "qa")])]),
        &mut set,
    );
    (router, set, before)
}

// §5.2 (Absent, and Active with an empty match list) and §5.3 (remove managed routes): the
// Ingress returns exactly to its state before the route, except the bookkeeping list.
#[test]
fn removal_restores_the_ingress() {
    let empty_match = ManagedRoute {
        name: "qa".into(),
        state: RouteState::Active {
            route: RouteSpec::SetHeaderRoute(SetHeaderRoute {
                name: "qa".into(),
                matches: vec![],
            }),
        },
    };
    for (name, route) in [("absent", absent("qa")), ("match: []", empty_match)] {
        let (router, mut set, before) = programmed();
        let changes = plan_apply(&router, &with_routes(20, vec![route]), &mut set);
        assert_eq!(changes.len(), 1, "{name}");
        assert_eq!(set, before, "{name}");
    }
    // The removal patch itself: every removal guarded by the value it removes.
    let (router, set, _) = programmed();
    let changes = router
        .plan(&with_routes(20, vec![absent("qa")]), &set)
        .unwrap();
    let a = annotations(&set, "shop");
    assert_eq!(
        patches(&changes)[0]["patch"],
        json!([
            {"op": "test", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1actions.qa", "value": a[QA_ACTION]},
            {"op": "test", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1conditions.qa", "value": a[QA_CONDITIONS]},
            {"op": "test", "path": "/metadata/annotations/rollouts.argoproj.io~1managed-alb-annotations", "value": a[BOOK]},
            {"op": "test", "path": "/spec/rules/0/http/paths", "value": [route_path("qa"), path("/", "shop-root")]},
            {"op": "remove", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1actions.qa"},
            {"op": "remove", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1conditions.qa"},
            {"op": "replace", "path": "/metadata/annotations/rollouts.argoproj.io~1managed-alb-annotations",
             "value": r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root"]}"#},
            {"op": "replace", "path": "/spec/rules/0/http/paths", "value": [path("/", "shop-root")]}
        ])
    );
}

// §5.3 on several Ingresses and several routes: all of them, every Ingress (spec 40 #51).
#[test]
fn remove_managed_routes_everywhere() {
    let router = AlbRouter::new(config(
        json!({"ingresses": ["a", "b"], "servicePort": 80, "rootService": "shop-root"}),
    ));
    let mut set = objects([
        simple_ingress("a", "shop-root"),
        simple_ingress("b", "shop-root"),
    ]);
    plan_apply(&router, &desired(0), &mut set);
    let before = set.clone();
    plan_apply(
        &router,
        &with_routes(
            40,
            vec![
                active("h1", vec![header_match("A", "1")]),
                active("h2", vec![header_match("B", "2")]),
            ],
        ),
        &mut set,
    );
    // Completion: weight 0, every managed route Absent.
    let changes = plan_apply(
        &router,
        &with_routes(0, vec![absent("h1"), absent("h2")]),
        &mut set,
    );
    assert_eq!(changes.len(), 2);
    assert_eq!(set, before);
}

// Unchanged: a programmed route is left alone, also when its config would differ.
#[test]
fn unchanged_route_is_left_alone() {
    let (router, set, _) = programmed();
    assert_eq!(
        router
            .plan(&with_routes(20, vec![unchanged("qa")]), &set)
            .unwrap(),
        vec![]
    );
    // A route that is not programmed stays absent.
    let fresh = objects([shop_ingress()]);
    let changes = router
        .plan(&with_routes(0, vec![unchanged("qa")]), &fresh)
        .unwrap();
    let mut applied = fresh.clone();
    applied.apply_all(&changes).unwrap();
    assert_eq!(annotations(&applied, "shop")[QA_ACTION], Value::Null);
}

// Hold: Active routes are not added (defensive), Absent routes are still removed.
#[test]
fn hold_adds_nothing_but_removes() {
    let hold = Some(Hold {
        reason: HoldReason::StableCapacity,
        message: "x".into(),
    });
    let router = root_router();
    let mut set = objects([shop_ingress()]);
    plan_apply(&router, &desired(20), &mut set);
    let mut d = with_routes(60, vec![active("qa", vec![header_match("X-Env", "qa")])]);
    d.hold = hold.clone();
    assert_eq!(router.plan(&d, &set).unwrap(), vec![]);

    let (router, mut set, before) = programmed();
    let mut d = with_routes(60, vec![absent("qa")]);
    d.hold = hold;
    plan_apply(&router, &d, &mut set);
    assert_eq!(set, before, "route removed, weight kept at 20");
}

// A route that was dropped from managedRoutes while programmed is cleaned up (Argo would
// leave it forever).
#[test]
fn route_dropped_from_managed_routes_is_removed() {
    let (router, mut set, before) = programmed();
    plan_apply(&router, &desired(20), &mut set);
    assert_eq!(set, before);
}

// Routes are changed in place when their matches change.
#[test]
fn changed_matches_rewrite_conditions() {
    let (router, mut set, _) = programmed();
    plan_apply(
        &router,
        &with_routes(
            20,
            vec![active("qa", vec![header_match("X-Env", "staging")])],
        ),
        &mut set,
    );
    assert_eq!(
        annotations(&set, "shop")[QA_CONDITIONS],
        json!(
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Env","values":["staging"]}}]"#
        )
    );
    assert_eq!(
        rules(&set, "shop")[0]["http"]["paths"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

// validate_route and plan reject what ALB cannot express.
#[test]
fn rejects_mirror_and_non_exact() {
    let router = root_router();
    let mirror = RouteSpec::SetMirrorRoute(SetMirrorRoute {
        name: "m".into(),
        matches: vec![],
        percentage: None,
    });
    assert_eq!(
        router.validate_route(&mirror).unwrap_err(),
        "ALB cannot mirror traffic: setMirrorRoute is not supported with the alb router"
    );
    let header = |v: Option<StringMatch>| {
        RouteSpec::SetHeaderRoute(SetHeaderRoute {
            name: "h".into(),
            matches: vec![
                header_match("A", "1"),
                HeaderRoutingMatch {
                    header_name: "B".into(),
                    header_value: v,
                },
            ],
        })
    };
    for bad in [
        Some(StringMatch::prefix("x")),
        Some(StringMatch::regex("x.*")),
        Some(StringMatch::exact("")),
        None,
    ] {
        assert_eq!(
            router.validate_route(&header(bad.clone())).unwrap_err(),
            "match[1].headerValue: SetHeaderRoute match value invalid. ALB supports 'exact' value only",
            "{bad:?}"
        );
    }
    assert_eq!(
        router.validate_route(&header(Some(StringMatch::exact("2")))),
        Ok(())
    );

    let set = objects([shop_ingress()]);
    let mut d = desired(10);
    d.managed_routes = vec![ManagedRoute {
        name: "m".into(),
        state: RouteState::Active { route: mirror },
    }];
    assert_eq!(
        router.plan(&d, &set).unwrap_err().to_string(),
        "setMirrorRoute m: ALB cannot mirror traffic"
    );
    let RouteSpec::SetHeaderRoute(step) = header(Some(StringMatch::regex("x"))) else {
        unreachable!()
    };
    d.managed_routes = vec![ManagedRoute {
        name: "h".into(),
        state: RouteState::Active {
            route: RouteSpec::SetHeaderRoute(step),
        },
    }];
    assert_eq!(
        router.plan(&d, &set).unwrap_err().to_string(),
        "setHeaderRoute h: match[1].headerValue: SetHeaderRoute match value invalid. ALB supports 'exact' value only"
    );
    // A route named like the action Service would overwrite the weighted action.
    d.managed_routes = vec![active("shop-root", vec![header_match("A", "1")])];
    assert!(router.plan(&d, &set).is_err());
}

// Two Rollouts with header routes on one Ingress do not reorder each other's paths forever:
// rules are only sorted when a route path is inserted or removed.
#[test]
fn two_rollouts_on_one_ingress_do_not_fight() {
    let router = root_router();
    let mut set = objects([shop_ingress()]);
    let mut a = with_routes(10, vec![active("qa", vec![header_match("X", "1")])]);
    plan_apply(&router, &a, &mut set);
    // Another Rollout (same action Service here, for brevity) adds its route `beta`.
    let mut b = with_routes(10, vec![active("beta", vec![header_match("Y", "1")])]);
    b.rollout.name = "other".into();
    plan_apply(&router, &b, &mut set);
    let paths = || rules(&set, "shop")[0]["http"]["paths"].clone();
    assert_eq!(
        paths(),
        json!([route_path("beta"), route_path("qa"), path("/", "shop-root")])
    );
    a.step_index = Some(1);
    assert_eq!(router.plan(&a, &set).unwrap(), vec![]);
    // A manual reorder of the user's paths is not undone either.
    let mut obj = set.get(&key("shop")).unwrap().clone();
    obj["spec"]["rules"][0]["http"]["paths"] =
        json!([path("/", "shop-root"), route_path("qa"), route_path("beta")]);
    set.insert(obj);
    assert_eq!(router.plan(&a, &set).unwrap(), vec![]);
}
