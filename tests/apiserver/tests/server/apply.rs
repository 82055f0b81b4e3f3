//! Server-side apply field ownership: `managedFields`, conflicts, force, updates taking fields.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::common::*;

/// A Lease apply configuration with these `spec` fields.
fn lease_config(spec: Value) -> Patch<Value> {
    Patch::Apply(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "lock"},
        "spec": spec,
    }))
}

/// Applies `spec` to Lease `lock` as `manager` (forced or not).
async fn apply_lease(
    leases: &Api<Lease>,
    manager: &str,
    force: bool,
    spec: Value,
) -> Result<Lease, kube::Error> {
    let pp = if force {
        apply(manager).force()
    } else {
        apply(manager)
    };
    leases.patch("lock", &pp, &lease_config(spec)).await
}

fn apply(manager: &str) -> PatchParams {
    PatchParams::apply(manager)
}

fn update(manager: &str) -> PatchParams {
    PatchParams {
        field_manager: Some(manager.into()),
        ..PatchParams::default()
    }
}

/// `(manager, operation, subresource, fieldsV1)` of every `managedFields` entry.
fn owners(obj: &impl ResourceExt) -> Vec<(String, String, Option<String>, Value)> {
    obj.managed_fields()
        .iter()
        .map(|e| {
            assert_eq!(e.fields_type.as_deref(), Some("FieldsV1"));
            assert!(e.time.is_some(), "every entry has a time");
            (
                e.manager.clone().unwrap_or_default(),
                e.operation.clone().unwrap_or_default(),
                e.subresource.clone(),
                e.fields_v1
                    .as_ref()
                    .map(|f| f.0.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn owner(manager: &str, operation: &str, fields: Value) -> (String, String, Option<String>, Value) {
    (manager.into(), operation.into(), None, fields)
}

/// The message of a `409 Conflict`, failing on anything else.
fn conflict_message(result: Result<Lease, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 409 && status.reason == "Conflict" => {
            status.message.clone()
        }
        other => panic!("expected 409 Conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn apply_owns_its_fields_and_conflicts_on_other_owners_values() {
    let (_server, client) = server().await;
    let leases: Api<Lease> = Api::default_namespaced(client);
    let holder = |l: &Lease| l.spec.as_ref().and_then(|s| s.holder_identity.clone());

    let created = apply_lease(
        &leases,
        "a",
        false,
        json!({"holderIdentity": "a", "leaseDurationSeconds": 15}),
    )
    .await
    .unwrap();
    let a_fields = json!({"f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}});
    assert_eq!(owners(&created), [owner("a", "Apply", a_fields)]);
    assert_eq!(
        created.managed_fields()[0].api_version.as_deref(),
        Some("coordination.k8s.io/v1")
    );

    // Another manager changing an owned field: 409, in kube-apiserver's words.
    let taken = apply_lease(&leases, "b", false, json!({"holderIdentity": "b"})).await;
    assert_eq!(
        conflict_message(taken),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.holderIdentity"
    );
    // The same value is no conflict: both own it.
    let shared = apply_lease(&leases, "b", false, json!({"holderIdentity": "a"}))
        .await
        .unwrap();
    assert_eq!(owners(&shared).len(), 2);
    // Forced, the field moves to the new owner.
    let forced = apply_lease(&leases, "b", true, json!({"holderIdentity": "b"}))
        .await
        .unwrap();
    assert_eq!(holder(&forced).as_deref(), Some("b"));
    assert_eq!(
        owners(&forced),
        [
            owner(
                "a",
                "Apply",
                json!({"f:spec": {"f:leaseDurationSeconds": {}}})
            ),
            owner("b", "Apply", json!({"f:spec": {"f:holderIdentity": {}}})),
        ]
    );
    let back = apply_lease(
        &leases,
        "a",
        false,
        json!({"holderIdentity": "a", "leaseDurationSeconds": 15}),
    )
    .await;
    assert_eq!(
        conflict_message(back),
        "Apply failed with 1 conflict: conflict with \"b\": .spec.holderIdentity"
    );

    // A strategic merge patch takes what it changes, with no conflict; apply then names the
    // updater with its apiVersion and time.
    let renewed = leases
        .patch(
            "lock",
            &update("c"),
            &Patch::Strategic(json!({"spec": {"leaseDurationSeconds": 30}})),
        )
        .await
        .unwrap();
    assert_eq!(
        owners(&renewed)
            .iter()
            .map(|o| (o.0.as_str(), o.1.as_str()))
            .collect::<Vec<_>>(),
        [("b", "Apply"), ("c", "Update")],
        "a's last field went to c, and a's entry with it"
    );
    let message = conflict_message(
        apply_lease(&leases, "a", false, json!({"leaseDurationSeconds": 15})).await,
    );
    assert!(
        message.starts_with(
            "Apply failed with 1 conflict: conflict with \"c\" using coordination.k8s.io/v1 at "
        ) && message.ends_with(": .spec.leaseDurationSeconds"),
        "{message}"
    );

    // Removing a field (as a lease release does) frees it: the next apply takes it.
    leases
        .patch(
            "lock",
            &update("c"),
            &Patch::Strategic(json!({"spec": {"holderIdentity": null}})),
        )
        .await
        .unwrap();
    let acquired = apply_lease(&leases, "a", false, json!({"holderIdentity": "a"}))
        .await
        .unwrap();
    assert_eq!(holder(&acquired).as_deref(), Some("a"));
}

#[tokio::test]
async fn apply_removes_the_fields_it_stops_applying_unless_someone_else_owns_them() {
    let (_server, client) = server().await;
    let leases: Api<Lease> = Api::default_namespaced(client);
    let both = json!({"holderIdentity": "a", "leaseTransitions": 1, "leaseDurationSeconds": 5});
    apply_lease(&leases, "a", false, both).await.unwrap();
    // c shares leaseDurationSeconds (same value: no conflict, both own it).
    apply_lease(&leases, "c", false, json!({"leaseDurationSeconds": 5}))
        .await
        .unwrap();
    let pruned = apply_lease(&leases, "a", false, json!({"holderIdentity": "a"}))
        .await
        .unwrap();
    let spec = pruned.spec.unwrap();
    assert_eq!(spec.lease_transitions, None, "a alone owned it: removed");
    assert_eq!(
        spec.lease_duration_seconds,
        Some(5),
        "c still owns it: kept"
    );
}

#[tokio::test]
async fn creates_updates_and_status_writes_are_recorded_per_manager() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    let pp = PostParams {
        field_manager: Some("creator".into()),
        ..PostParams::default()
    };
    let created = api
        .create(&pp, &dynamic(rollout_obj("web", 1)))
        .await
        .unwrap();
    assert_eq!(
        owners(&created),
        [owner(
            "creator",
            "Update",
            json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}}})
        )]
    );
    let status = api
        .patch_status(
            "web",
            &apply("status-writer"),
            &Patch::Apply(
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                 "status": {"phase": "Healthy"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        owners(&status).last(),
        Some(&(
            "status-writer".to_string(),
            "Apply".to_string(),
            Some("status".to_string()),
            json!({"f:status": {"f:phase": {}}})
        ))
    );
    // The creator owns spec.replicas: an apply changing it conflicts, naming the update.
    let mut bigger = rollout_obj("web", 3);
    bigger["metadata"].as_object_mut().unwrap().remove("labels");
    let conflict = api
        .patch("web", &apply("scaler"), &Patch::Apply(&bigger))
        .await;
    let (reason, code) = api_error(conflict);
    assert_eq!((reason.as_str(), code), ("Conflict", 409));

    // Without fieldManager, the manager is the user agent's first word, as kube-apiserver does.
    let mut config = server.config();
    config.headers.push((
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static("kubectl/v1.32.0 (linux/amd64) kubernetes/abc"),
    ));
    let kubectl = rollouts(&Client::try_from(config).unwrap());
    let labelled = kubectl
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "x"}}})),
        )
        .await
        .unwrap();
    assert!(
        owners(&labelled)
            .iter()
            .any(|o| o.0 == "kubectl" && o.1 == "Update"),
        "{:?}",
        owners(&labelled)
    );
}
