//! Spec 30 §2 (the weighted action), §3 (ping-pong), §8 (errors) and spec 40 #50–#53, #57.

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_alb::AlbRouter;
use rollout_router_core::{
    Change, Hold, HoldReason, PingPongServices, Router, RouterError, json_patch,
};
use serde_json::{Value, json};

fn root_objects() -> rollout_router_core::ObjectSet {
    objects([simple_ingress("shop", "shop-root")])
}

/// The action written for `desired` with the root router on a fresh Ingress.
fn written_action(router: &AlbRouter, desired: &rollout_router_core::DesiredTraffic) -> String {
    let mut set = objects([simple_ingress("shop", "shop-root")]);
    plan_apply(router, desired, &mut set);
    annotations(&set, "shop")[ACTION]
        .as_str()
        .unwrap_or("<no action annotation>")
        .to_owned()
}

// §2.1 + §2.2 + §2.4: first SetWeight on an Ingress: the exact patch (add the action and the
// bookkeeping, nothing else).
#[test]
fn first_set_weight_adds_action_and_bookkeeping() {
    let router = root_router();
    let mut set = root_objects();
    let changes = plan_apply(&router, &desired(10), &mut set);
    assert_eq!(
        patches(&changes),
        json!([{"op": "patch", "key": {"group": "networking.k8s.io", "kind": "Ingress", "namespace": "shop", "name": "shop"},
        "patch": [
            {"op": "add", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1actions.shop-root",
             "value": r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":10},{"ServiceName":"shop-stable","ServicePort":"80","Weight":90}]}}"#},
            {"op": "add", "path": "/metadata/annotations/rollouts.argoproj.io~1managed-alb-annotations",
             "value": r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root"]}"#}
        ]}])
    );
    let mut expected = simple_ingress("shop", "shop-root");
    expected["metadata"]["annotations"][ACTION] =
        json!(action(&[("shop-canary", 10), ("shop-stable", 90)]));
    expected["metadata"]["annotations"][BOOK] =
        json!(r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root"]}"#);
    assert_eq!(set.get(&key("shop")).unwrap(), &expected);
}

// §2.4: a weight change replaces the action, guarded by its previous value.
#[test]
fn weight_change_is_guarded_by_previous_value() {
    let router = root_router();
    let mut set = root_objects();
    plan_apply(&router, &desired(10), &mut set);
    let changes = plan_apply(&router, &desired(50), &mut set);
    let ptr = "/metadata/annotations/alb.ingress.kubernetes.io~1actions.shop-root";
    assert_eq!(
        serde_json::to_value(&changes[0]).unwrap()["patch"],
        json!([
            {"op": "test", "path": ptr, "value": action(&[("shop-canary", 10), ("shop-stable", 90)])},
            {"op": "replace", "path": ptr, "value": action(&[("shop-canary", 50), ("shop-stable", 50)])}
        ])
    );
    // A concurrent edit of the action makes the patch fail instead of being overwritten.
    let mut edited = set.clone();
    let mut obj = edited.get(&key("shop")).unwrap().clone();
    obj["metadata"]["annotations"][ACTION] = json!("edited");
    edited.insert(obj);
    let stale = router.plan(&desired(70), &set).unwrap();
    assert!(edited.apply_all(&stale).is_err());
}

// §2.2 table: byte-exact action values.
#[test]
fn action_values_byte_for_byte() {
    let with_exp = {
        let mut d = desired(20);
        d.additional = vec![dest(10, "ro-exp-svc")];
        d.stable.weight = 70;
        d
    };
    let empty_exp_name = {
        let mut d = desired(20);
        d.additional = vec![dest(10, "")];
        d.stable.weight = 70;
        d
    };
    let port443 = AlbRouter::new(config(
        json!({"ingress": "shop", "servicePort": 443, "rootService": "shop-root"}),
    ));
    let sticky = AlbRouter::new(config(
        json!({"ingress": "shop", "servicePort": 80, "rootService": "shop-root",
        "stickinessConfig": {"enabled": true, "durationSeconds": 3600}}),
    ));
    let not_sticky = AlbRouter::new(config(
        json!({"ingress": "shop", "servicePort": 80, "rootService": "shop-root",
        "stickinessConfig": {"enabled": false, "durationSeconds": 0}}),
    ));
    let cases: Vec<(&str, AlbRouter, rollout_router_core::DesiredTraffic, &str)> = vec![
        (
            "canary first, stable last, port as string",
            port443.clone(),
            desired(10),
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"443","Weight":10},{"ServiceName":"shop-stable","ServicePort":"443","Weight":90}]}}"#,
        ),
        (
            "#50 zero canary weight is written",
            root_router(),
            desired(0),
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":0},{"ServiceName":"shop-stable","ServicePort":"80","Weight":100}]}}"#,
        ),
        (
            "#50 zero stable weight is written",
            root_router(),
            desired(100),
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":100},{"ServiceName":"shop-stable","ServicePort":"80","Weight":0}]}}"#,
        ),
        (
            "experiment destination between canary and stable",
            root_router(),
            with_exp,
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":20},{"ServiceName":"ro-exp-svc","ServicePort":"80","Weight":10},{"ServiceName":"shop-stable","ServicePort":"80","Weight":70}]}}"#,
        ),
        (
            "#4890 empty service name omitted",
            root_router(),
            empty_exp_name,
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":20},{"ServicePort":"80","Weight":10},{"ServiceName":"shop-stable","ServicePort":"80","Weight":70}]}}"#,
        ),
        (
            "#53 stickiness appended after TargetGroups",
            sticky,
            desired(10),
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":10},{"ServiceName":"shop-stable","ServicePort":"80","Weight":90}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":3600}}}"#,
        ),
        (
            "#53 disabled stickiness is not written",
            not_sticky,
            desired(10),
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-canary","ServicePort":"80","Weight":10},{"ServiceName":"shop-stable","ServicePort":"80","Weight":90}]}}"#,
        ),
    ];
    for (name, router, desired, expected) in cases {
        let got = written_action(&router, &desired);
        assert_eq!(got, expected, "{name}");
        // Structurally the same JSON too (guards against a typo in the expectation).
        let _: Value = serde_json::from_str(&got).unwrap();
    }
}

