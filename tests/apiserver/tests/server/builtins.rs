//! The built-in kinds the controller touches, kube-runtime's event recorder, and CRDs created
//! through the API at run time.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{ApiCapabilities, Discovery, Scope, verbs};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use test_apiserver::{RequestMatch, TestApiServer, Verb};

use crate::common::*;

fn find(discovery: &Discovery, group: &str, kind: &str) -> Option<(ApiResource, ApiCapabilities)> {
    discovery
        .groups()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == kind)
}

#[tokio::test]
async fn the_default_server_serves_every_kind_the_controller_touches() {
    let server = TestApiServer::start().await.unwrap();
    let discovery = Discovery::new(server.client().unwrap())
        .run()
        .await
        .unwrap();
    let expected = [
        ("", "v1", "Namespace", "namespaces", Scope::Cluster),
        ("", "v1", "Service", "services", Scope::Namespaced),
        ("", "v1", "Event", "events", Scope::Namespaced),
        (
            "apps",
            "apps/v1",
            "ReplicaSet",
            "replicasets",
            Scope::Namespaced,
        ),
        (
            "networking.k8s.io",
            "networking.k8s.io/v1",
            "Ingress",
            "ingresses",
            Scope::Namespaced,
        ),
        (
            "coordination.k8s.io",
            "coordination.k8s.io/v1",
            "Lease",
            "leases",
            Scope::Namespaced,
        ),
        (
            "events.k8s.io",
            "events.k8s.io/v1",
            "Event",
            "events",
            Scope::Namespaced,
        ),
        (
            "apiextensions.k8s.io",
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            Scope::Cluster,
        ),
    ];
    for (group, api_version, kind, plural, scope) in expected {
        let (ar, caps) = find(&discovery, group, kind)
            .unwrap_or_else(|| panic!("{api_version} {kind} is not discovered"));
        assert_eq!(
            (
                ar.api_version.as_str(),
                ar.plural.as_str(),
                caps.scope.clone()
            ),
            (api_version, plural, scope)
        );
        for verb in [
            verbs::GET,
            verbs::LIST,
            verbs::WATCH,
            verbs::CREATE,
            verbs::PATCH,
        ] {
            assert!(caps.supports_operation(verb), "{kind} supports {verb}");
        }
    }
}

#[tokio::test]
async fn kube_runtime_recorder_creates_then_patches_events_k8s_io() {
    let (server, client) = server().await;
    let web = create_rollout(&rollouts(&client), "web", 1).await;
    let reference = ObjectReference {
        api_version: Some("argoproj.io/v1alpha1".into()),
        kind: Some("Rollout".into()),
        name: Some("web".into()),
        namespace: Some("default".into()),
        uid: web.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "rollout-router".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "WeightChanged".into(),
        note: Some("canary 20%".into()),
        action: "Route".into(),
        secondary: None,
    };
    let mark = server.mark();
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let events_k8s_io = |verb| {
        RequestMatch::any()
            .verb(verb)
            .group("events.k8s.io")
            .resource("events")
    };
    assert_eq!(server.count_since(mark, &events_k8s_io(Verb::Create)), 1);
    assert_eq!(server.count_since(mark, &events_k8s_io(Verb::Patch)), 1);
    let stored: Vec<EventV1> = Api::default_namespaced(client)
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    let [only] = stored.as_slice() else {
        panic!("one event expected, got {stored:?}");
    };
    assert_eq!(only.reason.as_deref(), Some("WeightChanged"));
    assert_eq!(only.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(
        only.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("web")
    );
}

/// A CRD shaped like the controller's own: printer columns, status and scale subresources.
const TRAFFIC_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: rollouttraffics.rollout-router.io
spec:
  group: rollout-router.io
  names: {kind: RolloutTraffic, listKind: RolloutTrafficList, plural: rollouttraffics, singular: rollouttraffic, shortNames: [rt]}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    additionalPrinterColumns:
    - {jsonPath: .spec.rollout.name, name: Rollout, type: string}
    - {jsonPath: .status.weight, name: Weight, type: integer}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
"#;

#[tokio::test]
async fn a_crd_posted_at_run_time_is_discovered_and_serves_status() {
    let server = TestApiServer::start().await.unwrap();
    let client = server.client().unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(TRAFFIC_CRD).unwrap();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = find(&discovery, "rollout-router.io", "RolloutTraffic")
        .expect("the new kind is discovered");
    assert_eq!(
        (ar.plural.as_str(), caps.scope.clone()),
        ("rollouttraffics", Scope::Namespaced)
    );
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural.ends_with("status"))
    );

    // Objects need none of the printer columns' fields.
    let api: Api<DynamicObject> = Api::default_namespaced_with(client, &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "rollout-router.io/v1alpha1", "kind": "RolloutTraffic",
        "metadata": {"name": "web"}, "spec": {}, "status": {"ignored": true},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(
        created.data.get("status"),
        None,
        "status is dropped on create"
    );
    let with_status = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"weight": 20}, "spec": {"ignored": true}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"], json!({"weight": 20}));
    assert_eq!(
        with_status.data["spec"],
        json!({}),
        "/status changes only status"
    );
}

/// The repository's generated CRDs (`rollout-router crds --output-dir crds`).
fn repo_crds() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    dir.join("rollouttraffics.rollout-router.io.yaml")
        .exists()
        .then_some(dir)
}

#[tokio::test]
async fn the_repository_crds_post_through_the_api_and_are_served() {
    let Some(dir) = repo_crds() else {
        eprintln!("skipped: crds/ not generated yet (rollout-router crds --output-dir crds)");
        return;
    };
    let server = TestApiServer::start().await.unwrap();
    let client = server.client().unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for crd in serde_saphyr::from_multiple::<CustomResourceDefinition>(&text).unwrap() {
            kinds.push((crd.spec.group.clone(), crd.spec.names.kind.clone()));
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
    }
    assert!(
        kinds.contains(&("rollout-router.io".into(), "RolloutTraffic".into())),
        "{kinds:?}"
    );
    let discovery = Discovery::new(client).run().await.unwrap();
    for (group, kind) in &kinds {
        assert!(
            find(&discovery, group, kind).is_some(),
            "{group} {kind} is discovered"
        );
    }
}
