//! End-to-end: the real controller against an API server (the in-memory `test-apiserver`, or a
//! real cluster given `ROLLOUT_ROUTER_TEST_KUBECONFIG`), with the test acting as the rollout
//! controller: it moves the Rollout's status and ReplicaSets through the steps.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod alb;
mod faults;
mod harness;
mod istio_subset;
mod lifecycle;
mod lifecycle_routers;
mod nginx;
mod rbac;

use harness::{Env, replica_sets, rollouts, user_view, virtual_services};
use rollout_router::rollout::{ReplicaSetView, Rollout};
use rollout_router::{engine, reconcile, routers, validation};
use rollout_router_core::ObjectSet;
use serde_json::{Value, json};
use test_apiserver::RequestMatch;

const STABLE: &str = "6c9d4b7f8";
const CANARY: &str = "84f7b9c6d";

fn rollout(vs_name: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "checkout", "annotations": {"rollout.argoproj.io/revision": "2"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": [{"name": "api", "image": "checkout:2"}]}},
            "strategy": {"canary": {
                "canaryService": "checkout-canary",
                "stableService": "checkout-stable",
                "steps": [
                    {"setWeight": 20},
                    {"setHeaderRoute": {"name": "beta", "match": [{"headerName": "x-beta", "headerValue": {"exact": "yes"}}]}},
                    {"setMirrorRoute": {"name": "shadow", "percentage": 50, "match": [{"method": {"exact": "GET"}}]}},
                    {"setWeight": 50}
                ],
                "trafficRouting": {
                    "managedRoutes": [{"name": "beta"}, {"name": "shadow"}],
                    "plugins": {"rollout-router/traffic": {"istio": {"virtualService": {"name": vs_name, "routes": ["primary"]}}}}
                }
            }}
        },
        "status": {"observedGeneration": "1", "stableRS": STABLE, "currentPodHash": STABLE, "currentStepIndex": 4}
    })
}

fn virtual_service() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "checkout", "labels": {"team": "payments"}},
        "spec": {
            "hosts": ["checkout.example.com"],
            "http": [
                {"name": "health", "match": [{"uri": {"exact": "/healthz"}}], "route": [{"destination": {"host": "checkout-stable"}}]},
                {"name": "primary", "retries": {"attempts": 3}, "route": [
                    {"destination": {"host": "checkout-stable", "port": {"number": 80}}, "weight": 100},
                    {"destination": {"host": "checkout-canary", "port": {"number": 80}}, "weight": 0}
                ]}
            ]
        }
    })
}

fn replica_set(uid: &str, hash: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("checkout-{hash}"),
            "labels": {"app": "checkout", "rollouts-pod-template-hash": hash},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "checkout", "uid": uid, "controller": true}]
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "checkout", "rollouts-pod-template-hash": hash}},
            "template": {"metadata": {"labels": {"app": "checkout", "rollouts-pod-template-hash": hash}}, "spec": {"containers": [{"name": "api", "image": "checkout"}]}}
        },
        "status": {"replicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas}
    })
}

/// What `render` predicts for the Rollout's current state, from the objects as they are now:
/// the same engine and router code, run offline.
async fn predict(env: &Env, objects: &[Value]) -> ObjectSet {
    let rollout_json = env.get(&rollouts(), "checkout").await.unwrap();
    let rollout: Rollout = serde_json::from_value(rollout_json).unwrap();
    let mut rs = Vec::new();
    for hash in [STABLE, CANARY] {
        if let Some(v) = env.get(&replica_sets(), &format!("checkout-{hash}")).await {
            rs.extend(ReplicaSetView::from_json(&v));
        }
    }
    let config = validation::plugin_config(&rollout, rollout_router::rollout::DEFAULT_PLUGIN_KEY)
        .unwrap()
        .unwrap();
    let built = routers::build(&config);
    let desired = engine::desired_traffic(&rollout, &rs, None).unwrap();
    let mut set: ObjectSet = objects.iter().cloned().collect();
    reconcile::plan_and_apply(&desired, &routers::as_dyn(&built), &mut set).unwrap();
    set
}