// §2.1: without rootService the action is named after the stable Service; annotationPrefix.
#[test]
fn action_key_follows_stable_service_and_prefix() {
    let router = AlbRouter::new(config(json!({"ingress": "shop", "servicePort": 80})));
    let mut set = objects([simple_ingress("shop", "shop-stable")]);
    plan_apply(&router, &desired(30), &mut set);
    assert_eq!(
        annotations(&set, "shop")[STABLE_ACTION],
        json!(action(&[("shop-canary", 30), ("shop-stable", 70)]))
    );

    let custom = AlbRouter::new(config(json!({"ingress": "shop", "servicePort": 80,
        "rootService": "shop-root", "annotationPrefix": "custom.aws.io"})));
    let mut set = root_objects();
    plan_apply(&custom, &desired(30), &mut set);
    let a = annotations(&set, "shop");
    assert_eq!(
        a["custom.aws.io/actions.shop-root"],
        json!(action(&[("shop-canary", 30), ("shop-stable", 70)]))
    );
    assert_eq!(a[ACTION], Value::Null);
    // The bookkeeping key is fixed, whatever the prefix.
    assert_eq!(
        a[BOOK],
        json!(r#"{"shop":["custom.aws.io/actions.shop-root"]}"#)
    );
}

// §2.4 step 4 / spec 40 #51: every Ingress is brought up to date, also after an unchanged one.
#[test]
fn every_ingress_is_processed() {
    let router = AlbRouter::new(config(json!({"ingresses": ["internal", "external"],
        "servicePort": 80, "rootService": "shop-root"})));
    let mut set = objects([
        simple_ingress("internal", "shop-root"),
        simple_ingress("external", "shop-root"),
    ]);
    let changes = plan_apply(&router, &desired(10), &mut set);
    assert_eq!(
        changes
            .iter()
            .map(|c| c.key().name.as_str())
            .collect::<Vec<_>>(),
        ["internal", "external"]
    );
    // `internal` is already right; `external` was reset by someone: only it is patched.
    let mut ext = set.get(&key("external")).unwrap().clone();
    ext["metadata"]["annotations"][ACTION] =
        json!(action(&[("shop-canary", 0), ("shop-stable", 100)]));
    set.insert(ext);
    let changes = plan_apply(&router, &desired(10), &mut set);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].key(), &key("external"));
    for name in ["internal", "external"] {
        assert_eq!(
            annotations(&set, name)[ACTION],
            json!(action(&[("shop-canary", 10), ("shop-stable", 90)]))
        );
    }
}

// §2.4: the steady state (weight 0) is written and then stable: no change on the next pass.
#[test]
fn steady_state_is_a_no_op() {
    let router = root_router();
    let mut set = root_objects();
    assert_eq!(plan_apply(&router, &desired(0), &mut set).len(), 1);
    assert_eq!(router.plan(&desired(0), &set).unwrap(), vec![]);
}

