//! End-to-end, AWS ALB: the user's Ingress, whose forward action annotation rollout-router
//! weights and on which it programs a header route (action + condition annotations and a `/*`
//! path), through every step, completion and deletion of the Rollout (the journal hands the
//! user's own action text back).

use serde_json::{Value, json};

use crate::harness::{
    self, Env, Watched, assert_steady, drift_corrections, ingresses, owned_replica_set, rollouts,
    route_step, scale_replica_set, user_view,
};

pub(crate) const NAME: &str = "checkout";
pub(crate) const INGRESS: &str = "checkout";
pub(crate) const STABLE: &str = "6d8f9c7b5";
pub(crate) const CANARY: &str = "84b7c6d9f";
/// Number of steps in [`rollout`].
pub(crate) const STEPS: i64 = 5;
pub(crate) const ACTION: &str = "alb.ingress.kubernetes.io/actions.checkout-stable";
pub(crate) const ROUTE_ACTION: &str = "alb.ingress.kubernetes.io/actions.canary-header";
pub(crate) const ROUTE_CONDITION: &str = "alb.ingress.kubernetes.io/conditions.canary-header";
pub(crate) const BOOKKEEPING: &str = "rollouts.argoproj.io/managed-alb-annotations";
/// The forward action as the user wrote it by hand (LBC needs it for the `use-annotation`
/// backend): the same meaning as rollout-router's 100 % stable, other bytes.
const USERS_ACTION: &str = r#"{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"ServiceName": "checkout-stable", "ServicePort": "80", "Weight": 100}]}}"#;

pub(crate) fn labels() -> Value {
    json!({"app": "checkout"})
}

pub(crate) fn rollout() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": NAME, "annotations": {"rollout.argoproj.io/revision": "2"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels()},
            "template": {"metadata": {"labels": labels()}, "spec": {"containers": [{"name": "api", "image": "checkout:2"}]}},
            "strategy": {"canary": {
                "canaryService": "checkout-canary",
                "stableService": "checkout-stable",
                // No setMirrorRoute: the alb router rejects it (ALB cannot mirror).
                "steps": [
                    {"setWeight": 10},
                    {"setHeaderRoute": {"name": "canary-header", "match": [{"headerName": "X-Canary", "headerValue": {"exact": "always"}}]}},
                    {"setWeight": 50},
                    {"setHeaderRoute": {"name": "canary-header"}},
                    {"setWeight": 80}
                ],
                "trafficRouting": {
                    "managedRoutes": [{"name": "canary-header"}],
                    "plugins": {"rollout-router/traffic": {"alb": {"ingress": INGRESS, "servicePort": 80}}}
                }
            }}
        },
        "status": {"observedGeneration": "1", "stableRS": STABLE, "currentPodHash": STABLE, "currentStepIndex": STEPS}
    })
}

pub(crate) fn ingress() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": INGRESS, "labels": {"app.kubernetes.io/name": "checkout"}, "annotations": {
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/healthcheck-path": "/healthz",
            ACTION: USERS_ACTION
        }},
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"host": "checkout.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "checkout-stable", "port": {"name": "use-annotation"}}}}
            ]}}]
        }
    })
}

pub(crate) fn annotation<'a>(ingress: &'a Value, key: &str) -> Option<&'a str> {
    ingress["metadata"]["annotations"][key].as_str()
}

/// The weighted action rollout-router writes (Argo's exact bytes).
pub(crate) fn action(canary: i64) -> String {
    format!(
        r#"{{"Type":"forward","ForwardConfig":{{"TargetGroups":[{{"ServiceName":"checkout-canary","ServicePort":"80","Weight":{canary}}},{{"ServiceName":"checkout-stable","ServicePort":"80","Weight":{}}}]}}}}"#,
        100 - canary
    )
}

/// Backend Service names of the first rule's paths, in order.
pub(crate) fn backends(ingress: &Value) -> Vec<&str> {
    ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["backend"]["service"]["name"].as_str().unwrap())
        .collect()
}

pub(crate) fn watched() -> [Watched; 1] {
    [Watched::new(ingresses(), INGRESS)]
}

