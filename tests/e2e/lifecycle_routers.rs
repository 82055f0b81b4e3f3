//! End-to-end lifecycle cases for Istio subset split, NGINX and ALB (issue #7; lifecycle.rs has
//! them for Istio host split): an Argo-style abort in the middle of an update while the user
//! edits their object, and a full promotion in the middle of an update followed by completion.
//! Every phase is checked against the offline render prediction, with one write per changed
//! object and none once settled.

use rollout_router::traffic::RolloutTrafficStatus;
use serde_json::{Value, json};

use crate::harness::{
    self, Env, Watched, assert_steady, owned_replica_set, replica_sets, route_step,
    scale_replica_set, user_view,
};
use crate::{alb, istio_subset, nginx};

/// What the generic phases need to know of one router's fixtures.
struct Fixture {
    name: &'static str,
    stable: &'static str,
    canary: &'static str,
    /// Number of steps of the Rollout.
    steps: i64,
    /// `canaryService`/`stableService` ("" for a subset-level split).
    services: (&'static str, &'static str),
    watched: Vec<Watched>,
}

impl Fixture {
    fn istio_subset() -> Self {
        Self {
            name: istio_subset::NAME,
            stable: istio_subset::STABLE,
            canary: istio_subset::CANARY,
            steps: istio_subset::STEPS,
            services: ("", ""),
            watched: istio_subset::watched().to_vec(),
        }
    }

    fn nginx() -> Self {
        Self {
            name: nginx::NAME,
            stable: nginx::STABLE,
            canary: nginx::CANARY,
            steps: nginx::STEPS,
            services: ("shop-canary", "shop-stable"),
            watched: nginx::watched().to_vec(),
        }
    }

    fn alb() -> Self {
        Self {
            name: alb::NAME,
            stable: alb::STABLE,
            canary: alb::CANARY,
            steps: alb::STEPS,
            services: ("checkout-canary", "checkout-stable"),
            watched: alb::watched().to_vec(),
        }
    }

    fn canary_rs(&self) -> String {
        format!("{}-{}", self.name, self.canary)
    }

    /// Argo's `status.canary.weights` (its memory for promote-full, spec 00 §5).
    fn recorded(&self, canary_weight: i64, stable_hash: &str) -> Value {
        let destination = |service: &str, weight: i64, hash: &str| {
            let mut d = json!({"weight": weight, "podTemplateHash": hash});
            if !service.is_empty() {
                d["serviceName"] = json!(service);
            }
            d
        };
        json!({"weights": {
            "canary": destination(self.services.0, canary_weight, self.canary),
            "stable": destination(self.services.1, 100 - canary_weight, stable_hash)
        }})
    }
}

/// The environment of an update in progress: the user's routing `objects`, the Rollout with its
/// stable ReplicaSet, the controller running (steady state reached), then the canary ReplicaSet.
/// Returns the objects as the user created them.
async fn update_in_progress(
    prefix: &str,
    f: &Fixture,
    rollout: Value,
    labels: &Value,
    objects: Vec<Value>,
) -> (Env, Vec<Value>) {
    let mut env = Env::new(prefix).await;
    let mut originals = Vec::new();
    for o in objects {
        originals.push(env.create(o).await);
    }
    let created = env.create(rollout).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(owned_replica_set(f.name, labels, &uid, f.stable, 2))
        .await;
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;
    env.wait_traffic(f.name, |rt| {
        rt.status
            .as_ref()
            .is_some_and(|s| s.applied_weight == Some(0) && s.desired_weight == Some(0))
    })
    .await;
    env.create(owned_replica_set(f.name, labels, &uid, f.canary, 1))
        .await;
    harness::wait_replica_set_cached(&env, &f.canary_rs()).await;
    (env, originals)
}

