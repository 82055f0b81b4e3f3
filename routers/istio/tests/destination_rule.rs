//! Table tests for the DestinationRule: spec 10 §6 (delay rule, subset rewrite, hash lifecycle)
//! and spec 40 items 31 and 32.

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{Hold, HoldReason, PingPongServices, Router, RouterError};
use serde_json::{Value, json};

fn subsets(canary: &str, stable: &str) -> Value {
    dr(json!({
        "host": "checkout",
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        "exportTo": ["."],
        "subsets": [
            {"name": "legacy", "labels": {"version": "v0"}},
            {"name": "canary", "labels": {"app": "checkout", "rollouts-pod-template-hash": canary},
             "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 10}}}},
            {"name": "stable", "labels": {"app": "checkout", "rollouts-pod-template-hash": stable}},
        ],
    }))
}

fn subset_vs(stable: i64, canary: i64) -> Value {
    vs(json!({"http": [{"name": "primary", "route": [
        sdest("checkout", "stable", stable), sdest("checkout", "canary", canary)]}]}))
}

#[test]
fn subset_rewrite_keeps_every_other_subset_label_and_field() {
    // §6.2 / edge 31 [Argo quirk, fixed]: only the hash label of canary and stable changes;
    // the foreign subset, other labels, per-subset and top-level fields all survive.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let before = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    let (changes, after) = run(&router, &subset_desired(20), &before);
    assert_eq!(
        changes,
        vec![
            patch_change(
                dr_key(),
                json!([
                    {"op": "test", "path": "/spec/subsets/1/name", "value": "canary"},
                    {"op": "replace", "path": "/spec/subsets/1/labels/rollouts-pod-template-hash", "value": "c1"},
                ])
            ),
            patch_change(
                vs_key(),
                json!([
                    {"op": "test", "path": "/spec/http/0/name", "value": "primary"},
                    {"op": "test", "path": "/spec/http/0/route/0/destination/host", "value": "checkout"},
                    {"op": "test", "path": "/spec/http/0/route/0/destination/subset", "value": "stable"},
                    {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 80},
                    {"op": "test", "path": "/spec/http/0/route/1/destination/host", "value": "checkout"},
                    {"op": "test", "path": "/spec/http/0/route/1/destination/subset", "value": "canary"},
                    {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 20},
                ])
            ),
        ]
    );
    assert_dr(&after, subsets("c1", "s1"));
    assert_vs(&after, subset_vs(80, 20));
}

#[test]
fn labels_are_added_when_missing_and_removed_for_an_empty_hash() {
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let bare = dr(
        json!({"host": "checkout", "subsets": [{"name": "canary"}, {"name": "stable", "labels": {"app": "x"}}]}),
    );
    let (changes, after) = run(
        &router,
        &subset_desired(0),
        &objects([bare, subset_vs(100, 0)]),
    );
    assert_eq!(
        changes,
        vec![patch_change(
            dr_key(),
            json!([
                // No labels yet: the whole subset is pinned, so labels added meanwhile are
                // not overwritten.
                {"op": "test", "path": "/spec/subsets/0", "value": {"name": "canary"}},
                {"op": "add", "path": "/spec/subsets/0/labels", "value": {"rollouts-pod-template-hash": "c1"}},
                {"op": "test", "path": "/spec/subsets/1/name", "value": "stable"},
                {"op": "add", "path": "/spec/subsets/1/labels/rollouts-pod-template-hash", "value": "s1"},
            ])
        )]
    );
    // No new ReplicaSet yet (empty canary hash): the label is removed, as in Argo.
    let (_, after) = run(&router, &with_hashes(subset_desired(0), "", "s1"), &after);
    assert_dr_spec(
        &after,
        json!({"host": "checkout", "subsets": [{"name": "canary", "labels": {}}, {"name": "stable", "labels": {"app": "x", "rollouts-pod-template-hash": "s1"}}]}),
    );
}

#[test]
fn destination_rule_errors() {
    // §6.2 step 1 and 5, §10: missing rule, missing canary/stable subset.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    assert_eq!(
        router.plan(&subset_desired(20), &objects([subset_vs(100, 0)])),
        Err(RouterError::NotFound { key: dr_key() })
    );
    let no_stable = dr(json!({"host": "checkout", "subsets": [{"name": "canary"}]}));
    assert_eq!(
        router.plan(
            &subset_desired(20),
            &objects([no_stable, subset_vs(100, 0)])
        ),
        Err(RouterError::InvalidObject {
            key: dr_key(),
            field: "spec.subsets".into(),
            message: "Stable subset 'stable' not found in the DestinationRule".into(),
        })
    );
    // §3.4: the route must hold both subsets.
    let vs_without =
        vs(json!({"http": [{"name": "primary", "route": [sdest("checkout", "stable", 100)]}]}));
    assert_eq!(
        router.plan(
            &subset_desired(20),
            &objects([subsets("c1", "s1"), vs_without])
        ),
        Err(RouterError::InvalidObject {
            key: vs_key(),
            field: "spec.http[primary].route".into(),
            message: "Canary DestinationRule subset 'canary' not found in route".into(),
        })
    );
}

