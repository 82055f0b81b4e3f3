//! Faults and replicas: injected `500`s and `409`s, a user's edit landing between the
//! controller's read and its guarded patch, dropped and expired watches during a rollout, and two
//! replicas with leader election. Fault injection needs the test server: those tests are skipped
//! on a real cluster; the two-replica hand-over runs on both (request-log checks on the test
//! server only).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use rollout_router::traffic::{RolloutTraffic, RolloutTrafficStatus};
use serde_json::{Value, json};
use test_apiserver::{LogMark, RequestMatch, RequestRecord, TestApiServer, Verb};

use crate::harness::{
    self, DEADLINE, Env, predict_routing, rollouts, user_view, virtual_services, within,
};
use crate::{CANARY, STABLE, replica_set, virtual_service};

const NAME: &str = "checkout";
/// The Lease `Env::settings` names.
const LEASE: &str = "rollout-router";

fn rollout() -> Value {
    crate::rollout(NAME)
}

/// The VirtualService, the Rollout (not yet updating: current hash = stable hash) and both
/// ReplicaSets (the canary one is ignored until the Rollout's current hash names it).
async fn setup(env: &Env) {
    env.create(virtual_service()).await;
    let created = env.create(rollout()).await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    env.create(replica_set(&uid, STABLE, 2)).await;
    env.create(replica_set(&uid, CANARY, 1)).await;
}

/// Starts one replica without leader election and waits until it reports the Rollout at 0 %.
async fn start(env: &mut Env) {
    let settings = env.settings("replica-0", false);
    env.start_controller(settings).await;
    wait_traffic_logged(env, |rt| routed(rt, 0, "")).await;
}

/// Waits until the RolloutTraffic satisfies `condition` and, on the test server, until the
/// status write that made it so is in the request log: a watch can deliver a write before the
/// server has logged it, and counting writes right away would miss it (or count it in the next
/// step).
async fn wait_traffic_logged(
    env: &Env,
    condition: impl Fn(&RolloutTraffic) -> bool,
) -> RolloutTraffic {
    let rt = env.wait_traffic(NAME, condition).await;
    if let Some(server) = env.server() {
        let status = rt.status.clone();
        server
            .wait_for("the status write logged", DEADLINE, |s| {
                s.requests_matching(&status_patches())
                    .iter()
                    .any(|r| r.status == 200 && Some(written_status(r)) == status)
            })
            .await
            .unwrap();
    }
    rt
}

/// The RolloutTraffic reports the update at `weight` (applied) with `routes`, Ready.
fn routed(rt: &RolloutTraffic, weight: i32, routes: &str) -> bool {
    rt.status.as_ref().is_some_and(|s| {
        s.desired_weight == Some(weight)
            && s.applied_weight == Some(weight)
            && s.routes == routes
            && condition(s, "Ready") == Some("True")
    })
}

fn condition<'a>(status: &'a RolloutTrafficStatus, type_: &str) -> Option<&'a str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// Moves the Rollout to step `index` of the update (as the rollout controller would).
async fn set_step(env: &Env, index: i64) {
    env.patch_status(
        &rollouts(),
        NAME,
        json!({"currentPodHash": CANARY, "currentStepIndex": index}),
    )
    .await;
}

/// After [`set_step`]: waits until the step is routed, checks the VirtualService against the
/// offline render of the step applied to `before` (the VirtualService the step started from),
/// and that the RolloutTraffic is healthy. Returns the VirtualService.
async fn expect_routed(env: &Env, before: &Value, weight: i32, routes: &str) -> Value {
    let predicted = predict_routing(env, NAME, std::slice::from_ref(before)).await;
    let rt = wait_traffic_logged(env, |rt| routed(rt, weight, routes)).await;
    let status = rt.status.unwrap();
    assert_eq!(condition(&status, "Degraded"), Some("False"), "{status:#?}");
    assert_eq!(status.last_error, None);
    let vs = env.get(&virtual_services(), NAME).await.unwrap();
    let key = harness::Watched::new(virtual_services(), NAME).key(env);
    assert_eq!(
        user_view(vs.clone()),
        user_view(predicted.get(&key).unwrap().clone()),
        "not what the offline render predicts"
    );
    vs
}

