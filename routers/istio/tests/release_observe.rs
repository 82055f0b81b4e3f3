//! `release` (hand the objects back) and `observe` (weights read back).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{DesiredTraffic, ObservedWeights, Router, RouterError, WeightCase};
use serde_json::{Value, json};

/// What the controller releases with in case (a): the engine's desired state once the Rollout
/// completed (hashes `s2`/`s2`) — canary 0, managed routes absent.
fn completed(managed: &[&str]) -> DesiredTraffic {
    let mut d = with_hashes(desired(0), "s2", "s2");
    d.case = WeightCase::B;
    d.managed_routes = managed.iter().map(|n| absent(n)).collect();
    d
}

/// Case (b): rebuilt from the snapshot after the Rollout was deleted: no hashes.
fn snapshot(managed: &[&str]) -> DesiredTraffic {
    with_hashes(completed(managed), "", "")
}

fn pure_subset(mut d: DesiredTraffic) -> DesiredTraffic {
    d.canary.service_name.clear();
    d.stable.service_name.clear();
    d
}

fn rule(canary: Option<&str>, stable: Option<&str>) -> Value {
    let labels = |h: Option<&str>| match h {
        Some(h) => json!({"app": "checkout", "rollouts-pod-template-hash": h}),
        None => json!({"app": "checkout"}),
    };
    dr(json!({"host": "checkout", "subsets": [
        {"name": "canary", "labels": labels(canary)}, {"name": "stable", "labels": labels(stable)},
        {"name": "other", "labels": {"rollouts-pod-template-hash": "keep"}}]}))
}

fn subset_primary(stable: i64, canary: i64) -> Value {
    vs(json!({"http": [{"name": "primary", "route": [
        sdest("checkout", "stable", stable), sdest("checkout", "canary", canary)]}]}))
}

#[test]
fn release_host_level_returns_to_stable_and_removes_only_named_routes() {
    let router = host_router(vs_ref("checkout", &["primary"]));
    let user = json!({"name": "static", "route": [dest("cdn", 100)]});
    let unnamed = json!({"name": "not-listed", "route": [dest("canary-svc", 100)]});
    let before = objects([vs(json!({"http": [
        {"name": "h", "route": [{"destination": {"host": "canary-svc"}, "weight": 100}]},
        unnamed.clone(),
        user.clone(),
        {"name": "primary", "route": [dest("stable-svc", 50), dest("canary-svc", 40), dest("exp", 10)]}]}))]);
    for d in [completed(&["h"]), snapshot(&["h"])] {
        let (_, after) = run_release(&router, &d, &before);
        assert_vs_spec(
            &after,
            json!({"http": [unnamed.clone(), user.clone(), primary(100, 0)]}),
        );
        // Nothing to hand back when the objects are gone.
        assert_eq!(router.release(&d, &objects([])), Ok(vec![]));
    }
}

#[test]
fn release_after_completion_points_both_subsets_at_the_stable_hash() {
    // Case (a): the steady state of spec 10 §6.4; the DestinationRule first, so the canary's
    // share moves to a stable subset that already selects the new pods.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let before = objects([rule(Some("s2"), Some("s1")), subset_primary(0, 100)]);
    let (changes, after) = run_release(&router, &pure_subset(completed(&[])), &before);
    assert_eq!(kinds(&changes), ["DestinationRule", "VirtualService"]);
    assert_dr(&after, rule(Some("s2"), Some("s2")));
    assert_vs(&after, subset_primary(100, 0));
}

#[test]
fn release_without_hashes_leaves_the_destination_rule_alone() {
    // Case (b): the controller's journal restores the labels; only the weights move.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let before = objects([rule(Some("c1"), Some("s1")), subset_primary(70, 30)]);
    let (changes, after) = run_release(&router, &pure_subset(snapshot(&[])), &before);
    assert_eq!(kinds(&changes), ["VirtualService"]);
    assert_dr(&after, rule(Some("c1"), Some("s1")));
    assert_vs(&after, subset_primary(100, 0));
}

#[test]
fn release_tolerates_missing_objects() {
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let d = pure_subset(completed(&[]));
    // No DestinationRule: the VirtualService is still handed back.
    let (_, after) = run_release(&router, &d, &objects([subset_primary(70, 30)]));
    assert_vs(&after, subset_primary(100, 0));
    // No VirtualService: the DestinationRule still is.
    let (_, after) = run_release(&router, &d, &objects([rule(Some("s2"), Some("s1"))]));
    assert_dr(&after, rule(Some("s2"), Some("s2")));
}

