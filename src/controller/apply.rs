//! The only writes to routing objects: guarded JSON patches, creates and deletes of objects
//! rollout-router owns. Each successful write's response replaces the cached copy, so the
//! weights read back are the API server's.

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PostParams, Preconditions};
use rollout_router_core::{Change, ObjectKey, ObjectSet};
use serde_json::Value;

use super::context::Context;
use crate::traffic::JournalEntry;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The object changed (or appeared, or vanished) since the plan was made: re-plan.
    #[error("{router} router: {key} changed meanwhile: {message}")]
    Conflict {
        router: String,
        key: ObjectKey,
        message: String,
    },
    #[error("{router} router: writing {key}: {source}")]
    Api {
        router: String,
        key: ObjectKey,
        #[source]
        source: kube::Error,
    },
    #[error("reading {key}: {source}")]
    Read {
        key: ObjectKey,
        #[source]
        source: kube::Error,
    },
    #[error("{0} is not served by this controller (its router is disabled)")]
    NotServed(ObjectKey),
    #[error("{0}")]
    Planned(String),
}

impl ApplyError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    pub fn router(&self) -> &str {
        match self {
            Self::Conflict { router, .. } | Self::Api { router, .. } => router,
            _ => "",
        }
    }
}

/// The routing objects for `keys` from the caches (absent ones are simply missing). A cached
/// copy our own last patch replaced is taken from that patch's answer instead: the watch that
/// updates the cache may lag (it is reconnecting, or its event is still on the way while our
/// status write already triggered the next reconcile), and a plan made from the older copy
/// repeats changes already made — where a patch is not guarded (the Istio router inserts a
/// managed route without a `test`), a second copy of the route.
pub fn read_cached(ctx: &Context, keys: &[ObjectKey]) -> ObjectSet {
    let mut written = ctx.written.lock().unwrap_or_else(|e| e.into_inner());
    keys.iter()
        .filter_map(|k| {
            let cached = ctx
                .cached(k)
                .and_then(|o| serde_json::to_value(o.as_ref()).ok());
            let stale = written.get(k).is_some_and(|w| match cached.as_ref() {
                Some(c) => {
                    resource_version(c).is_some_and(|rv| w.superseded.iter().any(|s| s == rv))
                }
                // Created by us, not in the cache yet (its echo removes the entry first).
                None => w.created,
            });
            if stale {
                return written.get(k).map(|w| w.object.clone());
            }
            // The cache has caught up (or moved past us): it is the newest copy again.
            written.remove(k);
            cached
        })
        .collect()
}

fn resource_version(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// Remembers the answer to our patch of `key`, which replaced resourceVersion `replaced`
/// (`None`: our create).
fn remember_write(ctx: &Context, key: &ObjectKey, replaced: Option<&str>, object: Value) {
    let mut written = ctx.written.lock().unwrap_or_else(|e| e.into_inner());
    // Successive patches before the cache caught up: the cache may show any of the versions.
    let (mut superseded, created) = match written.remove(key) {
        Some(previous) if resource_version(&previous.object) == replaced => {
            (previous.superseded, previous.created)
        }
        _ => (Vec::new(), replaced.is_none()),
    };
    superseded.extend(replaced.map(str::to_owned));
    written.insert(
        key.clone(),
        super::context::Written {
            superseded,
            created,
            object,
        },
    );
}

/// Forgets our last write of `key` (we deleted it: a copy kept would bring it back).
fn forget_write(ctx: &Context, key: &ObjectKey) {
    ctx.written
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(key);
}

/// The routing objects for `keys`, read from the API server (after a conflict the cache may lag
/// behind the object that refused the patch).
pub async fn read_fresh(ctx: &Context, keys: &[ObjectKey]) -> Result<ObjectSet, ApplyError> {
    let mut set = ObjectSet::new();
    for key in keys {
        let Some(api) = api_for(ctx, key) else {
            continue;
        };
        match api.get_opt(&key.name).await {
            Ok(Some(obj)) => {
                if let Ok(v) = serde_json::to_value(&obj) {
                    set.insert(v);
                }
            }
            Ok(None) => {}
            Err(source) => {
                return Err(ApplyError::Read {
                    key: key.clone(),
                    source,
                });
            }
        }
    }
    Ok(set)
}

fn api_for(ctx: &Context, key: &ObjectKey) -> Option<Api<DynamicObject>> {
    let kind = ctx.routing_kind(key)?;
    Some(Api::namespaced_with(
        ctx.client.clone(),
        &key.namespace,
        &kind.resource,
    ))
}

pub(crate) fn owned_by(object: &Value, uid: &str) -> bool {
    !uid.is_empty()
        && object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
            })
}

