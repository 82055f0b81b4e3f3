//! Header routes on ingress-nginx (spec 20 §9, beyond Argo #2830): every match type, the
//! rejections, and the route's life on the canary Ingress (added, kept, changed, removed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code (helpers included): a panic is the failure report, as clippy.toml allows in tests"
)]

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{
    NginxConfig, RouteSpec, RouteState, Router, RouterError, SetMirrorRoute, StringMatch,
    ValidationError,
};
use rollout_router_nginx::{
    HeaderMatch, HeaderValue, NginxRouter, header_match, validate_header_route_steps,
};
use serde_json::{Value, json};

fn exact(v: &str) -> StringMatch {
    StringMatch::exact(v)
}

#[test]
fn mapping_of_every_match_type() {
    let cases: Vec<(Vec<_>, HeaderValue)> = vec![
        (
            vec![header("X-Canary", exact("always"))],
            HeaderValue::Exact("always".into()),
        ),
        (
            vec![header("X-Canary", StringMatch::prefix("beta.v2"))],
            HeaderValue::Pattern(r"^beta\.v2".into()),
        ),
        (
            vec![header("X-Canary", StringMatch::regex("beta|rc[0-9]+"))],
            HeaderValue::Pattern("^(?:beta|rc[0-9]+)$".into()),
        ),
        // Several values of one header (names case-insensitive): an alternation.
        (
            vec![
                header("X-Canary", exact("a+b")),
                header("x-canary", StringMatch::prefix("team(")),
                header("X-CANARY", StringMatch::regex("q[0-9]")),
                header("X-Canary", exact("a+b")),
            ],
            HeaderValue::Pattern(r"^(?:a\+b|team\(.*|(?:q[0-9]))$".into()),
        ),
        (
            vec![
                header("X-Canary", exact("on")),
                header("X-Canary", exact("yes")),
            ],
            HeaderValue::Pattern("^(?:on|yes)$".into()),
        ),
    ];
    for (matches, value) in cases {
        assert_eq!(
            header_match(&header_step("h", matches.clone())),
            Ok(HeaderMatch {
                header: "X-Canary".into(),
                value
            }),
            "{matches:?}"
        );
    }
}

#[test]
fn escaping_covers_every_pcre_metacharacter() {
    let step = header_step(
        "h",
        vec![header("X", StringMatch::prefix(r"\^$.|?*+()[]{}-/"))],
    );
    assert_eq!(
        header_match(&step).unwrap().value,
        HeaderValue::Pattern(r"^\\\^\$\.\|\?\*\+\(\)\[\]\{\}-/".into())
    );
}

#[test]
fn validate_route_rejections_say_why() {
    let r = router();
    let header_route = |matches| RouteSpec::SetHeaderRoute(header_step("h1", matches));
    let cases = [
        (
            header_route(vec![
                header("X-Canary", exact("a")),
                header("X-User", exact("b")),
            ]),
            "setHeaderRoute `h1`: match[1].headerName: matches on headers `X-Canary` and `X-User`: \
             ingress-nginx routes a canary Ingress on one header only (canary-by-header), so a \
             route over several headers cannot be expressed; use one header",
        ),
        (
            header_route(vec![header("X Canary", exact("a"))]),
            "setHeaderRoute `h1`: match[0].headerName `X Canary` is not an HTTP header name",
        ),
        (
            header_route(vec![header("X-Canary", StringMatch::default())]),
            "setHeaderRoute `h1`: match[0].headerValue must set exactly one of exact, prefix, regex",
        ),
        (
            RouteSpec::SetMirrorRoute(SetMirrorRoute {
                name: "m1".into(),
                ..SetMirrorRoute::default()
            }),
            "setMirrorRoute `m1`: ingress-nginx cannot mirror traffic per route (its canary \
             annotations only split or select requests), so the nginx router does not support \
             mirror routes",
        ),
    ];
    for (route, message) in cases {
        assert_eq!(r.validate_route(&route), Err(message.to_owned()));
    }
    // Expressible routes and removals pass.
    assert_eq!(
        r.validate_route(&header_route(vec![header("X-Canary", exact("a"))])),
        Ok(())
    );
    assert_eq!(r.validate_route(&header_route(vec![])), Ok(()));
}