/// One step without faults: moves the Rollout, waits, checks the prediction; returns the mark
/// taken just before the move (test server) and the VirtualService.
async fn step(env: &Env, index: i64, weight: i32, routes: &str) -> (Option<LogMark>, Value) {
    let before = env.get(&virtual_services(), NAME).await.unwrap();
    let mark = env.server().map(TestApiServer::mark);
    set_step(env, index).await;
    (mark, expect_routed(env, &before, weight, routes).await)
}

fn records(server: &TestApiServer, mark: LogMark, m: &RequestMatch) -> Vec<RequestRecord> {
    server
        .requests_since(mark)
        .into_iter()
        .filter(|r| m.matches(r))
        .collect()
}

fn vs_patches() -> RequestMatch {
    RequestMatch::any()
        .verb(Verb::Patch)
        .resource("virtualservices")
}

fn status_patches() -> RequestMatch {
    RequestMatch::any()
        .verb(Verb::Patch)
        .resource("rollouttraffics")
        .subresource("status")
}

/// The status a `rollouttraffics/status` JSON patch (`add /status`) wrote.
fn written_status(r: &RequestRecord) -> RolloutTrafficStatus {
    let body = r.body.as_ref().unwrap();
    assert_eq!(body[0]["path"], "/status", "{body}");
    serde_json::from_value(body[0]["value"].clone()).unwrap()
}

/// `(verb, resource[/subresource], status)` of the controller's writes since `mark`, Events left
/// out (the recorder aggregates them).
fn controller_writes(server: &TestApiServer, mark: LogMark, identity: &str) -> Vec<String> {
    records(server, mark, &RequestMatch::writes().user(identity))
        .iter()
        .filter(|r| r.resource.as_deref() != Some("events"))
        .map(|r| format!("{} {} {}", r.verb, r.resource_path(), r.status))
        .collect()
}

fn summary(records: &[RequestRecord]) -> Vec<String> {
    records.iter().map(ToString::to_string).collect()
}

