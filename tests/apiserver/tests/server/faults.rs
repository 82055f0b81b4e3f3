//! Fault injection and the request log.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, WatchParams};
use serde_json::json;
use test_apiserver::{RequestMatch, Verb, rbac_rules};

use crate::common::*;

#[tokio::test]
async fn fail_next_fails_exactly_the_matching_requests() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "web", 1).await;
    server.fail_next(
        RequestMatch::any().verb(Verb::Patch).resource("rollouts"),
        2,
        500,
    );

    assert!(api.get("web").await.is_ok(), "a GET does not match");
    assert_eq!(
        api_error(
            api.patch("web", &PatchParams::default(), &replicas_patch(2))
                .await
        ),
        ("InternalError".into(), 500)
    );
    assert_eq!(
        api_error(
            api.patch("web", &PatchParams::default(), &replicas_patch(2))
                .await
        )
        .1,
        500
    );
    assert_eq!(
        api.get("web").await.unwrap().data["spec"]["replicas"],
        1,
        "failed requests change nothing"
    );
    let ok = api
        .patch("web", &PatchParams::default(), &replicas_patch(2))
        .await
        .unwrap();
    assert_eq!(ok.data["spec"]["replicas"], 2);
    let patches = server.requests_matching(&RequestMatch::any().verb(Verb::Patch));
    assert_eq!(
        patches
            .iter()
            .map(|r| (r.status, r.injected))
            .collect::<Vec<_>>(),
        [(500, true), (500, true), (200, false)]
    );

    // kube-rs retries 429, 503 and 504 by itself: the caller only sees the success.
    let mark = server.mark();
    server.fail_next(RequestMatch::writes().name("web"), 2, 503);
    server.fail_next(RequestMatch::writes().name("web"), 1, 429);
    let ok = api
        .patch("web", &PatchParams::default(), &replicas_patch(3))
        .await
        .unwrap();
    assert_eq!(ok.data["spec"]["replicas"], 3);
    let statuses: Vec<u16> = server
        .requests_since(mark)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 503, 429, 200]);

    // Without kube-rs's retries the status codes and reasons show.
    let mut config = server.config();
    config.default_retry = false;
    let raw = rollouts(&kube::Client::try_from(config).unwrap());
    server.fail_next(RequestMatch::any().resource("rollouts").name("web"), 1, 429);
    assert_eq!(
        api_error(raw.get("web").await),
        ("TooManyRequests".into(), 429)
    );
    server.fail_next(RequestMatch::any().resource("rollouts").name("web"), 1, 503);
    assert_eq!(
        api_error(raw.get("web").await),
        ("ServiceUnavailable".into(), 503)
    );
}

#[tokio::test]
async fn conflict_next_answers_like_a_lost_race() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "web", 1).await;
    server.conflict_next(
        RequestMatch::writes()
            .resource("rollouts")
            .subresource("status"),
        1,
    );
    let status = Patch::Merge(json!({"status": {"phase": "Healthy"}}));
    assert!(
        api.patch("web", &PatchParams::default(), &replicas_patch(2))
            .await
            .is_ok(),
        "the main resource does not match"
    );
    assert_eq!(
        api_error(
            api.patch_status("web", &PatchParams::default(), &status)
                .await
        ),
        ("Conflict".into(), 409)
    );
    assert!(
        api.patch_status("web", &PatchParams::default(), &status)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn latency_delays_matching_requests_until_cleared() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "web", 1).await;
    let delay = Duration::from_millis(300);
    server.add_latency(RequestMatch::any().verb(Verb::Get), delay);
    let start = Instant::now();
    api.get("web").await.unwrap();
    assert!(start.elapsed() >= delay, "{:?}", start.elapsed());
    server.clear_faults();
    let start = Instant::now();
    api.get("web").await.unwrap();
    assert!(start.elapsed() < delay, "{:?}", start.elapsed());
}

