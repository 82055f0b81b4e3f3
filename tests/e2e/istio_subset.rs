//! End-to-end, Istio subset-level split: a VirtualService whose weights move and a
//! DestinationRule whose `canary`/`stable` subsets are pinned to the ReplicaSets' pod-template
//! hashes, through every step (weights, a header route, a mirror route, their removal),
//! completion and deletion of the Rollout.

use serde_json::{Value, json};

use crate::harness::{
    self, Env, Watched, assert_steady, destination_rules, drift_corrections, owned_replica_set,
    rollouts, route_step, scale_replica_set, user_view, virtual_services,
};

pub(crate) const NAME: &str = "catalog";
pub(crate) const STABLE: &str = "5b8c7d6f4";
pub(crate) const CANARY: &str = "7f6d9c8b5";
/// Number of steps in [`rollout`].
pub(crate) const STEPS: i64 = 7;

pub(crate) fn labels() -> Value {
    json!({"app": "catalog"})
}

pub(crate) fn rollout() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": NAME, "annotations": {"rollout.argoproj.io/revision": "2"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels()},
            "template": {"metadata": {"labels": labels()}, "spec": {"containers": [{"name": "catalog", "image": "catalog:2"}]}},
            "strategy": {"canary": {
                // Subset-level split: no canary/stable Services.
                "steps": [
                    {"setWeight": 20},
                    {"setHeaderRoute": {"name": "testers", "match": [{"headerName": "X-Catalog-Canary", "headerValue": {"exact": "true"}}]}},
                    {"setMirrorRoute": {"name": "mirror", "percentage": 20, "match": [{"method": {"exact": "GET"}, "path": {"prefix": "/catalog"}}]}},
                    {"setWeight": 50},
                    {"setHeaderRoute": {"name": "testers"}},
                    {"setMirrorRoute": {"name": "mirror"}},
                    {"setWeight": 80}
                ],
                "trafficRouting": {
                    "managedRoutes": [{"name": "testers"}, {"name": "mirror"}],
                    "plugins": {"rollout-router/traffic": {"istio": {
                        "virtualService": {"name": NAME, "routes": ["primary"]},
                        "destinationRule": {"name": NAME, "canarySubsetName": "canary", "stableSubsetName": "stable"}
                    }}}
                }
            }}
        },
        "status": {"observedGeneration": "1", "stableRS": STABLE, "currentPodHash": STABLE, "currentStepIndex": STEPS}
    })
}

/// Shared with another workload (the `admin` subset), which rollout-router never touches.
pub(crate) fn destination_rule() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": NAME},
        "spec": {
            "host": "catalog",
            "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s"}},
            "subsets": [
                {"name": "stable", "labels": {"app": "catalog", "rollouts-pod-template-hash": STABLE}},
                {"name": "canary", "labels": {"app": "catalog", "rollouts-pod-template-hash": STABLE}},
                {"name": "admin", "labels": {"app": "catalog-admin"}}
            ]
        }
    })
}

pub(crate) fn virtual_service() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": NAME},
        "spec": {
            "hosts": ["catalog"],
            "http": [
                {"name": "admin", "match": [{"uri": {"prefix": "/admin"}}], "route": [{"destination": {"host": "catalog", "subset": "admin"}}]},
                {"name": "primary", "timeout": "5s", "route": [
                    {"destination": {"host": "catalog", "subset": "stable", "port": {"number": 8080}}, "weight": 100},
                    {"destination": {"host": "catalog", "subset": "canary", "port": {"number": 8080}}, "weight": 0}
                ]}
            ]
        }
    })
}

pub(crate) fn route<'a>(vs: &'a Value, name: &str) -> &'a Value {
    vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no route {name} in {vs:#}"))
}

pub(crate) fn route_names(vs: &Value) -> Vec<&str> {
    vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default())
        .collect()
}