/// Returns the test server, or says the test is skipped on a real cluster.
fn fault_server<'a>(env: &'a Env, test: &str) -> Option<&'a TestApiServer> {
    if env.server().is_none() {
        eprintln!("{test}: skipped on a real cluster (needs fault injection)");
    }
    env.server()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_500s_on_the_routing_patch_are_retried_with_growing_backoff() {
    let mut env = Env::new("faults-500-vs").await;
    if fault_server(&env, "injected_500s_on_the_routing_patch").is_none() {
        return env.shutdown().await;
    }
    setup(&env).await;
    start(&mut env).await;
    let server = env.server().unwrap();

    let before = env.get(&virtual_services(), NAME).await.unwrap();
    let mark = server.mark();
    server.fail_next(vs_patches(), 2, 500);
    set_step(&env, 0).await;
    let injected = vs_patches().user("replica-0");
    server
        .wait_for("two injected failures", DEADLINE, |s| {
            records(s, mark, &injected)
                .iter()
                .filter(|r| r.injected)
                .count()
                == 2
        })
        .await
        .unwrap();
    let second_failure = Instant::now();
    let vs = expect_routed(&env, &before, 20, "").await;
    let retried_after = second_failure.elapsed();

    // The same guarded patch, sent three times: two refused, one applied; nothing else.
    let patches = records(
        server,
        mark,
        &RequestMatch::writes().resource("virtualservices"),
    );
    let outcome: Vec<(u16, bool)> = patches.iter().map(|r| (r.status, r.injected)).collect();
    assert_eq!(
        outcome,
        vec![(500, true), (500, true), (200, false)],
        "{:#?}",
        summary(&patches)
    );
    assert!(patches.iter().all(|r| r.body == patches[2].body));
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);
    // Backoff grows: the first retry follows the Degraded status write at once, the second
    // waits the second consecutive failure's backoff (2 s; 1 s if failures were forgotten).
    assert!(
        retried_after >= Duration::from_millis(1500),
        "retried {retried_after:?} after the second failure"
    );

    // While it lasted, the failure was reported once: Ready False, Degraded True, lastError
    // naming the object and the API server's answer; then cleared.
    let statuses: Vec<RolloutTrafficStatus> = records(server, mark, &status_patches())
        .iter()
        .filter(|r| r.status == 200)
        .map(written_status)
        .collect();
    assert_eq!(statuses.len(), 2, "{statuses:#?}");
    let degraded = &statuses[0];
    assert_eq!(condition(degraded, "Ready"), Some("False"));
    assert_eq!(condition(degraded, "Degraded"), Some("True"));
    let error = degraded.last_error.as_ref().unwrap();
    assert_eq!(error.reason, "TrafficRoutingError");
    assert!(
        error.message.contains("VirtualService")
            && error.message.contains(NAME)
            && error.message.contains("injected failure (500"),
        "{}",
        error.message
    );
    let degraded_reason = degraded
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .map(|c| c.reason.as_str());
    assert_eq!(degraded_reason, Some("TrafficRoutingError"));
    assert_eq!(condition(&statuses[1], "Ready"), Some("True"));
    assert_eq!(statuses[1].last_error, None);
    let warned = records(server, mark, &RequestMatch::writes().resource("events"))
        .iter()
        .any(|r| {
            r.body
                .as_ref()
                .is_some_and(|b| b["reason"] == "TrafficRoutingError")
        });
    assert!(warned, "no TrafficRoutingError Event");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_500s_on_the_status_write_are_retried_without_writing_the_routing_again() {
    let mut env = Env::new("faults-500-status").await;
    if fault_server(&env, "injected_500s_on_the_status_write").is_none() {
        return env.shutdown().await;
    }
    setup(&env).await;
    start(&mut env).await;
    let server = env.server().unwrap();

    let before = env.get(&virtual_services(), NAME).await.unwrap();
    let mark = server.mark();
    server.fail_next(status_patches(), 2, 500);
    set_step(&env, 0).await;
    let vs = expect_routed(&env, &before, 20, "").await;
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);

    let statuses = records(server, mark, &status_patches());
    let outcome: Vec<(u16, bool)> = statuses.iter().map(|r| (r.status, r.injected)).collect();
    assert_eq!(
        outcome,
        vec![(500, true), (500, true), (200, false)],
        "{:#?}",
        summary(&statuses)
    );
    // Level-triggered: the retries find the VirtualService in place and leave it alone.
    assert_eq!(
        controller_writes(server, mark, "replica-0"),
        vec![
            "patch virtualservices 200",
            "patch rollouttraffics/status 500",
            "patch rollouttraffics/status 500",
            "patch rollouttraffics/status 200",
        ]
    );
    let last = written_status(statuses.last().unwrap());
    assert_eq!(
        (last.desired_weight, last.applied_weight),
        (Some(20), Some(20))
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_on_the_routing_patch_replans_from_a_fresh_read_within_the_reconcile() {
    let mut env = Env::new("faults-409").await;
    if fault_server(&env, "a_409_on_the_routing_patch").is_none() {
        return env.shutdown().await;
    }
    setup(&env).await;
    start(&mut env).await;
    let server = env.server().unwrap();

    let before = env.get(&virtual_services(), NAME).await.unwrap();
    let mark = server.mark();
    server.conflict_next(vs_patches(), 1);
    set_step(&env, 0).await;
    let vs = expect_routed(&env, &before, 20, "").await;
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);

    // Refused patch, fresh GET, the patch planned again.
    let vs_requests: Vec<RequestRecord> = records(
        server,
        mark,
        &RequestMatch::any()
            .resource("virtualservices")
            .name(NAME)
            .user("replica-0"),
    );
    let seen: Vec<(Verb, u16, bool)> = vs_requests
        .iter()
        .map(|r| (r.verb, r.status, r.injected))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Verb::Patch, 409, true),
            (Verb::Get, 200, false),
            (Verb::Patch, 200, false)
        ],
        "{:#?}",
        summary(&vs_requests)
    );
    // A conflict is not a failure: never reported as one.
    for r in records(server, mark, &status_patches()) {
        let status = written_status(&r);
        assert_eq!(condition(&status, "Degraded"), Some("False"), "{status:#?}");
        assert_eq!(status.last_error, None);
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_edit_between_read_and_write_fails_the_guarded_patch_and_survives() {
    let mut env = Env::new("faults-race").await;
    if fault_server(&env, "a_user_edit_between_read_and_write").is_none() {
        return env.shutdown().await;
    }
    setup(&env).await;
    start(&mut env).await;
    let server = env.server().unwrap();

    // Freeze the controller's view of the VirtualService: its watch is cut and its reconnection
    // held for 2 s, so a user's edit made now reaches the API server but not the cache the
    // controller plans from.
    let mark = server.mark();
    server.add_latency(
        RequestMatch::any()
            .verb(Verb::Watch)
            .resource("virtualservices"),
        Duration::from_secs(2),
    );
    server.drop_watches();
    let reopened = RequestMatch::any().verb(Verb::Watch);
    server
        .wait_for("every old watch closed", DEADLINE, |s| {
            s.open_watches() == s.count_since(mark, &reopened)
        })
        .await
        .unwrap();
    // The user puts a route in front: every index the controller's plan tests moves.
    let edit = env
        .patch_json(
            &virtual_services(),
            NAME,
            json!([{"op": "add", "path": "/spec/http/0", "value": {
                "name": "debug",
                "match": [{"headers": {"x-debug": {"exact": "1"}}}],
                "route": [{"destination": {"host": "checkout-debug"}}]
            }}]),
        )
        .await;
    let edited_at = server.mark();
    set_step(&env, 0).await;
    let vs = expect_routed(&env, &edit, 20, "").await;
    assert!(
        server.count_since(
            mark,
            &RequestMatch::any()
                .verb(Verb::Watch)
                .resource("virtualservices")
        ) == 0,
        "the VirtualService watch reconnected too early: the race was not staged"
    );

    assert_eq!(route_names(&vs), vec!["debug", "health", "primary"]);
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);
    assert_eq!(vs["spec"]["http"][0], edit["spec"]["http"][0]);
    // The stale plan's patch failed its `test` (422), a fresh read followed, one patch applied.
    let patches = records(server, edited_at, &vs_patches().user("replica-0"));
    let applied: Vec<&RequestRecord> = patches.iter().filter(|r| r.status == 200).collect();
    assert_eq!(applied.len(), 1, "{:#?}", summary(&patches));
    assert!(
        patches[0].status == 422 && patches.iter().all(|r| matches!(r.status, 200 | 422)),
        "{:#?}",
        summary(&patches)
    );
    let gets = RequestMatch::any()
        .verb(Verb::Get)
        .resource("virtualservices")
        .user("replica-0");
    assert!(server.count_since(edited_at, &gets) >= 1);
    server.clear_faults();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_during_the_rollout_lose_no_step() {
    let mut env = Env::new("faults-drop").await;
    if fault_server(&env, "dropped_watches_during_the_rollout").is_none() {
        return env.shutdown().await;
    }
    setup(&env).await;
    start(&mut env).await;
    step(&env, 0, 20, "").await;
    let server = env.server().unwrap();

    // The step lands while every watch is being re-established.
    let before = env.get(&virtual_services(), NAME).await.unwrap();
    let mark = server.mark();
    server.drop_watches();
    set_step(&env, 1).await;
    let vs = expect_routed(&env, &before, 20, "beta").await;
    assert_eq!(route_names(&vs), vec!["beta", "health", "primary"]);
    for resource in ["rollouts", "virtualservices", "rollouttraffics"] {
        let rewatched = RequestMatch::any()
            .verb(Verb::Watch)
            .resource(resource)
            .user("replica-0");
        assert!(
            server.count_since(mark, &rewatched) >= 1,
            "{resource} not watched again"
        );
    }
    assert_eq!(
        controller_writes(server, mark, "replica-0"),
        vec![
            "patch virtualservices 200",
            "patch rollouttraffics/status 200"
        ]
    );
    step(&env, 2, 20, "beta,shadow").await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_watches_and_compaction_during_the_rollout_relist_and_lose_no_step() {
    let mut env = Env::new("faults-gone").await;
    if fault_server(&env, "expired_watches_and_compaction").is_none() {
        return env.shutdown().await;
    }
    setup(&env).await;
    start(&mut env).await;
    step(&env, 0, 20, "").await;
    let server = env.server().unwrap();
    // Waits until the controller listed each of `resources` again after `mark` (a watcher
    // backs off for about a second after a 410 before it lists).
    let relisted = |mark: LogMark, resources: &'static [&'static str]| {
        server.wait_for("the caches listed again", DEADLINE, move |s| {
            resources.iter().all(|resource| {
                let m = RequestMatch::any()
                    .verb(Verb::List)
                    .resource(resource)
                    .user("replica-0");
                s.count_since(mark, &m) >= 1
            })
        })
    };

    // 410 Gone on the Rollout watch's reconnection: the Rollouts are listed again.
    let before = env.get(&virtual_services(), NAME).await.unwrap();
    let mark = server.mark();
    server.expire_next_watch(RequestMatch::any().resource("rollouts"));
    server.drop_watches();
    set_step(&env, 1).await;
    expect_routed(&env, &before, 20, "beta").await;
    let expired = records(
        server,
        mark,
        &RequestMatch::any().verb(Verb::Watch).resource("rollouts"),
    );
    assert!(
        expired.iter().any(|r| r.injected),
        "{:#?}",
        summary(&expired)
    );
    relisted(mark, &["rollouts"]).await.unwrap();
    assert_eq!(
        controller_writes(server, mark, "replica-0"),
        vec![
            "patch virtualservices 200",
            "patch rollouttraffics/status 200"
        ]
    );

    // The history is compacted: every watch resumes from a version that is gone (all but the
    // RolloutTraffic watch, whose last event may be the newest version), its cache is listed
    // again, and still nothing is written twice.
    let before = env.get(&virtual_services(), NAME).await.unwrap();
    let mark = server.mark();
    server.compact();
    server.drop_watches();
    set_step(&env, 2).await;
    expect_routed(&env, &before, 20, "beta,shadow").await;
    relisted(mark, &["rollouts", "replicasets", "virtualservices"])
        .await
        .unwrap();
    assert_eq!(
        controller_writes(server, mark, "replica-0"),
        vec![
            "patch virtualservices 200",
            "patch rollouttraffics/status 200"
        ]
    );
    step(&env, 3, 50, "beta,shadow").await;
    env.shutdown().await;
}

/// The Lease's holder, once it is one of `identities` (watched, no polling).
async fn wait_holder(env: &Env, identities: &[&str]) -> (String, Lease) {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let holder_of = |l: &Lease| l.spec.as_ref().and_then(|s| s.holder_identity.clone());
    let lease = harness::wait_object(&leases, LEASE, |l: Option<&Lease>| {
        l.and_then(holder_of)
            .is_some_and(|h| identities.contains(&h.as_str()))
    })
    .await
    .unwrap();
    (holder_of(&lease).unwrap(), lease)
}

/// Waits until replica `index` knows it leads (it learns it right after writing the Lease).
async fn wait_leader(env: &Env, index: usize) {
    within(async {
        while !env.controllers[index].is_leader() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

async fn start_replicas(env: &mut Env, identities: &[&str]) {
    for identity in identities {
        let settings = env.settings(identity, true);
        env.start_controller(settings).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_only_the_lease_holder_writes_and_a_shutdown_hands_over() {
    let mut env = Env::new("faults-replicas").await;
    setup(&env).await;
    let ids = ["replica-0", "replica-1"];
    start_replicas(&mut env, &ids).await;
    let (holder, _) = wait_holder(&env, &ids).await;
    let (h, f) = if holder == ids[0] { (0, 1) } else { (1, 0) };
    wait_leader(&env, h).await;
    assert!(!env.controllers[f].is_leader(), "two leaders");
    wait_traffic_logged(&env, |rt| routed(rt, 0, "")).await;

    // Both replicas reconcile the step; only the holder writes, once per changed object.
    let follower_before = env.controllers[f].reconcile_count();
    let (mark, vs) = step(&env, 0, 20, "").await;
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);
    within(async {
        while env.controllers[f].reconcile_count() <= follower_before {
            tokio::task::yield_now().await;
        }
    })
    .await;
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(
            controller_writes(server, mark, ids[h]),
            vec![
                "patch virtualservices 200",
                "patch rollouttraffics/status 200"
            ]
        );
        let follower_writes = records(server, mark, &RequestMatch::writes().user(ids[f]));
        assert!(
            follower_writes.is_empty(),
            "{:#?}",
            summary(&follower_writes)
        );
    }

    // The holder shuts down: it releases the Lease, the other replica takes over and routes.
    let stopped = env.controllers.remove(h);
    within(stopped.shutdown()).await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let released = leases.get(LEASE).await.unwrap();
    assert_eq!(
        released.spec.and_then(|s| s.holder_identity),
        None,
        "the Lease was not released on shutdown"
    );
    let since_release = Instant::now();
    let (holder, _) = wait_holder(&env, &ids).await;
    assert_eq!(holder, ids[f]);
    wait_leader(&env, 0).await;
    eprintln!(
        "two_replicas: takeover {:?} after the release",
        since_release.elapsed()
    );
    let (mark, vs) = step(&env, 1, 20, "beta").await;
    assert_eq!(route_names(&vs), vec!["beta", "health", "primary"]);
    if let (Some(server), Some(mark)) = (env.server(), mark) {
        assert_eq!(
            controller_writes(server, mark, ids[f]),
            vec![
                "patch virtualservices 200",
                "patch rollouttraffics/status 200"
            ]
        );
        assert_eq!(
            server.count_since(mark, &RequestMatch::any().user(ids[h])),
            0
        );
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_cut_off_without_releasing_is_replaced_once_the_lease_expires() {
    let mut env = Env::new("faults-crash").await;
    if fault_server(&env, "a_lease_holder_cut_off_without_releasing").is_none() {
        return env.shutdown().await;
    }
    setup(&env).await;
    let ids = ["replica-0", "replica-1"];
    start_replicas(&mut env, &ids).await;
    let (holder, _) = wait_holder(&env, &ids).await;
    let (h, f) = if holder == ids[0] { (0, 1) } else { (1, 0) };
    wait_leader(&env, h).await;
    wait_traffic_logged(&env, |rt| routed(rt, 0, "")).await;
    let server = env.server().unwrap();

    // Every request of the holder fails from now on: it can neither renew nor release.
    server.fail_next(RequestMatch::any().user(ids[h]), usize::MAX, 500);
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let last = leases.get(LEASE).await.unwrap().spec.unwrap();
    let cut_off = Instant::now();
    let (holder, lease) = wait_holder(&env, &[ids[f]]).await;
    assert_eq!(holder, ids[f]);
    wait_leader(&env, f).await;
    eprintln!(
        "lease_holder_cut_off: takeover {:?} after the cut",
        cut_off.elapsed()
    );
    // Never two holders: the Lease was taken only once the last renewal had expired.
    let renewed = last.renew_time.unwrap().0;
    let duration = i64::from(last.lease_duration_seconds.unwrap());
    let acquired = lease.spec.unwrap().acquire_time.unwrap().0;
    let expiry = renewed
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(duration))
        .unwrap();
    assert!(
        acquired >= expiry,
        "acquired at {acquired}, the last renewal ran until {expiry}"
    );

    let (mark, vs) = step(&env, 0, 20, "").await;
    assert_eq!(weights(&vs, "primary"), vec![80, 20]);
    assert_eq!(
        controller_writes(server, mark.unwrap(), ids[f]),
        vec![
            "patch virtualservices 200",
            "patch rollouttraffics/status 200"
        ]
    );
    // Whatever the cut-off replica tried was refused.
    let old = records(server, mark.unwrap(), &RequestMatch::writes().user(ids[h]));
    assert!(old.iter().all(|r| r.injected), "{:#?}", summary(&old));
    env.shutdown().await;
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
