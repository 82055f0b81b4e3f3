//! Spec 20 §2–§3 and spec 40 #44, #45, #49: the canary Ingress created from the stable Ingress,
//! asserted as whole objects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code (helpers included): a panic is the failure report, as clippy.toml allows in tests"
)]

mod common;

use std::collections::BTreeMap;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{Change, NginxConfig, Router, RouterError};
use rollout_router_nginx::{NginxRouter, canary_ingress_name};
use serde_json::{Value, json};

/// The one change planned for a fresh canary Ingress, unwrapped.
fn created(router: &NginxRouter, stable: Value, weight: i32) -> Value {
    let (changes, _) = plan_apply(router, &desired(weight), &objects([stable]));
    match changes.as_slice() {
        [Change::Create { key, object }] => {
            assert_eq!(*key, canary_key());
            object.clone()
        }
        other => panic!("expected one create, got {other:?}"),
    }
}

fn stable_with_rules(rules: Value) -> Value {
    with(stable_ingress(), |s| s["spec"]["rules"] = rules)
}

fn path(p: &str, service: &str, port: Value) -> Value {
    json!({"path": p, "pathType": "Prefix", "backend": {"service": {"name": service, "port": port}}})
}

#[test]
fn s2_name_is_rollout_dash_stable_dash_canary() {
    assert_eq!(
        canary_ingress_name("shop", "shop-public"),
        "shop-shop-public-canary"
    );
}

#[test]
fn s2_name_is_cut_to_246_characters_before_the_suffix() {
    let rollout = "r".repeat(200);
    let stable = "s".repeat(100);
    let name = canary_ingress_name(&rollout, &stable);
    let expected = format!("{rollout}-{}-canary", "s".repeat(45));
    assert_eq!(name, expected);
    assert_eq!(name.len(), 253);
    // Short enough names are not cut.
    assert_eq!(canary_ingress_name("a", &"b".repeat(244)).len(), 246 + 7);
}

#[test]
fn s3_spec_example_weight_20() {
    let object = created(&router(), stable_ingress(), 20);
    assert_eq!(object, canary_ingress(weight_annotations(20)));
}

#[test]
fn s3_first_reconcile_creates_with_weight_0() {
    let object = created(&router(), stable_ingress(), 0);
    assert_eq!(object, canary_ingress(weight_annotations(0)));
}

#[test]
fn s3_class_and_tls_only_when_on_the_stable_ingress_and_no_default_backend() {
    // spec 40 #45: ingressClassName, TLS and the class annotation are copied when present;
    // defaultBackend never is, and no other stable annotation is.
    let stable = with(stable_ingress(), |s| {
        let spec = s["spec"].as_object_mut().unwrap();
        spec.remove("ingressClassName");
        spec.remove("tls");
        spec.insert(
            "defaultBackend".into(),
            json!({"service": {"name": "shop-stable", "port": {"number": 80}}}),
        );
        s["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("kubernetes.io/ingress.class");
    });
    let object = created(&router(), stable, 10);
    assert_eq!(
        object,
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": CANARY_NAME,
                "namespace": NS,
                "labels": {"app.kubernetes.io/managed-by": "rollout-router"},
                "annotations": {
                    "nginx.ingress.kubernetes.io/canary": "true",
                    "nginx.ingress.kubernetes.io/canary-weight": "10",
                    "rollout-router.io/managed-annotations":
                        "nginx.ingress.kubernetes.io/canary,nginx.ingress.kubernetes.io/canary-weight",
                },
                "ownerReferences": owner_references(),
            },
            "spec": {"rules": canary_rules()},
        })
    );
}

#[test]
fn s3_1_port_stays_as_written_number_or_name() {
    let stable = stable_with_rules(json!([{
        "host": "shop.example.com",
        "http": {"paths": [
            path("/", "shop-stable", json!({"number": 8080})),
            path("/api", "shop-stable", json!({"name": "http"})),
        ]},
    }]));
    let object = created(&router(), stable, 5);
    assert_eq!(
        object["spec"]["rules"],
        json!([{
            "host": "shop.example.com",
            "http": {"paths": [
                path("/", "shop-canary", json!({"number": 8080})),
                path("/api", "shop-canary", json!({"name": "http"})),
            ]},
        }])
    );
}

