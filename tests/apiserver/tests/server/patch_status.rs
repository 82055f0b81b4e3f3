//! Every patch type, the status subresource, generation and finalizers.

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn json_patch_applies_and_a_failed_test_is_invalid() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "web", 2).await;
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/extra", "value": "1"},
    ]))
    .unwrap();
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["replicas"], 5);
    assert_eq!(patched.labels()["extra"], "1");

    let rv = server.resource_version();
    let stale: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 9},
    ]))
    .unwrap();
    assert_eq!(
        api_error(
            api.patch("web", &PatchParams::default(), &Patch::<()>::Json(stale))
                .await
        ),
        ("Invalid".into(), 422)
    );
    assert_eq!(
        server.resource_version(),
        rv,
        "a failed patch writes nothing"
    );
    let missing = api
        .patch(
            "nope",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {}})),
        )
        .await;
    assert_eq!(api_error(missing), ("NotFound".into(), 404));
}

#[tokio::test]
async fn merge_patch_removes_with_null_and_checks_resource_version() {
    let (_server, client) = server().await;
    let api = rollouts(&client);
    let created = create_rollout(&api, "web", 2).await;
    let patch =
        json!({"metadata": {"labels": {"app": null, "new": "yes"}}, "spec": {"paused": true}});
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.labels().get("app"), None);
    assert_eq!(patched.labels()["new"], "yes");
    assert_eq!(patched.data["spec"], json!({"replicas": 2, "paused": true}));
    // A resourceVersion in the patch is a precondition.
    let stale = json!({"metadata": {"resourceVersion": created.resource_version()}, "spec": {"replicas": 7}});
    assert_eq!(
        api_error(
            api.patch("web", &PatchParams::default(), &Patch::Merge(&stale))
                .await
        ),
        ("Conflict".into(), 409)
    );
}

#[tokio::test]
async fn strategic_merge_patch_merges_lists_by_key_on_builtins_only() {
    let (_server, client) = server().await;
    let svcs: Api<Service> = Api::default_namespaced(client.clone());
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    let patched = svcs
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let ports = patched.spec.unwrap().ports.unwrap();
    assert_eq!(ports.len(), 2, "merged by port, not replaced");
    assert_eq!(
        ports[0].target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
    );

    // kube-apiserver does not support strategic merge patch for custom resources.
    let api = rollouts(&client);
    create_rollout(&api, "web", 1).await;
    let smp = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 2}})),
        )
        .await;
    assert_eq!(api_error(smp), ("UnsupportedMediaType".into(), 415));
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let (_server, client) = server().await;
    let api = rollouts(&client);
    let pp = PatchParams::apply("test").force();
    let applied = api
        .patch("web", &pp, &Patch::Apply(rollout_obj("web", 2)))
        .await
        .unwrap();
    assert_eq!(applied.data["spec"]["replicas"], 2);
    let mut again = rollout_obj("web", 3);
    again["spec"]["paused"] = json!(true);
    let applied = api.patch("web", &pp, &Patch::Apply(&again)).await.unwrap();
    assert_eq!(applied.data["spec"], json!({"replicas": 3, "paused": true}));
    assert_eq!(applied.metadata.generation, Some(2));
    let no_manager = api
        .patch("web", &PatchParams::default(), &Patch::Apply(&again))
        .await;
    assert_eq!(api_error(no_manager), ("Invalid".into(), 422));
}

#[tokio::test]
async fn status_subresource_isolates_status_and_generation_tracks_spec() {
    let (server, client) = server().await;
    let api: Api<Rollout> = Api::default_namespaced(client);
    let mut ro = Rollout::new(
        "web",
        RolloutSpec {
            replicas: 1,
            paused: None,
        },
    );
    ro.status = Some(RolloutStatus {
        phase: Some("Ignored".into()),
    });
    let created = api.create(&PostParams::default(), &ro).await.unwrap();
    assert_eq!(created.status, None, "status is dropped on create");
    assert_eq!(created.metadata.generation, Some(1));

    // /status changes only status; generation stays.
    let st = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Healthy"}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(
        st.status.as_ref().unwrap().phase.as_deref(),
        Some("Healthy")
    );
    assert_eq!((st.spec.replicas, st.metadata.generation), (1, Some(1)));

    // The main resource ignores status; a label change does not bump generation; a spec change does.
    let main = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Lost"}, "metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        main.status.as_ref().unwrap().phase.as_deref(),
        Some("Healthy")
    );
    assert_eq!(main.metadata.generation, Some(1));
    let mut bigger = main.clone();
    bigger.spec.replicas = 4;
    let replaced = api
        .replace("web", &PostParams::default(), &bigger)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));

    // PUT /status with a stale version conflicts; with the current one it changes status only.
    let mut st2 = replaced.clone();
    st2.status = Some(RolloutStatus {
        phase: Some("Progressing".into()),
    });
    st2.spec.replicas = 100;
    let put = api
        .replace_status("web", &PostParams::default(), &st2)
        .await
        .unwrap();
    assert_eq!(put.status.unwrap().phase.as_deref(), Some("Progressing"));
    assert_eq!(put.spec.replicas, 4);
    assert_eq!(
        api_error(
            api.replace_status("web", &PostParams::default(), &st2)
                .await
        ),
        ("Conflict".into(), 409)
    );

    // A no-op update keeps the resourceVersion and sends no event.
    let rv = server.resource_version();
    let same = api
        .patch("web", &PatchParams::default(), &replicas_patch(4))
        .await
        .unwrap();
    assert_eq!(server.resource_version(), rv);
    assert_eq!(same.resource_version(), Some(rv.to_string()));
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    let mut obj = rollout_obj("web", 1);
    obj["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    api.create(&PostParams::default(), &dynamic(obj))
        .await
        .unwrap();

    let pending = api
        .delete("web", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the object, still there");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(
        pending.metadata.generation,
        Some(2),
        "marking for deletion bumps generation"
    );
    // Deleting again changes nothing.
    let again = api
        .delete("web", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(again.resource_version(), pending.resource_version());
    // No new finalizers on a deleting object.
    let add = json!({"metadata": {"finalizers": ["example.com/cleanup", "late"]}});
    assert_eq!(
        api_error(
            api.patch("web", &PatchParams::default(), &Patch::Merge(&add))
                .await
        ),
        ("Invalid".into(), 422)
    );

    // Removing the last finalizer (as kube-runtime's finalizer helper does) deletes it.
    let remove: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/cleanup"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]))
    .unwrap();
    api.patch("web", &PatchParams::default(), &Patch::<()>::Json(remove))
        .await
        .unwrap();
    assert!(api.get_opt("web").await.unwrap().is_none());
    assert!(!rollout_stored(&server, "web"));
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let (_server, client) = server().await;
    let api = rollouts(&client);
    create_rollout(&api, "web", 1).await;
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(
        api_error(api.delete("web", &dp).await),
        ("Conflict".into(), 409)
    );
    assert!(api.get_opt("web").await.unwrap().is_some());
}