/// Moves the Rollout to step `index`; returns the Ingress.
pub(crate) async fn step(env: &Env, index: i64, weight: i32, routes: &str) -> Value {
    let objects = route_step(
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
    .await;
    objects.into_iter().next().flatten().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_ingress_annotations_full_rollout_then_deletion_hands_routing_back() {
    let mut env = Env::new("alb").await;
    let original = env.create(ingress()).await;
    let created = env.create(rollout()).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(owned_replica_set(NAME, &labels(), &uid, STABLE, 2))
        .await;
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;

    // Steady state before the update: the user's action already sends everything to stable;
    // nothing is written.
    env.wait_traffic(NAME, |rt| {
        rt.status
            .as_ref()
            .is_some_and(|s| s.applied_weight == Some(0) && s.desired_weight == Some(0))
    })
    .await;
    assert_steady(&env, NAME).await;
    assert_eq!(
        user_view(env.get(&ingresses(), INGRESS).await.unwrap()),
        user_view(original.clone())
    );

    // The update: one patch of the Ingress per step.
    env.create(owned_replica_set(NAME, &labels(), &uid, CANARY, 1))
        .await;
    harness::wait_replica_set_cached(&env, &format!("{NAME}-{CANARY}")).await;
    let ing = step(&env, 0, 10, "").await;
    assert_eq!(annotation(&ing, ACTION), Some(action(10).as_str()));
    assert_eq!(
        annotation(&ing, BOOKKEEPING),
        Some(format!(r#"{{"{NAME}":["{ACTION}"]}}"#).as_str())
    );
    let ing = step(&env, 1, 10, "canary-header").await;
    assert_eq!(
        annotation(&ing, ROUTE_ACTION),
        Some(
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"checkout-canary","ServicePort":"80","Weight":100}]}}"#
        )
    );
    assert_eq!(
        annotation(&ing, ROUTE_CONDITION),
        Some(
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Canary","values":["always"]}}]"#
        )
    );
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0],
        json!({"path": "/*", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "canary-header", "port": {"name": "use-annotation"}}}})
    );
    assert_eq!(backends(&ing), ["canary-header", "checkout-stable"]);
    let ing = step(&env, 2, 50, "canary-header").await;
    assert_eq!(annotation(&ing, ACTION), Some(action(50).as_str()));
    assert_steady(&env, NAME).await;

    // A user's unrelated edits (a changed and a new annotation, a rule for another host) need
    // no write.
    let mark = env.server().map(test_apiserver::TestApiServer::mark);
    let reconciles = env.controllers[0].reconcile_count();
    env.patch_json(
        &ingresses(),
        INGRESS,
        json!([
            {"op": "replace", "path": "/metadata/annotations/alb.ingress.kubernetes.io~1healthcheck-path", "value": "/ready"},
            {"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "payments"},
            {"op": "add", "path": "/spec/rules/-", "value": {"host": "admin.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "checkout-admin", "port": {"number": 80}}}}
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
        // The test's own patch only.
        assert_eq!(
            harness::writes_to_object(server, mark, &watched()[0]),
            1,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    // An edit of the managed weights is put back.
    let drift_before = drift_corrections(&env, "alb");
    env.patch(
        &ingresses(),
        INGRESS,
        json!({"metadata": {"annotations": {ACTION: action(30)}}}),
    )
    .await;
    let ing = env
        .wait(&ingresses(), INGRESS, |v| {
            v.is_some_and(|v| annotation(v, ACTION) == Some(action(50).as_str()))
        })
        .await
        .unwrap();
    assert_eq!(
        annotation(&ing, "alb.ingress.kubernetes.io/healthcheck-path"),
        Some("/ready")
    );
    assert_eq!(annotation(&ing, "example.com/owner"), Some("payments"));
    harness::within(async {
        while drift_corrections(&env, "alb") <= drift_before {
            tokio::task::yield_now().await;
        }
    })
    .await;

    // The remaining steps keep the user's edits; the header route goes away completely.
    let ing = step(&env, 3, 50, "").await;
    assert_eq!(annotation(&ing, ROUTE_ACTION), None);
    assert_eq!(annotation(&ing, ROUTE_CONDITION), None);
    assert_eq!(backends(&ing), ["checkout-stable"]);
    // 80 % of 2 replicas: the rollout controller scales the new ReplicaSet up first.
    scale_replica_set(&env, &format!("{NAME}-{CANARY}"), 2).await;
    let ing = step(&env, 4, 80, "").await;
    assert_eq!(annotation(&ing, ACTION), Some(action(80).as_str()));

    let mut users = original.clone();
    let annotations = &mut users["metadata"]["annotations"];
    annotations["alb.ingress.kubernetes.io/healthcheck-path"] = json!("/ready");
    annotations["example.com/owner"] = json!("payments");
    users["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(ing["spec"]["rules"][1].clone());

    // Completion: the new ReplicaSet becomes stable; the action goes back to 100 % stable (in
    // rollout-router's bytes) and the bookkeeping entry goes; the rest is the user's.
    let objects = route_step(
        &env,
        NAME,
        json!({"stableRS": CANARY, "currentPodHash": CANARY, "currentStepIndex": STEPS}),
        &watched(),
        |s| s.step == "completed" && s.applied_weight == Some(0) && s.routes.is_empty(),
    )
    .await;
    let mut completed = users.clone();
    completed["metadata"]["annotations"][ACTION] = json!(
        r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"checkout-stable","ServicePort":"80","Weight":100}]}}"#
    );
    assert_eq!(user_view(objects[0].clone().unwrap()), user_view(completed));
    assert_steady(&env, NAME).await;

    // Deletion: RolloutTraffic is released and goes away; the journal puts the user's own action
    // text back: the annotations are exactly the user's.
    env.delete(&rollouts(), NAME).await;
    harness::wait_object(&env.traffic_api(), NAME, |o| o.is_none()).await;
    assert_eq!(
        user_view(env.get(&ingresses(), INGRESS).await.unwrap()),
        user_view(users)
    );
    env.shutdown().await;
}

/// 100 % to stable in rollout-router's bytes: what a settled Rollout's Ingress carries.
pub(crate) fn stable_action() -> String {
    r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"checkout-stable","ServicePort":"80","Weight":100}]}}"#.to_owned()
}

