//! End-to-end, NGINX: the user's stable Ingress (only read) and the canary Ingress rollout-router
//! creates, weights it and routes a header through (`canary-by-header`), through every step,
//! completion (canary Ingress deleted) and deletion of the Rollout.

use serde_json::{Value, json};

use crate::harness::{
    self, Env, Watched, assert_steady, drift_corrections, ingresses, owned_replica_set, rollouts,
    route_step, scale_replica_set, user_view,
};

pub(crate) const NAME: &str = "shop";
pub(crate) const STABLE_INGRESS: &str = "shop-public";
/// `<rollout>-<stable ingress>-canary`, Argo's name.
pub(crate) const CANARY_INGRESS: &str = "shop-shop-public-canary";
pub(crate) const STABLE: &str = "5f6b7c8d9";
pub(crate) const CANARY: &str = "7d9c8b6f5";
/// Number of steps in [`rollout`].
pub(crate) const STEPS: i64 = 5;
const PREFIX: &str = "nginx.ingress.kubernetes.io";

pub(crate) fn labels() -> Value {
    json!({"app": "shop"})
}

pub(crate) fn rollout() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": NAME, "annotations": {"rollout.argoproj.io/revision": "2"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels()},
            "template": {"metadata": {"labels": labels()}, "spec": {"containers": [{"name": "web", "image": "shop-web:2"}]}},
            "strategy": {"canary": {
                "canaryService": "shop-canary",
                "stableService": "shop-stable",
                "steps": [
                    {"setWeight": 10},
                    {"setHeaderRoute": {"name": "canary-header", "match": [{"headerName": "X-Canary", "headerValue": {"exact": "always"}}]}},
                    {"setWeight": 50},
                    {"setHeaderRoute": {"name": "canary-header"}},
                    {"setWeight": 80}
                ],
                "trafficRouting": {
                    "managedRoutes": [{"name": "canary-header"}],
                    "plugins": {"rollout-router/traffic": {"nginx": {
                        "stableIngress": STABLE_INGRESS,
                        "canaryIngressAnnotations": {"storefront.example.com/owner": "team-checkout"}
                    }}}
                }
            }}
        },
        "status": {"observedGeneration": "1", "stableRS": STABLE, "currentPodHash": STABLE, "currentStepIndex": STEPS}
    })
}

/// The team's Ingress: `/static` goes to a separate Service and is no part of the canary.
pub(crate) fn stable_ingress() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": STABLE_INGRESS, "annotations": {
            "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
            "cert-manager.io/cluster-issuer": "letsencrypt"
        }},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-example-com-tls"}],
            "rules": [{"host": "shop.example.com", "http": {"paths": [
                {"path": "/static", "pathType": "Prefix", "backend": {"service": {"name": "shop-assets", "port": {"number": 80}}}},
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop-stable", "port": {"name": "http"}}}}
            ]}}]
        }
    })
}

pub(crate) fn annotation<'a>(ingress: &'a Value, key: &str) -> Option<&'a str> {
    ingress["metadata"]["annotations"][key].as_str()
}

pub(crate) fn nginx(ingress: &Value, key: &str) -> Option<String> {
    annotation(ingress, &format!("{PREFIX}/{key}")).map(str::to_owned)
}

pub(crate) fn watched() -> [Watched; 2] {
    [
        Watched::new(ingresses(), STABLE_INGRESS),
        Watched::new(ingresses(), CANARY_INGRESS),
    ]
}