#[tokio::test]
async fn the_request_log_counts_writes_per_verb_and_resource() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "web", 1).await;
    let mark = server.mark();
    api.get("web").await.unwrap();
    api.patch("web", &PatchParams::default(), &replicas_patch(2))
        .await
        .unwrap();
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "x"}})),
    )
    .await
    .unwrap();
    let rv = server.resource_version();
    // A no-op patch is still a request (and a write to count), but stores nothing.
    api.patch("web", &PatchParams::default(), &replicas_patch(2))
        .await
        .unwrap();
    assert_eq!(server.resource_version(), rv);

    assert_eq!(server.count_since(mark, &RequestMatch::writes()), 3);
    assert_eq!(
        server.count_since(
            mark,
            &RequestMatch::writes().resource("rollouts").main_resource()
        ),
        2
    );
    let counts = server.counts_since(mark);
    assert_eq!(counts.get(&(Verb::Patch, "rollouts".to_string())), Some(&2));
    assert_eq!(
        counts.get(&(Verb::Patch, "rollouts/status".to_string())),
        Some(&1)
    );
    assert_eq!(counts.get(&(Verb::Get, "rollouts".to_string())), Some(&1));
    assert_eq!(server.count(&RequestMatch::any().verb(Verb::Create)), 1);
    let patch = &server.requests_since(mark)[1];
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(patch.body, Some(json!({"spec": {"replicas": 2}})));
    assert_eq!(
        (patch.namespace.as_deref(), patch.name.as_deref()),
        (Some("default"), Some("web"))
    );
}

#[tokio::test]
async fn the_request_log_folds_into_rbac_rules() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "web", 1).await;
    let mark = server.mark();

    api.list(&ListParams::default()).await.unwrap();
    api.get("web").await.unwrap();
    drop(api.watch(&WatchParams::default(), "0").await.unwrap());
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Healthy"}})),
    )
    .await
    .unwrap();
    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {}});
    leases
        .patch("lock", &PatchParams::apply("t"), &Patch::Apply(lease))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    assert_eq!(api_error(cms.get("missing").await).1, 404);
    cms.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    client.apiserver_version().await.unwrap();

    let records = server.requests_since(mark);
    let missing = records
        .iter()
        .find(|r| r.name.as_deref() == Some("missing"))
        .expect("the failed GET is logged");
    assert_eq!(
        (
            missing.verb,
            missing.group.as_deref(),
            missing.resource.as_deref(),
            missing.subresource.as_deref(),
            missing.namespace.as_deref(),
            missing.status,
        ),
        (
            Verb::Get,
            Some(""),
            Some("configmaps"),
            None,
            Some("default"),
            404
        )
    );

    let rules = server.rbac_rules_since(mark);
    let shown: Vec<String> = rules.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "\"\" configmaps: get,deletecollection",
            "argoproj.io rollouts: get,list,watch",
            "argoproj.io rollouts/status: patch",
            "coordination.k8s.io leases: patch",
        ],
        "sorted by group and resource; discovery and /version left out"
    );
    assert_eq!(rules, rbac_rules(&records));
    let policy = rules[2].to_policy_rule();
    assert_eq!(
        (policy.api_groups, policy.resources, policy.verbs),
        (
            Some(vec!["argoproj.io".to_string()]),
            Some(vec!["rollouts/status".to_string()]),
            vec!["patch".to_string()]
        )
    );
}

#[tokio::test]
async fn the_log_names_the_user_of_each_request() {
    let (server, anonymous) = server().await;
    create_rollout(&rollouts(&anonymous), "web", 1).await;
    let controller = server.client_as("controller").unwrap();
    let mark = server.mark();
    rollouts(&controller).get("web").await.unwrap();
    rollouts(&anonymous)
        .patch("web", &PatchParams::default(), &replicas_patch(2))
        .await
        .unwrap();

    let users: Vec<_> = server
        .requests_since(mark)
        .into_iter()
        .map(|r| (r.verb, r.user))
        .collect();
    assert_eq!(
        users,
        [
            (Verb::Get, Some("controller".to_string())),
            (Verb::Patch, None)
        ]
    );
    assert_eq!(
        server.count_since(mark, &RequestMatch::any().user("controller")),
        1
    );
    let shown: Vec<String> = server
        .rbac_rules_of("controller", mark)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["argoproj.io rollouts: get"]);
}