// An action that means the same but is formatted differently is rewritten to the canonical
// bytes (LBC and GitOps diffs compare strings).
#[test]
fn non_canonical_action_is_rewritten() {
    let router = root_router();
    let mut set = objects([ingress(
        "shop",
        json!({ACTION: r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"shop-canary","servicePort":80,"weight":10},{"serviceName":"shop-stable","servicePort":80,"weight":90}]}}"#}),
        json!([{"http": {"paths": [path("/", "shop-root")]}}]),
    )]);
    assert_eq!(plan_apply(&router, &desired(10), &mut set).len(), 1);
    assert_eq!(
        annotations(&set, "shop")[ACTION],
        json!(action(&[("shop-canary", 10), ("shop-stable", 90)]))
    );
}

// §3 / spec 40 #57: ALB programs the ping/pong pair whenever pingPong is set, even when
// canary/stable Service names are present; roles swap at promotion without moving traffic.
#[test]
fn ping_pong_pair_and_role_swap() {
    let router = root_router();
    let mut set = root_objects();
    let mut d = desired(100);
    d.ping_pong = Some(PingPongServices {
        canary_service: "shop-pong".into(),
        stable_service: "shop-ping".into(),
    });
    plan_apply(&router, &d, &mut set);
    assert_eq!(
        annotations(&set, "shop")[ACTION],
        json!(
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-pong","ServicePort":"80","Weight":100},{"ServiceName":"shop-ping","ServicePort":"80","Weight":0}]}}"#
        )
    );
    // Promotion: pong becomes stable with 100 %, weight 0 to the new canary ping.
    let mut promoted = desired(0);
    promoted.ping_pong = Some(PingPongServices {
        canary_service: "shop-ping".into(),
        stable_service: "shop-pong".into(),
    });
    plan_apply(&router, &promoted, &mut set);
    assert_eq!(
        annotations(&set, "shop")[ACTION],
        json!(
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-ping","ServicePort":"80","Weight":0},{"ServiceName":"shop-pong","ServicePort":"80","Weight":100}]}}"#
        )
    );
}

// §3: rootService is mandatory with pingPong.
#[test]
fn ping_pong_requires_root_service() {
    let router = AlbRouter::new(config(json!({"ingress": "shop", "servicePort": 80})));
    let mut d = desired(10);
    d.ping_pong = Some(PingPongServices {
        canary_service: "shop-pong".into(),
        stable_service: "shop-ping".into(),
    });
    let err = router
        .plan(&d, &objects([simple_ingress("shop", "shop-ping")]))
        .unwrap_err();
    assert!(
        matches!(&err, RouterError::InvalidConfig { field, .. } if field == "alb.rootService"),
        "{err}"
    );
}

// Hold: weights stay as programmed.
#[test]
fn hold_keeps_weights() {
    let router = root_router();
    let mut set = root_objects();
    plan_apply(&router, &desired(20), &mut set);
    let mut held = desired(50);
    held.hold = Some(Hold {
        reason: HoldReason::StableCapacity,
        message: "stable cannot take 50".into(),
    });
    assert_eq!(router.plan(&held, &set).unwrap(), vec![]);
    // And on a never-programmed Ingress nothing is written either.
    assert_eq!(router.plan(&held, &root_objects()).unwrap(), vec![]);
}