/// Moves the Rollout to step `index`; returns the stable and the canary Ingress.
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
        },
    )
    .await
    .into_iter();
    (
        objects.next().flatten().unwrap(),
        objects.next().flatten().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_canary_ingress_full_rollout_then_deletion_hands_routing_back() {
    let mut env = Env::new("nginx").await;
    let original = env.create(stable_ingress()).await;
    let created = env.create(rollout()).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(owned_replica_set(NAME, &labels(), &uid, STABLE, 2))
        .await;
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;

    // Steady state before the update: no canary Ingress, nothing written.
    env.wait_traffic(NAME, |rt| {
        rt.status
            .as_ref()
            .is_some_and(|s| s.applied_weight == Some(0) && s.desired_weight == Some(0))
    })
    .await;
    assert_steady(&env, NAME).await;
    assert!(env.get(&ingresses(), CANARY_INGRESS).await.is_none());
    assert_eq!(
        user_view(env.get(&ingresses(), STABLE_INGRESS).await.unwrap()),
        user_view(original.clone())
    );

    // The update: the canary Ingress is created at the first step and follows every step; the
    // stable Ingress is never written.
    env.create(owned_replica_set(NAME, &labels(), &uid, CANARY, 1))
        .await;
    harness::wait_replica_set_cached(&env, &format!("{NAME}-{CANARY}")).await;
    let (_, canary) = step(&env, 0, 10, "").await;
    assert_eq!(nginx(&canary, "canary").as_deref(), Some("true"));
    assert_eq!(nginx(&canary, "canary-weight").as_deref(), Some("10"));
    assert_eq!(
        annotation(&canary, "storefront.example.com/owner"),
        Some("team-checkout")
    );
    assert_eq!(
        canary["spec"]["rules"][0]["http"]["paths"],
        json!([{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop-canary", "port": {"name": "http"}}}}])
    );
    assert_eq!(canary["metadata"]["ownerReferences"][0]["uid"], uid);
    let (_, canary) = step(&env, 1, 10, "canary-header").await;
    assert_eq!(
        nginx(&canary, "canary-by-header").as_deref(),
        Some("X-Canary")
    );
    assert_eq!(
        nginx(&canary, "canary-by-header-value").as_deref(),
        Some("always")
    );
    let (_, canary) = step(&env, 2, 50, "canary-header").await;
    assert_eq!(nginx(&canary, "canary-weight").as_deref(), Some("50"));
    assert_steady(&env, NAME).await;

    // A user's edits of the stable Ingress (an annotation, a rule for another Service) change
    // nothing in the canary Ingress.
    let mark = env.server().map(test_apiserver::TestApiServer::mark);
    let reconciles = env.controllers[0].reconcile_count();
    env.patch_json(
        &ingresses(),
        STABLE_INGRESS,
        json!([
            {"op": "add", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1proxy-read-timeout", "value": "60"},
            {"op": "add", "path": "/spec/rules/-", "value": {"host": "admin.shop.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop-admin", "port": {"number": 80}}}}
            ]}}}
        ]),
    )
    .await;
    harness::within(async {
        while env.controllers[0].reconcile_count() <= reconciles {
            tokio::task::yield_now().await;
        }
    })
    .await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(
            harness::writes_to_object(server, mark, &watched()[1]),
            0,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    // The user's own label and annotation on the canary Ingress survive; an edit of the weight
    // rollout-router manages is put back.
    let drift_before = drift_corrections(&env, "nginx");
    env.patch(
        &ingresses(),
        CANARY_INGRESS,
        json!({"metadata": {
            "labels": {"team": "web"},
            "annotations": {"example.com/note": "keep", "nginx.ingress.kubernetes.io/canary-weight": "30"}
        }}),
    )
    .await;
    let canary = env
        .wait(&ingresses(), CANARY_INGRESS, |v| {
            v.is_some_and(|v| nginx(v, "canary-weight").as_deref() == Some("50"))
        })
        .await
        .unwrap();
    assert_eq!(canary["metadata"]["labels"]["team"], "web");
    assert_eq!(annotation(&canary, "example.com/note"), Some("keep"));
    harness::within(async {
        while drift_corrections(&env, "nginx") <= drift_before {
            tokio::task::yield_now().await;
        }
    })
    .await;

    // The remaining steps keep the user's edits.
    let (_, canary) = step(&env, 3, 50, "").await;
    assert_eq!(nginx(&canary, "canary-by-header"), None);
    assert_eq!(nginx(&canary, "canary-by-header-value"), None);
    assert_eq!(annotation(&canary, "example.com/note"), Some("keep"));
    // 80 % of 2 replicas: the rollout controller scales the new ReplicaSet up first.
    scale_replica_set(&env, &format!("{NAME}-{CANARY}"), 2).await;
    let (stable, canary) = step(&env, 4, 80, "").await;
    assert_eq!(nginx(&canary, "canary-weight").as_deref(), Some("80"));
    assert_eq!(canary["metadata"]["labels"]["team"], "web");

    let mut users = original.clone();
    users["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] =
        json!("60");
    users["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(stable["spec"]["rules"][1].clone());
    assert_eq!(user_view(stable), user_view(users.clone()));

    // Completion: the new ReplicaSet becomes stable; the canary Ingress is deleted.
    let objects = route_step(
        &env,
        NAME,
        json!({"stableRS": CANARY, "currentPodHash": CANARY, "currentStepIndex": STEPS}),
        &watched(),
        |s| s.step == "completed" && s.applied_weight == Some(0) && s.routes.is_empty(),
    )
    .await;
    assert!(objects[1].is_none(), "{:#?}", objects[1]);
    assert_eq!(
        user_view(objects[0].clone().unwrap()),
        user_view(users.clone())
    );
    assert_steady(&env, NAME).await;

    // Deletion: RolloutTraffic is released and goes away; the stable Ingress is the user's.
    env.delete(&rollouts(), NAME).await;
    harness::wait_object(&env.traffic_api(), NAME, |o| o.is_none()).await;
    assert_eq!(
        user_view(env.get(&ingresses(), STABLE_INGRESS).await.unwrap()),
        user_view(users)
    );
    assert!(env.get(&ingresses(), CANARY_INGRESS).await.is_none());
    env.shutdown().await;
}
