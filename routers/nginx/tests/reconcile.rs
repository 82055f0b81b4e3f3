//! Spec 20 §4, §6, §7, §8 and spec 40 #42, #43, #47: updating, owning, deleting and reading the
//! canary Ingress, asserting exact patches and objects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code (helpers included): a panic is the failure report, as clippy.toml allows in tests"
)]

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{
    Change, NginxConfig, ObjectSet, ObservedWeights, Router, RouterError, WeightDestination,
};
use rollout_router_nginx::NginxRouter;
use serde_json::{Value, json};

/// The canary Ingress as the API server returns it after creation: with a UID.
fn existing_canary(weight: i32) -> Value {
    with(canary_ingress(weight_annotations(weight)), |c| {
        c["metadata"]["uid"] = json!("canary-uid");
    })
}

fn state(weight: i32) -> ObjectSet {
    objects([stable_ingress(), existing_canary(weight)])
}

fn patch_of(changes: &[Change]) -> Value {
    match changes {
        [Change::Patch { key, patch }] => {
            assert_eq!(*key, canary_key());
            serde_json::to_value(patch).unwrap()
        }
        other => panic!("expected one patch, got {other:?}"),
    }
}

#[test]
fn s4_weight_change_is_one_guarded_replace() {
    let (changes, after) = plan_apply(&router(), &desired(50), &state(20));
    assert_eq!(
        patch_of(&changes),
        json!([
            {"op": "test", "path": "/metadata/uid", "value": "canary-uid"},
            {"op": "test", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight", "value": "20"},
            {"op": "replace", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight", "value": "50"},
        ])
    );
    assert_eq!(after.get(&canary_key()), Some(&existing_canary(50)));
}

#[test]
fn s4_nothing_to_do_is_no_change() {
    assert_eq!(router().plan(&desired(20), &state(20)).unwrap(), Vec::new());
}

#[test]
fn s4_missing_stable_ingress_is_not_found_and_no_change() {
    let err = router()
        .plan(&desired(20), &objects([existing_canary(20)]))
        .unwrap_err();
    assert_eq!(
        err,
        RouterError::NotFound {
            key: key("shop-public")
        }
    );
    assert_eq!(err.to_string(), "Ingress shop/shop-public not found");
}

#[test]
fn s4_foreign_canary_ingress_is_never_adopted_spec40_47() {
    let cases = [
        (
            with(existing_canary(20), |c| {
                c["metadata"]["ownerReferences"][0]["uid"] = json!("other-uid");
            }),
            "it is controlled by Rollout `shop` (uid `other-uid`), not by Rollout `shop` (uid \
             `1b0d7e4c-5a39-4c1e-9d8b-0f2b7c0c1a11`); rename or delete it",
        ),
        (
            with(existing_canary(20), |c| {
                c["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ownerReferences");
            }),
            "it has no controller ownerReference to Rollout `shop`; rename or delete it",
        ),
        (
            with(existing_canary(20), |c| {
                c["metadata"]["ownerReferences"][0]["controller"] = json!(false);
            }),
            "it has no controller ownerReference to Rollout `shop`; rename or delete it",
        ),
        (
            with(existing_canary(20), |c| {
                c["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
            }),
            "label app.kubernetes.io/managed-by says it is managed by `Helm`",
        ),
    ];
    for (canary, message) in cases {
        let set = objects([stable_ingress(), canary]);
        let expected = RouterError::NotOwned {
            key: canary_key(),
            message: message.into(),
        };
        assert_eq!(router().plan(&desired(50), &set), Err(expected.clone()));
        assert_eq!(router().observe(&desired(50), &set), Err(expected));
        // Release leaves it alone: it never was rollout-router's.
        assert_eq!(router().release(&snapshot(), &set), Ok(Vec::new()));
    }
}

#[test]
fn s4_argo_created_canary_of_the_same_rollout_is_taken_over() {
    // Migration from Argo's built-in nginx routing: same name, controlled by the same Rollout,
    // Argo's annotations and no rollout-router label.
    let argo = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": CANARY_NAME, "namespace": NS, "uid": "canary-uid",
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": "20",
            },
            "ownerReferences": owner_references(),
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": canary_rules(),
        },
    });
    let (changes, after) = plan_apply(&router(), &desired(20), &objects([stable_ingress(), argo]));
    assert_eq!(
        patch_of(&changes),
        json!([
            {"op": "test", "path": "/metadata/uid", "value": "canary-uid"},
            {"op": "add", "path": "/metadata/labels", "value": {"app.kubernetes.io/managed-by": "rollout-router"}},
            {"op": "add", "path": "/metadata/annotations/rollout-router.io~1managed-annotations",
             "value": "kubernetes.io/ingress.class,nginx.ingress.kubernetes.io/canary,nginx.ingress.kubernetes.io/canary-weight"},
        ])
    );
    assert_eq!(after.get(&canary_key()), Some(&existing_canary(20)));
}