/// `(subset, weight)` of the primary route's destinations, in order.
pub(crate) fn weights(vs: &Value) -> Vec<(String, i64)> {
    route(vs, "primary")["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["destination"]["subset"].as_str().unwrap().to_owned(),
                d["weight"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

pub(crate) fn split(stable: i64, canary: i64) -> Vec<(String, i64)> {
    vec![("stable".to_owned(), stable), ("canary".to_owned(), canary)]
}

/// The hash label of each subset, in order.
pub(crate) fn subset_hashes(dr: &Value) -> Vec<(String, Option<String>)> {
    dr["spec"]["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["labels"]["rollouts-pod-template-hash"]
                    .as_str()
                    .map(str::to_owned),
            )
        })
        .collect()
}

pub(crate) fn hashes(stable: &str, canary: &str) -> Vec<(String, Option<String>)> {
    vec![
        ("stable".to_owned(), Some(stable.to_owned())),
        ("canary".to_owned(), Some(canary.to_owned())),
        ("admin".to_owned(), None),
    ]
}

pub(crate) fn watched() -> [Watched; 2] {
    [
        Watched::new(virtual_services(), NAME),
        Watched::new(destination_rules(), NAME),
    ]
}

/// Moves the Rollout to step `index`; returns the VirtualService and the DestinationRule.
pub(crate) async fn step(env: &Env, index: i64, weight: i32, routes: &str) -> (Value, Value) {
    let mut objects = route_step(
        env,
        NAME,
        json!({"currentPodHash": CANARY, "currentStepIndex": index}),
        &watched(),
        |s| {
            s.desired_weight == Some(weight)
                && s.applied_weight == Some(weight)
                && s.routes == routes
                && s.canary_hash == CANARY
                && s.stable_hash == STABLE
        },
    )
    .await
    .into_iter();
    (
        objects.next().flatten().unwrap(),
        objects.next().flatten().unwrap(),
    )
}

/// Waits until the drift counter exceeds `count`.
async fn wait_drift_corrected(env: &Env, count: u64) {
    harness::within(async {
        while drift_corrections(env, "istio") <= count {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_subset_split_full_rollout_then_deletion_hands_routing_back() {
    let mut env = Env::new("istio-subset").await;
    let original_dr = env.create(destination_rule()).await;
    let original_vs = env.create(virtual_service()).await;
    let created = env.create(rollout()).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(owned_replica_set(NAME, &labels(), &uid, STABLE, 2))
        .await;
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;

    // Steady state before the update: both subsets already select the stable pods, 100/0.
    env.wait_traffic(NAME, |rt| {
        rt.status
            .as_ref()
            .is_some_and(|s| s.applied_weight == Some(0) && s.stable_hash == STABLE)
    })
    .await;
    assert_steady(&env, NAME).await;
    let dr = env.get(&destination_rules(), NAME).await.unwrap();
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    assert_eq!(user_view(dr), user_view(original_dr.clone()));
    assert_eq!(user_view(vs), user_view(original_vs.clone()));

    // The update: the new ReplicaSet, then every step. The DestinationRule changes once (the
    // canary subset follows the new pods), the VirtualService on every step.
    env.create(owned_replica_set(NAME, &labels(), &uid, CANARY, 1))
        .await;
    harness::wait_replica_set_cached(&env, &format!("{NAME}-{CANARY}")).await;
    let (vs, dr) = step(&env, 0, 20, "").await;
    assert_eq!(weights(&vs), split(80, 20));
    assert_eq!(subset_hashes(&dr), hashes(STABLE, CANARY));
    let (vs, _) = step(&env, 1, 20, "testers").await;
    assert_eq!(route_names(&vs), ["testers", "admin", "primary"]);
    assert_eq!(
        route(&vs, "testers")["route"][0]["destination"],
        json!({"host": "catalog", "subset": "canary", "port": {"number": 8080}})
    );
    let (vs, _) = step(&env, 2, 20, "testers,mirror").await;
    assert_eq!(route_names(&vs), ["testers", "mirror", "admin", "primary"]);
    assert_eq!(
        route(&vs, "mirror")["mirror"],
        json!({"host": "catalog", "subset": "canary", "port": {"number": 8080}})
    );
    let (vs, dr) = step(&env, 3, 50, "testers,mirror").await;
    assert_eq!(weights(&vs), split(50, 50));
    assert_eq!(subset_hashes(&dr), hashes(STABLE, CANARY));

    assert_steady(&env, NAME).await;

    // A user's unrelated edits (an annotation, a new route, a changed timeout; a changed traffic
    // policy and another subset's label), and edits of managed fields: the primary route's
    // weights and the canary subset's hash.
    let drift_before = drift_corrections(&env, "istio");
    let primary = route_names(&vs)
        .iter()
        .position(|n| *n == "primary")
        .unwrap();
    env.patch_json(
        &virtual_services(),
        NAME,
        json!([
            {"op": "add", "path": "/metadata/annotations", "value": {"owner": "catalog-team"}},
            {"op": "add", "path": "/spec/http/-", "value": {"name": "legacy", "match": [{"uri": {"prefix": "/v1"}}], "route": [{"destination": {"host": "catalog-v1"}}]}},
            {"op": "replace", "path": format!("/spec/http/{primary}/timeout"), "value": "7s"},
            {"op": "replace", "path": format!("/spec/http/{primary}/route/0/weight"), "value": 70},
            {"op": "replace", "path": format!("/spec/http/{primary}/route/1/weight"), "value": 30}
        ]),
    )
    .await;
    let vs = env
        .wait(&virtual_services(), NAME, |v| {
            v.is_some_and(|v| weights(v) == split(50, 50))
        })
        .await
        .unwrap();
    // One object at a time: the drift counter then tells that each correction is complete.
    wait_drift_corrected(&env, drift_before).await;
    let drift_before = drift_corrections(&env, "istio");
    env.patch_json(
        &destination_rules(),
        NAME,
        json!([
            {"op": "replace", "path": "/spec/trafficPolicy/outlierDetection/consecutive5xxErrors", "value": 7},
            {"op": "add", "path": "/spec/subsets/2/labels/tier", "value": "internal"},
            {"op": "replace", "path": "/spec/subsets/1/labels/rollouts-pod-template-hash", "value": "0000000000"}
        ]),
    )
    .await;
    let dr = env
        .wait(&destination_rules(), NAME, |v| {
            v.is_some_and(|v| subset_hashes(v) == hashes(STABLE, CANARY))
        })
        .await
        .unwrap();
    assert_eq!(route(&vs, "primary")["timeout"], "7s");
    assert_eq!(
        route(&vs, "legacy")["route"][0]["destination"]["host"],
        "catalog-v1"
    );
    assert_eq!(vs["metadata"]["annotations"]["owner"], "catalog-team");
    assert_eq!(
        dr["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"],
        7
    );
    assert_eq!(dr["spec"]["subsets"][2]["labels"]["tier"], "internal");
    wait_drift_corrected(&env, drift_before).await;

    // The remaining steps keep the user's edits.
    let (vs, _) = step(&env, 4, 50, "mirror").await;
    assert_eq!(route_names(&vs), ["mirror", "admin", "primary", "legacy"]);
    let (vs, _) = step(&env, 5, 50, "").await;
    assert_eq!(route_names(&vs), ["admin", "primary", "legacy"]);
    // 80 % of 2 replicas: the rollout controller scales the new ReplicaSet up first.
    scale_replica_set(&env, &format!("{NAME}-{CANARY}"), 2).await;
    let (vs, _) = step(&env, 6, 80, "").await;
    assert_eq!(weights(&vs), split(20, 80));
    assert_eq!(route(&vs, "primary")["timeout"], "7s");

    // What the user's objects are with the user's edits and nothing of rollout-router's.
    let mut users_vs = original_vs.clone();
    users_vs["metadata"]["annotations"] = json!({"owner": "catalog-team"});
    users_vs["spec"]["http"][1]["timeout"] = json!("7s");
    users_vs["spec"]["http"]
        .as_array_mut()
        .unwrap()
        .push(route(&vs, "legacy").clone());
    let mut users_dr = original_dr.clone();
    users_dr["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] = json!(7);
    users_dr["spec"]["subsets"][2]["labels"]["tier"] = json!("internal");

    // Completion: the new ReplicaSet becomes stable; both subsets select it, 100/0, and
    // everything else is the user's.
    let objects = route_step(
        &env,
        NAME,
        json!({"stableRS": CANARY, "currentPodHash": CANARY, "currentStepIndex": STEPS}),
        &watched(),
        |s| {
            s.step == "completed"
                && s.applied_weight == Some(0)
                && s.routes.is_empty()
                && s.stable_hash == CANARY
        },
    )
    .await;
    let (vs, dr) = (objects[0].clone().unwrap(), objects[1].clone().unwrap());
    assert_eq!(user_view(vs), user_view(users_vs.clone()));
    let mut completed_dr = users_dr.clone();
    for i in [0, 1] {
        completed_dr["spec"]["subsets"][i]["labels"]["rollouts-pod-template-hash"] = json!(CANARY);
    }
    assert_eq!(user_view(dr), user_view(completed_dr));
    assert_steady(&env, NAME).await;

    // Deletion: RolloutTraffic is released and goes away; the journal hands the subsets' labels
    // back as the user wrote them; both objects are the user's.
    env.delete(&rollouts(), NAME).await;
    harness::wait_object(&env.traffic_api(), NAME, |o| o.is_none()).await;
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    let dr = env.get(&destination_rules(), NAME).await.unwrap();
    assert_eq!(user_view(vs), user_view(users_vs));
    assert_eq!(user_view(dr), user_view(users_dr));
    env.shutdown().await;
}
