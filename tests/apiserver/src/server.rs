//! The running server and its test controls: start on a loopback port, register types, seed and
//! read objects, read the request log, inject faults, get clients.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::crd;
use crate::error::{Error, GroupResource};
use crate::faults::Faults;
use crate::gc;
use crate::http;
use crate::kubeconfig;
use crate::registry::{DeleteOptions, State, WriteOptions};
use crate::requests::{LogMark, RbacRule, RequestLog, RequestMatch, RequestRecord, Verb};
use crate::resource::{ResourceType, split_api_version};

/// How to run a server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve [`ResourceType::builtins`] (and create the namespaces every cluster has).
    pub builtins: bool,
    /// How many changes the history keeps for watch replay; older versions answer `410 Gone`.
    pub history_capacity: usize,
    /// How often open watches that allow bookmarks get one (kube-apiserver: about a minute).
    pub bookmark_interval: Duration,
    /// Run the garbage collector and the namespace controller.
    pub garbage_collection: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            builtins: true,
            history_capacity: 10_000,
            bookmark_interval: Duration::from_secs(60),
            garbage_collection: true,
        }
    }
}

/// What the HTTP handlers, watches and controllers share.
pub(crate) struct Shared {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    log: Mutex<RequestLog>,
    /// The current resourceVersion, sent after every change (watches wait on it).
    pub(crate) changed: watch::Sender<u64>,
    /// Bumped to end every open watch.
    pub(crate) drop_watches: watch::Sender<u64>,
    /// Bumped to send a bookmark on every open watch.
    pub(crate) bookmarks: watch::Sender<u64>,
    /// Bumped on any change, request or watch opening/closing (for [`TestApiServer::wait_for`]).
    activity: watch::Sender<u64>,
    gc: Notify,
    open_watches: AtomicUsize,
    pub(crate) options: ServerOptions,
    /// `host:port`, for `/api`'s `serverAddressByClientCIDRs`.
    pub(crate) address: String,
}

/// Decrements the open-watch count when a watch ends.
pub(crate) struct WatchGuard(Arc<Shared>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
        self.0.poke();
    }
}

impl Shared {
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lock_faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn poke(&self) {
        self.activity.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Runs a change under the state lock, then wakes watches, waiters and the collector.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        self.write_then(f, || {})
    }

    /// Like [`Self::write`], and when the change happened, runs `changed` while still holding the
    /// state lock: a request is logged there, so no watcher (they read events under that lock)
    /// can see a change before the request that made it is in the log.
    pub(crate) fn write_then<T>(
        &self,
        f: impl FnOnce(&mut State) -> T,
        changed: impl FnOnce(),
    ) -> T {
        let (out, before, after) = {
            let mut state = self.lock_state();
            let before = state.store.rv();
            let out = f(&mut state);
            let after = state.store.rv();
            if after != before {
                changed();
            }
            (out, before, after)
        };
        if after != before {
            self.changed.send_replace(after);
            self.gc.notify_one();
            self.poke();
        }
        out
    }

    pub(crate) fn log_request(&self, record: RequestRecord) {
        self.lock_log().push(record);
        self.poke();
    }

    /// Logs a request whose answer is not ready yet; returns its position for [`Self::answered`].
    pub(crate) fn log_early(&self, record: RequestRecord) -> usize {
        self.lock_log().push(record)
    }

    /// Records the answer of a request logged with [`Self::log_early`].
    pub(crate) fn answered(&self, seq: usize, status: u16) {
        self.lock_log().answered(seq, status);
        self.poke();
    }

    pub(crate) fn watch_opened(self: &Arc<Self>) -> WatchGuard {
        self.open_watches.fetch_add(1, Ordering::SeqCst);
        self.poke();
        WatchGuard(self.clone())
    }
}

