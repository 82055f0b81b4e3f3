//! Shared fixtures: a server with a minimal Rollout CRD, typed and dynamic handles on it, and
//! the waits and checks the tests repeat.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PostParams};
use kube::{Client, CustomResource};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use test_apiserver::TestApiServer;

/// How long any condition may take to hold.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A minimal Rollout CRD (the upstream one is 8 000 lines; its test is in `crud.rs`).
pub const ROLLOUT_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: rollouts.argoproj.io
spec:
  group: argoproj.io
  names: {kind: Rollout, listKind: RolloutList, plural: rollouts, singular: rollout, shortNames: [ro]}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    subresources: {status: {}}
"#;

/// A typed view of the Rollout CRD above (schema disabled: the server does not validate).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced
)]
#[kube(status = "RolloutStatus", schema = "disabled")]
pub struct RolloutSpec {
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct RolloutStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

pub fn rollout_crd() -> CustomResourceDefinition {
    serde_saphyr::from_str(ROLLOUT_CRD).expect("the fixture CRD parses")
}

/// A server serving the built-ins and Rollouts, and a client for it.
pub async fn server() -> (TestApiServer, Client) {
    let server = TestApiServer::start().await.expect("server starts");
    server.register_crd(&rollout_crd()).expect("CRD registers");
    let client = server.client().expect("client");
    (server, client)
}

pub fn rollouts_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"))
}

pub fn rollouts(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), "default", &rollouts_resource())
}

pub fn rollout_obj(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"replicas": replicas},
    })
}

pub fn dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("a valid object")
}

/// The `reason` and `code` of a kube API error.
pub fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> (String, u16) {
    match result {
        Err(kube::Error::Api(status)) => (status.reason.clone(), status.code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Creates Rollout `name` in `default` through the API.
pub async fn create_rollout(api: &Api<DynamicObject>, name: &str, replicas: i64) -> DynamicObject {
    api.create(
        &PostParams::default(),
        &dynamic(rollout_obj(name, replicas)),
    )
    .await
    .expect("the rollout is created")
}

/// A merge patch setting `spec.replicas`.
pub fn replicas_patch(replicas: i64) -> Patch<Value> {
    Patch::Merge(json!({"spec": {"replicas": replicas}}))
}

/// A ConfigMap in `default`, as `seed` takes it.
pub fn config_map_obj(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
}

/// Whether the server stores the object (read directly, not through the API).
pub fn stored(
    server: &TestApiServer,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> bool {
    server
        .get(api_version, kind, namespace, name)
        .expect("the kind is served")
        .is_some()
}

/// Waits until the server no longer stores the object.
pub async fn wait_gone(
    server: &TestApiServer,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) {
    server
        .wait_for(&format!("{kind} {name} to go"), DEADLINE, |s| {
            !stored(s, api_version, kind, namespace, name)
        })
        .await
        .unwrap();
}

/// Whether the server stores Rollout `name` in `default`.
pub fn rollout_stored(server: &TestApiServer, name: &str) -> bool {
    stored(
        server,
        "argoproj.io/v1alpha1",
        "Rollout",
        Some("default"),
        name,
    )
}

/// Waits until Rollout `name` in `default` is gone.
pub async fn wait_rollout_gone(server: &TestApiServer, name: &str) {
    wait_gone(
        server,
        "argoproj.io/v1alpha1",
        "Rollout",
        Some("default"),
        name,
    )
    .await;
}

/// Waits until exactly `n` watches are open.
pub async fn wait_open_watches(server: &TestApiServer, n: usize) {
    server
        .wait_for(&format!("{n} open watches"), DEADLINE, |s| {
            s.open_watches() == n
        })
        .await
        .unwrap();
}

/// Awaits `future` for at most [`DEADLINE`], failing the test with `what` after that.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}"))
}
