//! CRUD through typed and dynamic `Api`s, discovery, lists, pagination and CRDs.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, PostParams};
use kube::discovery::{Discovery, Scope};
use kube::{Client, ResourceExt};
use serde_json::json;
use test_apiserver::TestApiServer;

use crate::common::*;

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn typed_crud_follows_kube_apiserver() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let rv_before = server.resource_version();

    let created = cms
        .create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    assert_eq!(created.namespace().as_deref(), Some("default"));
    assert_eq!(created.uid().map(|u| u.len()), Some(36));
    assert!(created.creation_timestamp().is_some());
    let rv: u64 = created.resource_version().unwrap().parse().unwrap();
    assert_eq!(
        rv,
        rv_before + 1,
        "resourceVersion is the next global version"
    );
    assert_eq!(
        created.metadata.generation, None,
        "ConfigMaps have no generation"
    );

    assert_eq!(
        api_error(cms.create(&PostParams::default(), &config_map("a")).await),
        ("AlreadyExists".into(), 409)
    );

    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["k"], "w");
    assert_eq!(replaced.uid(), created.uid());
    assert_ne!(replaced.resource_version(), created.resource_version());
    // `changed` still carries the old resourceVersion.
    assert_eq!(
        api_error(cms.replace("a", &PostParams::default(), &changed).await),
        ("Conflict".into(), 409)
    );

    let got = cms.get("a").await.unwrap();
    assert_eq!(got, replaced);
    assert_eq!(
        api_error(cms.get("missing").await),
        ("NotFound".into(), 404)
    );

    let deleted = cms.delete("a", &DeleteParams::default()).await.unwrap();
    let status = deleted
        .right()
        .expect("an immediate deletion answers with a Status");
    assert_eq!(status.details.unwrap().name, "a");
    assert!(cms.get_opt("a").await.unwrap().is_none());
    assert_eq!(
        api_error(cms.delete("a", &DeleteParams::default()).await),
        ("NotFound".into(), 404)
    );
}

#[tokio::test]
async fn dynamic_crud_on_custom_resources() {
    let (_server, client) = server().await;
    let api = rollouts(&client);
    let created = create_rollout(&api, "web", 2).await;
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.types.as_ref().unwrap().kind, "Rollout");

    // Custom resources need a resourceVersion on PUT.
    let mut no_rv = created.clone();
    no_rv.metadata.resource_version = None;
    assert_eq!(
        api_error(api.replace("web", &PostParams::default(), &no_rv).await),
        ("Invalid".into(), 422)
    );

    let mut bigger = created.clone();
    bigger.data["spec"]["replicas"] = json!(3);
    let replaced = api
        .replace("web", &PostParams::default(), &bigger)
        .await
        .unwrap();
    assert_eq!(replaced.data["spec"]["replicas"], 3);
    assert_eq!(replaced.metadata.generation, Some(2));

    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.types.kind, "RolloutList");
    assert_eq!(
        list.metadata.resource_version,
        replaced.metadata.resource_version
    );

    // The typed view of the same objects.
    let typed: Api<Rollout> = Api::default_namespaced(client);
    assert_eq!(typed.get("web").await.unwrap().spec.replicas, 3);

    // A body whose namespace disagrees with the URL is rejected.
    let mut elsewhere = rollout_obj("other", 1);
    elsewhere["metadata"]["namespace"] = json!("kube-system");
    assert_eq!(
        api_error(
            api.create(&PostParams::default(), &dynamic(elsewhere))
                .await
        ),
        ("BadRequest".into(), 400)
    );
    // Namespaces must exist (NamespaceLifecycle).
    let nowhere: Api<DynamicObject> =
        Api::namespaced_with(typed.into_client(), "nowhere", &rollouts_resource());
    let mut obj = rollout_obj("x", 1);
    obj["metadata"]["namespace"] = json!("nowhere");
    assert_eq!(
        api_error(nowhere.create(&PostParams::default(), &dynamic(obj)).await),
        ("NotFound".into(), 404)
    );
}

