//! Leader election with kube-lease-manager, which relies on server-side apply conflicts: two
//! managers on one Lease, exactly one holds it, and the other takes over on release or expiry.

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use serde_json::json;
use test_apiserver::{RequestMatch, TestApiServer, Verb};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::*;

const LEASE: &str = "rollout-router";

async fn manager(client: &Client, identity: &str) -> LeaseManager {
    LeaseManagerBuilder::new(client.clone(), LEASE)
        .with_namespace("default")
        .with_identity(identity)
        // Short, so that expiry takes seconds: renewals come every second.
        .with_duration(2)
        .with_grace(1)
        .build()
        .await
        .unwrap()
}

type Running = (
    watch::Receiver<bool>,
    JoinHandle<kube_lease_manager::Result<LeaseManager>>,
);

async fn start(client: &Client, identity: &str) -> Running {
    manager(client, identity).await.watch().await
}

fn holder(server: &TestApiServer) -> Option<String> {
    server
        .get_as::<Lease>(Some("default"), LEASE)
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Waits until one of the two managers leads; returns its index.
async fn one_leads(a: &mut watch::Receiver<bool>, b: &mut watch::Receiver<bool>) -> usize {
    within("a leader", async {
        loop {
            if *a.borrow_and_update() {
                return 0;
            }
            if *b.borrow_and_update() {
                return 1;
            }
            tokio::select! {
                r = a.changed() => r.unwrap(),
                r = b.changed() => r.unwrap(),
            }
        }
    })
    .await
}

async fn leads(rx: &mut watch::Receiver<bool>, what: &str) {
    within(what, rx.wait_for(|leader| *leader)).await.unwrap();
}

/// Starts two managers, checks exactly one holds the Lease through two renewals; returns
/// (leader, follower) with their identities.
async fn elect(server: &TestApiServer, client: &Client) -> [(Running, &'static str); 2] {
    let mut managers = [
        (start(client, "a").await, "a"),
        (start(client, "b").await, "b"),
    ];
    let [(ra, _), (rb, _)] = &mut managers;
    let first = one_leads(&mut ra.0, &mut rb.0).await;
    if first == 1 {
        managers.swap(0, 1);
    }
    let [(leader, leader_id), (follower, _)] = &managers;
    assert_eq!(holder(server).as_deref(), Some(*leader_id));
    // Hold through two renewals: the follower never leads meanwhile.
    let mark = server.mark();
    let renewals = RequestMatch::any()
        .verb(Verb::Patch)
        .resource("leases")
        .name(LEASE);
    server
        .wait_for("two renewals", DEADLINE, |s| {
            s.count_since(mark, &renewals) >= 2
        })
        .await
        .unwrap();
    assert!(*leader.0.borrow());
    assert!(!*follower.0.borrow(), "only one manager leads");
    assert_eq!(holder(server).as_deref(), Some(*leader_id));
    managers
}

#[tokio::test]
async fn one_manager_leads_and_the_other_takes_over_on_release() {
    let (server, client) = server().await;
    let [
        ((leader_rx, leader_task), _),
        ((mut follower_rx, follower_task), follower_id),
    ] = elect(&server, &client).await;

    // Closing the channel makes the leader release the Lease and stop.
    drop(leader_rx);
    within("the leader to stop", leader_task)
        .await
        .unwrap()
        .unwrap();
    leads(&mut follower_rx, "the follower to lead").await;
    assert_eq!(holder(&server).as_deref(), Some(follower_id));
    follower_task.abort();
}

#[tokio::test]
async fn the_other_manager_takes_over_when_the_leader_dies() {
    let (server, client) = server().await;
    let [
        ((_leader_rx, leader_task), _),
        ((mut follower_rx, follower_task), follower_id),
    ] = elect(&server, &client).await;

    // A crash: no release; the Lease expires and the follower takes it.
    leader_task.abort();
    leads(&mut follower_rx, "the follower to lead after expiry").await;
    assert_eq!(holder(&server).as_deref(), Some(follower_id));
    follower_task.abort();
}

#[tokio::test]
async fn acquiring_a_held_lease_by_apply_conflicts() {
    // What kube-lease-manager sends when it believes the Lease is free but it is not.
    let (server, client) = server().await;
    let (mut rx, task) = start(&client, "a").await;
    leads(&mut rx, "a to lead").await;
    let leases: Api<Lease> = Api::default_namespaced(client);
    let acquire = Patch::Apply(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "spec": {"holderIdentity": "b", "acquireTime": "2030-01-01T00:00:00.000000Z",
                 "renewTime": "2030-01-01T00:00:00.000000Z", "leaseDurationSeconds": 2},
    }));
    let result = leases
        .patch(LEASE, &PatchParams::apply("kube-lease-manager-b"), &acquire)
        .await;
    let message = match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.reason.as_str(), status.code), ("Conflict", 409));
            status.message.clone()
        }
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert!(
        message.starts_with("Apply failed with ")
            // kube-lease-manager's builder keeps its default (random) manager name.
            && message.contains("with \"kube-lease-manager-")
            && message.contains(".spec.holderIdentity"),
        "{message}"
    );
    assert_eq!(holder(&server).as_deref(), Some("a"));
    task.abort();
}