/// The user's edit of `object` (a JSON patch) while the update runs: the reconcile it causes
/// writes nothing (test server: the only write is the test's own). Returns the object.
async fn user_edit(env: &Env, f: &Fixture, object: &Watched, patch: Value) -> Value {
    let mark = env.server().map(test_apiserver::TestApiServer::mark);
    let reconciles = env.controllers[0].reconcile_count();
    let edited = env.patch_json(&object.ar, &object.name, patch).await;
    harness::within(async {
        while env.controllers[0].reconcile_count() <= reconciles {
            tokio::task::yield_now().await;
        }
    })
    .await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        harness::logged_traffic_status(env, f.name).await;
        assert_eq!(
            harness::writes_to_object(server, mark, object),
            1,
            "{} {}: {:#?}",
            object.ar.kind,
            object.name,
            server.requests_since(mark)
        );
    }
    edited
}

fn traffic_status(rt: Option<rollout_router::traffic::RolloutTraffic>) -> RolloutTrafficStatus {
    rt.and_then(|rt| rt.status).expect("RolloutTraffic status")
}

/// Argo aborts: abort flag and time, the step index back to 0, the Rollout degraded; the canary
/// ReplicaSet keeps its pods until abortScaleDownDelaySeconds. Checked against the prediction
/// (one write per changed object); returns the objects.
async fn abort(env: &Env, f: &Fixture) -> Vec<Option<Value>> {
    let objects = route_step(
        env,
        f.name,
        json!({
            "abort": true,
            "abortedAt": "2025-01-01T00:00:00Z",
            "currentStepIndex": 0,
            "phase": "Degraded",
            "message": "RolloutAborted: Rollout aborted update to revision 2"
        }),
        &f.watched,
        |s| {
            s.step == "aborted"
                && s.desired_weight == Some(0)
                && s.applied_weight == Some(0)
                && s.routes.is_empty()
        },
    )
    .await;
    let status = traffic_status(env.traffic_api().get_opt(f.name).await.unwrap());
    assert_eq!(status.weight_case, "C", "{status:#?}");
    assert!(status.active_routes.is_empty(), "{status:#?}");
    objects
}

/// The canary is scaled down after the delay: the abort has settled, nothing more is written
/// and the objects stay `expected`.
async fn settle_after_abort(env: &Env, f: &Fixture, expected: &[Option<Value>]) {
    let mark = env.server().map(test_apiserver::TestApiServer::mark);
    env.patch(
        &replica_sets(),
        &f.canary_rs(),
        json!({"spec": {"replicas": 0}}),
    )
    .await;
    env.patch_status(
        &replica_sets(),
        &f.canary_rs(),
        json!({"replicas": 0, "availableReplicas": 0, "readyReplicas": 0}),
    )
    .await;
    // A reconcile after the scale-down (and none of them writes routing objects).
    assert_steady(env, f.name).await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        for o in &f.watched {
            assert_eq!(
                harness::writes_to_object(server, mark, o),
                0,
                "{} {}: {:#?}",
                o.ar.kind,
                o.name,
                server.requests_since(mark)
            );
        }
    }
    let status = traffic_status(env.traffic_api().get_opt(f.name).await.unwrap());
    assert_eq!(
        (
            status.step.as_str(),
            status.desired_weight,
            status.applied_weight,
            status.routes.as_str()
        ),
        ("aborted", Some(0), Some(0), "")
    );
    for (o, want) in f.watched.iter().zip(expected) {
        assert_eq!(
            env.get(&o.ar, &o.name).await.map(user_view),
            want.clone().map(user_view),
            "{} {}",
            o.ar.kind,
            o.name
        );
    }
}