#[tokio::test]
async fn generate_name_dry_run_and_missing_names() {
    let (server, client) = server().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let mut cm = config_map("");
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("gen-".into());
    let a = cms.create(&PostParams::default(), &cm).await.unwrap();
    let b = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(
        a.name_any().starts_with("gen-") && a.name_any().len() == 9,
        "{}",
        a.name_any()
    );
    assert_ne!(a.name_any(), b.name_any());

    cm.metadata.generate_name = None;
    assert_eq!(
        api_error(cms.create(&PostParams::default(), &cm).await),
        ("Invalid".into(), 422)
    );

    let rv = server.resource_version();
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    cms.create(&pp, &config_map("dry")).await.unwrap();
    assert!(cms.get_opt("dry").await.unwrap().is_none());
    assert_eq!(server.resource_version(), rv, "a dry run stores nothing");
}

#[tokio::test]
async fn discovery_serves_builtins_and_custom_resources() {
    let (_server, client) = server().await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "Rollout")
        .expect("Rollout discovered");
    assert_eq!(ar.plural, "rollouts");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "rollouts/status" || sub.plural == "status")
    );
    let (ns, ns_caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "Namespace")
        .expect("Namespace discovered");
    assert_eq!(
        (ns.api_version.as_str(), ns_caps.scope),
        ("v1", Scope::Cluster)
    );
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn cluster_scoped_objects_and_namespaces() {
    let (server, client) = server().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("team".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let mut held = config_map("inside");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    nss.delete("team", &DeleteParams::default()).await.unwrap();
    // Terminating: no new content; the namespace controller empties it, then removes it.
    assert_eq!(
        api_error(
            cms.create(&PostParams::default(), &config_map("late"))
                .await
        ),
        ("Forbidden".into(), 403)
    );
    server
        .wait_for("the content to be marked for deletion", DEADLINE, |s| {
            s.get("v1", "ConfigMap", Some("team"), "inside")
                .unwrap()
                .is_some_and(|c| c["metadata"].get("deletionTimestamp").is_some())
        })
        .await
        .unwrap();
    assert!(stored(&server, "v1", "Namespace", None, "team"));
    let release = kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}}));
    cms.patch("inside", &kube::api::PatchParams::default(), &release)
        .await
        .unwrap();
    wait_gone(&server, "v1", "Namespace", None, "team").await;
    assert!(!stored(&server, "v1", "ConfigMap", Some("team"), "inside"));
}

#[tokio::test]
async fn label_and_field_selectors() {
    let (_server, client) = server().await;
    let api = rollouts(&client);
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let mut o = rollout_obj(name, 1);
        o["metadata"]["labels"]["tier"] = json!(tier);
        api.create(&PostParams::default(), &dynamic(o))
            .await
            .unwrap();
    }
    let names = |l: kube::api::ObjectList<DynamicObject>| {
        l.items.iter().map(|o| o.name_any()).collect::<Vec<_>>()
    };
    let front = api
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(names(front), ["a", "c"]);
    let not_front = api
        .list(&ListParams::default().labels("tier notin (front)"))
        .await
        .unwrap();
    assert_eq!(names(not_front), ["b"]);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .unwrap();
    assert_eq!(names(by_name), ["c"]);
    let both = api
        .list(
            &ListParams::default()
                .labels("tier=front")
                .fields("metadata.name!=a"),
        )
        .await
        .unwrap();
    assert_eq!(names(both), ["c"]);
    assert_eq!(
        api_error(
            api.list(&ListParams::default().fields("spec.replicas=1"))
                .await
        ),
        ("BadRequest".into(), 400)
    );
    // Across namespaces.
    let all: Api<DynamicObject> = Api::all_with(client, &rollouts_resource());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
}

