//! Shared state of the controller: the caches (reflector stores), the index from routing
//! objects back to the Rollouts that reference them, metrics, the Event recorder, leadership.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use rollout_router_core::ObjectKey;

use super::metrics::Metrics;
use crate::traffic::RolloutTraffic;

/// Settings of a running controller (the parsed command line, minus process concerns).
#[derive(Clone, Debug)]
pub struct Settings {
    pub plugin_key: String,
    pub namespace: Option<String>,
    pub istio: bool,
    pub nginx: bool,
    pub alb: bool,
    pub dry_run: bool,
    pub write_rollout_weights: bool,
    pub resync: Duration,
    pub concurrency: u16,
    /// Field manager and Event reporter name.
    pub manager: String,
    /// This replica's identity (Events, Lease).
    pub identity: String,
    /// `None`: this replica always writes.
    pub leader_election: Option<super::run::LeaderElection>,
}

/// One kind of routing object the controller caches and writes.
pub struct RoutingKind {
    pub resource: ApiResource,
    pub store: Store<DynamicObject>,
}

/// The Rollouts (namespace, name) that reference a routing object.
pub type RolloutKey = (String, String);

#[derive(Default)]
pub struct Index {
    by_object: HashMap<ObjectKey, BTreeSet<RolloutKey>>,
    by_rollout: HashMap<RolloutKey, Vec<ObjectKey>>,
}

impl Index {
    /// Records the objects `rollout` references now (replacing what it referenced before).
    pub fn set(&mut self, rollout: RolloutKey, objects: Vec<ObjectKey>) {
        if self.by_rollout.get(&rollout) == Some(&objects) {
            return;
        }
        self.remove(&rollout);
        for key in &objects {
            self.by_object
                .entry(key.clone())
                .or_default()
                .insert(rollout.clone());
        }
        self.by_rollout.insert(rollout, objects);
    }

    pub fn remove(&mut self, rollout: &RolloutKey) {
        if let Some(old) = self.by_rollout.remove(rollout) {
            for key in old {
                if let Some(set) = self.by_object.get_mut(&key) {
                    set.remove(rollout);
                    if set.is_empty() {
                        self.by_object.remove(&key);
                    }
                }
            }
        }
    }

    pub fn rollouts_of(&self, key: &ObjectKey) -> Vec<RolloutKey> {
        self.by_object
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub rollout_resource: ApiResource,
    pub rollouts: Store<DynamicObject>,
    pub replica_sets: Store<ReplicaSet>,
    pub traffic: Store<RolloutTraffic>,
    pub experiments: Option<RoutingKind>,
    /// Routing object kinds by (group, kind).
    pub routing: HashMap<(String, String), RoutingKind>,
    pub index: RwLock<Index>,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub leader: AtomicBool,
    pub ready: AtomicBool,
    /// The last RolloutTraffic status this replica wrote, per Rollout, until the cache holds
    /// it: the cache may not have seen our own write yet, and comparing with a stale copy would
    /// write (and announce) twice. The RolloutTraffic watch drops an entry when it delivers
    /// our write (`run::traffic_changes`), so that the status is not kept twice.
    pub last_status: Arc<Mutex<HashMap<RolloutKey, WrittenStatus>>>,
    /// RolloutTraffic objects this replica created or patched, until the cache shows them.
    pub traffic_written: Mutex<HashMap<RolloutKey, WrittenTraffic>>,
    /// Consecutive failures per Rollout, for exponential backoff.
    pub failures: Mutex<HashMap<RolloutKey, u32>>,
    /// The routing objects this replica patched, until the caches have seen the patch (see
    /// `apply::read_cached`).
    pub written: Mutex<HashMap<ObjectKey, Written>>,
}

/// A routing object as this replica's last patch left it.
pub struct Written {
    /// The resourceVersions our patches replaced: a cache still showing one of them lags
    /// behind our own write.
    pub superseded: Vec<String>,
    /// Our create made it: a cache without it lags behind our own write.
    pub created: bool,
    /// The object the API server answered the last patch with.
    pub object: serde_json::Value,
}

/// A RolloutTraffic as our own create or patch left it.
pub struct WrittenTraffic {
    /// The resourceVersion the write replaced (`None` for a create).
    pub replaced: Option<String>,
    pub object: Arc<RolloutTraffic>,
}

/// A RolloutTraffic status as this replica's last status write left it.
pub struct WrittenStatus {
    /// The resourceVersion the API server answered the write with.
    pub resource_version: Option<String>,
    pub status: crate::traffic::RolloutTrafficStatus,
}

impl WrittenStatus {
    /// Whether `cached` is the object our write produced (same version, same status), so the
    /// cache can stand in for this copy.
    pub fn is_cached(&self, cached: &RolloutTraffic) -> bool {
        self.resource_version.is_some()
            && cached.metadata.resource_version == self.resource_version
            && cached.status.as_ref() == Some(&self.status)
    }
}

impl Context {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Whether this replica may write now.
    pub fn may_write(&self) -> bool {
        !self.settings.dry_run && self.is_leader()
    }

    pub fn rollout(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.rollouts
            .get(&ObjectRef::new_with(name, self.rollout_resource.clone()).within(namespace))
    }