#[test]
fn s3_1_rules_in_order_and_rules_without_the_stable_service_dropped() {
    let stable = stable_with_rules(json!([
        {"host": "a.example.com", "http": {"paths": [path("/", "shop-stable", json!({"number": 80}))]}},
        {"host": "admin.example.com", "http": {"paths": [path("/", "admin", json!({"number": 80}))]}},
        {"host": "b.example.com", "http": {"paths": [path("/", "shop-stable", json!({"number": 80}))]}},
    ]));
    let object = created(&router(), stable, 5);
    assert_eq!(
        object["spec"]["rules"],
        json!([
            {"host": "a.example.com", "http": {"paths": [path("/", "shop-canary", json!({"number": 80}))]}},
            {"host": "b.example.com", "http": {"paths": [path("/", "shop-canary", json!({"number": 80}))]}},
        ])
    );
}

#[test]
fn s3_1_other_paths_of_a_kept_rule_are_not_copied_argo_3541_fixed() {
    // spec 40 #44: Argo copies /static (pointing at `assets`) into the canary Ingress too.
    let stable = stable_with_rules(json!([{
        "host": "shop.example.com",
        "http": {"paths": [
            path("/static", "assets", json!({"number": 80})),
            path("/", "shop-stable", json!({"number": 80})),
        ]},
    }]));
    let object = created(&router(), stable, 5);
    assert_eq!(object["spec"]["rules"], canary_rules());
}

#[test]
fn s3_1_rules_without_http_and_resource_backends_are_skipped() {
    let stable = stable_with_rules(json!([
        {"host": "bare.example.com"},
        {"host": "shop.example.com", "http": {"paths": [
            {"path": "/blob", "pathType": "Prefix",
             "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}}},
            path("/", "shop-stable", json!({"number": 80})),
        ]}},
    ]));
    let object = created(&router(), stable, 5);
    assert_eq!(object["spec"]["rules"], canary_rules());
}

#[test]
fn s3_1_unknown_rule_and_path_fields_are_copied() {
    let stable = stable_with_rules(json!([{
        "host": "shop.example.com",
        "x-future": {"a": 1},
        "http": {"paths": [{"path": "/", "pathType": "Exact", "x-path": true,
            "backend": {"service": {"name": "shop-stable", "port": {"number": 80}}}}]},
    }]));
    let object = created(&router(), stable, 5);
    assert_eq!(
        object["spec"]["rules"],
        json!([{
            "host": "shop.example.com",
            "x-future": {"a": 1},
            "http": {"paths": [{"path": "/", "pathType": "Exact", "x-path": true,
                "backend": {"service": {"name": "shop-canary", "port": {"number": 80}}}}]},
        }])
    );
}

#[test]
fn s3_1_no_rule_with_the_stable_service_is_an_error_naming_ingress_and_field() {
    let stable = stable_with_rules(json!([
        {"host": "shop.example.com", "http": {"paths": [path("/", "other", json!({"number": 80}))]}},
    ]));
    let err = router().plan(&desired(5), &objects([stable])).unwrap_err();
    assert_eq!(
        err,
        RouterError::InvalidObject {
            key: key("shop-public"),
            field: "spec.rules".into(),
            message: "no rule has a path whose backend is service `shop-stable` (the \
                      stableService); the canary Ingress would route nothing"
                .into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "Ingress shop/shop-public: spec.rules: no rule has a path whose backend is service \
         `shop-stable` (the stableService); the canary Ingress would route nothing"
    );
}

#[test]
fn s3_1_no_rules_at_all_is_the_same_error() {
    let stable = with(stable_ingress(), |s| {
        s["spec"].as_object_mut().unwrap().remove("rules");
    });
    let err = router().plan(&desired(5), &objects([stable])).unwrap_err();
    assert!(matches!(err, RouterError::InvalidObject { ref field, .. } if field == "spec.rules"));
}

fn annotations_with(config: NginxConfig, total: i32) -> Value {
    let (_, after) = plan_apply(
        &NginxRouter::new(config),
        &desired_total(20, total),
        &objects([stable_ingress()]),
    );
    after.get(&canary_key()).unwrap()["metadata"]["annotations"].clone()
}

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn s3_2_annotations_in_override_order() {
    let config = NginxConfig {
        additional_ingress_annotations: map(&[
            ("canary-by-cookie", "beta"),
            ("nginx.ingress.kubernetes.io/load-balance", "ewma"),
            // Cannot override the weight annotations.
            ("canary", "false"),
            ("canary-weight", "99"),
        ]),
        canary_ingress_annotations: map(&[
            ("example.com/owner", "team-a"),
            // Verbatim keys override prefixed ones (step 3 after step 2).
            ("nginx.ingress.kubernetes.io/canary-by-cookie", "preview"),
        ]),
        ..config()
    };
    let annotations = annotations_with(config, 100);
    assert_eq!(
        annotations,
        json!({
            "kubernetes.io/ingress.class": "nginx",
            "nginx.ingress.kubernetes.io/canary-by-cookie": "preview",
            "nginx.ingress.kubernetes.io/load-balance": "ewma",
            "example.com/owner": "team-a",
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": "20",
            "rollout-router.io/managed-annotations": "example.com/owner,kubernetes.io/ingress.class,\
        nginx.ingress.kubernetes.io/canary,nginx.ingress.kubernetes.io/canary-by-cookie,\
        nginx.ingress.kubernetes.io/canary-weight,nginx.ingress.kubernetes.io/load-balance",
        })
    );
    // The object's key order follows the override order too (what `plan` prints).
    let keys: Vec<&str> = annotations
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "kubernetes.io/ingress.class",
            "nginx.ingress.kubernetes.io/canary-by-cookie",
            "nginx.ingress.kubernetes.io/load-balance",
            "example.com/owner",
            "nginx.ingress.kubernetes.io/canary",
            "nginx.ingress.kubernetes.io/canary-weight",
            "rollout-router.io/managed-annotations",
        ]
    );
}

