//! The end-to-end environment: an API server (the in-memory `test-apiserver`, or a real cluster
//! when `ROLLOUT_ROUTER_TEST_KUBECONFIG` names a kubeconfig), a fresh namespace, the CRDs, the
//! real controller running in-process, and helpers that act as the rollout controller.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use rollout_router::controller::{self, Controller, Settings};
use rollout_router::traffic::RolloutTraffic;
use serde_json::{Value, json};
use test_apiserver::TestApiServer;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Env {
    pub client: Client,
    pub namespace: String,
    pub server: Option<TestApiServer>,
    pub controllers: Vec<Controller>,
}

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn rollouts() -> ApiResource {
    resource("argoproj.io", "v1alpha1", "Rollout", "rollouts")
}
pub fn virtual_services() -> ApiResource {
    resource(
        "networking.istio.io",
        "v1beta1",
        "VirtualService",
        "virtualservices",
    )
}
pub fn destination_rules() -> ApiResource {
    resource(
        "networking.istio.io",
        "v1beta1",
        "DestinationRule",
        "destinationrules",
    )
}
pub fn replica_sets() -> ApiResource {
    resource("apps", "v1", "ReplicaSet", "replicasets")
}

impl Env {
    /// A new environment in its own namespace.
    pub async fn new(prefix: &str) -> Env {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("{prefix}-{}-{n}", std::process::id());
        let (client, server) = match std::env::var("ROLLOUT_ROUTER_TEST_KUBECONFIG") {
            Ok(path) if !path.is_empty() => {
                let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .unwrap();
                (Client::try_from(config).unwrap(), None)
            }
            _ => {
                let server = TestApiServer::start().await.unwrap();
                (server.client().unwrap(), Some(server))
            }
        };
        let env = Env {
            client,
            namespace,
            server,
            controllers: Vec::new(),
        };
        env.install_crds().await;
        env.create(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": env.namespace}}),
        )
        .await;
        env
    }

