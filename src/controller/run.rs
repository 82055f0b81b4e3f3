//! Starting and stopping the controller: discovery (a router whose CRDs are missing is
//! disabled with a warning), start-up checks with clear errors, the watches and their caches
//! (trimmed of what the controller never reads), leader election, the admin server, and the
//! sweep that releases RolloutTraffic objects whose Rollout is gone.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::controller::{self, Controller as KubeController};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use rollout_router_core::ObjectKey;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::context::{Context, Index, RolloutKey, RoutingKind, Settings, WrittenStatus};
use super::metrics::Metrics;
use super::reconcile::{error_policy, finalize, reconcile};
use crate::traffic::RolloutTraffic;

#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub lease_name: String,
    pub lease_namespace: String,
    pub duration: Duration,
}

/// A running controller.
pub struct Controller {
    pub context: Arc<Context>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    main: JoinHandle<()>,
    lease: Option<(watch::Receiver<bool>, JoinHandle<()>)>,
    ready: watch::Receiver<bool>,
}

impl Controller {
    /// Stops reconciling (in-flight reconciles finish), stops the tasks, then releases the Lease
    /// (a standby takes it when it next looks, at the latest when the last renewal expires).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.main).await;
        for task in &self.tasks {
            task.abort();
        }
        // Last, once nothing of this replica writes any more: release the Lease.
        if let Some((receiver, task)) = self.lease.take() {
            drop(receiver);
            let _ = task.await;
        }
    }

    /// Whether every watch has delivered its first list.
    pub fn is_ready(&self) -> bool {
        self.context.ready.load(Ordering::Acquire)
    }

    /// Waits until every watch has delivered its first list (returns at once when it has).
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|r| *r).await;
    }

    pub fn is_leader(&self) -> bool {
        self.context.is_leader()
    }

    /// Reconciles finished so far (every result), for tests that wait for one to happen.
    pub fn reconcile_count(&self) -> u64 {
        ["ok", "held", "invalid", "error", "released"]
            .iter()
            .map(|result| {
                self.context
                    .metrics
                    .reconciles
                    .get_or_create(&super::metrics::ResultLabels { result })
                    .get()
            })
            .sum()
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> GroupVersionKind {
    GroupVersionKind::gvk(group, version, kind)
}

/// The served resource for a kind in a group, in the group's preferred version.
async fn discover(client: &Client, group: &str, kind: &str) -> Option<ApiResource> {
    let group = kube::discovery::group(client, group).await.ok()?;
    let (resource, _caps) = group.recommended_kind(kind)?;
    Some(resource)
}

fn api_all(client: &Client, namespace: Option<&str>, resource: &ApiResource) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// Lists one object to turn a missing permission into a clear start-up error.
async fn check_access<K>(api: &Api<K>, what: &str) -> anyhow::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 403 => Err(anyhow::anyhow!(
            "missing RBAC: cannot list {what}: {} (grant list and watch on it to this service \
             account)",
            e.message
        )),
        Err(e) => Err(anyhow::anyhow!("cannot list {what}: {e}")),
    }
}