/// From a weight step at `weight` with header route(s) active: Argo records the weight, then
/// full promotion is requested (case E): without dynamicStableScale the weight stays at the
/// recorded one and the managed routes go; then Argo scales the canary to full size and nothing
/// moves. Returns the objects in case E.
async fn promote_full(env: &Env, f: &Fixture, weight: i32) -> Vec<Option<Value>> {
    route_step(
        env,
        f.name,
        json!({"canary": f.recorded(i64::from(weight), f.stable)}),
        &f.watched,
        |s| s.applied_weight == Some(weight),
    )
    .await;
    let objects = route_step(env, f.name, json!({"promoteFull": true}), &f.watched, |s| {
        s.weight_case == "E"
            && s.desired_weight == Some(weight)
            && s.applied_weight == Some(weight)
            && s.routes.is_empty()
    })
    .await;
    let status = traffic_status(env.traffic_api().get_opt(f.name).await.unwrap());
    assert!(status.active_routes.is_empty(), "{status:#?}");

    let mark = env.server().map(test_apiserver::TestApiServer::mark);
    scale_replica_set(env, &f.canary_rs(), 2).await;
    assert_steady(env, f.name).await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        for o in &f.watched {
            assert_eq!(
                harness::writes_to_object(server, mark, o),
                0,
                "{} {}: {:#?}",
                o.ar.kind,
                o.name,
                server.requests_since(mark)
            );
        }
    }
    for (o, want) in f.watched.iter().zip(&objects) {
        assert_eq!(
            env.get(&o.ar, &o.name).await.map(user_view),
            want.clone().map(user_view),
            "{} {}: changed after the scale-up",
            o.ar.kind,
            o.name
        );
    }
    objects
}

/// Promotion: the canary becomes stable, promoteFull is cleared, the index is past the last
/// step: routing is handed back (case B). Returns the objects; checks nothing more is written.
async fn complete(env: &Env, f: &Fixture) -> Vec<Option<Value>> {
    let objects = route_step(
        env,
        f.name,
        json!({
            "stableRS": f.canary,
            "currentPodHash": f.canary,
            "currentStepIndex": f.steps,
            "promoteFull": false,
            "canary": f.recorded(0, f.canary)
        }),
        &f.watched,
        |s| s.step == "completed" && s.applied_weight == Some(0) && s.routes.is_empty(),
    )
    .await;
    let status = traffic_status(env.traffic_api().get_opt(f.name).await.unwrap());
    assert_eq!(status.weight_case, "B", "{status:#?}");
    assert_steady(env, f.name).await;
    objects
}

// ---- Istio subset split ----