#[test]
fn experiment_subsets_created_by_the_user_follow_the_hash() {
    // §6.2 step 3: a subset named after an experiment Service gets its hash; rollout-router
    // never appends subsets (documented difference from §6.2 step 4).
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let rule = dr(json!({"host": "checkout", "subsets": [
        {"name": "canary", "labels": {"rollouts-pod-template-hash": "c1"}},
        {"name": "stable", "labels": {"rollouts-pod-template-hash": "s1"}},
        {"name": "exp-svc", "labels": {"app": "checkout"}}]}));
    let d = with_experiment(subset_desired(20), "exp-svc", 10);
    let (_, after) = run(&router, &d, &objects([rule, subset_vs(80, 20)]));
    assert_eq!(
        after.get(&dr_key()).unwrap()["spec"]["subsets"],
        json!([
            {"name": "canary", "labels": {"rollouts-pod-template-hash": "c1"}},
            {"name": "stable", "labels": {"rollouts-pod-template-hash": "s1"}},
            {"name": "exp-svc", "labels": {"app": "checkout", "rollouts-pod-template-hash": "exp-svc-hash"}},
        ])
    );
    let d = with_experiment(subset_desired(20), "other-exp", 10);
    let rule = after.get(&dr_key()).unwrap().clone();
    let (_, after) = run(&router, &d, &after);
    assert_dr(&after, rule);
}

#[test]
fn hash_lifecycle() {
    // §6.4, row by row: (canary hash, stable hash, weight) → subsets and VS weights.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let rows = [
        ("steady state", "s1", "s1", 0),
        ("new canary, 0 available", "c1", "s1", 0),
        ("mid-rollout", "c1", "s1", 40),
        ("aborted", "c1", "s1", 0),
        ("right after promotion", "c1", "c1", 0),
    ];
    let mut set = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    for (row, canary, stable, weight) in rows {
        let d = with_hashes(subset_desired(weight), canary, stable);
        set = run(&router, &d, &set).1;
        assert_eq!(
            set.get(&dr_key()).unwrap(),
            &subsets(canary, stable),
            "{row}"
        );
        assert_eq!(
            set.get(&vs_key()).unwrap(),
            &subset_vs(100 - i64::from(weight), weight.into()),
            "{row}"
        );
    }
}

#[test]
fn traffic_leaves_the_canary_before_the_subset_moves() {
    // Edge 6 (#4564): at weight 0 the VirtualService is written first, then the subsets;
    // with weight the subsets move first, then the traffic.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let before = objects([subsets("c1", "s1"), subset_vs(60, 40)]);
    // Without ReplicaSets in the desired state, weight 0 stands for "leaving the canary".
    let changes = router
        .plan(&with_hashes(subset_desired(0), "c2", "s1"), &before)
        .unwrap();
    assert_guarded(&changes);
    assert_eq!(kinds(&changes), ["VirtualService", "DestinationRule"]);
    let before = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    let changes = router.plan(&subset_desired(20), &before).unwrap();
    assert_guarded(&changes);
    assert_eq!(kinds(&changes), ["DestinationRule", "VirtualService"]);
}

#[test]
fn the_early_reset_decides_the_order() {
    // Spec 00 §4 steps 4–6: the VirtualService goes first only for the early reset (new
    // ReplicaSet without available pods); otherwise the subsets move first. canaryService /
    // stableService are set so that the delay rule stays out of the way.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let services = |mut d: rollout_router_core::DesiredTraffic| {
        d.canary.service_name = "canary-svc".into();
        d.stable.service_name = "stable-svc".into();
        d
    };
    // A new canary with no pod available yet: traffic leaves the old canary first (#4564).
    let new_canary = with_replica_sets(
        services(with_hashes(subset_desired(0), "c2", "s1")),
        vec![rs("ro-c2", "c2", 3, 0), rs("ro-s1", "s1", 3, 3)],
        false,
    );
    let before = objects([subsets("c1", "s1"), subset_vs(60, 40)]);
    let (changes, _) = run(&router, &new_canary, &before);
    assert_eq!(kinds(&changes), ["VirtualService", "DestinationRule"]);
    // Promotion: the stable subset selects the new pods before the canary's share moves to
    // it (VirtualService first would send it to the old pods for a moment).
    let promoted = with_replica_sets(
        services(with_hashes(subset_desired(0), "c2", "c2")),
        vec![rs("ro-c2", "c2", 3, 3), rs("ro-s1", "s1", 3, 3)],
        false,
    );
    let before = objects([subsets("c2", "s1"), subset_vs(0, 100)]);
    let (changes, after) = run(&router, &promoted, &before);
    assert_eq!(kinds(&changes), ["DestinationRule", "VirtualService"]);
    assert_dr(&after, subsets("c2", "c2"));
    assert_vs(&after, subset_vs(100, 0));
}