    /// The RolloutTraffic `namespace/name`: the one this replica last created or patched while
    /// the cache still shows the version that write replaced (or nothing, for a create), else
    /// the cache's. Without this, a reconcile that runs before the watch delivers our own write
    /// creates or patches it a second time.
    pub fn rollout_traffic(&self, namespace: &str, name: &str) -> Option<Arc<RolloutTraffic>> {
        let cached = self.traffic.get(&ObjectRef::new(name).within(namespace));
        let key: RolloutKey = (namespace.to_owned(), name.to_owned());
        let mut written = self
            .traffic_written
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(w) = written.get(&key) {
            let cached_version = cached.as_ref().and_then(|c| c.resource_version());
            if cached_version == w.replaced {
                return Some(w.object.clone());
            }
            // The cache has moved past our write: it is the newest again.
            written.remove(&key);
        }
        cached
    }

    /// Remembers the RolloutTraffic the API server answered our create (`replaced: None`) or
    /// patch (`replaced`: the version the patch was made against) with.
    pub fn remember_traffic(&self, replaced: Option<String>, object: RolloutTraffic) {
        let key: RolloutKey = (object.namespace().unwrap_or_default(), object.name_any());
        self.traffic_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key,
                WrittenTraffic {
                    replaced,
                    object: Arc::new(object),
                },
            );
    }

    /// The Rollout's ReplicaSets for `hashes` (its current and stable pod-template hashes).
    /// Argo names them `<rollout>-<hash>`, so this is a lookup, not a scan; ownership is
    /// checked by uid.
    pub fn replica_sets_of(
        &self,
        namespace: &str,
        rollout: &str,
        uid: &str,
        hashes: &[&str],
    ) -> Vec<Arc<ReplicaSet>> {
        let mut found: Vec<Arc<ReplicaSet>> = Vec::new();
        for hash in hashes.iter().filter(|h| !h.is_empty()) {
            let name = format!("{rollout}-{hash}");
            if found.iter().any(|rs| rs.name_any() == name) {
                continue;
            }
            if let Some(rs) = self
                .replica_sets
                .get(&ObjectRef::new(&name).within(namespace))
                && rs.owner_references().iter().any(|o| o.uid == uid)
            {
                found.push(rs);
            }
        }
        found
    }

    pub fn routing_kind(&self, key: &ObjectKey) -> Option<&RoutingKind> {
        self.routing.get(&(key.group.clone(), key.kind.clone()))
    }

    /// The cached routing object for `key`.
    pub fn cached(&self, key: &ObjectKey) -> Option<Arc<DynamicObject>> {
        let kind = self.routing_kind(key)?;
        kind.store
            .get(&ObjectRef::new_with(&key.name, kind.resource.clone()).within(&key.namespace))
    }

    pub fn backoff(&self, rollout: &RolloutKey) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(rollout.clone()).or_default();
        *n = n.saturating_add(1);
        // 1 s, 2 s, 4 s, ... capped at 5 minutes.
        Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300))
    }

    /// The newest status of a RolloutTraffic: the one this replica last wrote, else the cache's.
    /// The cache is read now, not taken from `existing` (the reconcile's earlier snapshot): the
    /// watch may have delivered our last write meanwhile and dropped its copy from
    /// `last_status`, and the snapshot predates that write.
    pub fn status_of(
        &self,
        key: &RolloutKey,
        existing: Option<&RolloutTraffic>,
    ) -> Option<crate::traffic::RolloutTrafficStatus> {
        let mut map = self.last_status.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.rollout_traffic(&key.0, &key.1);
        let cached = current.as_deref().or(existing);
        match (map.get(key), cached) {
            (Some(w), Some(rt)) if w.is_cached(rt) => {
                map.remove(key);
                rt.status.clone()
            }
            (Some(w), _) => Some(w.status.clone()),
            (None, rt) => rt.and_then(|rt| rt.status.clone()),
        }
    }

    /// Remembers the status this replica wrote (`None`: forget it) and the resourceVersion the
    /// API server answered the write with.
    pub fn remember_status(
        &self,
        key: RolloutKey,
        status: Option<(crate::traffic::RolloutTrafficStatus, Option<String>)>,
    ) {
        let mut map = self.last_status.lock().unwrap_or_else(|e| e.into_inner());
        match status {
            Some((status, resource_version)) => map.insert(
                key,
                WrittenStatus {
                    resource_version,
                    status,
                },
            ),
            None => map.remove(&key),
        };
    }

    /// Whether the routing object `key` at `resource_version` is the answer to this replica's
    /// own last patch; if so, the cache now holds it and the copy in `written` goes.
    pub fn cache_caught_up(&self, key: &ObjectKey, resource_version: Option<&str>) -> bool {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let ours = resource_version.is_some()
            && written.get(key).is_some_and(|w| {
                w.object
                    .pointer("/metadata/resourceVersion")
                    .and_then(serde_json::Value::as_str)
                    == resource_version
            });
        if ours {
            written.remove(key);
        }
        ours
    }

    pub fn succeeded(&self, rollout: &RolloutKey) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(rollout);
    }
}