#[test]
fn validate_route_rejects_competing_with_a_static_header_annotation() {
    let r = NginxRouter::new(NginxConfig {
        additional_ingress_annotations: [("canary-by-header".to_owned(), "X-Static".to_owned())]
            .into(),
        ..config()
    });
    let route = RouteSpec::SetHeaderRoute(header_step("h1", vec![header("X-Canary", exact("a"))]));
    assert_eq!(
        r.validate_route(&route),
        Err("setHeaderRoute `h1`: the nginx configuration already sets \
             `nginx.ingress.kubernetes.io/canary-by-header` \
             (additionalIngressAnnotations/canaryIngressAnnotations); a canary Ingress has a \
             single header slot, so use either the static annotation or setHeaderRoute steps"
            .into())
    );
    // And plan refuses it too, should validation have been skipped.
    let mut d = desired(10);
    d.managed_routes = vec![active("h1", vec![header("X-Canary", exact("a"))])];
    assert!(matches!(
        r.plan(&d, &objects([stable_ingress()])),
        Err(RouterError::InvalidConfig { ref field, .. }) if field == "nginx.additionalIngressAnnotations"
    ));
    // Without a header route the static annotation is fine (Argo's way).
    assert!(r.plan(&desired(10), &objects([stable_ingress()])).is_ok());
}

#[test]
fn two_header_routes_at_once_are_rejected_over_the_step_list() {
    let h1 = header_step("h1", vec![header("X-A", exact("1"))]);
    let h2 = header_step("h2", vec![header("X-B", exact("2"))]);
    let h1_off = header_step("h1", vec![]);
    // h1 on, h1 off, h2 on: one at a time.
    assert_eq!(
        validate_header_route_steps([(1, &h1), (3, &h1_off), (4, &h2)]),
        Ok(())
    );
    // The same route re-programmed is fine too.
    assert_eq!(validate_header_route_steps([(1, &h1), (2, &h1)]), Ok(()));
    assert_eq!(
        validate_header_route_steps([(1, &h1), (4, &h2)]),
        Err(ValidationError::new(
            "steps[4].setHeaderRoute.name",
            "header route `h2` would be active while header route `h1` still is: an \
             ingress-nginx canary Ingress has a single header slot (canary-by-header), so the \
             nginx router can program one header route at a time; remove `h1` first with a \
             setHeaderRoute step named `h1` without match",
        ))
    );
    // Plan refuses two active routes too.
    let mut d = desired(10);
    d.managed_routes = vec![
        active("h1", vec![header("X-A", exact("1"))]),
        active("h2", vec![header("X-B", exact("2"))]),
    ];
    assert_eq!(
        router().plan(&d, &objects([stable_ingress()])),
        Err(RouterError::InvalidConfig {
            field: "managedRoutes[h2]".into(),
            message: "header routes `h1` and `h2` would be active at once: an ingress-nginx \
                      canary Ingress has a single header slot (canary-by-header)"
                .into(),
        })
    );
}

#[test]
fn plan_refuses_an_active_mirror_route() {
    let mut d = desired(10);
    d.managed_routes = vec![route(
        "m1",
        RouteState::Active {
            route: RouteSpec::SetMirrorRoute(SetMirrorRoute::default()),
        },
    )];
    assert!(matches!(
        router().plan(&d, &objects([stable_ingress()])),
        Err(RouterError::InvalidConfig { ref field, .. }) if field == "managedRoutes[m1]"
    ));
}