// §8 + spec 40 #52, #53: errors, each naming the object/field, with no changes.
#[test]
fn errors_name_object_and_field() {
    let sticky = |d: i64| {
        AlbRouter::new(config(
            json!({"ingress": "shop", "servicePort": 80, "rootService": "shop-root",
            "stickinessConfig": {"enabled": true, "durationSeconds": d}}),
        ))
    };
    let overweight = {
        let mut d = desired(80);
        d.additional = vec![dest(30, "exp")];
        d
    };
    let max1000 = {
        let mut d = desired(10);
        d.total = 1000;
        d
    };
    let no_rule = ingress(
        "shop",
        json!({}),
        json!([{"http": {"paths": [path("/", "other")]}}]),
    );
    let numeric_port = ingress(
        "shop",
        json!({}),
        json!([{"host": "a"}, {"http": {"paths": [path("/x", "other"),
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop-root", "port": {"number": 80}}}}]}}]),
    );
    let bad_book = ingress(
        "shop",
        json!({BOOK: "{not json"}),
        json!([{"http": {"paths": [path("/", "shop-root")]}}]),
    );
    let cases: Vec<(&str, AlbRouter, rollout_router_core::DesiredTraffic, Value, String)> = vec![
        ("missing ingress", root_router(), desired(10), simple_ingress("other", "shop-root"),
         "Ingress shop/shop not found".into()),
        ("no rule with the action service", root_router(), desired(10), no_rule,
         "Ingress shop/shop: spec.rules: ingress `shop` has no rules using service shop-root backend: add a path whose backend is Service `shop-root` with port name `use-annotation`".into()),
        ("backend without use-annotation", root_router(), desired(10), numeric_port,
         "Ingress shop/shop: spec.rules[1].http.paths[1].backend.service.port: the backend for Service `shop-root` must use the port name `use-annotation` so that the AWS Load Balancer Controller forwards through the action annotation".into()),
        ("#53 duration 0", sticky(0), desired(10), simple_ingress("shop", "shop-root"),
         "alb.stickinessConfig.durationSeconds: TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!".into()),
        ("#53 duration above 7 days", sticky(604_801), desired(10), simple_ingress("shop", "shop-root"),
         "alb.stickinessConfig.durationSeconds: TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!".into()),
        ("#52 weights above 100 are refused, not written negative", root_router(), overweight, simple_ingress("shop", "shop-root"),
         "weights: canary 80 + experiment destinations 30 must be within 0..=100 (stable would get -10)".into()),
        ("maxTrafficWeight", root_router(), max1000, simple_ingress("shop", "shop-root"),
         "trafficRouting.maxTrafficWeight: ALB weights are percentages: maxTrafficWeight must be 100 (or unset), got 1000".into()),
        ("bookkeeping unparsable", root_router(), desired(10), bad_book,
         "Ingress shop/shop: metadata.annotations[rollouts.argoproj.io/managed-alb-annotations]: not a JSON object of Rollout name to key list: key must be a string at line 1 column 2".into()),
    ];
    for (name, router, desired, object, message) in cases {
        let err = router.plan(&desired, &objects([object])).unwrap_err();
        assert_eq!(err.to_string(), message, "{name}");
    }
    // The stickiness bounds themselves are accepted.
    for d in [1, 604_800] {
        assert!(sticky(d).plan(&desired(10), &root_objects()).is_ok());
    }
}

// §2.3: rules without http and paths with a `resource` backend are skipped (Argo panics on the
// latter); v1beta1 backends are understood.
#[test]
fn backend_check_skips_resource_backends_and_reads_v1beta1() {
    let router = root_router();
    let mut set = objects([ingress(
        "shop",
        json!({}),
        json!([{"host": "no-http.example.com"},
               {"http": {"paths": [{"path": "/static", "pathType": "Prefix", "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "static"}}},
                                   path("/", "shop-root")]}}]),
    )]);
    assert_eq!(plan_apply(&router, &desired(10), &mut set).len(), 1);

    let mut beta = ingress(
        "shop",
        json!({}),
        json!([{"http": {"paths": [
        {"path": "/", "backend": {"serviceName": "shop-root", "servicePort": "use-annotation"}}]}}]),
    );
    beta["apiVersion"] = json!("networking.k8s.io/v1beta1");
    let mut set = objects([beta]);
    assert_eq!(plan_apply(&router, &desired(10), &mut set).len(), 1);
}

// An Ingress without any annotation map gets one, guarded by its resourceVersion.
#[test]
fn creates_annotation_map_guarded_by_resource_version() {
    let router = root_router();
    let mut obj = simple_ingress("shop", "shop-root");
    obj["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    obj["metadata"]["resourceVersion"] = json!("42");
    let set = objects([obj]);
    let changes = router.plan(&desired(10), &set).unwrap();
    let Change::Patch { patch, .. } = &changes[0] else {
        panic!("expected a patch")
    };
    assert_eq!(
        serde_json::to_value(patch).unwrap(),
        json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
            {"op": "add", "path": "/metadata/annotations", "value": {
                ACTION: action(&[("shop-canary", 10), ("shop-stable", 90)]),
                BOOK: r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root"]}"#}}
        ])
    );
    let _: &json_patch::Patch = patch;
}

// object_keys: every configured Ingress, in the Rollout's namespace, once.
#[test]
fn object_keys_are_the_ingresses() {
    let router = AlbRouter::new(config(
        json!({"ingresses": ["a", "b", "a"], "servicePort": 80}),
    ));
    assert_eq!(
        router.object_keys(&desired(0).rollout),
        vec![key("a"), key("b")]
    );
    assert_eq!(router.name(), "alb");
}