#[test]
fn release_waits_like_plan_under_the_delay_rule() {
    // Promoted, but a pod of the new stable ReplicaSet is not ready: managed routes go, the
    // subsets and weights wait (spec 10 §6.1).
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let header = json!({"name": "h", "route": [{"destination": {"host": "checkout", "subset": "canary"}, "weight": 100}]});
    let before = objects([
        rule(Some("s2"), Some("s1")),
        vs(json!({"http": [header, {"name": "primary", "route": [
            sdest("checkout", "stable", 0), sdest("checkout", "canary", 100)]}]})),
    ]);
    let d = with_replica_sets(
        pure_subset(completed(&["h"])),
        vec![rs("ro-s2", "s2", 3, 2), rs("ro-s1", "s1", 3, 3)],
        false,
    );
    let changes = router.release(&d, &before).unwrap();
    assert_guarded(&changes);
    let mut after = before.clone();
    after.apply_all(&changes).unwrap();
    assert_vs(&after, subset_primary(0, 100));
    assert_eq!(router.release(&d, &after), waiting("ro-s2"));
    let mut ready = d.clone();
    ready.replica_sets[0].available_replicas = 3;
    let (_, after) = run_release(&router, &ready, &after);
    assert_dr(&after, rule(Some("s2"), Some("s2")));
    assert_vs(&after, subset_primary(100, 0));
}

#[test]
fn release_of_a_host_split_needs_the_service_names() {
    let router = host_router(vs_ref("checkout", &["primary"]));
    assert!(matches!(
        router.release(
            &pure_subset(snapshot(&[])),
            &objects([vs(json!({"http": [primary(90, 10)]}))])
        ),
        Err(RouterError::InvalidConfig { .. })
    ));
}

#[test]
fn observe_reports_each_weighted_route() {
    let router = host_router(rollout_router_core::IstioVirtualService {
        name: "checkout".into(),
        routes: vec!["primary".into()],
        tcp_routes: vec![rollout_router_core::TcpRoute { port: Some(5432) }],
        ..Default::default()
    });
    let mut d = with_experiment(desired(20), "exp", 10);
    d.managed_routes = vec![unchanged("h")];
    let set = objects([vs(json!({
        "http": [{"name": "h", "route": [dest("canary-svc", 100)]},
                 {"name": "primary", "route": [dest("stable-svc", 70), dest("canary-svc", 20), dest("exp", 10)]}],
        "tcp": [{"match": [{"port": 5432}], "route": [dest("stable-svc", 100), dest("canary-svc", 0)]}],
    }))]);
    assert_eq!(
        router.observe(&d, &set).unwrap(),
        vec![
            ObservedWeights {
                object: vs_key(),
                location: "http[primary]".into(),
                canary: wd(20, "canary-svc", ""),
                stable: wd(70, "stable-svc", ""),
                additional: vec![wd(10, "exp", "")],
                verified: None,
                managed_routes: vec!["h".into()],
            },
            ObservedWeights {
                object: vs_key(),
                location: "tcp[0]".into(),
                canary: wd(0, "canary-svc", ""),
                stable: wd(100, "stable-svc", ""),
                additional: vec![],
                verified: None,
                managed_routes: vec!["h".into()],
            },
        ]
    );
}

#[test]
fn observe_in_subset_mode_reads_hashes_from_the_subsets() {
    let router = subset_router(vs_ref("checkout", &[]));
    let set = objects([
        dr(json!({"host": "checkout", "subsets": [
            {"name": "canary", "labels": {"rollouts-pod-template-hash": "c9"}},
            {"name": "stable", "labels": {"rollouts-pod-template-hash": "s9"}}]})),
        // A lone destination without a weight receives everything.
        vs(
            json!({"http": [{"route": [{"destination": {"host": "checkout", "subset": "stable"}}, sdest("checkout", "canary", 0)]}]}),
        ),
    ]);
    let observed = router.observe(&subset_desired(20), &set).unwrap();
    assert_eq!(observed[0].location, "http[0]");
    assert_eq!(
        (observed[0].canary.clone(), observed[0].stable.clone()),
        (wd(0, "", "c9"), wd(0, "", "s9"))
    );
    let lone = objects([
        dr(json!({"host": "checkout", "subsets": [{"name": "canary"}, {"name": "stable"}]})),
        vs(
            json!({"tcp": [{"route": [{"destination": {"host": "checkout", "subset": "stable"}}]}]}),
        ),
    ]);
    assert_eq!(
        router.observe(&subset_desired(0), &lone),
        Err(RouterError::InvalidObject {
            key: vs_key(),
            field: "spec.tcp[0].route".into(),
            message: "Canary DestinationRule subset 'canary' not found in route".into()
        })
    );
}

#[test]
fn object_keys_and_api_version() {
    let router = subset_router(vs_ref("checkout.shop.cluster.local", &[]));
    assert_eq!(router.object_keys(&rollout()), vec![vs_key(), dr_key()]);
    assert_eq!(router.name(), "istio");
    assert_eq!(router.api_version(), "networking.istio.io/v1alpha3");
    let router = router.with_api_version("v1");
    assert_eq!(router.api_version(), "networking.istio.io/v1");
    assert_eq!(
        router
            .with_api_version("networking.istio.io/v1beta1")
            .api_version(),
        "networking.istio.io/v1beta1"
    );
}
