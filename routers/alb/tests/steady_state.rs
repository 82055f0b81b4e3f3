//! Release case (a), the steady state of a settled Rollout (spec 30 §2.4: Argo writes the action
//! on every reconcile, also at weight 0): an Ingress whose rule routes through the action but has
//! no action annotation gets the 100 % stable action; an existing action is left alone; the
//! hand-back after the Rollout is gone (case (b)) adds nothing.

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_alb::AlbRouter;
use rollout_router_core::{
    DesiredTraffic, ObjectSet, PingPongServices, Router, RouterError, WeightCase,
};
use serde_json::{Value, json};

const STABLE_HASH: &str = "6d8f9c7b5";

/// What the engine hands a settled Rollout (fully promoted): weight 0, the stable hash set.
fn settled() -> DesiredTraffic {
    let mut d = desired(0);
    d.case = WeightCase::B;
    d.step_index = None;
    d.canary.pod_template_hash = STABLE_HASH.into();
    d.stable.pod_template_hash = STABLE_HASH.into();
    d
}

fn stable_router() -> AlbRouter {
    AlbRouter::new(config(json!({"ingress": "shop", "servicePort": 80})))
}

/// The user's Ingress as it is before any Rollout update: no action annotation yet.
fn fresh_ingress() -> Value {
    let mut obj = simple_ingress("shop", "shop-stable");
    obj["metadata"]["resourceVersion"] = json!("41");
    obj
}

/// Releases, applies, and checks that a second release changes nothing.
#[allow(
    clippy::unwrap_used,
    reason = "test helper: a failed unwrap is the test failure"
)]
fn release_twice(router: &AlbRouter, d: &DesiredTraffic, set: &mut ObjectSet) -> Value {
    let changes = router.release(d, set).unwrap();
    set.apply_all(&changes).unwrap();
    assert_eq!(router.release(d, set).unwrap(), vec![], "second release");
    patches(&changes)
}

// The fix: the missing action is added (100 % stable, one target group), guarded by the
// resourceVersion; no bookkeeping entry; the read-back then reports 0 / 100.
#[test]
fn missing_action_is_written_once() {
    let router = stable_router();
    let mut set = objects([fresh_ingress()]);
    let d = settled();
    assert!(router.observe(&d, &set).is_err(), "not programmed before");
    let patch = release_twice(&router, &d, &mut set);
    assert_eq!(
        patch,
        json!([{"op": "patch", "key": {"group": "networking.k8s.io", "kind": "Ingress", "namespace": NS, "name": "shop"}, "patch": [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
            {"op": "add", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1actions.shop-stable", "value": action(&[("shop-stable", 100)])}
        ]}])
    );
    let mut expected = fresh_ingress();
    expected["metadata"]["annotations"][STABLE_ACTION] = json!(action(&[("shop-stable", 100)]));
    assert_eq!(set.get(&key("shop")).unwrap(), &expected);
    let observed = router.observe(&d, &set).unwrap();
    assert_eq!(
        (observed[0].canary.weight, observed[0].stable.weight),
        (0, 100)
    );
}

// An existing action is the user's (or ours, from an earlier release): left alone whatever its
// bytes — Argo's `canary 0 / stable 100`, a hand-written equivalent, and also one that does not
// send everything to stable (observe reports what it applies; rollout-router does not overwrite
// it while no update is in progress).
#[test]
fn existing_action_is_left_alone() {
    let router = stable_router();
    for value in [
        action(&[("shop-stable", 100)]),
        action(&[("shop-canary", 0), ("shop-stable", 100)]),
        r#"{"type": "forward", "forwardConfig": {"targetGroups": [{"serviceName": "shop-stable", "servicePort": 80}]}}"#.to_owned(),
        action(&[("shop-canary", 50), ("shop-stable", 50)]),
        "not json".to_owned(),
    ] {
        let mut obj = fresh_ingress();
        obj["metadata"]["annotations"][STABLE_ACTION] = json!(value);
        let set = objects([obj]);
        assert_eq!(router.release(&settled(), &set).unwrap(), vec![], "{value}");
    }
}

// Case (b) (the Rollout is gone: no hashes): nothing is added; the journal restores what the
// user had.
#[test]
fn hand_back_after_deletion_adds_nothing() {
    let router = stable_router();
    let set = objects([fresh_ingress()]);
    assert_eq!(router.release(&snapshot(), &set).unwrap(), vec![]);
}

// No rule routes through the action (no `use-annotation` backend for it): LBC does not need
// the action, nothing is written.
#[test]
fn ingress_not_using_the_action_is_left_alone() {
    let router = stable_router();
    let mut numbered = fresh_ingress();
    numbered["spec"]["rules"][0]["http"]["paths"][0]["backend"] =
        json!({"service": {"name": "shop-stable", "port": {"number": 80}}});
    let other = simple_ingress("shop", "shop-web");
    for obj in [numbered, other] {
        assert_eq!(router.release(&settled(), &objects([obj])).unwrap(), vec![]);
    }
}

// rootService names the key; ping-pong picks the Service stable in its current role; stickiness
// is appended; an Ingress without any annotation gets the map (guarded by resourceVersion).
#[test]
fn root_service_ping_pong_stickiness_and_no_annotation_map() {
    let router = AlbRouter::new(config(json!({
        "ingress": "shop", "servicePort": 8443, "rootService": "shop-root",
        "stickinessConfig": {"enabled": true, "durationSeconds": 300}
    })));
    let mut obj = simple_ingress("shop", "shop-root");
    obj["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    obj["metadata"]["resourceVersion"] = json!("7");
    let mut set = objects([obj]);
    let mut d = settled();
    d.ping_pong = Some(PingPongServices {
        canary_service: "shop-ping".into(),
        stable_service: "shop-pong".into(),
    });
    let patch = release_twice(&router, &d, &mut set);
    let value = r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"shop-pong","ServicePort":"8443","Weight":100}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":300}}}"#;
    assert_eq!(
        patch[0]["patch"],
        json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
            {"op": "add", "path": "/metadata/annotations", "value": {ACTION: value}}
        ])
    );
    assert_eq!(annotations(&set, "shop"), json!({ACTION: value}));
}