// A freshly installed Rollout that never had an update (settled: release mode) whose Ingress
// routes through `use-annotation` but has no action yet: LBC cannot build that rule without it,
// so rollout-router adds the 100 % stable action right away (Argo writes it on every reconcile,
// spec 30 §2.4), RolloutTraffic is Ready, the next reconcile writes nothing, and deleting the
// Rollout removes exactly what was added (the journal), giving the user's Ingress back byte for
// byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_fresh_rollout_gets_the_stable_action_before_any_update() {
    let mut env = Env::new("alb-fresh").await;
    let mut fresh = ingress();
    fresh["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(ACTION);
    let original = env.create(fresh).await;
    assert_eq!(annotation(&original, ACTION), None);
    let created = env.create(rollout()).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(owned_replica_set(NAME, &labels(), &uid, STABLE, 2))
        .await;
    let mark = env.server().map(test_apiserver::TestApiServer::mark);
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;

    let rt = env
        .wait_traffic(NAME, |rt| {
            rt.status.as_ref().is_some_and(|s| {
                s.desired_weight == Some(0)
                    && s.applied_weight == Some(0)
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .await;
    let status = rt.status.unwrap();
    // The write is journaled: the action did not exist before.
    let entries: Vec<_> = status
        .journal
        .iter()
        .filter(|e| e.kind == "Ingress" && e.name == INGRESS)
        .collect();
    assert_eq!(entries.len(), 1, "{:#?}", status.journal);
    assert_eq!(
        entries[0].path,
        vec![json!("metadata"), json!("annotations"), json!(ACTION)]
    );
    assert_eq!(entries[0].original, None);
    assert_eq!(entries[0].written, Some(json!(stable_action())));

    // Only the action was added: no bookkeeping entry, everything else is the user's.
    let ing = env.get(&ingresses(), INGRESS).await.unwrap();
    let mut expected = original.clone();
    expected["metadata"]["annotations"][ACTION] = json!(stable_action());
    assert_eq!(user_view(ing), user_view(expected));
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        harness::logged_traffic_status(&env, NAME).await;
        assert_eq!(
            harness::writes_to_object(server, mark, &watched()[0]),
            1,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    assert_steady(&env, NAME).await;

    // Deletion: the journal removes the action it added; the Ingress is the user's again, byte
    // for byte, with one write.
    let mark = env.server().map(test_apiserver::TestApiServer::mark);
    env.delete(&rollouts(), NAME).await;
    harness::wait_object(&env.traffic_api(), NAME, |o| o.is_none()).await;
    let ing = env.get(&ingresses(), INGRESS).await.unwrap();
    assert_eq!(
        serde_json::to_string(&user_view(ing)).unwrap(),
        serde_json::to_string(&user_view(original)).unwrap()
    );
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(
            harness::writes_to_object(server, mark, &watched()[0]),
            1,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    env.shutdown().await;
}