/// The canary annotations at weight 10 with header route `h1` programmed as `extra`.
fn header_annotations(extra: &[(&str, &str)]) -> Value {
    let mut a = json!({
        "kubernetes.io/ingress.class": "nginx",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "10",
    });
    for (k, v) in extra {
        a[*k] = json!(v);
    }
    a["rollout-router.io/header-route"] = json!("h1");
    let mut keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    a["rollout-router.io/managed-annotations"] = json!(keys.join(","));
    a
}

fn with_routes(
    weight: i32,
    routes: Vec<rollout_router_core::ManagedRoute>,
) -> rollout_router_core::DesiredTraffic {
    let mut d = desired(weight);
    d.managed_routes = routes;
    d
}

#[test]
fn header_route_lifecycle_on_the_canary_ingress() {
    let r = router();
    let x_canary = vec![header("X-Canary", exact("always"))];
    // Weight first, then the header step: the same canary Ingress carries both.
    let (_, set) = plan_apply(
        &r,
        &with_routes(10, vec![route("h1", RouteState::Absent)]),
        &objects([stable_ingress()]),
    );
    assert_eq!(
        set.get(&canary_key()).unwrap()["metadata"]["annotations"],
        weight_annotations(10)
    );
    // Someone else's annotation, to show removal is exact.
    let mut canary = set.get(&canary_key()).unwrap().clone();
    canary["metadata"]["annotations"]["example.com/ticket"] = json!("OPS-1");
    let set = objects([stable_ingress(), canary]);

    let exact_annotations = with(
        header_annotations(&[
            ("nginx.ingress.kubernetes.io/canary-by-header", "X-Canary"),
            (
                "nginx.ingress.kubernetes.io/canary-by-header-value",
                "always",
            ),
        ]),
        |a| a["example.com/ticket"] = json!("OPS-1"),
    );
    let (changes, set) = plan_apply(
        &r,
        &with_routes(10, vec![active("h1", x_canary.clone())]),
        &set,
    );
    assert_eq!(changes.len(), 1);
    let annotations = set.get(&canary_key()).unwrap()["metadata"]["annotations"].clone();
    assert_eq!(annotations, exact_annotations);

    // Unchanged (e.g. case A): left exactly as programmed, while the weight still moves.
    let (_, set) = plan_apply(
        &r,
        &with_routes(30, vec![route("h1", RouteState::Unchanged)]),
        &set,
    );
    let annotations = &set.get(&canary_key()).unwrap()["metadata"]["annotations"];
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/canary-by-header-value"],
        "always"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/canary-weight"],
        "30"
    );
    let (_, set) = plan_apply(
        &r,
        &with_routes(10, vec![route("h1", RouteState::Unchanged)]),
        &set,
    );

    // Reprogrammed as a regex: the value annotation goes, the pattern comes.
    let regex = vec![header("X-Canary", StringMatch::regex("beta-.*"))];
    let (_, set) = plan_apply(&r, &with_routes(10, vec![active("h1", regex)]), &set);
    assert_eq!(
        set.get(&canary_key()).unwrap()["metadata"]["annotations"],
        with(
            header_annotations(&[
                ("nginx.ingress.kubernetes.io/canary-by-header", "X-Canary"),
                (
                    "nginx.ingress.kubernetes.io/canary-by-header-pattern",
                    "^(?:beta-.*)$"
                ),
            ]),
            |a| a["example.com/ticket"] = json!("OPS-1"),
        )
    );

    // Removal removes exactly the header annotations and the route bookkeeping.
    let (changes, set) = plan_apply(
        &r,
        &with_routes(10, vec![route("h1", RouteState::Absent)]),
        &set,
    );
    assert_eq!(
        serde_json::to_value(match &changes[..] {
            [rollout_router_core::Change::Patch { patch, .. }] => patch,
            other => panic!("{other:?}"),
        })
        .unwrap(),
        json!([
            {"op": "test", "path": "/metadata/annotations/rollout-router.io~1managed-annotations",
             "value": "kubernetes.io/ingress.class,nginx.ingress.kubernetes.io/canary,\
        nginx.ingress.kubernetes.io/canary-by-header,nginx.ingress.kubernetes.io/canary-by-header-pattern,\
        nginx.ingress.kubernetes.io/canary-weight,rollout-router.io/header-route"},
            {"op": "replace", "path": "/metadata/annotations/rollout-router.io~1managed-annotations",
             "value": "kubernetes.io/ingress.class,nginx.ingress.kubernetes.io/canary,nginx.ingress.kubernetes.io/canary-weight"},
            {"op": "test", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-by-header", "value": "X-Canary"},
            {"op": "remove", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-by-header"},
            {"op": "test", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-by-header-pattern", "value": "^(?:beta-.*)$"},
            {"op": "remove", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-by-header-pattern"},
            {"op": "test", "path": "/metadata/annotations/rollout-router.io~1header-route", "value": "h1"},
            {"op": "remove", "path": "/metadata/annotations/rollout-router.io~1header-route"},
        ])
    );
    assert_eq!(
        set.get(&canary_key()).unwrap()["metadata"]["annotations"],
        with(weight_annotations(10), |a| a["example.com/ticket"] =
            json!("OPS-1"))
    );
}

#[test]
fn header_route_on_a_new_canary_ingress_and_at_weight_0() {
    // Header routing works at canary-weight 0 (ingress-nginx checks the header first).
    let d = with_routes(
        0,
        vec![active(
            "h1",
            vec![header("X-Canary", StringMatch::prefix("beta"))],
        )],
    );
    let after = canary_after(&router(), &d, &objects([stable_ingress()]));
    assert_eq!(
        after,
        canary_ingress(with(
            header_annotations(&[
                ("nginx.ingress.kubernetes.io/canary-by-header", "X-Canary"),
                (
                    "nginx.ingress.kubernetes.io/canary-by-header-pattern",
                    "^beta"
                ),
            ]),
            |a| a["nginx.ingress.kubernetes.io/canary-weight"] = json!("0"),
        ))
    );
}

#[test]
fn route_dropped_from_managed_routes_is_removed() {
    let d = with_routes(
        10,
        vec![active("h1", vec![header("X-Canary", exact("on"))])],
    );
    let (_, set) = plan_apply(&router(), &d, &objects([stable_ingress()]));
    let after = canary_after(&router(), &desired(10), &set);
    assert_eq!(after, canary_ingress(weight_annotations(10)));
}

#[test]
fn hold_removes_absent_routes_but_adds_nothing() {
    let on = vec![header("X-Canary", exact("on"))];
    let (_, set) = plan_apply(&router(), &desired(10), &objects([stable_ingress()]));
    // Active but not present under a hold: not added.
    assert_eq!(
        router().plan(&held(with_routes(10, vec![active("h1", on.clone())])), &set),
        Ok(Vec::new())
    );
    // Present: an Active under a hold keeps it as programmed, even with another config.
    let (_, set) = plan_apply(&router(), &with_routes(10, vec![active("h1", on)]), &set);
    let other = vec![header("X-Canary", exact("off"))];
    assert_eq!(
        router().plan(&held(with_routes(10, vec![active("h1", other)])), &set),
        Ok(Vec::new())
    );
    // Absent under a hold: removed, weight untouched.
    let after = canary_after(
        &router(),
        &held(with_routes(50, vec![route("h1", RouteState::Absent)])),
        &set,
    );
    assert_eq!(after, canary_ingress(weight_annotations(10)));
}

#[test]
fn observe_lists_the_programmed_header_route() {
    let d = with_routes(
        10,
        vec![active("h1", vec![header("X-Canary", exact("on"))])],
    );
    let (_, set) = plan_apply(&router(), &d, &objects([stable_ingress()]));
    let observed = router().observe(&d, &set).unwrap();
    assert_eq!(observed.len(), 1);
    assert_eq!(observed[0].managed_routes, ["h1"]);
    assert_eq!(
        (observed[0].canary.weight, observed[0].stable.weight),
        (10, 90)
    );
}