fn vs_key() -> rollout_router_core::ObjectKey {
    rollout_router_core::ObjectKey::new("networking.istio.io", "VirtualService", "", "checkout")
}

fn route_names(vs: &Value) -> Vec<String> {
    vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn weights(vs: &Value, route: &str) -> Vec<i64> {
    vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == route)
        .unwrap()["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["weight"].as_i64().unwrap_or(0))
        .collect()
}

fn writes_to(resource: &str) -> RequestMatch {
    RequestMatch::writes().resource(resource)
}

/// Moves the Rollout to `step` and waits until the controller has routed it; checks the
/// VirtualService against the prediction and that exactly one write reached it.
async fn step(env: &Env, index: i64, desired_weight: i32, routes: &str) -> Value {
    let before = env.get(&virtual_services(), "checkout").await.unwrap();
    let mark = env.server().map(|s| s.mark());
    env.patch_status(
        &rollouts(),
        "checkout",
        json!({"currentPodHash": CANARY, "currentStepIndex": index}),
    )
    .await;
    let mut before_ns = before.clone();
    before_ns["metadata"]["namespace"] = json!(env.namespace);
    let predicted = predict(env, &[before_ns]).await;
    let rt = env
        .wait_traffic("checkout", |rt| {
            rt.status.as_ref().is_some_and(|s| {
                s.desired_weight == Some(desired_weight)
                    && s.applied_weight == Some(desired_weight)
                    && s.routes == routes
                    && s.canary_hash == CANARY
            })
        })
        .await;
    let status = rt.status.unwrap();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "{status:?}"
    );
    let vs = env.get(&virtual_services(), "checkout").await.unwrap();
    let mut key = vs_key();
    key.namespace = env.namespace.clone();
    assert_eq!(
        user_view(vs.clone()),
        user_view(predicted.get(&key).unwrap().clone())
    );
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        let expected = usize::from(user_view(before) != user_view(vs.clone()));
        assert_eq!(
            server.count_since(mark, &writes_to("virtualservices")),
            expected
        );
    }
    vs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_host_split_full_rollout_then_deletion_hands_routing_back() {
    let mut env = Env::new("istio-host").await;
    let original = env.create(virtual_service()).await;
    let created = env.create(rollout("checkout")).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(replica_set(&uid, STABLE, 2)).await;
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;

    // Steady state before the update: RolloutTraffic reports 0, nothing is written.
    let rt = env
        .wait_traffic("checkout", |rt| {
            rt.status
                .as_ref()
                .is_some_and(|s| s.applied_weight == Some(0))
        })
        .await;
    assert_eq!(rt.spec.rollout.uid, uid);
    assert_eq!(
        user_view(env.get(&virtual_services(), "checkout").await.unwrap()),
        user_view(original.clone())
    );

    // The update: a new ReplicaSet, then every step.
    env.create(replica_set(&uid, CANARY, 1)).await;
    harness::wait_replica_set_cached(&env, &format!("checkout-{CANARY}")).await;
    let vs = step(&env, 0, 20, "").await;
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);
    let vs = step(&env, 1, 20, "beta").await;
    assert_eq!(route_names(&vs), vec!["beta", "health", "primary"]);
    let vs = step(&env, 2, 20, "beta,shadow").await;
    assert_eq!(
        route_names(&vs),
        vec!["beta", "shadow", "health", "primary"]
    );
    let vs = step(&env, 3, 50, "beta,shadow").await;
    assert_eq!(weights(&vs, "primary"), vec![50, 50]);

    // Steady state: a reconcile that finds everything in place writes nothing.
    if let Some(server) = env.server() {
        let mark = server.mark();
        let before = env.controllers[0].reconcile_count();
        env.patch(
            &rollouts(),
            "checkout",
            json!({"metadata": {"annotations": {"touched": "1"}}}),
        )
        .await;
        harness::within(async {
            while env.controllers[0].reconcile_count() <= before {
                tokio::task::yield_now().await;
            }
        })
        .await;
        let writes: Vec<_> = server
            .requests_since(mark)
            .into_iter()
            .filter(|r| r.verb.is_write() && r.resource.as_deref() != Some("rollouts"))
            .collect();
        assert!(writes.is_empty(), "steady-state writes: {writes:#?}");
    }

    // A user's unrelated edits during the rollout, and an edit of a managed weight.
    env.patch(
        &virtual_services(),
        "checkout",
        json!({"metadata": {"annotations": {"owner": "payments"}}}),
    )
    .await;
    let idx = route_names(&env.get(&virtual_services(), "checkout").await.unwrap())
        .iter()
        .position(|n| n == "primary")
        .unwrap();
    env.patch_json(
        &virtual_services(),
        "checkout",
        json!([
            {"op": "add", "path": format!("/spec/http/{idx}/timeout"), "value": "5s"},
            {"op": "replace", "path": format!("/spec/http/{idx}/route/0/weight"), "value": 70},
            {"op": "replace", "path": format!("/spec/http/{idx}/route/1/weight"), "value": 30}
        ]),
    )
    .await;
    let vs = env
        .wait(&virtual_services(), "checkout", |v| {
            v.is_some_and(|v| weights(v, "primary") == vec![50, 50])
        })
        .await
        .unwrap();
    assert_eq!(vs["spec"]["http"][idx]["timeout"], "5s");

    // Completion: the new ReplicaSet is scaled up and becomes stable; routing is handed back.
    env.patch(
        &replica_sets(),
        &format!("checkout-{CANARY}"),
        json!({"spec": {"replicas": 2}}),
    )
    .await;
    env.patch_status(
        &replica_sets(),
        &format!("checkout-{CANARY}"),
        json!({"replicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
    )
    .await;
    env.patch_status(
        &rollouts(),
        "checkout",
        json!({"stableRS": CANARY, "currentPodHash": CANARY, "currentStepIndex": 4}),
    )
    .await;
    env.wait_traffic("checkout", |rt| {
        rt.status.as_ref().is_some_and(|s| {
            s.step == "completed" && s.applied_weight == Some(0) && s.routes.is_empty()
        })
    })
    .await;
    let vs = env.get(&virtual_services(), "checkout").await.unwrap();
    assert_eq!(route_names(&vs), vec!["health", "primary"]);
    assert_eq!(weights(&vs, "primary"), vec![100, 0]);
    assert_eq!(vs["spec"]["http"][1]["timeout"], "5s");
    assert_eq!(vs["metadata"]["annotations"]["owner"], "payments");
    let mut expected = original.clone();
    expected["spec"]["http"][1]["timeout"] = json!("5s");
    expected["metadata"]["annotations"] = json!({"owner": "payments"});
    assert_eq!(user_view(vs), user_view(expected.clone()));

    // Deletion: RolloutTraffic is released and goes away; the VirtualService stays the user's.
    env.delete(&rollouts(), "checkout").await;
    harness::wait_object(&env.traffic_api(), "checkout", |o| o.is_none()).await;
    let vs = env.get(&virtual_services(), "checkout").await.unwrap();
    assert_eq!(user_view(vs), user_view(expected));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_virtual_service_is_reported_and_nothing_is_written() {
    let mut env = Env::new("istio-invalid").await;
    let created = env.create(rollout("does-not-exist")).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(replica_set(&uid, STABLE, 2)).await;
    env.create(replica_set(&uid, CANARY, 1)).await;
    env.patch_status(
        &rollouts(),
        "checkout",
        json!({"currentPodHash": CANARY, "currentStepIndex": 0}),
    )
    .await;
    let mark = env.server().map(|s| s.mark());
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;
    let rt = env
        .wait_traffic("checkout", |rt| {
            rt.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "InvalidConfig" && c.status == "True")
            })
        })
        .await;
    let status = rt.status.unwrap();
    let message = &status.last_error.as_ref().unwrap().message;
    assert!(message.contains("does-not-exist"), "{message}");
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(server.count_since(mark, &writes_to("virtualservices")), 0);
        assert!(server.count_since(mark, &writes_to("events")) >= 1);
    }
    env.shutdown().await;
}
