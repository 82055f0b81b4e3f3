//! Garbage collection of dependents through owner references.

use kube::api::DeleteParams;
use serde_json::{Value, json};

use crate::common::*;

fn owned_config_map(name: &str, owners: &[&Value]) -> Value {
    let refs: Vec<Value> = owners
        .iter()
        .map(|o| {
            json!({"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
                   "uid": o["metadata"]["uid"], "controller": false})
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default", "ownerReferences": refs}})
}

#[tokio::test]
async fn deleting_an_owner_deletes_its_dependents_in_the_background() {
    let (server, client) = server().await;
    let owner = server.seed(rollout_obj("web", 1)).unwrap();
    let other = server.seed(rollout_obj("other", 1)).unwrap();
    server
        .seed(owned_config_map("only-web", &[&owner]))
        .unwrap();
    server
        .seed(owned_config_map("shared", &[&owner, &other]))
        .unwrap();
    server.seed(config_map_obj("free")).unwrap();

    rollouts(&client)
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&server, "v1", "ConfigMap", Some("default"), "only-web").await;
    // A dependent with another live owner stays, without the dangling reference.
    server
        .wait_for("the dangling reference to go", DEADLINE, |s| {
            let cm = s
                .get("v1", "ConfigMap", Some("default"), "shared")
                .unwrap()
                .unwrap();
            cm["metadata"]["ownerReferences"].as_array().map(Vec::len) == Some(1)
        })
        .await
        .unwrap();
    assert!(stored(&server, "v1", "ConfigMap", Some("default"), "free"));
}

#[tokio::test]
async fn orphan_and_foreground_propagation() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    let orphaner = server.seed(rollout_obj("orphaner", 1)).unwrap();
    server
        .seed(owned_config_map("orphan", &[&orphaner]))
        .unwrap();
    api.delete("orphaner", &DeleteParams::orphan())
        .await
        .unwrap();
    wait_rollout_gone(&server, "orphaner").await;
    let orphan = server
        .get("v1", "ConfigMap", Some("default"), "orphan")
        .unwrap()
        .unwrap();
    assert!(
        orphan["metadata"].get("ownerReferences").is_none(),
        "{orphan}"
    );

    let fg = server.seed(rollout_obj("fg", 1)).unwrap();
    let mut held = owned_config_map("held", &[&fg]);
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    server.seed(held).unwrap();
    let pending = api
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(
        pending
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    server
        .wait_for("the dependent to be marked", DEADLINE, |s| {
            let cm = s
                .get("v1", "ConfigMap", Some("default"), "held")
                .unwrap()
                .unwrap();
            cm["metadata"].get("deletionTimestamp").is_some()
        })
        .await
        .unwrap();
    assert!(
        api.get_opt("fg").await.unwrap().is_some(),
        "the owner waits for its dependents"
    );
    let cm: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::default_namespaced(client.clone());
    cm.patch(
        "held",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_rollout_gone(&server, "fg").await;
}