/// Applies one change. Patches on objects the user owns are recorded in `journal`.
pub async fn apply(
    ctx: &Context,
    router: &str,
    change: &Change,
    current: &mut ObjectSet,
    owner_uid: &str,
    journal: &mut Vec<JournalEntry>,
) -> Result<(), ApplyError> {
    let key = match change {
        Change::Patch { key, .. } | Change::Create { key, .. } | Change::Delete { key, .. } => key,
    };
    let describe = match change {
        Change::Patch { patch, .. } => {
            format!("patch {}", serde_json::to_string(patch).unwrap_or_default())
        }
        Change::Create { .. } => "create".to_owned(),
        Change::Delete { .. } => "delete".to_owned(),
    };
    if !ctx.may_write() {
        let why = if ctx.settings.dry_run {
            "dry run"
        } else {
            "standby (not the leader)"
        };
        tracing::info!(router, object = %key, change = %describe, "{why}: not written");
        return Ok(());
    }
    let api = api_for(ctx, key).ok_or_else(|| ApplyError::NotServed(key.clone()))?;
    let conflict = |message: String| ApplyError::Conflict {
        router: router.to_owned(),
        key: key.clone(),
        message,
    };
    let failed = |source| ApplyError::Api {
        router: router.to_owned(),
        key: key.clone(),
        source,
    };
    let result = match change {
        Change::Patch { patch, .. } => {
            let before = current.get(key).cloned();
            match api
                .patch(
                    &key.name,
                    &ctx.patch_params(),
                    &Patch::Json::<()>(patch.clone()),
                )
                .await
            {
                Ok(obj) => {
                    if let Some(before) = &before
                        && !owned_by(before, owner_uid)
                    {
                        crate::journal::record(journal, key, before, patch);
                    }
                    if let Ok(v) = serde_json::to_value(&obj) {
                        let replaced = before.as_ref().and_then(resource_version);
                        remember_write(ctx, key, replaced, v.clone());
                        current.insert(v);
                    }
                    Ok(())
                }
                // 422: a `test` failed; 409: resourceVersion conflict; 404: gone.
                Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409 | 422) => {
                    Err(conflict(e.message))
                }
                Err(e) => Err(failed(e)),
            }
        }
        Change::Create { object, .. } => {
            let obj: DynamicObject = serde_json::from_value(object.clone())
                .map_err(|e| ApplyError::Planned(format!("{key}: {e}")))?;
            let pp = PostParams {
                field_manager: Some(ctx.settings.manager.clone()),
                ..Default::default()
            };
            match api.create(&pp, &obj).await {
                Ok(obj) => {
                    if let Ok(v) = serde_json::to_value(&obj) {
                        remember_write(ctx, key, None, v.clone());
                        current.insert(v);
                    }
                    Ok(())
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Err(conflict(e.message)),
                Err(e) => Err(failed(e)),
            }
        }
        Change::Delete { uid, .. } => {
            let dp = DeleteParams {
                preconditions: uid.as_ref().map(|uid| Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&key.name, &dp).await {
                Ok(_) => {
                    forget_write(ctx, key);
                    current.remove(key);
                    Ok(())
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    forget_write(ctx, key);
                    current.remove(key);
                    Ok(())
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Err(conflict(e.message)),
                Err(e) => Err(failed(e)),
            }
        }
    };
    let outcome = match &result {
        Ok(()) => "applied",
        Err(e) if e.is_conflict() => "conflict",
        Err(_) => "error",
    };
    ctx.metrics.patch(router, &key.kind, outcome);
    match &result {
        Ok(()) => tracing::info!(router, object = %key, change = %describe, "applied"),
        Err(e) => tracing::info!(router, object = %key, error = %e, "not applied"),
    }
    result
}