#[tokio::test]
async fn pagination_serves_a_consistent_snapshot() {
    let (server, client) = server().await;
    let api = rollouts(&client);
    for i in 0..5 {
        api.create(
            &PostParams::default(),
            &dynamic(rollout_obj(&format!("r{i}"), 1)),
        )
        .await
        .unwrap();
    }
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(
        first.items.iter().map(|o| o.name_any()).collect::<Vec<_>>(),
        ["r0", "r1"]
    );
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().unwrap();

    // Changes after the first page do not show in the next pages.
    api.delete("r2", &DeleteParams::default()).await.unwrap();
    create_rollout(&api, "r9", 1).await;

    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|o| o.name_any())
            .collect::<Vec<_>>(),
        ["r2", "r3"]
    );
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    let token2 = second.metadata.continue_.clone().unwrap();
    let third = api
        .list(&ListParams::default().limit(2).continue_token(&token2))
        .await
        .unwrap();
    assert_eq!(
        third.items.iter().map(|o| o.name_any()).collect::<Vec<_>>(),
        ["r4"]
    );
    assert!(
        third
            .metadata
            .continue_
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    );

    // An exact list at the first page's version, and a version from the future.
    let rv = first.metadata.resource_version.clone().unwrap();
    let exact = api
        .list(
            &ListParams::default()
                .at(&rv)
                .matching(kube::api::VersionMatch::Exact),
        )
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 5);
    // (kube-rs retries 504 by itself; without retries the answer shows.)
    let future = (server.resource_version() + 100).to_string();
    let mut config = server.config();
    config.default_retry = false;
    let raw = rollouts(&Client::try_from(config).unwrap());
    assert_eq!(
        api_error(raw.list(&ListParams::default().at(&future)).await),
        ("Timeout".into(), 504)
    );

    // After compaction the token is too old.
    server.compact();
    assert_eq!(
        api_error(
            api.list(&ListParams::default().limit(2).continue_token(&token))
                .await
        ),
        ("Expired".into(), 410)
    );
}

#[tokio::test]
async fn crds_created_through_the_api_are_served_until_deleted() {
    let server = TestApiServer::start().await.unwrap();
    let client: Client = server.client().unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let created = crds
        .create(&PostParams::default(), &rollout_crd())
        .await
        .unwrap();
    let conditions = created.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let api = rollouts(&client);
    create_rollout(&api, "web", 1).await;
    crds.delete("rollouts.argoproj.io", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(api.get("web").await).1, 404);
    assert!(
        server
            .resource_types()
            .iter()
            .all(|rt| rt.kind != "Rollout")
    );
}

fn upstream_crds() -> Option<PathBuf> {
    let dir = std::env::var_os("UPSTREAM_CRDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/upstream-crds")
        });
    dir.join("rollout-crd.yaml").exists().then_some(dir)
}

#[tokio::test]
async fn upstream_crds_register_and_serve_every_version() {
    let Some(dir) = upstream_crds() else {
        eprintln!("skipped: ../shared/upstream-crds not found (set UPSTREAM_CRDS_DIR)");
        return;
    };
    let server = TestApiServer::start().await.unwrap();
    let mut kinds = Vec::new();
    for file in [
        "rollout-crd.yaml",
        "experiment-crd.yaml",
        "virtualservices-crd.yaml",
        "destinationrules-crd.yaml",
    ] {
        for rt in server.register_crd_yaml(dir.join(file)).unwrap() {
            kinds.push((rt.kind.clone(), rt.versions.clone(), rt.status_subresource));
        }
    }
    assert!(
        kinds.contains(&("Rollout".into(), vec!["v1alpha1".into()], true)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("Experiment".into(), vec!["v1alpha1".into()], false)),
        "{kinds:?}"
    );
    let dr = kinds.iter().find(|k| k.0 == "DestinationRule").unwrap();
    assert_eq!(dr.1, ["v1", "v1alpha3", "v1beta1"]);

    // One object, served at every version (conversion strategy None).
    let client = server.client().unwrap();
    let v1 = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "networking.istio.io",
        "v1",
        "DestinationRule",
    ));
    let v1a3 = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "networking.istio.io",
        "v1alpha3",
        "DestinationRule",
    ));
    let obj = dynamic(
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
        "metadata": {"name": "dr"}, "spec": {"host": "web"}}),
    );
    Api::<DynamicObject>::default_namespaced_with(client.clone(), &v1a3)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
    let as_v1 = Api::<DynamicObject>::default_namespaced_with(client, &v1)
        .get("dr")
        .await
        .unwrap();
    assert_eq!(as_v1.types.unwrap().api_version, "networking.istio.io/v1");
    assert_eq!(as_v1.data["spec"]["host"], "web");
    let crd = server
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "rollouts.argoproj.io",
        )
        .unwrap();
    assert!(
        crd.is_some(),
        "the CRD object is visible as after kubectl apply"
    );
}