fn trim_meta(meta: &mut kube::api::ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Keeps of a Rollout what the controller reads: the fields of the typed `Rollout`
/// (src/rollout.rs: spec.replicas and spec.strategy, the status fields the engine reads) and
/// the revision annotation. The pod template, status.conditions and the rest of the status are
/// most of a Rollout and are never read; the cache holds about 10,000 of them in a large
/// cluster. A Rollout that does not parse is kept whole: its reconcile reports it.
fn trim_rollout(r: &mut DynamicObject) {
    trim_meta(&mut r.metadata);
    r.metadata.labels = None;
    if let Some(a) = r.metadata.annotations.as_mut() {
        a.retain(|k, _| k == crate::rollout::REVISION_ANNOTATION);
        if a.is_empty() {
            r.metadata.annotations = None;
        }
    }
    let Ok(rollout) = <crate::rollout::Rollout as serde::Deserialize>::deserialize(&r.data) else {
        return;
    };
    let mut data = serde_json::Map::new();
    if let Ok(spec) = serde_json::to_value(&rollout.spec) {
        data.insert("spec".to_owned(), spec);
    }
    if let Some(status) = rollout
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
    {
        data.insert("status".to_owned(), status);
    }
    r.data = serde_json::Value::Object(data);
}

/// Keeps of a ReplicaSet what `ReplicaSetView::from_json` and the lookups read: name, owner
/// references, the pod-template-hash label, spec.replicas, status.replicas and
/// status.availableReplicas.
fn trim_replica_set(rs: &mut ReplicaSet) {
    trim_meta(&mut rs.metadata);
    rs.metadata.annotations = None;
    if let Some(labels) = rs.metadata.labels.as_mut() {
        labels.retain(|k, _| k == crate::rollout::POD_TEMPLATE_HASH_LABEL);
    }
    if let Some(spec) = rs.spec.as_mut() {
        spec.template = None;
        spec.selector = Default::default();
    }
    if let Some(status) = rs.status.as_mut() {
        status.conditions = None;
        status.fully_labeled_replicas = None;
        status.ready_replicas = None;
        status.terminating_replicas = None;
        status.observed_generation = None;
    }
}

type TrafficEvent = Result<watcher::Event<RolloutTraffic>, watcher::Error>;
type TrafficTrigger = Result<RolloutTraffic, watcher::Error>;

/// The RolloutTraffic events that call for a reconcile of their Rollout, as a `filter_map`
/// callback over the reflected watch events: a new object, a deletion, or a change of what the
/// reconcile reads of it besides the status (spec, finalizers, deletion, owner references,
/// labels). A status change is almost always the echo of this controller's own status write
/// (which `last_status` already holds); a status edit by anyone else is corrected by the next
/// reconcile (at the latest the resync). The echo also ends `last_status`'s copy: the cache
/// holds the same status now.
fn traffic_changes(
    last_status: Arc<Mutex<HashMap<RolloutKey, WrittenStatus>>>,
) -> impl FnMut(TrafficEvent) -> futures::future::Ready<Option<TrafficTrigger>> {
    // Per RolloutTraffic uid: a hash of the fields above at its last event.
    let mut seen: HashMap<String, u64> = HashMap::new();
    move |event| {
        let out = match event {
            Ok(watcher::Event::Apply(rt) | watcher::Event::InitApply(rt)) => {
                let key = (rt.namespace().unwrap_or_default(), rt.name_any());
                {
                    let mut written = last_status.lock().unwrap_or_else(|e| e.into_inner());
                    if written.get(&key).is_some_and(|w| w.is_cached(&rt)) {
                        written.remove(&key);
                    }
                }
                let hash = trigger_hash(&rt);
                let uid = rt.uid().unwrap_or_default();
                if seen.insert(uid, hash) == Some(hash) {
                    None
                } else {
                    Some(Ok(rt))
                }
            }
            Ok(watcher::Event::Delete(rt)) => {
                seen.remove(&rt.uid().unwrap_or_default());
                Some(Ok(rt))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(out)
    }
}

/// A hash of what a reconcile reads of a RolloutTraffic, status aside.
fn trigger_hash(rt: &RolloutTraffic) -> u64 {
    use std::hash::{Hash, Hasher};
    let meta = rt.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&rt.spec)
        .unwrap_or_default()
        .hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut h);
    serde_json::to_string(&meta.owner_references)
        .unwrap_or_default()
        .hash(&mut h);
    meta.labels.hash(&mut h);
    h.finish()
}

/// Starts the controller. Fails with a clear message when the Rollout or RolloutTraffic CRD is
/// missing or a permission is.
pub async fn start(
    client: Client,
    settings: Settings,
    admin: Option<TcpListener>,
) -> anyhow::Result<Controller> {
    let namespace = settings.namespace.clone();
    let ns = namespace.as_deref();
    let rollout_resource = discover(&client, "argoproj.io", "Rollout")
        .await
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the Rollout CRD (argoproj.io) is not installed: install Argo Rollouts, or \
             crds/rollouts.argoproj.io.minimal.yaml"
            )
        })?;
    if discover(&client, crate::traffic::GROUP, "RolloutTraffic")
        .await
        .is_none()
    {
        anyhow::bail!(
            "the RolloutTraffic CRD (rollout-router.io) is not installed: apply \
             crds/rollouttraffics.rollout-router.io.yaml (the Helm chart installs it)"
        );
    }
    let mut settings = settings;
    let mut routing = HashMap::new();
    if settings.istio {
        let vs = discover(&client, "networking.istio.io", "VirtualService").await;
        let dr = discover(&client, "networking.istio.io", "DestinationRule").await;
        match (vs, dr) {
            (Some(vs), Some(dr)) => {
                routing.insert(
                    (
                        "networking.istio.io".to_owned(),
                        "VirtualService".to_owned(),
                    ),
                    vs,
                );
                routing.insert(
                    (
                        "networking.istio.io".to_owned(),
                        "DestinationRule".to_owned(),
                    ),
                    dr,
                );
            }
            _ => {
                tracing::warn!(
                    "Istio CRDs (networking.istio.io VirtualService, DestinationRule) are not installed: the istio router is disabled"
                );
                settings.istio = false;
            }
        }
    }
    if settings.nginx || settings.alb {
        let ingress = ApiResource::from_gvk_with_plural(
            &gvk("networking.k8s.io", "v1", "Ingress"),
            "ingresses",
        );
        routing.insert(
            ("networking.k8s.io".to_owned(), "Ingress".to_owned()),
            ingress,
        );
    }
    let experiment_resource = discover(&client, "argoproj.io", "Experiment").await;

    // Start-up checks: clear errors for missing permissions.
    let rollouts_api: Api<DynamicObject> = api_all(&client, ns, &rollout_resource);
    check_access(&rollouts_api, "rollouts.argoproj.io").await?;
    let rs_api: Api<ReplicaSet> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    check_access(&rs_api, "replicasets.apps").await?;
    let rt_api: Api<RolloutTraffic> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    check_access(&rt_api, "rollouttraffics.rollout-router.io").await?;
    for resource in routing.values() {
        let api: Api<DynamicObject> = api_all(&client, ns, resource);
        check_access(&api, &format!("{}.{}", resource.plural, resource.group)).await?;
    }

    let wc = watcher::Config::default().any_semantic();
    // Rollouts, ReplicaSets, RolloutTraffics, each routing kind and Experiments when served.
    let watches = 3 + routing.len() + usize::from(experiment_resource.is_some());
    let (first_lists, mut listed) = FirstLists::new(watches);

    // Rollouts: the pod template is the bulk of a Rollout and is never read.
    let rollout_writer = reflector::store::Writer::<DynamicObject>::new(rollout_resource.clone());
    let rollouts = rollout_writer.as_reader();
    let rollout_stream = reflector::reflector(
        rollout_writer,
        watcher(rollouts_api, wc.clone())
            .default_backoff()
            .modify(trim_rollout),
    )
    .inspect(first_lists.track())
    .touched_objects();

    // ReplicaSets of Rollouts only (they carry the pod-template-hash label).
    let (replica_sets, rs_writer) = reflector::store::<ReplicaSet>();
    let rs_stream = reflector::reflector(
        rs_writer,
        watcher(
            rs_api,
            wc.clone().labels(crate::rollout::POD_TEMPLATE_HASH_LABEL),
        )
        .default_backoff()
        .modify(trim_replica_set),
    )
    .inspect(first_lists.track())
    .touched_objects();

    let last_status: Arc<Mutex<HashMap<RolloutKey, WrittenStatus>>> = Arc::default();
    let (traffic, rt_writer) = reflector::store::<RolloutTraffic>();
    let rt_stream = reflector::reflector(
        rt_writer,
        watcher(rt_api, wc.clone())
            .default_backoff()
            .modify(|rt: &mut RolloutTraffic| trim_meta(&mut rt.metadata)),
    )
    .inspect(first_lists.track())
    .filter_map(traffic_changes(last_status.clone()));

    let mut routing_kinds = HashMap::new();
    let mut routing_streams = Vec::new();
    for (key, resource) in routing {
        let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
        let store = writer.as_reader();
        let api: Api<DynamicObject> = api_all(&client, ns, &resource);
        let stream = reflector::reflector(
            writer,
            watcher(api, wc.clone())
                .default_backoff()
                .modify(|o: &mut DynamicObject| trim_meta(&mut o.metadata)),
        )
        .inspect(first_lists.track())
        .touched_objects();
        routing_streams.push((resource.clone(), stream.boxed()));
        routing_kinds.insert(key, RoutingKind { resource, store });
    }

    let mut experiment_stream = None;
    let experiments = match experiment_resource {
        Some(resource) => {
            let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
            let store = writer.as_reader();
            let api: Api<DynamicObject> = api_all(&client, ns, &resource);
            experiment_stream = Some(
                reflector::reflector(
                    writer,
                    watcher(api, wc.clone())
                        .default_backoff()
                        .modify(|o: &mut DynamicObject| {
                            trim_meta(&mut o.metadata);
                            if let Some(spec) =
                                o.data.get_mut("spec").and_then(|s| s.as_object_mut())
                            {
                                spec.remove("templates");
                            }
                        }),
                )
                .inspect(first_lists.track())
                .touched_objects()
                .boxed(),
            );
            Some(RoutingKind { resource, store })
        }
        None => None,
    };

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: settings.manager.clone(),
            instance: Some(settings.identity.clone()),
        },
    );
    let always_leader = settings.leader_election.is_none();
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings: settings.clone(),
        rollout_resource: rollout_resource.clone(),
        rollouts: rollouts.clone(),
        replica_sets: replica_sets.clone(),
        traffic: traffic.clone(),
        experiments,
        routing: routing_kinds,
        index: std::sync::RwLock::new(Index::default()),
        metrics: Metrics::default(),
        recorder,
        leader: always_leader.into(),
        ready: false.into(),
        last_status,
        traffic_written: Default::default(),
        failures: Default::default(),
        written: Default::default(),
    });
    ctx.metrics.leader.set(i64::from(always_leader));

    let mut tasks = Vec::new();
    if let Some(listener) = admin {
        tasks.push(tokio::spawn(super::admin::serve(listener, ctx.clone())));
    }

    // Readiness: every watch has delivered its first list to its store. Reconciles before that
    // wait (a routing object missing from a store that has not listed yet is not missing);
    // becoming ready reconciles every Rollout once.
    let (ready_tx, ready_rx) = futures::channel::mpsc::unbounded::<()>();
    let (ready_state, ready_watch) = watch::channel(false);
    {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            if listed.wait_for(|l| *l).await.is_err() {
                return;
            }
            ctx.ready.store(true, Ordering::Release);
            ready_state.send_replace(true);
            let _ = ready_tx.unbounded_send(());
            tracing::info!("every watch has delivered its first list: ready");
        }));
    }

    let (stop_tx, mut stop_rx) = watch::channel(false);

    // Leader election gates writes only; on becoming leader every Rollout is reconciled.
    let (reconcile_all_tx, reconcile_all_rx) = futures::channel::mpsc::unbounded::<()>();
    let mut lease = None;
    if let Some(le) = &settings.leader_election {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &le.lease_name)
            .with_namespace(&le.lease_namespace)
            .with_identity(&settings.identity)
            .with_duration(le.duration.as_secs().max(2))
            .with_grace((le.duration.as_secs() / 3).max(1))
            .with_field_manager(settings.manager.clone())
            .build()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "leader election on Lease {}/{}: {e}",
                    le.lease_namespace,
                    le.lease_name
                )
            })?;
        let (mut channel, task) = manager.watch().await;
        let receiver = channel.clone();
        let ctx2 = ctx.clone();
        let mut stopping = stop_tx.subscribe();
        let forward = tokio::spawn(async move {
            loop {
                let leader = *channel.borrow_and_update();
                if ctx2.leader.swap(leader, Ordering::AcqRel) != leader {
                    ctx2.metrics.leader.set(i64::from(leader));
                    tracing::info!(identity = %ctx2.settings.identity, leader, "leadership changed");
                    if leader {
                        let _ = reconcile_all_tx.unbounded_send(());
                    }
                }
                tokio::select! {
                    changed = channel.changed() => if changed.is_err() { break },
                    _ = stopping.wait_for(|s| *s) => break,
                }
            }
            // The lease manager releases the Lease once every receiver is gone (this one, and
            // the one `Controller::shutdown` drops after the last reconcile): wait for that.
            drop(channel);
            match task.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "could not release the Lease"),
                Err(e) => tracing::warn!(error = %e, "the lease manager failed"),
                Ok(Ok(_)) => tracing::info!("Lease released"),
            }
        });
        lease = Some((receiver, forward));
    }
    let shutdown = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };

    let rollout_resource2 = rollout_resource.clone();
    let owner_ref = move |owner: &str, namespace: Option<String>| {
        let r = ObjectRef::new_with(owner, rollout_resource2.clone());
        match namespace {
            Some(ns) => r.within(&ns),
            None => r,
        }
    };
    let mut kc =
        KubeController::for_stream_with(rollout_stream, rollouts.clone(), rollout_resource.clone())
            .with_config(controller::Config::default().concurrency(settings.concurrency))
            .reconcile_all_on(reconcile_all_rx)
            .reconcile_all_on(ready_rx)
            .graceful_shutdown_on(shutdown)
            .trigger_backoff(NoTriggerBackoff);
    {
        let owner_ref = owner_ref.clone();
        kc = kc.watches_stream(rs_stream, move |rs: ReplicaSet| {
            rs.owner_references()
                .iter()
                .filter(|o| o.kind == "Rollout")
                .map(|o| owner_ref(&o.name, rs.namespace()))
                .collect::<Vec<_>>()
        });
    }
    {
        let owner_ref = owner_ref.clone();
        kc = kc.watches_stream(rt_stream, move |rt: RolloutTraffic| {
            Some(owner_ref(&rt.name_any(), rt.namespace()))
        });
    }
    if let Some(stream) = experiment_stream {
        let owner_ref = owner_ref.clone();
        let resource = ctx.experiments.as_ref().map(|k| k.resource.clone());
        if let Some(resource) = resource {
            kc = kc.watches_stream_with(
                stream,
                move |e: DynamicObject| {
                    e.owner_references()
                        .iter()
                        .filter(|o| o.kind == "Rollout")
                        .map(|o| owner_ref(&o.name, e.namespace()))
                        .collect::<Vec<_>>()
                },
                resource,
            );
        }
    }
    for (resource, stream) in routing_streams {
        let ctx2 = ctx.clone();
        let owner_ref = owner_ref.clone();
        let group = resource.group.clone();
        let kind = resource.kind.clone();
        kc = kc.watches_stream_with(
            stream,
            move |o: DynamicObject| {
                let key = ObjectKey::new(
                    &group,
                    &kind,
                    o.namespace().unwrap_or_default(),
                    o.name_any(),
                );
                // The echo of our own patch: the reconcile that wrote it already saw the
                // answer. (A user's edit has another resourceVersion and still triggers.)
                if ctx2.cache_caught_up(&key, o.resource_version().as_deref()) {
                    return Vec::new();
                }
                ctx2.index
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .rollouts_of(&key)
                    .into_iter()
                    .map(|(ns, name)| owner_ref(&name, Some(ns)))
                    .collect::<Vec<_>>()
            },
            resource,
        );
    }

    // The RolloutTraffic whose Rollout is gone never reaches `reconcile` (the controller only
    // reconciles objects in its store): release it from here, and from a periodic sweep.
    let ctx_main = ctx.clone();
    let main = tokio::spawn(async move {
        kc.run(reconcile, error_policy, ctx_main.clone())
            .for_each(|result| {
                let ctx = ctx_main.clone();
                async move {
                    if let Err(controller::Error::ObjectNotFound(obj_ref)) = result {
                        let ns = obj_ref.namespace.clone().unwrap_or_default();
                        release_orphan(&ctx, &ns, &obj_ref.name).await;
                    }
                }
            })
            .await;
    });
    {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(ctx.settings.resync.min(Duration::from_secs(60)));
            loop {
                tick.tick().await;
                ctx.metrics.rollouts.set(ctx.traffic.state().len() as i64);
                for rt in ctx.traffic.state() {
                    let ns = rt.namespace().unwrap_or_default();
                    if ctx.rollout(&ns, &rt.name_any()).is_none() {
                        release_orphan(&ctx, &ns, &rt.name_any()).await;
                    }
                }
            }
        }));
    }
    Ok(Controller {
        context: ctx,
        stop: stop_tx,
        tasks,
        main,
        lease,
        ready: ready_watch,
    })
}