// Every configured Ingress is handled on its own: one gets the action, the other already has one.
#[test]
fn every_ingress_is_checked() {
    let router = AlbRouter::new(config(
        json!({"ingresses": ["shop", "shop-internal"], "servicePort": 80}),
    ));
    let mut programmed = simple_ingress("shop-internal", "shop-stable");
    programmed["metadata"]["annotations"][STABLE_ACTION] = json!(action(&[("shop-stable", 100)]));
    let mut set = objects([simple_ingress("shop", "shop-stable"), programmed.clone()]);
    let patch = release_twice(&router, &settled(), &mut set);
    assert_eq!(patch.as_array().unwrap().len(), 1);
    assert_eq!(patch[0]["key"]["name"], "shop");
    assert_eq!(set.get(&key("shop-internal")).unwrap(), &programmed);
    assert_eq!(
        annotations(&set, "shop")[STABLE_ACTION],
        json!(action(&[("shop-stable", 100)]))
    );
}

// After an update completes, release resets our action (bookkeeping) as before; the steady-state
// addition does not interfere, and the result is the same bytes a fresh Rollout gets.
#[test]
fn completion_then_steady_state_is_one_form() {
    let router = stable_router();
    let mut set = objects([simple_ingress("shop", "shop-stable")]);
    plan_apply(&router, &desired(30), &mut set);
    release_twice(&router, &settled(), &mut set);
    let mut fresh = objects([simple_ingress("shop", "shop-stable")]);
    release_twice(&router, &settled(), &mut fresh);
    assert_eq!(set.get(&key("shop")), fresh.get(&key("shop")));
}

// Configuration errors surface like in `plan` (the steady state is routing too).
#[test]
fn configuration_errors_are_reported() {
    let router = AlbRouter::new(config(json!({"ingress": "shop", "servicePort": 80,
        "stickinessConfig": {"enabled": true, "durationSeconds": 0}})));
    let err = router
        .release(&settled(), &objects([fresh_ingress()]))
        .unwrap_err();
    assert!(
        matches!(&err, RouterError::InvalidConfig { field, .. } if field == "alb.stickinessConfig.durationSeconds"),
        "{err}"
    );
}