#[test]
fn s4_unmanaged_labels_annotations_and_fields_survive() {
    // Argo strips labels and replaces the spec; rollout-router only touches what it manages.
    let touched = with(existing_canary(20), |c| {
        c["metadata"]["labels"]["team"] = json!("checkout");
        c["metadata"]["annotations"]["field.cattle.io/publicEndpoints"] = json!("[]");
        c["metadata"]["finalizers"] = json!(["example.com/audit"]);
        c["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.7"}]}});
    });
    let (changes, after) = plan_apply(
        &router(),
        &desired(30),
        &objects([stable_ingress(), touched.clone()]),
    );
    assert_eq!(
        patch_of(&changes),
        json!([
            {"op": "test", "path": "/metadata/uid", "value": "canary-uid"},
            {"op": "test", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight", "value": "20"},
            {"op": "replace", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight", "value": "30"},
        ])
    );
    let expected = with(touched, |c| {
        c["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] = json!("30");
    });
    assert_eq!(after.get(&canary_key()), Some(&expected));
}

#[test]
fn s4_stable_ingress_edits_are_followed_in_the_managed_spec_fields() {
    // A new host on the stable Ingress, TLS removed, a class change, and a defaultBackend someone
    // added to the canary Ingress.
    let stable = with(stable_ingress(), |s| {
        let spec = s["spec"].as_object_mut().unwrap();
        spec.remove("tls");
        spec.insert("ingressClassName".into(), json!("nginx-internal"));
        spec["rules"].as_array_mut().unwrap().push(json!({
            "host": "www.shop.example.com",
            "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "shop-stable", "port": {"number": 80}}}}]},
        }));
    });
    let canary = with(existing_canary(20), |c| {
        c["spec"]["defaultBackend"] = json!({"service": {"name": "oops", "port": {"number": 80}}});
    });
    let new_rules = json!([
        canary_rules()[0].clone(),
        {"host": "www.shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "shop-canary", "port": {"number": 80}}}}]}},
    ]);
    let (changes, after) = plan_apply(&router(), &desired(20), &objects([stable, canary]));
    assert_eq!(
        patch_of(&changes),
        json!([
            {"op": "test", "path": "/metadata/uid", "value": "canary-uid"},
            {"op": "test", "path": "/spec/ingressClassName", "value": "nginx"},
            {"op": "replace", "path": "/spec/ingressClassName", "value": "nginx-internal"},
            {"op": "test", "path": "/spec/tls", "value": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]},
            {"op": "remove", "path": "/spec/tls"},
            {"op": "test", "path": "/spec/rules", "value": canary_rules()},
            {"op": "replace", "path": "/spec/rules", "value": new_rules},
            {"op": "test", "path": "/spec/defaultBackend", "value": {"service": {"name": "oops", "port": {"number": 80}}}},
            {"op": "remove", "path": "/spec/defaultBackend"},
        ])
    );
    assert_eq!(
        after.get(&canary_key()).unwrap()["spec"],
        json!({"ingressClassName": "nginx-internal", "rules": new_rules})
    );
}

#[test]
fn s4_1_annotations_rollout_router_wrote_are_pruned_spec40_43_fixed() {
    // Written with a static header canary, a 1000 total and a custom prefix; then the
    // configuration drops all three. Argo would keep every old annotation.
    let before = NginxRouter::new(NginxConfig {
        annotation_prefix: Some("old.example.com".into()),
        additional_ingress_annotations: [("canary-by-cookie".to_owned(), "beta".to_owned())].into(),
        ..config()
    });
    let (_, mut set) = plan_apply(
        &before,
        &desired_total(200, 1000),
        &objects([stable_ingress()]),
    );
    // Someone else's annotation, which must survive.
    let mut other = set.get(&canary_key()).unwrap().clone();
    other["metadata"]["annotations"]["example.com/ticket"] = json!("OPS-1");
    set.insert(other);
    let after = canary_after(&router(), &desired(20), &set);
    assert_eq!(
        after["metadata"]["annotations"],
        json!({
            "kubernetes.io/ingress.class": "nginx",
            "example.com/ticket": "OPS-1",
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": "20",
            "rollout-router.io/managed-annotations": "kubernetes.io/ingress.class,\
        nginx.ingress.kubernetes.io/canary,nginx.ingress.kubernetes.io/canary-weight",
        })
    );
}

#[test]
fn s4_1_removing_max_traffic_weight_removes_the_total() {
    let (_, set) = plan_apply(
        &router(),
        &desired_total(5, 1000),
        &objects([stable_ingress()]),
    );
    let (changes, after) = plan_apply(&router(), &desired(5), &set);
    assert_eq!(
        patch_of(&changes)
            .as_array()
            .unwrap()
            .iter()
            .filter(|op| op["path"]
                == "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight-total")
            .cloned()
            .collect::<Vec<_>>(),
        [
            json!({"op": "test", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight-total", "value": "1000"}),
            json!({"op": "remove", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight-total"}),
        ]
    );
    assert_eq!(
        after.get(&canary_key()).unwrap()["metadata"]["annotations"],
        weight_annotations(5)
    );
}

#[test]
fn s4_hold_keeps_the_programmed_weight_and_does_not_create() {
    assert_eq!(
        router().plan(&held(desired(50)), &state(20)),
        Ok(Vec::new())
    );
    assert_eq!(
        router().plan(&held(desired(50)), &objects([stable_ingress()])),
        Ok(Vec::new())
    );
    // A weight annotation someone removed is not put back under a hold either (ingress-nginx
    // reads its absence as 0); only the bookkeeping follows.
    let stripped = with(existing_canary(20), |c| {
        c["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("nginx.ingress.kubernetes.io/canary-weight");
    });
    let (changes, _) = plan_apply(
        &router(),
        &held(desired(50)),
        &objects([stable_ingress(), stripped]),
    );
    assert_eq!(
        patch_of(&changes),
        json!([
            {"op": "test", "path": "/metadata/uid", "value": "canary-uid"},
            {"op": "test", "path": "/metadata/annotations/rollout-router.io~1managed-annotations",
             "value": "kubernetes.io/ingress.class,nginx.ingress.kubernetes.io/canary,nginx.ingress.kubernetes.io/canary-weight"},
            {"op": "replace", "path": "/metadata/annotations/rollout-router.io~1managed-annotations",
             "value": "kubernetes.io/ingress.class,nginx.ingress.kubernetes.io/canary"},
        ])
    );
}

#[test]
fn s4_several_stable_ingresses_in_order_and_first_error_stops_everything() {
    let config = NginxConfig {
        stable_ingress: None,
        stable_ingresses: vec![
            "shop-public".into(),
            "shop-internal".into(),
            "shop-public".into(),
        ],
        ..NginxConfig::default()
    };
    let internal = with(stable_ingress(), |s| {
        s["metadata"]["name"] = json!("shop-internal");
        s["spec"]["rules"][0]["host"] = json!("shop.internal");
    });
    let r = NginxRouter::new(config);
    let (changes, _) = plan_apply(
        &r,
        &desired(10),
        &objects([stable_ingress(), internal.clone()]),
    );
    let created: Vec<&str> = changes
        .iter()
        .map(|c| match c {
            Change::Create { key, .. } => key.name.as_str(),
            other => panic!("expected creates, got {other:?}"),
        })
        .collect();
    assert_eq!(
        created,
        ["shop-shop-public-canary", "shop-shop-internal-canary"]
    );
    // The second stable Ingress is missing: no change at all, not even the first create.
    assert_eq!(
        r.plan(&desired(10), &objects([stable_ingress()])),
        Err(RouterError::NotFound {
            key: key("shop-internal")
        })
    );
}

#[test]
fn s6_completion_keeps_the_canary_ingress_at_weight_0() {
    let (changes, after) = plan_apply(&router(), &desired(0), &state(100));
    assert_eq!(changes.len(), 1);
    assert_eq!(after.get(&canary_key()), Some(&existing_canary(0)));
}

#[test]
fn s6_deleted_canary_ingress_is_recreated() {
    let (changes, after) = plan_apply(&router(), &desired(40), &objects([stable_ingress()]));
    assert!(matches!(changes.as_slice(), [Change::Create { .. }]));
    assert_eq!(
        after.get(&canary_key()),
        Some(&canary_ingress(weight_annotations(40)))
    );
}

#[test]
fn s6_release_deletes_the_canary_ingress_with_its_uid_spec40_42_fixed() {
    // Argo leaves the canary Ingress behind when trafficRouting is removed (#4751).
    let changes = router().release(&snapshot(), &state(20)).unwrap();
    // The engine's settled state (case (a)) releases the same way.
    assert_eq!(
        router().release(&desired(0), &state(20)),
        Ok(changes.clone())
    );
    assert_eq!(
        changes,
        [Change::Delete {
            key: canary_key(),
            uid: Some("canary-uid".into())
        }]
    );
    let mut set = state(20);
    set.apply_all(&changes).unwrap();
    assert_eq!(set, objects([stable_ingress()]));
    // Nothing left to release.
    assert_eq!(router().release(&snapshot(), &set), Ok(Vec::new()));
}

#[test]
fn s6_canary_of_an_unconfigured_stable_ingress_is_deleted() {
    // stableIngresses shrank from [shop-public, shop-internal] to shop-public.
    let orphan = with(existing_canary(20), |c| {
        c["metadata"]["name"] = json!("shop-shop-internal-canary");
        c["metadata"]["uid"] = json!("orphan-uid");
    });
    // Look-alikes that are not this Rollout's: another Rollout's, and an unlabelled one.
    let other_rollout = with(existing_canary(20), |c| {
        c["metadata"]["name"] = json!("shop2-shop-public-canary");
        c["metadata"]["ownerReferences"][0]["name"] = json!("shop2");
    });
    let unlabelled = with(existing_canary(20), |c| {
        c["metadata"]["name"] = json!("shop-legacy-canary");
        c["metadata"].as_object_mut().unwrap().remove("labels");
    });
    let set = objects([
        stable_ingress(),
        existing_canary(20),
        orphan,
        other_rollout,
        unlabelled,
    ]);
    let delete = Change::Delete {
        key: key("shop-shop-internal-canary"),
        uid: Some("orphan-uid".into()),
    };
    assert_eq!(router().plan(&desired(20), &set), Ok(vec![delete.clone()]));
    assert_eq!(router().plan(&held(desired(20)), &set), Ok(Vec::new()));
    assert_eq!(
        router().release(&snapshot(), &set),
        Ok(vec![
            Change::Delete {
                key: canary_key(),
                uid: Some("canary-uid".into())
            },
            delete,
        ])
    );
}

#[test]
fn s7_services_must_be_set_and_differ() {
    let mut same = desired(10);
    same.canary.service_name = "shop-stable".into();
    assert_eq!(
        router().plan(&same, &objects([stable_ingress()])),
        Err(RouterError::InvalidConfig {
            field: "spec.strategy.canary.canaryService".into(),
            message: "must differ from stableService (both are `shop-stable`)".into(),
        })
    );
    let mut empty = desired(10);
    empty.canary.service_name.clear();
    assert!(matches!(
        router().plan(&empty, &objects([stable_ingress()])),
        Err(RouterError::InvalidConfig { .. })
    ));
}

#[test]
fn s8_object_keys_are_each_stable_ingress_then_its_canary() {
    let r = NginxRouter::new(NginxConfig {
        stable_ingress: None,
        stable_ingresses: vec!["app-int".into(), "app-ext".into()],
        ..NginxConfig::default()
    });
    assert_eq!(r.name(), "nginx");
    assert_eq!(
        r.object_keys(&rollout()),
        [
            key("app-int"),
            key("shop-app-int-canary"),
            key("app-ext"),
            key("shop-app-ext-canary")
        ]
    );
}

fn observed(weight: i32, stable: i32, routes: Vec<String>) -> ObservedWeights {
    ObservedWeights {
        object: canary_key(),
        location: String::new(),
        canary: WeightDestination {
            weight,
            service_name: "shop-canary".into(),
            pod_template_hash: "7d9c8b6f5".into(),
        },
        stable: WeightDestination {
            weight: stable,
            service_name: "shop-stable".into(),
            pod_template_hash: "5f6b7c8d9".into(),
        },
        additional: Vec::new(),
        verified: None,
        managed_routes: routes,
    }
}

#[test]
fn observe_reads_weight_and_total() {
    assert_eq!(
        router().observe(&desired(50), &state(20)),
        Ok(vec![observed(20, 80, vec![])])
    );
    let thousand = with(existing_canary(5), |c| {
        c["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight-total"] =
            json!("1000");
    });
    assert_eq!(
        router().observe(
            &desired_total(5, 1000),
            &objects([stable_ingress(), thousand])
        ),
        Ok(vec![observed(5, 995, vec![])])
    );
    // No canary Ingress: nothing reaches the canary.
    assert_eq!(
        router().observe(&desired(50), &objects([stable_ingress()])),
        Ok(vec![observed(0, 100, vec![])])
    );
}

#[test]
fn observe_rejects_unreadable_weights() {
    let bad = with(existing_canary(5), |c| {
        c["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] = json!("ten");
    });
    assert_eq!(
        router().observe(&desired(5), &objects([stable_ingress(), bad])),
        Err(RouterError::InvalidObject {
            key: canary_key(),
            field: "metadata.annotations[nginx.ingress.kubernetes.io/canary-weight]".into(),
            message: "`ten` is not a non-negative integer".into(),
        })
    );
    let over = with(existing_canary(500), |c| c["metadata"]["uid"] = json!("u"));
    assert!(matches!(
        router().observe(&desired(5), &objects([stable_ingress(), over])),
        Err(RouterError::InvalidObject { .. })
    ));
}