/// An in-memory Kubernetes API server on a loopback port. Dropping it stops it.
///
/// ```no_run
/// # async fn demo() -> Result<(), test_apiserver::Error> {
/// use test_apiserver::{RequestMatch, TestApiServer, Verb};
/// let server = TestApiServer::start().await?;
/// server.register_crd_yaml("../shared/upstream-crds/rollout-crd.yaml")?;
/// let client = server.client()?;
/// let mark = server.mark();
/// // ... run the controller with `client` ...
/// assert_eq!(server.count_since(mark, &RequestMatch::writes()), 0);
/// # let _ = (client, Verb::Get); Ok(()) }
/// ```
pub struct TestApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl TestApiServer {
    /// Starts a server with the built-in kinds on `127.0.0.1` and a free port.
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(ServerOptions::default()).await
    }

    /// Starts a server with `options`.
    pub async fn start_with(options: ServerOptions) -> Result<Self, Error> {
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: options.listen,
            source,
        })?;
        let mut state = State::new(options.history_capacity);
        if options.builtins {
            for rt in ResourceType::builtins() {
                state.resources.register(rt);
            }
            let ns = ResourceType::builtins()
                .into_iter()
                .find(|rt| rt.plural == "namespaces");
            for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                if let Some(rt) = &ns {
                    let obj = serde_json::json!({ "metadata": { "name": name } });
                    state.create(rt, "v1", None, obj, &WriteOptions::default())?;
                }
            }
        }
        let rv = state.store.rv();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(RequestLog::default()),
            changed: watch::Sender::new(rv),
            drop_watches: watch::Sender::new(0),
            bookmarks: watch::Sender::new(0),
            activity: watch::Sender::new(0),
            gc: Notify::new(),
            open_watches: AtomicUsize::new(0),
            options,
            address: addr.to_string(),
        });
        let serve = tokio::spawn(accept_loop(listener, shared.clone()));
        let collector = tokio::spawn(gc_loop(shared.clone()));
        tracing::debug!(%addr, "test-apiserver listening");
        Ok(Self {
            shared,
            addr,
            tasks: vec![serve, collector],
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube-rs configuration for this server (default namespace `default`).
    pub fn config(&self) -> kube::Config {
        // The URL is built from a socket address, so it always parses.
        let uri = self.url().parse().unwrap_or_default();
        kube::Config::new(uri)
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.config()).map_err(Error::Client)
    }

    /// A kube-rs configuration that authenticates as `user` (a bearer token; the request log
    /// records it as [`crate::RequestRecord::user`]).
    pub fn config_as(&self, user: &str) -> kube::Config {
        let mut config = self.config();
        config.auth_info.token = Some(user.to_string().into());
        config
    }

    /// A kube-rs client that authenticates as `user`.
    pub fn client_as(&self, user: &str) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.config_as(user)).map_err(Error::Client)
    }

    /// The RBAC rules `user`'s requests since `mark` need (see [`crate::rbac_rules`]).
    pub fn rbac_rules_of(&self, user: &str, mark: LogMark) -> Vec<RbacRule> {
        let records = self.requests_since(mark);
        crate::rbac_rules(records.iter().filter(|r| r.user.as_deref() == Some(user)))
    }

    /// A kubeconfig for this server (context, cluster and user `test-apiserver`).
    pub fn kubeconfig(&self) -> kube::config::Kubeconfig {
        kubeconfig::kubeconfig(&self.url())
    }

    /// Writes [`Self::kubeconfig`] as YAML to `path` (for kubectl: `--kubeconfig PATH`).
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        kubeconfig::write(&self.kubeconfig(), path.as_ref())
    }

    // ----- types -----

    /// Serves a resource type (replacing one with the same group and plural).
    pub fn register(&self, rt: ResourceType) {
        self.shared.lock_state().resources.register(rt);
        self.shared.poke();
    }

    /// Serves the type a CRD defines; the CRD object itself is stored too (created or replaced)
    /// when `customresourcedefinitions` is served, as after `kubectl apply -f crd.yaml`.
    pub fn register_crd(&self, crd: &CustomResourceDefinition) -> Result<ResourceType, Error> {
        let value =
            serde_json::to_value(crd).map_err(|e| Error::json("CustomResourceDefinition", e))?;
        self.register_crd_value(value)
    }

    /// Registers every CustomResourceDefinition in a (multi-document) YAML file.
    pub fn register_crd_yaml(&self, path: impl AsRef<Path>) -> Result<Vec<ResourceType>, Error> {
        let docs = crd::read_yaml_documents(path.as_ref())?;
        docs.into_iter()
            .filter(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
            .map(|d| self.register_crd_value(d))
            .collect()
    }

    fn register_crd_value(&self, mut value: Value) -> Result<ResourceType, Error> {
        let rt = crd::resource_type(&value)?;
        let crd_gr = GroupResource::new(crd::CRD_GROUP, crd::CRD_RESOURCE);
        self.shared.write(|state| -> Result<(), Error> {
            let Some(crd_rt) = state.resources.get(&crd_gr).cloned() else {
                state.resources.register(rt.clone());
                return Ok(());
            };
            let name = crate::object::name(&value).unwrap_or_default().to_string();
            crate::object::remove_meta(&mut value, "resourceVersion");
            match state.get(&crd_rt, "v1", None, &name) {
                Err(_) => state
                    .create(&crd_rt, "v1", None, value, &WriteOptions::default())
                    .map(drop),
                Ok(current) => {
                    if let Some(rv) = crate::object::resource_version(&current) {
                        crate::object::set_meta(
                            &mut value,
                            "resourceVersion",
                            Value::String(rv.into()),
                        );
                    }
                    state
                        .update(
                            &crd_rt,
                            "v1",
                            None,
                            &name,
                            value,
                            false,
                            &WriteOptions::default(),
                        )
                        .map(drop)
                }
            }
        })?;
        Ok(rt)
    }

    /// The served types.
    pub fn resource_types(&self) -> Vec<ResourceType> {
        self.shared.lock_state().resources.all().cloned().collect()
    }

    // ----- objects -----

    fn type_of(&self, api_version: &str, kind: &str) -> Result<ResourceType, Error> {
        self.shared
            .lock_state()
            .resources
            .by_kind(api_version, kind)
            .cloned()
            .ok_or_else(|| Error::UnknownKind {
                api_version: api_version.into(),
                kind: kind.into(),
            })
    }

    /// Stores an object directly, as test setup: created, or replaced when it exists, keeping
    /// the `status` it carries. `apiVersion`, `kind`, `metadata.name` (and `namespace` for
    /// namespaced kinds) are required; uid, timestamps and resourceVersion are assigned.
    /// Watches see ADDED or MODIFIED. Not recorded in the request log.
    pub fn seed(&self, obj: impl Serialize) -> Result<Value, Error> {
        let mut obj = serde_json::to_value(obj).map_err(|e| Error::json("seeded object", e))?;
        let text = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        let rt = self.type_of(&api_version, &kind)?;
        let (_, version) = split_api_version(&api_version);
        let version = version.to_string();
        let namespace = crate::object::namespace(&obj).map(str::to_string);
        let name = crate::object::name(&obj).unwrap_or_default().to_string();
        let opts = WriteOptions {
            keep_status: true,
            ..WriteOptions::default()
        };
        crate::object::remove_meta(&mut obj, "resourceVersion");
        self.shared.write(
            |state| match state.get(&rt, &version, namespace.as_deref(), &name) {
                Err(_) => state.create(&rt, &version, namespace.as_deref(), obj, &opts),
                Ok(current) => {
                    if let Some(rv) = crate::object::resource_version(&current) {
                        crate::object::set_meta(
                            &mut obj,
                            "resourceVersion",
                            Value::String(rv.into()),
                        );
                    }
                    let main = state.update(
                        &rt,
                        &version,
                        namespace.as_deref(),
                        &name,
                        obj.clone(),
                        false,
                        &opts,
                    )?;
                    if !rt.status_subresource {
                        return Ok(main);
                    }
                    if let Some(rv) = crate::object::resource_version(&main) {
                        crate::object::set_meta(
                            &mut obj,
                            "resourceVersion",
                            Value::String(rv.into()),
                        );
                    }
                    state.update(&rt, &version, namespace.as_deref(), &name, obj, true, &opts)
                }
            },
        )
    }

    /// The stored object, as served at `api_version`.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, Error> {
        let rt = self.type_of(api_version, kind)?;
        let (_, version) = split_api_version(api_version);
        match self.shared.lock_state().get(&rt, version, namespace, name) {
            Ok(v) => Ok(Some(v)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stored object as a typed resource.
    pub fn get_as<K>(&self, namespace: Option<&str>, name: &str) -> Result<Option<K>, Error>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.get(&K::api_version(&()), &K::kind(&()), namespace, name)?
            .map(|v| {
                serde_json::from_value(v).map_err(|e| Error::json(K::kind(&()).into_owned(), e))
            })
            .transpose()
    }

    /// The stored objects of a kind (in one namespace, or all), sorted by namespace and name.
    pub fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, Error> {
        let rt = self.type_of(api_version, kind)?;
        let (_, version) = split_api_version(api_version);
        let state = self.shared.lock_state();
        Ok(state
            .store
            .list(
                &rt.group_resource(),
                if rt.namespaced { namespace } else { None },
            )
            .iter()
            .map(|(_, o)| crate::registry::present(&rt, version, o))
            .collect())
    }

    /// Deletes an object as a background-propagation DELETE would (finalizers respected).
    /// Not recorded in the request log.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), Error> {
        let rt = self.type_of(api_version, kind)?;
        let (_, version) = split_api_version(api_version);
        self.shared
            .write(|s| s.delete(&rt, version, namespace, name, &DeleteOptions::default()))
            .map(drop)
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock_state().store.rv()
    }

    // ----- request log -----

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock_log().since(LogMark(0))
    }

    /// A position in the request log; see [`Self::requests_since`] and [`Self::count_since`].
    pub fn mark(&self) -> LogMark {
        self.shared.lock_log().mark()
    }

    /// The requests after `mark`.
    pub fn requests_since(&self, mark: LogMark) -> Vec<RequestRecord> {
        self.shared.lock_log().since(mark)
    }

    /// The requests matching `m`.
    pub fn requests_matching(&self, m: &RequestMatch) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| m.matches(r))
            .collect()
    }

    /// How many requests matched `m`.
    pub fn count(&self, m: &RequestMatch) -> usize {
        self.count_since(LogMark(0), m)
    }

    /// How many requests after `mark` matched `m`.
    pub fn count_since(&self, mark: LogMark, m: &RequestMatch) -> usize {
        self.shared
            .lock_log()
            .since(mark)
            .iter()
            .filter(|r| m.matches(r))
            .count()
    }

    /// The RBAC rules the requests after `mark` needed (see [`crate::rbac_rules`]): run the
    /// code under test, then compare with the ClusterRole it ships.
    pub fn rbac_rules_since(&self, mark: LogMark) -> Vec<RbacRule> {
        crate::requests::rbac_rules(&self.shared.lock_log().since(mark))
    }

    /// Requests per verb and `resource[/subresource]` (resource requests only).
    pub fn counts(&self) -> BTreeMap<(Verb, String), usize> {
        self.shared.lock_log().counts(LogMark(0))
    }

    /// Like [`Self::counts`], after `mark`.
    pub fn counts_since(&self, mark: LogMark) -> BTreeMap<(Verb, String), usize> {
        self.shared.lock_log().counts(mark)
    }

    // ----- faults -----

    /// Answers the next `times` requests matching `m` with `code` (a `Status` with kube-apiserver's
    /// reason for that code; 429 carries `retryAfterSeconds: 1`). Nothing is changed.
    pub fn fail_next(&self, m: RequestMatch, times: usize, code: u16) {
        self.shared.lock_faults().fail(m, times, code);
    }

    /// Answers the next `times` requests matching `m` with `409 Conflict` ("the object has been
    /// modified"), as a write racing another writer gets.
    pub fn conflict_next(&self, m: RequestMatch, times: usize) {
        self.shared.lock_faults().conflict(m, times);
    }

    /// Delays every request matching `m` by `delay`, until [`Self::clear_faults`].
    pub fn add_latency(&self, m: RequestMatch, delay: Duration) {
        self.shared.lock_faults().latency(m, delay);
    }

    /// Answers the next watch matching `m` with a `410 Expired` ERROR event.
    pub fn expire_next_watch(&self, m: RequestMatch) {
        self.shared.lock_faults().expire_watch(m);
    }

    /// Removes every injected fault that has not fired yet.
    pub fn clear_faults(&self) {
        self.shared.lock_faults().clear();
    }

    /// Ends every open watch (clients see the stream end and reconnect).
    pub fn drop_watches(&self) {
        self.shared
            .drop_watches
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Drops the change history: a watch or continue token from before now gets `410 Expired`.
    pub fn compact(&self) {
        self.shared.lock_state().store.compact();
    }

    /// Sends a BOOKMARK on every open watch that allows them.
    pub fn send_bookmarks(&self) {
        self.shared
            .bookmarks
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// How many watches are open now.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    // ----- waiting -----

    /// Waits until `condition` holds, re-checking after every change, request and watch
    /// opening or closing on this server; fails with [`Error::WaitTimeout`] after `within`.
    /// For conditions on client-side state (a reflector's store), wait on that state's own
    /// signal instead: nothing here wakes when a client merely processes an event.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> Result<(), Error> {
        let mut activity = self.shared.activity.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            activity.borrow_and_update();
            if condition(self) {
                return Ok(());
            }
            tokio::select! {
                r = activity.changed() => if r.is_err() {
                    return Err(Error::WaitTimeout { what: what.to_string(), within });
                },
                () = tokio::time::sleep_until(deadline) => {
                    return if condition(self) {
                        Ok(())
                    } else {
                        Err(Error::WaitTimeout { what: what.to_string(), within })
                    };
                }
            }
        }
    }

    /// Stops the server and waits for its tasks to end.
    pub async fn shutdown(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Connections live in this set, so aborting the loop closes them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| http::handle(shared.clone(), req));
                    if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn gc_loop(shared: Arc<Shared>) {
    loop {
        shared.gc.notified().await;
        if shared.options.garbage_collection {
            shared.write(gc::collect);
        }
    }
}