#[test]
fn hold_keeps_hashes() {
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let mut d = subset_desired(20);
    d.hold = Some(Hold {
        reason: HoldReason::GenerationNotObserved,
        message: "behind".into(),
    });
    assert_eq!(
        router
            .plan(&d, &objects([subsets("s1", "s1"), subset_vs(100, 0)]))
            .unwrap(),
        vec![]
    );
}

#[test]
fn delay_rule_table() {
    // §6.1 / edge 32, through `Router::plan`: pure subset mode waits while a scaled-up canary
    // or stable ReplicaSet is not fully available (spec.replicas > 0, available > 0 and
    // spec.replicas <= available); the canary is ignored while abortLike; other hashes and
    // ReplicaSets scaled to 0 are ignored. `None` = the plan goes ahead unchanged.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let set = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    let unrestricted = router.plan(&subset_desired(20), &set).unwrap();
    assert_guarded(&unrestricted);
    assert_eq!(kinds(&unrestricted), ["DestinationRule", "VirtualService"]);
    let rows: Vec<(&str, Vec<_>, bool, Option<&str>)> = vec![
        (
            "canary scaling",
            vec![rs("ro-c1", "c1", 3, 2), rs("ro-s1", "s1", 3, 3)],
            false,
            Some("ro-c1"),
        ),
        (
            "canary without available pods",
            vec![rs("ro-c1", "c1", 3, 0), rs("ro-s1", "s1", 3, 3)],
            false,
            Some("ro-c1"),
        ),
        (
            "stable scaling",
            vec![rs("ro-c1", "c1", 3, 3), rs("ro-s1", "s1", 3, 0)],
            false,
            Some("ro-s1"),
        ),
        (
            "the first listed wins",
            vec![rs("ro-c1", "c1", 3, 1), rs("ro-s1", "s1", 3, 1)],
            false,
            Some("ro-c1"),
        ),
        (
            "all available",
            vec![rs("ro-c1", "c1", 3, 3), rs("ro-s1", "s1", 3, 3)],
            false,
            None,
        ),
        (
            "more available than wanted",
            vec![rs("ro-c1", "c1", 2, 3), rs("ro-s1", "s1", 3, 4)],
            false,
            None,
        ),
        (
            "aborting ignores the canary",
            vec![rs("ro-c1", "c1", 3, 1), rs("ro-s1", "s1", 3, 3)],
            true,
            None,
        ),
        (
            "aborting still waits for the stable",
            vec![rs("ro-c1", "c1", 3, 3), rs("ro-s1", "s1", 3, 2)],
            true,
            Some("ro-s1"),
        ),
        (
            "scaled to zero and foreign hashes",
            vec![
                rs("ro-c1", "c1", 3, 3),
                rs("ro-old", "o1", 3, 0),
                rs("ro-s1", "s1", 0, 0),
            ],
            false,
            None,
        ),
        ("no ReplicaSets known", vec![], false, None),
    ];
    for (row, replica_sets, aborting, delayed_by) in rows {
        let d = with_replica_sets(subset_desired(20), replica_sets, aborting);
        let result = router.plan(&d, &set);
        match delayed_by {
            Some(name) => assert_eq!(result, waiting(name), "{row}"),
            None => assert_eq!(result, Ok(unrestricted.clone()), "{row}"),
        }
    }
}