fn subset_routes(vs: &Value) -> Vec<String> {
    istio_subset::route_names(vs)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

async fn istio_subset_update(prefix: &str) -> (Env, Fixture, Value, Value) {
    let f = Fixture::istio_subset();
    let (env, originals) = update_in_progress(
        prefix,
        &f,
        istio_subset::rollout(),
        &istio_subset::labels(),
        vec![
            istio_subset::destination_rule(),
            istio_subset::virtual_service(),
        ],
    )
    .await;
    let (dr, vs) = (originals[0].clone(), originals[1].clone());
    istio_subset::step(&env, 0, 20, "").await;
    let (vs_now, dr_now) = istio_subset::step(&env, 3, 50, "testers,mirror").await;
    assert_eq!(
        istio_subset::route_names(&vs_now),
        ["testers", "mirror", "admin", "primary"]
    );
    assert_eq!(istio_subset::weights(&vs_now), istio_subset::split(50, 50));
    assert_eq!(
        istio_subset::subset_hashes(&dr_now),
        istio_subset::hashes(f.stable, f.canary)
    );
    (env, f, vs, dr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_subset_abort_mid_way_hands_back_with_user_edits() {
    let (env, f, original_vs, original_dr) = istio_subset_update("lcr-subset-abort").await;

    // The user's unrelated edits: an annotation and the weighted route's timeout.
    let vs = env.get(&f.watched[0].ar, f.name).await.unwrap();
    let primary = subset_routes(&vs)
        .iter()
        .position(|n| n == "primary")
        .unwrap();
    let edited = user_edit(
        &env,
        &f,
        &f.watched[0],
        json!([
            {"op": "add", "path": "/metadata/annotations", "value": {"owner": "catalog-team"}},
            {"op": "replace", "path": format!("/spec/http/{primary}/timeout"), "value": "9s"}
        ]),
    )
    .await;
    assert_eq!(istio_subset::weights(&edited), istio_subset::split(50, 50));
    let mut users_vs = original_vs.clone();
    users_vs["metadata"]["annotations"] = json!({"owner": "catalog-team"});
    users_vs["spec"]["http"][1]["timeout"] = json!("9s");

    // The abort settles at once (the stable is fully available): released, managed routes gone,
    // 100/0, and both subsets back on the stable hash (docs/istio.md §6.4) — the user's
    // DestinationRule as created.
    let objects = abort(&env, &f).await;
    let (vs, dr) = (objects[0].clone().unwrap(), objects[1].clone().unwrap());
    assert_eq!(subset_routes(&vs), ["admin", "primary"]);
    assert_eq!(istio_subset::weights(&vs), istio_subset::split(100, 0));
    assert_eq!(user_view(vs), user_view(users_vs.clone()));
    assert_eq!(
        istio_subset::subset_hashes(&dr),
        istio_subset::hashes(f.stable, f.stable)
    );
    assert_eq!(user_view(dr), user_view(original_dr.clone()));

    settle_after_abort(&env, &f, &[Some(users_vs), Some(original_dr)]).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_subset_promote_full_mid_way_then_completion_hands_back() {
    let (env, f, original_vs, original_dr) = istio_subset_update("lcr-subset-promote").await;

    let objects = promote_full(&env, &f, 50).await;
    let (vs, dr) = (objects[0].clone().unwrap(), objects[1].clone().unwrap());
    assert_eq!(subset_routes(&vs), ["admin", "primary"]);
    assert_eq!(istio_subset::weights(&vs), istio_subset::split(50, 50));
    assert_eq!(
        istio_subset::subset_hashes(&dr),
        istio_subset::hashes(f.stable, f.canary)
    );

    // Completion: both subsets select the new pods, 100/0, the VirtualService is the user's.
    let objects = complete(&env, &f).await;
    let (vs, dr) = (objects[0].clone().unwrap(), objects[1].clone().unwrap());
    assert_eq!(user_view(vs), user_view(original_vs));
    let mut completed_dr = original_dr;
    for i in [0, 1] {
        completed_dr["spec"]["subsets"][i]["labels"]["rollouts-pod-template-hash"] =
            json!(f.canary);
    }
    assert_eq!(user_view(dr), user_view(completed_dr));
    env.shutdown().await;
}

// ---- NGINX ----

async fn nginx_update(prefix: &str) -> (Env, Fixture, Value) {
    let f = Fixture::nginx();
    let (env, originals) = update_in_progress(
        prefix,
        &f,
        nginx::rollout(),
        &nginx::labels(),
        vec![nginx::stable_ingress()],
    )
    .await;
    nginx::step(&env, 0, 10, "").await;
    let (_, canary) = nginx::step(&env, 2, 50, "canary-header").await;
    assert_eq!(
        nginx::nginx(&canary, "canary-weight").as_deref(),
        Some("50")
    );
    assert_eq!(
        nginx::nginx(&canary, "canary-by-header").as_deref(),
        Some("X-Canary")
    );
    (env, f, originals[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_abort_mid_way_deletes_canary_ingress_and_keeps_user_edits() {
    let (env, f, original) = nginx_update("lcr-nginx-abort").await;

    // The user's unrelated edit of the stable Ingress: an annotation.
    user_edit(
        &env,
        &f,
        &f.watched[0],
        json!([{"op": "add", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1proxy-read-timeout", "value": "60"}]),
    )
    .await;
    let mut users = original;
    users["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] =
        json!("60");

    // Settled abort: released, the canary Ingress deleted; the stable Ingress is the user's.
    let objects = abort(&env, &f).await;
    assert!(objects[1].is_none(), "{:#?}", objects[1]);
    assert_eq!(
        user_view(objects[0].clone().unwrap()),
        user_view(users.clone())
    );

    settle_after_abort(&env, &f, &[Some(users), None]).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_promote_full_mid_way_then_completion_hands_back() {
    let (env, f, original) = nginx_update("lcr-nginx-promote").await;

    let objects = promote_full(&env, &f, 50).await;
    let canary = objects[1].clone().unwrap();
    assert_eq!(
        nginx::nginx(&canary, "canary-weight").as_deref(),
        Some("50")
    );
    assert_eq!(nginx::nginx(&canary, "canary-by-header"), None);
    assert_eq!(nginx::nginx(&canary, "canary-by-header-value"), None);

    // Completion: the canary Ingress is deleted; the stable Ingress was never written.
    let objects = complete(&env, &f).await;
    assert!(objects[1].is_none(), "{:#?}", objects[1]);
    assert_eq!(user_view(objects[0].clone().unwrap()), user_view(original));
    env.shutdown().await;
}

// ---- ALB ----

async fn alb_update(prefix: &str) -> (Env, Fixture, Value) {
    let f = Fixture::alb();
    let (env, originals) = update_in_progress(
        prefix,
        &f,
        alb::rollout(),
        &alb::labels(),
        vec![alb::ingress()],
    )
    .await;
    alb::step(&env, 0, 10, "").await;
    let ing = alb::step(&env, 2, 50, "canary-header").await;
    assert_eq!(
        alb::annotation(&ing, alb::ACTION),
        Some(alb::action(50).as_str())
    );
    assert_eq!(alb::backends(&ing), ["canary-header", "checkout-stable"]);
    (env, f, originals[0].clone())
}

/// `users` once routing is handed back (docs/alb.md "Release: why the action stays"): the
/// weighted action kept and reset to 100 % stable in rollout-router's bytes; header route
/// annotations, path and the bookkeeping entry gone.
fn alb_released(users: &Value) -> Value {
    let mut released = users.clone();
    released["metadata"]["annotations"][alb::ACTION] = json!(alb::stable_action());
    released
}

fn assert_alb_no_route(ing: &Value) {
    for key in [alb::ROUTE_ACTION, alb::ROUTE_CONDITION] {
        assert_eq!(alb::annotation(ing, key), None, "{key}");
    }
    assert_eq!(alb::backends(ing), ["checkout-stable"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_abort_mid_way_resets_action_and_keeps_user_edits() {
    let (env, f, original) = alb_update("lcr-alb-abort").await;

    // The user's unrelated edit: an annotation.
    user_edit(
        &env,
        &f,
        &f.watched[0],
        json!([{"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "payments"}]),
    )
    .await;
    let mut users = original;
    users["metadata"]["annotations"]["example.com/owner"] = json!("payments");

    let objects = abort(&env, &f).await;
    let ing = objects[0].clone().unwrap();
    assert_alb_no_route(&ing);
    assert_eq!(alb::annotation(&ing, alb::BOOKKEEPING), None);
    let expected = alb_released(&users);
    assert_eq!(user_view(ing), user_view(expected.clone()));

    settle_after_abort(&env, &f, &[Some(expected)]).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_promote_full_mid_way_then_completion_hands_back() {
    let (env, f, original) = alb_update("lcr-alb-promote").await;

    let objects = promote_full(&env, &f, 50).await;
    let ing = objects[0].clone().unwrap();
    assert_eq!(
        alb::annotation(&ing, alb::ACTION),
        Some(alb::action(50).as_str())
    );
    assert_alb_no_route(&ing);

    let objects = complete(&env, &f).await;
    let ing = objects[0].clone().unwrap();
    assert_eq!(alb::annotation(&ing, alb::BOOKKEEPING), None);
    assert_eq!(user_view(ing), user_view(alb_released(&original)));
    env.shutdown().await;
}
