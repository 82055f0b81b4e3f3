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
use test_apiserver::{RbacRule, TestApiServer};

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
    /// The identities of the controller replicas started, in order.
    pub identities: Vec<String>,
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
            identities: Vec::new(),
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
                match crds.create(&PostParams::default(), &obj).await {
                    Ok(_) => {}
                    // Another test of the suite, running at the same time, installed it.
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => panic!("installing CRD {name}: {e}"),
                }
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
    ///
    /// On the test server the replica authenticates as its identity, so the request log tells its
    /// requests from the test's own (see [`Env::controller_rules`]).
    pub async fn start_controller(&mut self, settings: Settings) -> usize {
        let client = match &self.server {
            Some(server) => server.client_as(&settings.identity).unwrap(),
            None => self.client.clone(),
        };
        self.identities.push(settings.identity.clone());
        let c = controller::start(client, settings, None).await.unwrap();
        within(c.ready()).await;
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

    /// The RBAC rules the controller replicas' requests needed so far (test server only).
    pub fn controller_rules(&self) -> Vec<RbacRule> {
        let Some(server) = &self.server else {
            return Vec::new();
        };
        let records = server.requests();
        test_apiserver::rbac_rules(
            records
                .iter()
                .filter(|r| r.user.as_ref().is_some_and(|u| self.identities.contains(u))),
        )
    }

    /// Stops the controllers and, on the test server, checks that every request they made is
    /// granted by the chart's RBAC table (`deploy/helm/tests/rbac-rules.yaml`), so each test of
    /// the suite also checks the chart's permissions; in a namespaced install, that every
    /// namespaced request stayed in the watched namespace.
    pub async fn shutdown(mut self) {
        for c in self.controllers.drain(..) {
            c.shutdown().await;
        }
        if let Some(server) = &self.server {
            let ungranted = crate::rbac::not_granted(&self.controller_rules());
            assert!(
                ungranted.is_empty(),
                "the controller made requests deploy/helm/tests/rbac-rules.yaml does not grant: \
                 {ungranted:?}"
            );
            let outside: Vec<String> = server
                .requests()
                .iter()
                .filter(|r| r.user.as_ref().is_some_and(|u| self.identities.contains(u)))
                .filter(|r| r.resource.is_some() && r.namespace.as_deref() != Some(&self.namespace))
                .map(ToString::to_string)
                .collect();
            assert!(
                outside.is_empty(),
                "a namespaced install made requests outside its namespace: {outside:#?}"
            );
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

// ---- Added for the istio_subset, nginx and alb modules: router-agnostic step checks ----

pub fn ingresses() -> ApiResource {
    resource("networking.k8s.io", "v1", "Ingress", "ingresses")
}

/// A routing object a step looks at.
#[derive(Clone, Debug)]
pub struct Watched {
    pub ar: ApiResource,
    pub name: String,
}

impl Watched {
    pub fn new(ar: ApiResource, name: &str) -> Self {
        Self {
            ar,
            name: name.to_owned(),
        }
    }

    pub fn key(&self, env: &Env) -> rollout_router_core::ObjectKey {
        rollout_router_core::ObjectKey::new(
            self.ar.group.clone(),
            self.ar.kind.clone(),
            env.namespace.clone(),
            self.name.clone(),
        )
    }
}

/// What the offline `render` predicts for Rollout `name` as it is now, applied to `objects` (the
/// routing objects as they were before the step): the same engine and router code, run offline.
/// Objects the routers create are in the result, objects they delete are not.
pub async fn predict_routing(
    env: &Env,
    name: &str,
    objects: &[Value],
) -> rollout_router_core::ObjectSet {
    use rollout_router::rollout::{DEFAULT_PLUGIN_KEY, ReplicaSetView, Rollout};
    use rollout_router::{engine, reconcile, routers, validation};
    let rollout: Rollout =
        serde_json::from_value(env.get(&rollouts(), name).await.unwrap()).unwrap();
    // Only the test's ReplicaSets live in the namespace.
    let rs: Vec<ReplicaSetView> = env
        .api(&replica_sets())
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|o| ReplicaSetView::from_json(&serde_json::to_value(o).unwrap()))
        .collect();
    let config = validation::plugin_config(&rollout, DEFAULT_PLUGIN_KEY)
        .unwrap()
        .unwrap();
    let built = routers::build(&config);
    let desired = engine::desired_traffic(&rollout, &rs, None).unwrap();
    let mut set: rollout_router_core::ObjectSet = objects.iter().cloned().collect();
    reconcile::plan_and_apply(&desired, &routers::as_dyn(&built), &mut set).unwrap();
    set
}

/// Writes to one object (its creation included) the test server logged since `mark`.
pub fn writes_to_object(
    server: &TestApiServer,
    mark: test_apiserver::LogMark,
    object: &Watched,
) -> usize {
    server
        .requests_since(mark)
        .iter()
        .filter(|r| r.verb.is_write() && r.subresource.is_none())
        .filter(|r| r.resource.as_deref() == Some(object.ar.plural.as_str()))
        .filter(|r| {
            r.name.as_deref() == Some(object.name.as_str())
                || (r.name.is_none()
                    && r.body.as_ref().and_then(|b| b.pointer("/metadata/name"))
                        == Some(&json!(object.name)))
        })
        .count()
}

/// Moves Rollout `name` (a merge patch of its status, as the rollout controller would) and waits
/// until its RolloutTraffic status satisfies `reached`; then checks that the RolloutTraffic is
/// Ready, that every object in `objects` equals the offline prediction made from the objects as
/// they were before the step (absent where the prediction has none), and, on the test server,
/// that each got exactly one write when it had to change and none otherwise. Returns the
/// objects after the step.
pub async fn route_step(
    env: &Env,
    name: &str,
    status: Value,
    objects: &[Watched],
    reached: impl Fn(&rollout_router::traffic::RolloutTrafficStatus) -> bool,
) -> Vec<Option<Value>> {
    let mut before = Vec::new();
    for o in objects {
        before.push(env.get(&o.ar, &o.name).await);
    }
    let mark = env.server().map(TestApiServer::mark);
    env.patch_status(&rollouts(), name, status).await;
    let predicted = predict_routing(
        env,
        name,
        &before.iter().flatten().cloned().collect::<Vec<_>>(),
    )
    .await;
    let rt = env
        .wait_traffic(name, |rt| rt.status.as_ref().is_some_and(&reached))
        .await;
    let status = rt.status.unwrap();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "{status:#?}"
    );
    logged_traffic_status(env, name).await;
    let mut after = Vec::new();
    for (o, was) in objects.iter().zip(&before) {
        let now = env.get(&o.ar, &o.name).await;
        assert_eq!(
            now.clone().map(user_view),
            predicted.get(&o.key(env)).cloned().map(user_view),
            "{} {}: not what the offline render predicts",
            o.ar.kind,
            o.name
        );
        if let (Some(server), Some(mark)) = (env.server(), mark) {
            let changed = was.clone().map(user_view) != now.clone().map(user_view);
            assert_eq!(
                writes_to_object(server, mark, o),
                usize::from(changed),
                "{} {}: writes in this step (changed: {changed}): {:#?}",
                o.ar.kind,
                o.name,
                server.requests_since(mark)
            );
        }
        after.push(now);
    }
    after
}

/// Steady state: a reconcile (caused by touching the Rollout's annotations) that finds every
/// object in place writes nothing but the test's own Rollout write (test server only).
pub async fn assert_steady(env: &Env, name: &str) {
    let Some(server) = env.server() else {
        return;
    };
    logged_traffic_status(env, name).await;
    let mark = server.mark();
    let before = env.controllers[0].reconcile_count();
    env.patch(
        &rollouts(),
        name,
        json!({"metadata": {"annotations": {"touched": before.to_string()}}}),
    )
    .await;
    within(async {
        while env.controllers[0].reconcile_count() <= before {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let writes: Vec<_> = server
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.verb.is_write() && r.resource.as_deref() != Some("rollouts"))
        .collect();
    assert!(writes.is_empty(), "steady-state writes: {writes:#?}");
}

/// `rollout_router_drift_corrections_total` of `router` in the first controller replica.
pub fn drift_corrections(env: &Env, router: &str) -> u64 {
    let text = env.controllers[0].context.metrics.encode();
    let prefix = format!("rollout_router_drift_corrections_total{{router=\"{router}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// A ReplicaSet of Rollout `rollout` (controller owner `uid`) with pod-template hash `hash`, all
/// `replicas` available; `labels` are the Rollout's selector labels.
pub fn owned_replica_set(
    rollout: &str,
    labels: &Value,
    uid: &str,
    hash: &str,
    replicas: i64,
) -> Value {
    let mut pod_labels = labels.clone();
    pod_labels["rollouts-pod-template-hash"] = json!(hash);
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{rollout}-{hash}"),
            "labels": pod_labels,
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": rollout, "uid": uid, "controller": true}]
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [{"name": "app", "image": rollout}]}}
        },
        "status": {"replicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas}
    })
}

/// Scales ReplicaSet `name` to `replicas`, all available (as the ReplicaSet controller would).
pub async fn scale_replica_set(env: &Env, name: &str, replicas: i64) {
    env.patch(
        &replica_sets(),
        name,
        json!({"spec": {"replicas": replicas}}),
    )
    .await;
    env.patch_status(
        &replica_sets(),
        name,
        json!({"replicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas}),
    )
    .await;
}

/// The request log lags the watches by a moment (a request is logged when its answer is ready,
/// after the watchers were told of the change): waits until the log holds the write of
/// RolloutTraffic `name`'s current status, and with it every write of the reconcile that
/// produced it (test server only).
pub async fn logged_traffic_status(env: &Env, name: &str) {
    let Some(server) = env.server() else {
        return;
    };
    let Some(status) = env
        .traffic_api()
        .get_opt(name)
        .await
        .unwrap()
        .and_then(|rt| rt.status)
    else {
        return;
    };
    let status = serde_json::to_value(status).unwrap();
    server
        .wait_for(
            "the RolloutTraffic status write in the log",
            DEADLINE,
            |s| {
                s.requests().iter().rev().any(|r| {
                    r.resource.as_deref() == Some("rollouttraffics")
                        && r.subresource.as_deref() == Some("status")
                        && r.status < 300
                        && r.body.as_ref().and_then(|b| b.pointer("/0/value")) == Some(&status)
                })
            },
        )
        .await
        .unwrap();
}

// ----- shared by every module that moves a Rollout to a new ReplicaSet -----

/// Waits until every controller replica's ReplicaSet cache holds `name` with an available pod.
/// The ReplicaSet and the Rollout's next step arrive through different watches: a step seen
/// first is rightly routed as "canary not available yet" (weight 0) and then corrected, two
/// writes where a test expects one. Argo creates the ReplicaSet well before it moves the step.
pub async fn wait_replica_set_cached(env: &Env, name: &str) {
    let stores: Vec<_> = env
        .controllers
        .iter()
        .map(|c| c.context.replica_sets.clone())
        .collect();
    within(async {
        while !stores.iter().all(|store| {
            store.state().iter().any(|rs| {
                rs.metadata.name.as_deref() == Some(name)
                    && rs
                        .status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .is_some_and(|a| a > 0)
            })
        }) {
            tokio::task::yield_now().await;
        }
    })
    .await;
}