#[test]
fn s3_2_custom_prefix() {
    let config = NginxConfig {
        annotation_prefix: Some("custom.nginx.org".into()),
        additional_ingress_annotations: map(&[("canary-by-cookie", "beta")]),
        ..config()
    };
    assert_eq!(
        annotations_with(config, 100),
        json!({
            "kubernetes.io/ingress.class": "nginx",
            "custom.nginx.org/canary-by-cookie": "beta",
            "custom.nginx.org/canary": "true",
            "custom.nginx.org/canary-weight": "20",
            "rollout-router.io/managed-annotations": "custom.nginx.org/canary,\
        custom.nginx.org/canary-by-cookie,custom.nginx.org/canary-weight,kubernetes.io/ingress.class",
        })
    );
}

#[test]
fn s3_2_weight_total_only_with_max_traffic_weight_and_weight_unscaled() {
    // spec 40 #49: setWeight 5 with maxTrafficWeight 1000 is 0.5 %.
    let (_, after) = plan_apply(
        &router(),
        &desired_total(5, 1000),
        &objects([stable_ingress()]),
    );
    assert_eq!(
        after.get(&canary_key()).unwrap()["metadata"]["annotations"],
        json!({
            "kubernetes.io/ingress.class": "nginx",
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": "5",
            "nginx.ingress.kubernetes.io/canary-weight-total": "1000",
            "rollout-router.io/managed-annotations": "kubernetes.io/ingress.class,\
        nginx.ingress.kubernetes.io/canary,nginx.ingress.kubernetes.io/canary-weight,\
        nginx.ingress.kubernetes.io/canary-weight-total",
        })
    );
}

#[test]
fn s3_2_configured_weight_total_does_not_pass_through_argo_quirk_fixed() {
    // Argo writes a configured canary-weight-total when maxTrafficWeight is unset, silently
    // turning setWeight 20 into 2 %.
    let config = NginxConfig {
        additional_ingress_annotations: map(&[("canary-weight-total", "1000")]),
        canary_ingress_annotations: map(&[(
            "nginx.ingress.kubernetes.io/canary-weight-total",
            "1000",
        )]),
        ..config()
    };
    assert_eq!(annotations_with(config, 100), weight_annotations(20));
}

#[test]
fn s3_2_colliding_additional_annotations_are_rejected() {
    let config = NginxConfig {
        additional_ingress_annotations: map(&[
            ("canary-by-cookie", "a"),
            ("nginx.ingress.kubernetes.io/canary-by-cookie", "b"),
        ]),
        ..config()
    };
    let err = NginxRouter::new(config)
        .plan(&desired(5), &objects([stable_ingress()]))
        .unwrap_err();
    assert_eq!(
        err,
        RouterError::InvalidConfig {
            field: "nginx.additionalIngressAnnotations".into(),
            message: "keys `canary-by-cookie` and `nginx.ingress.kubernetes.io/canary-by-cookie` \
                      both set annotation `nginx.ingress.kubernetes.io/canary-by-cookie`; keep one \
                      of them"
                .into(),
        }
    );
}

#[test]
fn s5_only_networking_v1_stable_ingresses() {
    // spec 40 #46: one API flavour; a v1beta1 object under the same group is refused.
    let stable = with(stable_ingress(), |s| {
        s["apiVersion"] = json!("networking.k8s.io/v1beta1")
    });
    let err = router().plan(&desired(5), &objects([stable])).unwrap_err();
    assert_eq!(
        err,
        RouterError::InvalidObject {
            key: key("shop-public"),
            field: "apiVersion".into(),
            message: "is networking.k8s.io/v1beta1; the nginx router supports \
                      networking.k8s.io/v1 Ingresses only"
                .into(),
        }
    );
}