#[test]
fn delay_rule_only_in_pure_subset_mode() {
    // §6.1: the rule looks only at canaryService / stableService: with either set it never
    // applies; with both empty it applies even without a DestinationRule (ping-pong only).
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let set = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    let scaling = vec![rs("ro-c1", "c1", 3, 0)];
    for (canary, stable) in [
        ("canary-svc", "stable-svc"),
        ("", "stable-svc"),
        ("canary-svc", ""),
    ] {
        let mut d = with_replica_sets(subset_desired(20), scaling.clone(), false);
        d.canary.service_name = canary.into();
        d.stable.service_name = stable.into();
        assert!(router.plan(&d, &set).is_ok(), "{canary:?}/{stable:?}");
    }
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = with_replica_sets(subset_desired(20), scaling, false);
    d.ping_pong = Some(PingPongServices {
        canary_service: "canary-svc".into(),
        stable_service: "stable-svc".into(),
    });
    let set = objects([vs(json!({"http": [primary(100, 0)]}))]);
    assert_eq!(router.plan(&d, &set), waiting("ro-c1"));
    d.replica_sets[0].available_replicas = 3;
    assert_eq!(
        run(&router, &d, &set).1.get(&vs_key()).unwrap(),
        &vs(json!({"http": [primary(80, 20)]}))
    );
}

#[test]
fn delay_rule_still_applies_route_removals_and_the_early_reset() {
    // Spec 00 §4 steps 3–5: managed-route changes and the early reset (new ReplicaSet without
    // available pods, traffic on the canary) happen before the delay; those changes come out
    // first, then the plan reports Waiting.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let header = json!({"name": "h", "route": [{"destination": {"host": "checkout", "subset": "canary"}, "weight": 100}]});
    let vs_obj = vs(
        json!({"http": [header, {"name": "primary", "route": [sdest("checkout", "stable", 60), sdest("checkout", "canary", 40)]}]}),
    );
    let set = objects([subsets("c1", "s1"), vs_obj]);
    let mut d = with_replica_sets(
        with_hashes(subset_desired(0), "c2", "s1"),
        vec![rs("ro-c2", "c2", 3, 0), rs("ro-s1", "s1", 3, 3)],
        false,
    );
    d.managed_routes = vec![absent("h")];
    let changes = router.plan(&d, &set).unwrap();
    assert_guarded(&changes);
    assert_eq!(kinds(&changes), ["VirtualService"]);
    let mut after = set.clone();
    after.apply_all(&changes).unwrap();
    assert_dr(&after, subsets("c1", "s1"));
    assert_vs(&after, subset_vs(100, 0));
    assert_eq!(router.plan(&d, &after), waiting("ro-c2"));
    // Once the new pods are available the subsets move.
    d.replica_sets[0].available_replicas = 3;
    let (_, after) = run(&router, &d, &after);
    assert_dr(&after, subsets("c2", "s1"));
}

#[test]
fn delay_rule_without_early_reset_keeps_the_weights() {
    // Spec 00 §4 step 4 needs a new ReplicaSet with NO available pods and traffic on the
    // canary. Promoted while a pod of the new ReplicaSet is not ready: nothing moves (moving
    // the weight first would send the canary's share to the old pods of the stable subset).
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let set = objects([subsets("c2", "s1"), subset_vs(0, 100)]);
    let promoted = with_replica_sets(
        with_hashes(subset_desired(0), "c2", "c2"),
        vec![rs("ro-c2", "c2", 3, 2), rs("ro-s1", "s1", 3, 3)],
        false,
    );
    assert_eq!(router.plan(&promoted, &set), waiting("ro-c2"));
    // New ReplicaSet without pods but the canary already at 0: an experiment destination is
    // not added early either (Argo's early reset needs a recorded canary weight above 0).
    let set = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    let d = with_replica_sets(
        with_experiment(subset_desired(0), "exp-svc", 10),
        vec![rs("ro-c1", "c1", 3, 0), rs("ro-s1", "s1", 3, 3)],
        false,
    );
    assert_eq!(router.plan(&d, &set), waiting("ro-c1"));
}

#[test]
fn hold_is_never_delayed() {
    // Spec 00 §4 step 2 stops before the delay rule: a hold plans (removals only), no Waiting.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let mut d = with_replica_sets(subset_desired(20), vec![rs("ro-c1", "c1", 3, 0)], false);
    d.hold = Some(Hold {
        reason: HoldReason::StableCapacity,
        message: "stable too small".into(),
    });
    let set = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    assert_eq!(router.plan(&d, &set), Ok(vec![]));
}

#[test]
fn settled_rollout_is_not_reported_as_delayed() {
    // Documented difference: Argo errors on every reconcile while a pod restarts; nothing
    // needs to change here, so the plan is simply empty.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let set = objects([subsets("c1", "s1"), subset_vs(80, 20)]);
    let d = with_replica_sets(subset_desired(20), vec![rs("ro-c1", "c1", 3, 2)], false);
    assert_eq!(router.plan(&d, &set), Ok(vec![]));
}
