//! Spec 30 §4 (bookkeeping annotation), §4.1 and spec 40 #58 (hand-back when a Rollout stops
//! managing an Ingress), §7 (abort).

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_alb::AlbRouter;
use rollout_router_core::{Router, RouterError};
use serde_json::{Value, json};

const QA_ACTION: &str = "alb.ingress.kubernetes.io/actions.qa";
const QA_CONDITIONS: &str = "alb.ingress.kubernetes.io/conditions.qa";
const LEGACY: &str = "rollouts.argoproj.io/managed-alb-actions";

fn shared_ingress(book: &str) -> Value {
    ingress(
        "shop",
        json!({"alb.ingress.kubernetes.io/scheme": "internal", BOOK: book,
               "alb.ingress.kubernetes.io/actions.other-root": "{\"Type\":\"forward\"}"}),
        json!([{"http": {"paths": [path("/", "shop-root"), path("/other", "other-root")]}}]),
    )
}

// §4: other Rollouts' entries are kept, keys sorted, our list in insertion order; the value is
// re-serialized compactly.
#[test]
fn bookkeeping_keeps_other_rollouts_sorted() {
    let router = root_router();
    let mut set = objects([shared_ingress(
        r#"{ "zeta": ["alb.ingress.kubernetes.io/actions.other-root"], "alpha": [] }"#,
    )]);
    let mut d = desired(10);
    d.managed_routes = vec![active("qa", vec![header_match("X", "1")])];
    plan_apply(&router, &d, &mut set);
    assert_eq!(
        annotations(&set, "shop")[BOOK],
        json!(
            r#"{"alpha":[],"shop":["alb.ingress.kubernetes.io/actions.shop-root","alb.ingress.kubernetes.io/actions.qa","alb.ingress.kubernetes.io/conditions.qa"],"zeta":["alb.ingress.kubernetes.io/actions.other-root"]}"#
        )
    );
    // Removal drops the route keys and keeps our entry with the action.
    d.managed_routes = vec![absent("qa")];
    plan_apply(&router, &d, &mut set);
    assert_eq!(
        annotations(&set, "shop")[BOOK],
        json!(
            r#"{"alpha":[],"shop":["alb.ingress.kubernetes.io/actions.shop-root"],"zeta":["alb.ingress.kubernetes.io/actions.other-root"]}"#
        )
    );
}

// §4: a semantically equal bookkeeping value in another formatting is not rewritten (no
// spurious writes); a `null` list reads as empty.
#[test]
fn equal_bookkeeping_is_not_rewritten() {
    let router = root_router();
    let mut obj = simple_ingress("shop", "shop-root");
    obj["metadata"]["annotations"][ACTION] =
        json!(action(&[("shop-canary", 0), ("shop-stable", 100)]));
    obj["metadata"]["annotations"][BOOK] =
        json!("{\n  \"shop\": [\"alb.ingress.kubernetes.io/actions.shop-root\"], \"x\": null\n}");
    let set = objects([obj]);
    assert_eq!(router.plan(&desired(0), &set).unwrap(), vec![]);
}

// §4.1 / spec 40 #58: release resets our weighted action to 100 % stable (keeping port and
// stickiness), removes our header routes entirely (Argo gives up on them and leaves conditions),
// drops our bookkeeping entry and keeps other Rollouts' entries.
#[test]
fn release_hands_back_the_ingress() {
    let router = AlbRouter::new(config(
        json!({"ingress": "shop", "servicePort": 80, "rootService": "shop-root",
        "stickinessConfig": {"enabled": true, "durationSeconds": 60}}),
    ));
    let original = shared_ingress(r#"{"zeta":["alb.ingress.kubernetes.io/actions.other-root"]}"#);
    let mut set = objects([original.clone()]);
    let mut d = desired(40);
    d.managed_routes = vec![active("qa", vec![header_match("X", "1")])];
    plan_apply(&router, &d, &mut set);
    assert_eq!(annotations(&set, "shop")[QA_CONDITIONS].is_string(), true);

    release_apply(&router, &mut set);
    let mut expected = original;
    expected["metadata"]["annotations"][ACTION] = json!(
        r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-stable","ServicePort":"80","Weight":100}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":60}}}"#
    );
    assert_eq!(set.get(&key("shop")).unwrap(), &expected);
}

