//! Table tests for the DestinationRule: spec 10 §6 (delay rule, subset rewrite, hash lifecycle)
//! and spec 40 items 31 and 32.

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{Hold, HoldReason, Router, RouterError};
use rollout_router_istio::{ReplicaSetAvailability, ReplicaSetStatus};
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

fn with_hashes(
    mut d: rollout_router_core::DesiredTraffic,
    canary: &str,
    stable: &str,
) -> rollout_router_core::DesiredTraffic {
    d.canary.pod_template_hash = canary.into();
    d.stable.pod_template_hash = stable.into();
    d
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
    assert_eq!(after.get(&dr_key()).unwrap(), &subsets("c1", "s1"));
    assert_eq!(after.get(&vs_key()).unwrap(), &subset_vs(80, 20));
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
                {"op": "test", "path": "/spec/subsets/0/name", "value": "canary"},
                {"op": "add", "path": "/spec/subsets/0/labels", "value": {"rollouts-pod-template-hash": "c1"}},
                {"op": "test", "path": "/spec/subsets/1/name", "value": "stable"},
                {"op": "add", "path": "/spec/subsets/1/labels/rollouts-pod-template-hash", "value": "s1"},
            ])
        )]
    );
    // No new ReplicaSet yet (empty canary hash): the label is removed, as in Argo.
    let (_, after) = run(&router, &with_hashes(subset_desired(0), "", "s1"), &after);
    assert_eq!(
        after.get(&dr_key()).unwrap(),
        &dr(
            json!({"host": "checkout", "subsets": [{"name": "canary", "labels": {}}, {"name": "stable", "labels": {"app": "x", "rollouts-pod-template-hash": "s1"}}]})
        )
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
    assert_eq!(after.get(&dr_key()).unwrap(), &rule);
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
    let changes = router
        .plan(&with_hashes(subset_desired(0), "c2", "s1"), &before)
        .unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| c.key().kind.as_str())
            .collect::<Vec<_>>(),
        ["VirtualService", "DestinationRule"]
    );
    let before = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    let changes = router.plan(&subset_desired(20), &before).unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| c.key().kind.as_str())
            .collect::<Vec<_>>(),
        ["DestinationRule", "VirtualService"]
    );
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

fn rs(name: &str, hash: &str, replicas: i32, available: i32) -> ReplicaSetAvailability {
    ReplicaSetAvailability {
        name: name.into(),
        pod_template_hash: hash.into(),
        replicas,
        available_replicas: available,
    }
}

#[test]
fn delay_rule() {
    // §6.1 / edge 32: pure subset mode waits while a scaled-up canary or stable ReplicaSet
    // is not fully available; the canary is ignored while aborting; other hashes and
    // scaled-down ReplicaSets are ignored.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let set = objects([subsets("s1", "s1"), subset_vs(100, 0)]);
    let waiting = |name: &str| {
        Err(RouterError::Waiting {
            message: format!(
                "delaying destination rule switch: ReplicaSet {name} not fully available"
            ),
        })
    };
    let cases: Vec<(&str, Vec<ReplicaSetAvailability>, bool, bool)> = vec![
        (
            "canary scaling",
            vec![rs("ro-c1", "c1", 3, 2), rs("ro-s1", "s1", 3, 3)],
            false,
            true,
        ),
        (
            "stable scaling",
            vec![rs("ro-c1", "c1", 3, 3), rs("ro-s1", "s1", 3, 0)],
            false,
            true,
        ),
        (
            "all available",
            vec![rs("ro-c1", "c1", 3, 3), rs("ro-s1", "s1", 3, 3)],
            false,
            false,
        ),
        (
            "aborting ignores canary",
            vec![rs("ro-c1", "c1", 3, 1), rs("ro-s1", "s1", 3, 3)],
            true,
            false,
        ),
        (
            "scaled to zero and foreign",
            vec![
                rs("ro-c1", "c1", 0, 0),
                rs("ro-old", "o1", 3, 0),
                rs("ro-s1", "s1", 3, 3),
            ],
            false,
            false,
        ),
    ];
    for (case, replica_sets, aborting, delayed) in cases {
        let status = ReplicaSetStatus {
            replica_sets,
            aborting,
        };
        let result = router.plan_with_replica_sets(&subset_desired(20), &status, &set);
        let name = status
            .replica_sets
            .iter()
            .find(|r| !r.fully_available() && r.replicas != 0)
            .map(|r| r.name.clone());
        if delayed {
            assert_eq!(result, waiting(&name.unwrap()), "{case}");
        } else {
            assert_eq!(result, router.plan(&subset_desired(20), &set), "{case}");
            assert!(!result.unwrap().is_empty(), "{case}");
        }
    }
    // With canaryService/stableService set the rule does not apply.
    let mut with_services = subset_desired(20);
    with_services.canary.service_name = "canary-svc".into();
    with_services.stable.service_name = "stable-svc".into();
    let status = ReplicaSetStatus {
        replica_sets: vec![rs("ro-c1", "c1", 3, 0)],
        aborting: false,
    };
    assert!(
        router
            .plan_with_replica_sets(&with_services, &status, &set)
            .is_ok()
    );
}

#[test]
fn delay_rule_still_applies_route_removals_and_the_early_reset() {
    // Argo removes managed routes and resets the weight to 0 before it delays the subsets;
    // those changes come out first, then the plan reports Waiting.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let header = json!({"name": "h", "route": [{"destination": {"host": "checkout", "subset": "canary"}, "weight": 100}]});
    let vs_obj = vs(
        json!({"http": [header, {"name": "primary", "route": [sdest("checkout", "stable", 60), sdest("checkout", "canary", 40)]}]}),
    );
    let set = objects([subsets("c1", "s1"), vs_obj]);
    let mut d = with_hashes(subset_desired(0), "c2", "s1");
    d.managed_routes = vec![absent("h")];
    let status = ReplicaSetStatus {
        replica_sets: vec![rs("ro-c2", "c2", 3, 0)],
        aborting: false,
    };
    let changes = router.plan_with_replica_sets(&d, &status, &set).unwrap();
    let mut after = set.clone();
    after.apply_all(&changes).unwrap();
    assert_eq!(after.get(&dr_key()).unwrap(), &subsets("c1", "s1"));
    assert_eq!(after.get(&vs_key()).unwrap(), &subset_vs(100, 0));
    assert_eq!(
        router.plan_with_replica_sets(&d, &status, &after),
        Err(RouterError::Waiting {
            message: "delaying destination rule switch: ReplicaSet ro-c2 not fully available"
                .into()
        })
    );
}

#[test]
fn settled_rollout_is_not_reported_as_delayed() {
    // Documented difference: Argo errors on every reconcile while a pod restarts; nothing
    // needs to change here, so the plan is simply empty.
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let set = objects([subsets("c1", "s1"), subset_vs(80, 20)]);
    let status = ReplicaSetStatus {
        replica_sets: vec![rs("ro-c1", "c1", 3, 2)],
        aborting: false,
    };
    assert_eq!(
        router.plan_with_replica_sets(&subset_desired(20), &status, &set),
        Ok(vec![])
    );
}
