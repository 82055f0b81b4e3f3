//! The controllers kube-controller-manager runs that the API semantics depend on: the garbage
//! collector (dependents of a deleted owner are deleted in the background; dangling owner
//! references next to a live owner are removed; the `orphan` and `foregroundDeletion`
//! finalizers) and the namespace controller (a terminating namespace is emptied, then removed).

use crate::object;
use crate::registry::{
    DeleteOptions, FINALIZER_FOREGROUND, FINALIZER_ORPHAN, NAMESPACE_FINALIZER, State,
};
use crate::resource::ResourceType;
use crate::store::ObjectKey;

/// Runs the controllers until nothing is left to do; returns whether anything changed.
pub(crate) fn collect(state: &mut State) -> bool {
    let mut changed = false;
    // Each pass performs at most one action on a fresh view; the bound only guards against a bug
    // turning into a hang.
    for _ in 0..100_000 {
        if !pass(state) {
            return changed;
        }
        changed = true;
    }
    changed
}

fn ns_of(key: &ObjectKey) -> Option<&str> {
    if key.namespace.is_empty() {
        None
    } else {
        Some(key.namespace.as_str())
    }
}

fn delete_background(state: &mut State, rt: &ResourceType, key: &ObjectKey) {
    let version = rt.versions.first().cloned().unwrap_or_default();
    let _ = state.delete(
        rt,
        &version,
        ns_of(key),
        &key.name,
        &DeleteOptions::default(),
    );
}

/// Writes `obj` back with finalizer `f` removed, removing the object when nothing holds it.
fn drop_finalizer(
    state: &mut State,
    rt: &ResourceType,
    key: &ObjectKey,
    obj: &serde_json::Value,
    f: &str,
) {
    let mut new = obj.clone();
    let rest: Vec<String> = object::finalizers(obj)
        .into_iter()
        .filter(|x| x != f)
        .collect();
    object::set_finalizers(&mut new, &rest);
    let namespace_held = rt.group.is_empty()
        && rt.plural == "namespaces"
        && new
            .pointer("/spec/finalizers")
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty());
    if rest.is_empty() && !namespace_held {
        state.remove(rt, key);
    } else {
        state.store.put(key.clone(), new);
    }
}

fn pass(state: &mut State) -> bool {
    let by_uid = state.objects_by_uid();
    let dependents_of = |uid: &str| -> Vec<(ResourceType, ObjectKey, bool)> {
        by_uid
            .values()
            .filter(|(_, _, o)| object::owner_references(o).iter().any(|r| r.uid == uid))
            .map(|(rt, k, o)| (rt.clone(), k.clone(), object::is_deleting(o)))
            .collect()
    };
    for (uid, (rt, key, obj)) in &by_uid {
        let deleting = object::is_deleting(obj);
        let finalizers = object::finalizers(obj);

        if deleting && finalizers.iter().any(|f| f == FINALIZER_ORPHAN) {
            for (_, dkey, _) in dependents_of(uid) {
                if let Some(dep) = state.store.get(&dkey) {
                    let mut dep = (*dep).clone();
                    object::remove_owner_references(&mut dep, std::slice::from_ref(uid));
                    state.store.put(dkey, dep);
                }
            }
            drop_finalizer(state, rt, key, obj, FINALIZER_ORPHAN);
            return true;
        }

        if deleting && finalizers.iter().any(|f| f == FINALIZER_FOREGROUND) {
            let deps = dependents_of(uid);
            if let Some((drt, dkey, _)) = deps.iter().find(|(_, _, d)| !d) {
                delete_background(state, drt, dkey);
                return true;
            }
            if deps.is_empty() {
                drop_finalizer(state, rt, key, obj, FINALIZER_FOREGROUND);
                return true;
            }
        }

        if deleting && rt.group.is_empty() && rt.plural == "namespaces" {
            let ns = key.name.as_str();
            let contents: Vec<_> = by_uid
                .values()
                .filter(|(_, k, _)| k.namespace == ns)
                .collect();
            if let Some((crt, ckey, _)) = contents.iter().find(|(_, _, o)| !object::is_deleting(o))
            {
                delete_background(state, crt, ckey);
                return true;
            }
            let held = obj
                .pointer("/spec/finalizers")
                .and_then(|v| v.as_array())
                .is_some_and(|a| a.iter().any(|f| f.as_str() == Some(NAMESPACE_FINALIZER)));
            if contents.is_empty() && held {
                let mut new = (**obj).clone();
                new["spec"]["finalizers"] = serde_json::json!([]);
                if object::finalizers(&new).is_empty() {
                    state.remove(rt, key);
                } else {
                    state.store.put(key.clone(), new);
                }
                return true;
            }
        }

        let refs = object::owner_references(obj);
        if refs.is_empty() {
            continue;
        }
        // An owner of an unknown kind cannot be looked up: the real collector leaves such
        // dependents alone (and retries).
        if refs
            .iter()
            .any(|r| state.resources.by_kind(&r.api_version, &r.kind).is_none())
        {
            continue;
        }
        let (live, dangling): (Vec<_>, Vec<_>) = refs.iter().partition(|r| {
            by_uid.get(&r.uid).is_some_and(|(ort, okey, _)| {
                ort.kind == r.kind && (!ort.namespaced || okey.namespace == key.namespace)
            })
        });
        if dangling.is_empty() {
            continue;
        }
        if !live.is_empty() {
            let mut new = (**obj).clone();
            let uids: Vec<String> = dangling.iter().map(|r| r.uid.clone()).collect();
            object::remove_owner_references(&mut new, &uids);
            state.store.put(key.clone(), new);
            return true;
        }
        if !deleting {
            delete_background(state, rt, key);
            return true;
        }
    }
    false
}
