//! Shared fixtures: a server with a minimal Rollout CRD, typed and dynamic handles on it.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
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
