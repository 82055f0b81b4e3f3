//! End-to-end lifecycle and invalid-input cases (Istio host split): an abort and a full
//! promotion in the middle of an update, the plugin block dropped from a running Rollout, invalid
//! configurations that must write nothing until fixed, and the status this replica wrote being
//! trusted over a cache that has not seen it yet.

use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use rollout_router::rollout::{ReplicaSetView, Rollout};
use rollout_router::traffic::{Condition, FINALIZER, RolloutTraffic, RolloutTrafficStatus};
use rollout_router::{engine, reconcile, routers, validation};
use rollout_router_core::{ObjectKey, ObjectSet};
use serde_json::{Value, json};
use test_apiserver::{RequestMatch, Verb};

use crate::harness::{self, Env, replica_sets, rollouts, user_view, virtual_services};
use crate::{CANARY, STABLE, replica_set};

const NAME: &str = "checkout";

/// The Rollout: host split on the VirtualService `vs_name`, weighted route(s) `routes`, and the
/// header route `beta` matching `beta_match`.
fn rollout(vs_name: &str, routes: Value, beta_match: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": NAME, "annotations": {"rollout.argoproj.io/revision": "2"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {"metadata": {"labels": {"app": NAME}}, "spec": {"containers": [{"name": "api", "image": "checkout:2"}]}},
            "strategy": {"canary": {
                "canaryService": "checkout-canary",
                "stableService": "checkout-stable",
                "steps": [
                    {"setWeight": 20},
                    {"setHeaderRoute": {"name": "beta", "match": beta_match}},
                    {"setMirrorRoute": {"name": "shadow", "percentage": 50, "match": [{"method": {"exact": "GET"}}]}},
                    {"setWeight": 50}
                ],
                "trafficRouting": {
                    "managedRoutes": [{"name": "beta"}, {"name": "shadow"}],
                    "plugins": {"rollout-router/traffic": {"istio": {"virtualService": {"name": vs_name, "routes": routes}}}}
                }
            }}
        },
        "status": {"observedGeneration": "1", "stableRS": STABLE, "currentPodHash": STABLE, "currentStepIndex": 4}
    })
}

fn good_beta_match() -> Value {
    json!([{"headerName": "x-beta", "headerValue": {"exact": "yes"}}])
}

fn valid_rollout() -> Value {
    rollout(NAME, json!(["primary"]), good_beta_match())
}

/// The user's VirtualService; its weighted route is called `primary_name`.
fn virtual_service(primary_name: &str) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": NAME, "labels": {"team": "payments"}},
        "spec": {
            "hosts": ["checkout.example.com"],
            "http": [
                {"name": "health", "match": [{"uri": {"exact": "/healthz"}}], "route": [{"destination": {"host": "checkout-stable"}}]},
                {"name": primary_name, "retries": {"attempts": 3}, "route": [
                    {"destination": {"host": "checkout-stable", "port": {"number": 80}}, "weight": 100},
                    {"destination": {"host": "checkout-canary", "port": {"number": 80}}, "weight": 0}
                ]}
            ]
        }
    })
}