// Release of the only Rollout deletes the bookkeeping annotation; the action (referenced by the
// rule's use-annotation backend) stays, at 100 % to the stable Service in its current role.
#[test]
fn release_last_rollout_deletes_bookkeeping() {
    let router = AlbRouter::new(config(json!({"ingress": "shop", "servicePort": 80})));
    let mut set = objects([simple_ingress("shop", "shop-stable")]);
    plan_apply(&router, &desired(30), &mut set);
    let changes = release_apply(&router, &mut set);
    let a = annotations(&set, "shop");
    assert_eq!(
        patches(&changes)[0]["patch"],
        json!([
            {"op": "test", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1actions.shop-stable", "value": action(&[("shop-canary", 30), ("shop-stable", 70)])},
            {"op": "test", "path": "/metadata/annotations/rollouts.argoproj.io~1managed-alb-annotations", "value": r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-stable"]}"#},
            {"op": "replace", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1actions.shop-stable", "value": action(&[("shop-stable", 100)])},
            {"op": "remove", "path": "/metadata/annotations/rollouts.argoproj.io~1managed-alb-annotations"}
        ])
    );
    assert_eq!(
        a,
        json!({"alb.ingress.kubernetes.io/scheme": "internet-facing", STABLE_ACTION: action(&[("shop-stable", 100)])})
    );
}

// Release removes our entries from Argo's legacy annotation and deletes it when empty; an
// Ingress without our entry, and a deleted Ingress, are left alone.
#[test]
fn release_legacy_and_foreign_ingresses() {
    let router = root_router();
    for (legacy, expected) in [
        ("shop:k1", Value::Null),
        ("shop:k1,other:k2", json!("other:k2")),
    ] {
        let mut obj = simple_ingress("shop", "shop-root");
        obj["metadata"]["annotations"][LEGACY] = json!(legacy);
        let mut set = objects([obj]);
        plan_apply(&router, &desired(0), &mut set);
        release_apply(&router, &mut set);
        assert_eq!(annotations(&set, "shop")[LEGACY], expected, "{legacy}");
    }
    let foreign = objects([shared_ingress(
        r#"{"zeta":["alb.ingress.kubernetes.io/actions.other-root"]}"#,
    )]);
    let released = snapshot();
    assert_eq!(router.release(&released, &foreign).unwrap(), vec![]);
    assert_eq!(router.release(&released, &objects([])).unwrap(), vec![]);
    let bad = objects([ingress("shop", json!({BOOK: "["}), json!([]))]);
    assert!(matches!(
        router.release(&released, &bad),
        Err(RouterError::InvalidObject { .. })
    ));
}

// §7 / spec 00 §3 case C: abort is weight 0 with managed routes removed: 100 % stable, routes
// gone, nothing else changed.
#[test]
fn abort_returns_to_stable() {
    let router = root_router();
    let original = ingress(
        "shop",
        json!({"alb.ingress.kubernetes.io/scheme": "internet-facing"}),
        json!([{"http": {"paths": [path("/", "shop-root")]}}]),
    );
    let mut set = objects([original.clone()]);
    let mut d = desired(50);
    d.managed_routes = vec![active("qa", vec![header_match("X", "1")])];
    plan_apply(&router, &d, &mut set);
    let mut aborted = desired(0);
    aborted.case = rollout_router_core::WeightCase::C;
    aborted.managed_routes = vec![absent("qa")];
    plan_apply(&router, &aborted, &mut set);
    let mut expected = original;
    expected["metadata"]["annotations"][ACTION] =
        json!(action(&[("shop-canary", 0), ("shop-stable", 100)]));
    expected["metadata"]["annotations"][BOOK] =
        json!(r#"{"shop":["alb.ingress.kubernetes.io/actions.shop-root"]}"#);
    assert_eq!(set.get(&key("shop")).unwrap(), &expected);
    assert_eq!(annotations(&set, "shop")[QA_ACTION], Value::Null);
}