    /// Installs the CRDs the suite needs when they are missing: ours from `crds/`, Argo's and
    /// Istio's from `../shared/upstream-crds/`.
    async fn install_crds(&self) {
        let shared = repo().join("../shared/upstream-crds");
        let files = [
            repo().join("crds/rollouttraffics.rollout-router.io.yaml"),
            shared.join("rollout-crd.yaml"),
            shared.join("experiment-crd.yaml"),
            shared.join("virtualservices-crd.yaml"),
            shared.join("destinationrules-crd.yaml"),
        ];
        let crds: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &resource(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
            ),
        );
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
                if doc.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
                    continue;
                }
                let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
                if crds.get_opt(&name).await.unwrap().is_some() {
                    continue;
                }
                let obj: DynamicObject = serde_json::from_value(doc).unwrap();
                crds.create(&PostParams::default(), &obj).await.unwrap();
            }
        }
        // Wait until every resource is served (a real cluster establishes CRDs asynchronously).
        for ar in [rollouts(), virtual_services(), destination_rules()] {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
            within(async {
                loop {
                    if api.list(&Default::default()).await.is_ok() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            })
            .await;
        }
    }

    pub fn settings(&self, identity: &str, leader_election: bool) -> Settings {
        Settings {
            plugin_key: rollout_router::rollout::DEFAULT_PLUGIN_KEY.to_owned(),
            namespace: Some(self.namespace.clone()),
            istio: true,
            nginx: true,
            alb: true,
            dry_run: false,
            write_rollout_weights: false,
            resync: Duration::from_secs(300),
            concurrency: 4,
            manager: "rollout-router".to_owned(),
            identity: identity.to_owned(),
            leader_election: leader_election.then(|| controller::LeaderElection {
                lease_name: "rollout-router".to_owned(),
                lease_namespace: self.namespace.clone(),
                duration: Duration::from_secs(3),
            }),
        }
    }

    /// Starts a controller replica and waits until it is ready.
    pub async fn start_controller(&mut self, settings: Settings) -> usize {
        let c = controller::start(self.client.clone(), settings, None)
            .await
            .unwrap();
        within(async {
            while !c.is_ready() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        self.controllers.push(c);
        self.controllers.len() - 1
    }

    pub fn api(&self, ar: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, ar)
    }

    fn ar_of(value: &Value) -> ApiResource {
        let api_version = value["apiVersion"].as_str().unwrap();
        let kind = value["kind"].as_str().unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let plural = match kind {
            "Namespace" => "namespaces",
            "Service" => "services",
            "Rollout" => "rollouts",
            "ReplicaSet" => "replicasets",
            "VirtualService" => "virtualservices",
            "DestinationRule" => "destinationrules",
            "Ingress" => "ingresses",
            other => panic!("unknown kind {other}"),
        };
        resource(group, version, kind, plural)
    }

    /// Creates an object in the namespace (its `status`, if any, through the subresource, as a
    /// controller would).
    pub async fn create(&self, mut value: Value) -> Value {
        let ar = Self::ar_of(&value);
        let status = value.as_object_mut().and_then(|o| o.remove("status"));
        let api: Api<DynamicObject> = if value["kind"] == "Namespace" {
            Api::all_with(self.client.clone(), &ar)
        } else {
            value["metadata"]["namespace"] = json!(self.namespace);
            self.api(&ar)
        };
        let obj: DynamicObject = serde_json::from_value(value).unwrap();
        let created = api.create(&PostParams::default(), &obj).await.unwrap();
        if let Some(status) = status {
            let patched = api
                .patch_status(
                    &created.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
                .unwrap();
            return serde_json::to_value(patched).unwrap();
        }
        serde_json::to_value(created).unwrap()
    }

    pub async fn get(&self, ar: &ApiResource, name: &str) -> Option<Value> {
        self.api(ar)
            .get_opt(name)
            .await
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    /// Merge-patches an object's spec/metadata (as a user would).
    pub async fn patch(&self, ar: &ApiResource, name: &str, patch: Value) -> Value {
        let o = self
            .api(ar)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
        serde_json::to_value(o).unwrap()
    }

    pub async fn patch_json(&self, ar: &ApiResource, name: &str, patch: Value) -> Value {
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        let o = self
            .api(ar)
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
            .unwrap();
        serde_json::to_value(o).unwrap()
    }

    /// Merge-patches a Rollout's or ReplicaSet's status (as the rollout controller would).
    pub async fn patch_status(&self, ar: &ApiResource, name: &str, status: Value) {
        self.api(ar)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap();
    }

    pub async fn delete(&self, ar: &ApiResource, name: &str) {
        let _ = self
            .api(ar)
            .delete(name, &Default::default())
            .await
            .unwrap();
    }

    pub fn traffic_api(&self) -> Api<RolloutTraffic> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Waits until the RolloutTraffic `name` satisfies `condition`, watching it (no polling).
    pub async fn wait_traffic(
        &self,
        name: &str,
        condition: impl Fn(&RolloutTraffic) -> bool,
    ) -> RolloutTraffic {
        let api = self.traffic_api();
        wait_object(&api, name, |o: Option<&RolloutTraffic>| {
            o.is_some_and(&condition)
        })
        .await
        .unwrap()
    }

    /// Waits until the object `name` satisfies `condition` (called with `None` when absent).
    pub async fn wait(
        &self,
        ar: &ApiResource,
        name: &str,
        condition: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        let api = self.api(ar);
        wait_object(&api, name, |o: Option<&DynamicObject>| {
            let v = o.map(|o| serde_json::to_value(o).unwrap());
            condition(v.as_ref())
        })
        .await
        .map(|o| serde_json::to_value(o).unwrap())
    }

    /// Writes since `mark` to routing objects (test server only).
    pub fn server(&self) -> Option<&TestApiServer> {
        self.server.as_ref()
    }

    pub async fn shutdown(mut self) {
        for c in self.controllers.drain(..) {
            c.shutdown().await;
        }
        if self.server.is_none() {
            let ns: Api<DynamicObject> = Api::all_with(
                self.client.clone(),
                &resource("", "v1", "Namespace", "namespaces"),
            );
            let _ = ns.delete(&self.namespace, &Default::default()).await;
        }
    }
}

/// Runs `f` with the suite's deadline.
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("condition not reached within the deadline")
}

/// Watches one object until `condition` holds; returns its last state.
pub async fn wait_object<K>(
    api: &Api<K>,
    name: &str,
    condition: impl Fn(Option<&K>) -> bool,
) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let current = api.get_opt(name).await.unwrap();
    if condition(current.as_ref()) {
        return current;
    }
    let stream = watcher(
        api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut last = current;
    let result = tokio::time::timeout(DEADLINE, async {
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o)) => last = Some(o),
                Ok(watcher::Event::Delete(_)) => last = None,
                Ok(watcher::Event::Init) => {
                    last = None;
                    continue;
                }
                Ok(watcher::Event::InitApply(o)) => {
                    last = Some(o);
                    continue;
                }
                Ok(watcher::Event::InitDone) => {}
                Err(_) => continue,
            }
            if condition(last.as_ref()) {
                return last.clone();
            }
        }
        None
    })
    .await;
    match result {
        Ok(Some(o)) => Some(o),
        Ok(None) if condition(None) => None,
        _ => panic!("{name}: condition not reached within {DEADLINE:?}; last state: {last:#?}"),
    }
}

/// An object without what the API server adds, for comparing with a prediction.
pub fn user_view(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}