/// What `render` predicts for the Rollout's current state from `objects`: the same engine and
/// router code, run offline.
async fn predict(env: &Env, objects: &[Value]) -> ObjectSet {
    let rollout: Rollout =
        serde_json::from_value(env.get(&rollouts(), NAME).await.unwrap()).unwrap();
    let mut rs = Vec::new();
    for hash in [STABLE, CANARY] {
        if let Some(v) = env.get(&replica_sets(), &format!("{NAME}-{hash}")).await {
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

fn vs_key(env: &Env) -> ObjectKey {
    ObjectKey::new(
        "networking.istio.io",
        "VirtualService",
        &env.namespace,
        NAME,
    )
}

fn route_names(vs: &Value) -> Vec<String> {
    vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn route<'a>(vs: &'a Value, name: &str) -> &'a Value {
    vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no route {name} in {vs:#}"))
}

fn weights(vs: &Value, name: &str) -> Vec<i64> {
    route(vs, name)["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["weight"].as_i64().unwrap_or(0))
        .collect()
}

fn writes_to(resource: &str) -> RequestMatch {
    RequestMatch::writes().resource(resource)
}

/// Writes to any routing object kind rollout-router may touch.
fn routing_writes(server: &test_apiserver::TestApiServer, mark: test_apiserver::LogMark) -> usize {
    ["virtualservices", "destinationrules", "ingresses"]
        .iter()
        .map(|r| server.count_since(mark, &writes_to(r)))
        .sum()
}

fn condition<'a>(status: &'a RolloutTrafficStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

fn condition_is(rt: &RolloutTraffic, type_: &str, value: &str) -> bool {
    rt.status
        .as_ref()
        .and_then(|s| condition(s, type_))
        .is_some_and(|c| c.status == value)
}

/// Whether `e` is a Warning Event about the Rollout (events.k8s.io/v1, as kube's Recorder
/// writes them) with `reason`.
fn warning_on_rollout(e: &Event, reason: &str) -> bool {
    e.type_.as_deref() == Some("Warning")
        && e.reason.as_deref() == Some(reason)
        && e.regarding.as_ref().is_some_and(|r| {
            r.kind.as_deref() == Some("Rollout") && r.name.as_deref() == Some(NAME)
        })
}

/// Watches the namespace's Events until one satisfies `found`.
async fn wait_event(env: &Env, found: impl Fn(&Event) -> bool) -> Event {
    let api: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects();
    let mut events = std::pin::pin!(events);
    let mut seen = Vec::new();
    let result = tokio::time::timeout(harness::DEADLINE, async {
        while let Some(event) = events.next().await {
            if let Ok(e) = event {
                if found(&e) {
                    return Some(e);
                }
                seen.push((e.type_, e.reason, e.note, e.series.map(|s| s.count)));
            }
        }
        None
    })
    .await;
    match result {
        Ok(Some(e)) => e,
        _ => panic!(
            "no such Event within {:?}; seen: {seen:#?}",
            harness::DEADLINE
        ),
    }
}

/// Waits for a Warning Event about the Rollout whose note contains every one of `needles`.
async fn wait_warning(env: &Env, reason: &str, needles: &[&str]) -> Event {
    wait_event(env, |e| {
        warning_on_rollout(e, reason)
            && needles
                .iter()
                .all(|n| e.note.as_deref().unwrap_or_default().contains(n))
    })
    .await
}

/// The environment of an update in progress: the user's VirtualService, the Rollout at revision
/// 2 with its stable ReplicaSet, the controller running (steady state reached), then the canary
/// ReplicaSet. Returns the Rollout's uid and the VirtualService as the user created it.
async fn update_in_progress(prefix: &str) -> (Env, String, Value) {
    let mut env = Env::new(prefix).await;
    let original = env.create(virtual_service("primary")).await;
    let created = env.create(valid_rollout()).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(replica_set(&uid, STABLE, 2)).await;
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;
    env.wait_traffic(NAME, |rt| {
        rt.status
            .as_ref()
            .is_some_and(|s| s.applied_weight == Some(0))
    })
    .await;
    env.create(replica_set(&uid, CANARY, 1)).await;
    harness::wait_replica_set_cached(&env, &format!("{NAME}-{CANARY}")).await;
    (env, uid, original)
}

/// Patches the Rollout's status as the rollout controller would, waits until RolloutTraffic
/// satisfies `reached`, and checks the VirtualService against the prediction and that it was
/// written exactly once if (and only if) it changed.
async fn transition(
    env: &Env,
    status: Value,
    reached: impl Fn(&RolloutTrafficStatus) -> bool,
) -> (Value, RolloutTrafficStatus) {
    let mut before = env.get(&virtual_services(), NAME).await.unwrap();
    let mark = env.server().map(|s| s.mark());
    env.patch_status(&rollouts(), NAME, status).await;
    before["metadata"]["namespace"] = json!(env.namespace);
    let predicted = predict(env, std::slice::from_ref(&before)).await;
    let rt = env
        .wait_traffic(NAME, |rt| rt.status.as_ref().is_some_and(&reached))
        .await;
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    assert_eq!(
        user_view(vs.clone()),
        user_view(predicted.get(&vs_key(env)).unwrap().clone())
    );
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        let expected = usize::from(user_view(before) != user_view(vs.clone()));
        assert_eq!(
            server.count_since(mark, &writes_to("virtualservices")),
            expected,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    (vs, rt.status.unwrap())
}

/// Moves the update to step `index` and waits until `weight` and `routes` are applied.
async fn step(env: &Env, index: i64, weight: i32, routes: &str) -> Value {
    let (vs, status) = transition(
        env,
        json!({"currentPodHash": CANARY, "currentStepIndex": index}),
        |s| {
            s.desired_weight == Some(weight)
                && s.applied_weight == Some(weight)
                && s.routes == routes
                && s.canary_hash == CANARY
        },
    )
    .await;
    assert!(
        condition(&status, "Ready").is_some_and(|c| c.status == "True"),
        "{status:#?}"
    );
    vs
}

/// Triggers one reconcile of the Rollout (an annotation edit) and waits until the controller
/// has finished a reconcile after it.
async fn reconcile_once(env: &Env, annotation: &str) {
    let before = env.controllers[0].reconcile_count();
    env.patch(
        &rollouts(),
        NAME,
        json!({"metadata": {"annotations": {annotation: "1"}}}),
    )
    .await;
    harness::within(async {
        while env.controllers[0].reconcile_count() <= before {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// A user's edits during the update: an annotation, a timeout on the weighted route and a route
/// of their own at the end. Returns what the VirtualService must be once routing is handed
/// back: `original` plus these edits.
async fn user_edits(env: &Env, original: &Value) -> Value {
    env.patch(
        &virtual_services(),
        NAME,
        json!({"metadata": {"annotations": {"owner": "payments"}}}),
    )
    .await;
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    let idx = route_names(&vs)
        .iter()
        .position(|n| n == "primary")
        .unwrap();
    let debug = json!({"name": "debug", "match": [{"uri": {"prefix": "/debug"}}], "route": [{"destination": {"host": "checkout-stable"}}]});
    env.patch_json(
        &virtual_services(),
        NAME,
        json!([
            {"op": "add", "path": format!("/spec/http/{idx}/timeout"), "value": "5s"},
            {"op": "add", "path": "/spec/http/-", "value": debug}
        ]),
    )
    .await;
    let mut expected = original.clone();
    expected["metadata"]["annotations"] = json!({"owner": "payments"});
    expected["spec"]["http"][1]["timeout"] = json!("5s");
    expected["spec"]["http"].as_array_mut().unwrap().push(debug);
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_mid_way_removes_managed_routes_and_keeps_user_edits() {
    let (env, _uid, original) = update_in_progress("lc-abort").await;
    step(&env, 0, 20, "").await;
    let vs = step(&env, 2, 20, "beta,shadow").await;
    assert_eq!(
        route_names(&vs),
        vec!["beta", "shadow", "health", "primary"]
    );
    let expected = user_edits(&env, &original).await;
    // The edits are the user's: nothing of rollout-router's changed, so nothing is put back.
    let edited = env
        .wait(&virtual_services(), NAME, |v| {
            v.is_some_and(|v| route_names(v).last().map(String::as_str) == Some("debug"))
        })
        .await
        .unwrap();
    assert_eq!(weights(&edited, "primary"), vec![80, 20]);

    // Argo aborts: abort flag and time, the step index back to 0, the Rollout degraded; the
    // canary ReplicaSet keeps its pods until abortScaleDownDelaySeconds.
    let (vs, status) = transition(
        &env,
        json!({
            "abort": true,
            "abortedAt": "2025-01-01T00:00:00Z",
            "currentStepIndex": 0,
            "phase": "Degraded",
            "message": "RolloutAborted: Rollout aborted update to revision 2"
        }),
        |s| {
            s.step == "aborted"
                && s.desired_weight == Some(0)
                && s.applied_weight == Some(0)
                && s.routes.is_empty()
        },
    )
    .await;
    assert_eq!(status.weight_case, "C");
    assert!(status.active_routes.is_empty(), "{status:#?}");
    assert!(
        condition(&status, "Ready").is_some_and(|c| c.status == "True"),
        "{status:#?}"
    );
    assert_eq!(route_names(&vs), vec!["health", "primary", "debug"]);
    assert_eq!(weights(&vs, "primary"), vec![100, 0]);
    assert_eq!(user_view(vs), user_view(expected.clone()));

    // The canary is scaled down after the delay: settled, nothing more is written.
    let mark = env.server().map(|s| s.mark());
    env.patch(
        &replica_sets(),
        &format!("{NAME}-{CANARY}"),
        json!({"spec": {"replicas": 0}}),
    )
    .await;
    env.patch_status(
        &replica_sets(),
        &format!("{NAME}-{CANARY}"),
        json!({"replicas": 0, "availableReplicas": 0, "readyReplicas": 0}),
    )
    .await;
    reconcile_once(&env, "after-scale-down").await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(
            routing_writes(server, mark),
            0,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    let rt = env.traffic_api().get(NAME).await.unwrap();
    let status = rt.status.unwrap();
    assert_eq!(
        (
            status.desired_weight,
            status.applied_weight,
            status.routes.as_str()
        ),
        (Some(0), Some(0), "")
    );
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    assert_eq!(user_view(vs), user_view(expected));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_full_mid_way_freezes_weight_then_completion_hands_back() {
    let (env, _uid, original) = update_in_progress("lc-promote").await;
    step(&env, 0, 20, "").await;
    step(&env, 2, 20, "beta,shadow").await;
    let vs = step(&env, 3, 50, "beta,shadow").await;
    assert_eq!(weights(&vs, "primary"), vec![50, 50]);
    // Argo records the weight it set (its memory for promote-full, spec 00 §5).
    let recorded = json!({"canary": {"weights": {
        "canary": {"weight": 50, "serviceName": "checkout-canary", "podTemplateHash": CANARY},
        "stable": {"weight": 50, "serviceName": "checkout-stable", "podTemplateHash": STABLE}
    }}});
    transition(&env, recorded, |s| s.applied_weight == Some(50)).await;

    // Full promotion requested (case E): without dynamicStableScale the weight stays at the
    // recorded 50; the managed routes go.
    let (vs, status) = transition(&env, json!({"promoteFull": true}), |s| {
        s.weight_case == "E"
            && s.desired_weight == Some(50)
            && s.applied_weight == Some(50)
            && s.routes.is_empty()
    })
    .await;
    assert!(status.active_routes.is_empty(), "{status:#?}");
    assert_eq!(route_names(&vs), vec!["health", "primary"]);
    assert_eq!(weights(&vs, "primary"), vec![50, 50]);

    // Argo scales the canary to full size: the weight does not move.
    let mark = env.server().map(|s| s.mark());
    env.patch(
        &replica_sets(),
        &format!("{NAME}-{CANARY}"),
        json!({"spec": {"replicas": 2}}),
    )
    .await;
    env.patch_status(
        &replica_sets(),
        &format!("{NAME}-{CANARY}"),
        json!({"replicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
    )
    .await;
    reconcile_once(&env, "after-scale-up").await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(
            routing_writes(server, mark),
            0,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    assert_eq!(weights(&vs, "primary"), vec![50, 50]);

    // Promotion: the canary becomes stable (the stable Service now selects it), promoteFull is
    // cleared, the index is past the last step: routing is handed back, 100 % stable.
    let (vs, status) = transition(
        &env,
        json!({
            "stableRS": CANARY,
            "currentPodHash": CANARY,
            "currentStepIndex": 4,
            "promoteFull": false,
            "canary": {"weights": {
                "canary": {"weight": 0, "serviceName": "checkout-canary", "podTemplateHash": CANARY},
                "stable": {"weight": 100, "serviceName": "checkout-stable", "podTemplateHash": CANARY}
            }}
        }),
        |s| s.step == "completed" && s.applied_weight == Some(0) && s.routes.is_empty(),
    )
    .await;
    assert_eq!(status.weight_case, "B");
    assert_eq!(route_names(&vs), vec!["health", "primary"]);
    assert_eq!(weights(&vs, "primary"), vec![100, 0]);
    assert_eq!(user_view(vs), user_view(original));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_block_removed_hands_routing_back_and_deletes_rollout_traffic() {
    let (env, _uid, original) = update_in_progress("lc-unplug").await;
    step(&env, 0, 20, "").await;
    step(&env, 2, 20, "beta,shadow").await;
    let expected = user_edits(&env, &original).await;
    env.wait(&virtual_services(), NAME, |v| {
        v.is_some_and(|v| route_names(v).last().map(String::as_str) == Some("debug"))
    })
    .await;
    let rt = env.traffic_api().get(NAME).await.unwrap();
    assert!(
        rt.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER)
    );
    assert!(!rt.status.unwrap().journal.is_empty());

    // The user drops the plugin block (Argo observes the new generation).
    let mark = env.server().map(|s| s.mark());
    let patched = env
        .patch(
            &rollouts(),
            NAME,
            json!({"spec": {"strategy": {"canary": {"trafficRouting": {"plugins": null}}}}}),
        )
        .await;
    let generation = patched["metadata"]["generation"].as_i64().unwrap();
    env.patch_status(
        &rollouts(),
        NAME,
        json!({"observedGeneration": generation.to_string()}),
    )
    .await;
    harness::wait_object(&env.traffic_api(), NAME, |o| o.is_none()).await;
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    assert_eq!(route_names(&vs), vec!["health", "primary", "debug"]);
    assert_eq!(weights(&vs, "primary"), vec![100, 0]);
    assert_eq!(user_view(vs), user_view(expected.clone()));
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        // The hand-back is one guarded patch of the VirtualService.
        assert_eq!(server.count_since(mark, &writes_to("virtualservices")), 1);
    }

    // The Rollout is no longer rollout-router's: its next steps write nothing and create no
    // RolloutTraffic.
    let mark = env.server().map(|s| s.mark());
    env.patch_status(&rollouts(), NAME, json!({"currentStepIndex": 3}))
        .await;
    reconcile_once(&env, "unplugged").await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(routing_writes(server, mark), 0);
        assert_eq!(server.count_since(mark, &writes_to("rollouttraffics")), 0);
    }
    assert!(env.traffic_api().get_opt(NAME).await.unwrap().is_none());
    assert_eq!(
        user_view(env.get(&virtual_services(), NAME).await.unwrap()),
        user_view(expected)
    );
    env.shutdown().await;
}

/// Starts the controller on a Rollout in the middle of an update whose configuration cannot be
/// applied; waits for InvalidConfig and checks that nothing was written to routing objects.
async fn expect_invalid(
    env: &mut Env,
    needles: &[&str],
) -> (RolloutTrafficStatus, Option<test_apiserver::LogMark>) {
    let mark = env.server().map(|s| s.mark());
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;
    let rt = env
        .wait_traffic(NAME, |rt| condition_is(rt, "InvalidConfig", "True"))
        .await;
    let status = rt.status.unwrap();
    let invalid = condition(&status, "InvalidConfig").unwrap();
    assert!(
        !invalid.reason.is_empty() && invalid.reason != "AsExpected",
        "{invalid:?}"
    );
    assert!(
        condition(&status, "Ready").is_some_and(|c| c.status == "False"),
        "{status:#?}"
    );
    let error = status.last_error.as_ref().expect("lastError");
    for needle in needles {
        assert!(
            error.message.contains(needle),
            "{needle:?} not in {:?}",
            error.message
        );
    }
    let event = wait_warning(env, "InvalidConfig", needles).await;
    assert_eq!(event.regarding.unwrap().kind.as_deref(), Some("Rollout"));
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(
            routing_writes(server, mark),
            0,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    (status, mark)
}

/// A Rollout at `setWeight: 20` (step 0) with its canary ReplicaSet ready, not yet routed.
async fn seed_update(env: &Env, rollout: Value, vs: Value) {
    env.create(vs).await;
    let created = env.create(rollout).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(replica_set(&uid, STABLE, 2)).await;
    env.create(replica_set(&uid, CANARY, 1)).await;
    env.patch_status(
        &rollouts(),
        NAME,
        json!({"currentPodHash": CANARY, "currentStepIndex": 0}),
    )
    .await;
}

/// Waits until the fix is routed: InvalidConfig cleared, the weight applied as predicted.
async fn expect_routed_after_fix(env: &Env, before: Value, weight: i32, routes: &str) -> Value {
    let mut before = before;
    before["metadata"]["namespace"] = json!(env.namespace);
    let rt = env
        .wait_traffic(NAME, |rt| {
            condition_is(rt, "InvalidConfig", "False")
                && rt.status.as_ref().is_some_and(|s| {
                    s.applied_weight == Some(weight) && s.routes == routes && s.last_error.is_none()
                })
        })
        .await;
    assert!(condition_is(&rt, "Ready", "True"), "{rt:#?}");
    let predicted = predict(env, &[before]).await;
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    assert_eq!(
        user_view(vs.clone()),
        user_view(predicted.get(&vs_key(env)).unwrap().clone())
    );
    vs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_name_is_invalid_until_the_virtual_service_has_it() {
    let mut env = Env::new("lc-badroute").await;
    // The user's VirtualService calls its weighted route "main"; the Rollout says "primary".
    seed_update(&env, valid_rollout(), virtual_service("main")).await;
    let (status, _) = expect_invalid(&mut env, &[NAME, "spec.http", "primary"]).await;
    assert_eq!(
        condition(&status, "InvalidConfig").unwrap().reason,
        "InvalidObject"
    );

    // The user renames the route: the VirtualService's change alone triggers the fix.
    let mark = env.server().map(|s| s.mark());
    let before = env
        .patch_json(
            &virtual_services(),
            NAME,
            json!([{"op": "replace", "path": "/spec/http/1/name", "value": "primary"}]),
        )
        .await;
    let vs = expect_routed_after_fix(&env, before, 20, "").await;
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        // The user's rename, then rollout-router's one weight write.
        assert_eq!(server.count_since(mark, &writes_to("virtualservices")), 2);
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_header_match_is_invalid_until_the_rollout_is_fixed() {
    let mut env = Env::new("lc-badheader").await;
    // A header value with none of exact/prefix/regex.
    let bad = rollout(
        NAME,
        json!(["primary"]),
        json!([{"headerName": "x-beta", "headerValue": {}}]),
    );
    seed_update(&env, bad, virtual_service("primary")).await;
    env.patch_status(&rollouts(), NAME, json!({"currentStepIndex": 1}))
        .await;
    let (status, _) = expect_invalid(
        &mut env,
        &[
            "spec.strategy.canary.steps[1].setHeaderRoute.match[0].headerValue",
            "exactly one",
        ],
    )
    .await;
    assert_eq!(
        condition(&status, "InvalidConfig").unwrap().reason,
        "InvalidConfig"
    );

    // A second mistake (an empty header name; the CRD schema requires the field itself) is
    // reported too, still without writing.
    let mark = env.server().map(|s| s.mark());
    edit_spec(
        &env,
        json!({"spec": {"strategy": {"canary": {"steps": [
            {"setWeight": 20},
            {"setHeaderRoute": {"name": "beta", "match": [{"headerName": "", "headerValue": {"exact": "yes"}}]}},
            {"setMirrorRoute": {"name": "shadow", "percentage": 50, "match": [{"method": {"exact": "GET"}}]}},
            {"setWeight": 50}
        ]}}}}),
    )
    .await;
    let rt = env
        .wait_traffic(NAME, |rt| {
            rt.status
                .as_ref()
                .and_then(|s| s.last_error.as_ref())
                .is_some_and(|e| {
                    e.message.contains(
                        "spec.strategy.canary.steps[1].setHeaderRoute.match[0].headerName",
                    )
                })
        })
        .await;
    assert!(condition_is(&rt, "InvalidConfig", "True"), "{rt:#?}");
    // The new error is announced again. kube's Recorder folds Events with the same type, reason
    // and object into one series (its key ignores the note), so the second Warning may show up
    // as the first one's series count rather than with its own note.
    wait_event(&env, |e| {
        warning_on_rollout(e, "InvalidConfig")
            && (e
                .note
                .as_deref()
                .unwrap_or_default()
                .contains("match[0].headerName")
                || e.series.as_ref().is_some_and(|s| s.count >= 2))
    })
    .await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(routing_writes(server, mark), 0);
    }

    // The fix: the Rollout's change is what triggers the reconcile (invalid input waits for a
    // change, there is no retry timer).
    let before = env.get(&virtual_services(), NAME).await.unwrap();
    edit_spec(
        &env,
        json!({"spec": {"strategy": {"canary": {"steps": [
            {"setWeight": 20},
            {"setHeaderRoute": {"name": "beta", "match": good_beta_match()}},
            {"setMirrorRoute": {"name": "shadow", "percentage": 50, "match": [{"method": {"exact": "GET"}}]}},
            {"setWeight": 50}
        ]}}}}),
    )
    .await;
    let vs = expect_routed_after_fix(&env, before, 20, "beta").await;
    assert_eq!(route_names(&vs), vec!["beta", "health", "primary"]);
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);
    env.shutdown().await;
}

/// A user's spec edit, then Argo observing it (`status.observedGeneration`).
async fn edit_spec(env: &Env, patch: Value) {
    let patched = env.patch(&rollouts(), NAME, patch).await;
    let generation = patched["metadata"]["generation"].as_i64().unwrap();
    env.patch_status(
        &rollouts(),
        NAME,
        json!({"observedGeneration": generation.to_string()}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_status_write_is_not_repeated_while_the_cache_lags() {
    let (env, _uid, _original) = update_in_progress("lc-stale").await;
    let Some(server) = env.server() else {
        eprintln!("skipped on a real cluster: needs the test server's watch latency fault");
        env.shutdown().await;
        return;
    };
    step(&env, 0, 20, "").await;

    // Hold back the controller's RolloutTraffic cache: its watch is re-opened only after a
    // delay, so the controller's own status writes reach the cache late.
    server.add_latency(
        RequestMatch::any()
            .verb(Verb::Watch)
            .resource("rollouttraffics"),
        std::time::Duration::from_millis(1500),
    );
    server.drop_watches();

    let mark = server.mark();
    let status_writes = RequestMatch::writes()
        .resource("rollouttraffics")
        .subresource("status");
    env.patch_status(
        &rollouts(),
        NAME,
        json!({"currentPodHash": CANARY, "currentStepIndex": 1}),
    )
    .await;
    server
        .wait_for("the step's status write", harness::DEADLINE, |s| {
            s.count_since(mark, &status_writes) >= 1
        })
        .await
        .unwrap();
    // Rapid edits that each trigger a reconcile while the cache still holds the old status.
    for i in 0..3 {
        reconcile_once(&env, &format!("poke-{i}")).await;
    }
    // Once the cache has caught up, one more reconcile: still nothing new to write.
    let store = env.controllers[0].context.traffic.clone();
    harness::within(async {
        while !store
            .state()
            .iter()
            .any(|rt| rt.status.as_ref().is_some_and(|s| s.routes == "beta"))
        {
            tokio::task::yield_now().await;
        }
    })
    .await;
    server.clear_faults();
    reconcile_once(&env, "after-catch-up").await;

    assert_eq!(
        server.count_since(mark, &status_writes),
        1,
        "{:#?}",
        server
            .requests_since(mark)
            .into_iter()
            .filter(|r| status_writes.matches(r))
            .collect::<Vec<_>>()
    );
    assert_eq!(server.count_since(mark, &writes_to("virtualservices")), 1);
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    assert_eq!(route_names(&vs), vec!["beta", "health", "primary"]);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_rollout_deleted_releases_its_rollout_traffic_without_writing() {
    let mut env = Env::new("lc-baddelete").await;
    seed_update(&env, valid_rollout(), virtual_service("main")).await;
    let original = env.get(&virtual_services(), NAME).await.unwrap();
    let (_, mark) = expect_invalid(&mut env, &[NAME, "spec.http", "primary"]).await;

    // Nothing was routed, so nothing is handed back; the finalizer must not hold the
    // RolloutTraffic (and with it the namespace) forever.
    env.delete(&rollouts(), NAME).await;
    harness::wait_object(&env.traffic_api(), NAME, |o| o.is_none()).await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(
            routing_writes(server, mark),
            0,
            "{:#?}",
            server.requests_since(mark)
        );
    }
    assert_eq!(
        user_view(env.get(&virtual_services(), NAME).await.unwrap()),
        user_view(original)
    );
    env.shutdown().await;
}
