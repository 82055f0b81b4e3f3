//! WATCH: kube-runtime's watcher and reflector through 410s and dropped connections, replay,
//! bookmarks, selectors, timeouts and streaming lists.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{
    DeleteParams, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use test_apiserver::{RequestMatch, TestApiServer, Verb};

use crate::common::*;

/// The server's Rollouts, name → replicas.
fn server_state(server: &TestApiServer) -> BTreeMap<String, i64> {
    server
        .list("argoproj.io/v1alpha1", "Rollout", Some("default"))
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap().to_string(),
                o["spec"]["replicas"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn store_state(store: &Store<DynamicObject>) -> BTreeMap<String, i64> {
    store
        .state()
        .iter()
        .map(|o| (o.name_any(), o.data["spec"]["replicas"].as_i64().unwrap()))
        .collect()
}

/// Waits until the reflector's store holds what the server holds, re-checking after every event
/// the reflector applies (the server's own activity does not say when the client caught up).
async fn converged(
    server: &TestApiServer,
    store: &Store<DynamicObject>,
    events: &mut tokio::sync::watch::Receiver<usize>,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while store_state(store) != server_state(server) {
        tokio::select! {
            changed = events.changed() => changed.expect("the reflector runs"),
            () = tokio::time::sleep_until(deadline) => panic!(
                "{what}: no convergence within {DEADLINE:?}: store {:?} server {:?}",
                store_state(store),
                server_state(server)
            ),
        }
    }
}

/// A fixed short retry delay: kube-runtime's default backoff (0.8 s and up) only slows the test.
struct QuickRetry;

impl Iterator for QuickRetry {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        Some(std::time::Duration::from_millis(20))
    }
}

impl kube::runtime::utils::Backoff for QuickRetry {
    fn reset(&mut self) {}
}

async fn run_reflector(config: watcher::Config, streaming: bool) {
    let (server, client) = server().await;
    let api = rollouts(&client);
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &dynamic(rollout_obj(&format!("r{i}"), 1)),
        )
        .await
        .unwrap();
    }
    let writer = reflector::store::Writer::new(rollouts_resource());
    let store = writer.as_reader();
    let (seen, mut events) = tokio::sync::watch::channel(0usize);
    let stream = watcher(api.clone(), config)
        .backoff(QuickRetry)
        .reflect(writer);
    let task = tokio::spawn(stream.for_each(move |_| {
        seen.send_modify(|n| *n += 1);
        async {}
    }));
    store.wait_until_ready().await.unwrap();
    converged(&server, &store, &mut events, "initial list").await;
    wait_open_watches(&server, 1).await;

    // 1. Dropped connection: the watcher resumes from its last version.
    let lists = server.count(&RequestMatch::any().verb(Verb::List).resource("rollouts"));
    server.drop_watches();
    api.patch("r0", &PatchParams::default(), &replicas_patch(5))
        .await
        .unwrap();
    converged(&server, &store, &mut events, "after a dropped watch").await;

    // 2. Compaction + dropped connection: the resumed watch gets 410 and the watcher relists.
    // A change the watch does not see moves the global version past the watcher's.
    wait_open_watches(&server, 1).await;
    server.seed(config_map_obj("c")).unwrap();
    server.compact();
    server.drop_watches();
    api.delete("r1", &DeleteParams::default()).await.unwrap();
    create_rollout(&api, "r7", 7).await;
    converged(&server, &store, &mut events, "after a 410").await;

    // 3. A forced 410 on the next watch.
    wait_open_watches(&server, 1).await;
    server.expire_next_watch(RequestMatch::any().resource("rollouts"));
    server.drop_watches();
    api.patch("r2", &PatchParams::default(), &replicas_patch(2))
        .await
        .unwrap();
    converged(&server, &store, &mut events, "after a forced 410").await;
    wait_open_watches(&server, 1).await;
    let expired_watches = server
        .requests_matching(&RequestMatch::any().verb(Verb::Watch).resource("rollouts"))
        .iter()
        .filter(|r| r.injected)
        .count();
    assert_eq!(expired_watches, 1);
    let relists = server.count(&RequestMatch::any().verb(Verb::List).resource("rollouts")) - lists;
    let rewatches = server.count(
        &RequestMatch::any()
            .verb(Verb::Watch)
            .resource("rollouts")
            .main_resource(),
    );
    if streaming {
        let initial = server
            .requests_matching(&RequestMatch::any().verb(Verb::Watch).resource("rollouts"))
            .iter()
            .filter(|r| r.query.contains("sendInitialEvents=true"))
            .count();
        assert_eq!(relists, 0, "streaming lists never LIST");
        assert!(
            initial >= 3,
            "each 410 makes the watcher re-stream the state ({initial} streams)"
        );
    } else {
        assert!(
            relists >= 2,
            "each 410 makes the watcher relist ({relists} lists)"
        );
    }
    assert!(rewatches >= 4, "{rewatches} watches");
    task.abort();
}

#[tokio::test]
async fn reflector_converges_through_410_and_dropped_connections() {
    run_reflector(watcher::Config::default(), false).await;
}

#[tokio::test]
async fn reflector_with_streaming_lists_converges_too() {
    run_reflector(watcher::Config::default().streaming_lists(), true).await;
}

#[tokio::test]
async fn watch_replays_from_a_version_and_expires_old_ones() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "a", 1).await;
    let from = server.resource_version().to_string();
    create_rollout(&api, "b", 1).await;
    api.patch("a", &PatchParams::default(), &replicas_patch(2))
        .await
        .unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();

    let events: Vec<String> = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .take(3)
        .map_ok(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            other => format!("{other:?}"),
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events, ["ADDED b", "MODIFIED a", "DELETED b"]);

    server.compact();
    let mut stream = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        stream.next().await.is_none(),
        "the watch ends after the error"
    );
}

#[tokio::test]
async fn bookmarks_selectors_and_timeouts() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "a", 1).await;
    let wp = WatchParams::default().labels("app=a");
    let mut stream = api.watch(&wp, "0").await.unwrap().boxed();
    assert!(matches!(stream.next().await, Some(Ok(WatchEvent::Added(o))) if o.name_any() == "a"));

    // Leaving the selector is a DELETED for this watch; coming back an ADDED.
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(
        stream.next().await,
        Some(Ok(WatchEvent::Deleted(_)))
    ));
    create_rollout(&api, "other", 1).await;
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "a"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(
        stream.next().await,
        Some(Ok(WatchEvent::Added(_)))
    ));

    server.send_bookmarks();
    match stream.next().await {
        Some(Ok(WatchEvent::Bookmark(b))) => {
            assert_eq!(
                b.metadata.resource_version,
                server.resource_version().to_string()
            );
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }

    // timeoutSeconds ends the stream.
    let short = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let drained = tokio::time::timeout(DEADLINE, short.collect::<Vec<_>>())
        .await
        .expect("the watch times out");
    assert_eq!(drained.len(), 2, "two ADDED events, then the end");
}