/// Releases the RolloutTraffic `namespace/name` whose Rollout no longer exists.
async fn release_orphan(ctx: &Context, namespace: &str, name: &str) {
    // Before every watch has listed, a missing Rollout may just not be cached yet.
    if !ctx.ready.load(Ordering::Acquire) || ctx.rollout(namespace, name).is_some() {
        return;
    }
    let Some(rt) = ctx.rollout_traffic(namespace, name) else {
        return;
    };
    if let Err(e) = finalize(ctx, &rt).await {
        tracing::warn!(rollouttraffic = %format!("{namespace}/{name}"), error = %super::reconcile::error_chain(&e), "release failed; retried by the next sweep");
    }
}

/// The controller-wide backoff on watch errors, turned off: every watch above already backs off
/// on its own (`default_backoff()`), while kube's default pauses ALL watches on ANY watch's
/// error, growing with each one. After a compaction every watch answers 410 at once, and the
/// pauses add up to tens of seconds during which no step is routed.
struct NoTriggerBackoff;

impl Iterator for NoTriggerBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoTriggerBackoff {
    fn reset(&mut self) {}
}

/// Counts the watches that have not delivered their first list yet, from the events each
/// reflector has applied to its store; the last first list sends `true`. (Not
/// `Store::wait_until_ready`: kube-runtime's `DelayedInit` keeps one waker, so a second waiter
/// on the same store — the kube `Controller` waits on the Rollout store — can be left asleep
/// forever, which made readiness hang now and then.)
#[derive(Clone)]
struct FirstLists {
    pending: Arc<std::sync::atomic::AtomicUsize>,
    listed: Arc<watch::Sender<bool>>,
}

impl FirstLists {
    fn new(watches: usize) -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(watches == 0);
        let lists = FirstLists {
            pending: Arc::new(watches.into()),
            listed: Arc::new(tx),
        };
        (lists, rx)
    }

    /// An `inspect` callback for one watch's reflected events.
    fn track<K>(&self) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) + use<K> {
        let lists = self.clone();
        let mut done = false;
        move |event| {
            if !done && matches!(event, Ok(watcher::Event::InitDone)) {
                done = true;
                if lists.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                    lists.listed.send_replace(true);
                }
            }
        }
    }
}
