//! Versioned object storage, playing etcd's part: one global, monotonically increasing
//! resourceVersion, a bounded history of changes (watch replay, consistent paginated lists at an
//! older version) and compaction (older versions answer `410 Gone`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, GroupResource};
use crate::object;

/// Where an object lives: type, namespace (empty for cluster-scoped) and name. Ordered as etcd
/// keys are, so lists come out sorted by namespace then name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjectKey {
    pub gr: GroupResource,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub(crate) fn new(gr: GroupResource, namespace: Option<&str>, name: &str) -> Self {
        Self {
            gr,
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        }
    }

    /// `namespace/name` (or `name`), the position a continue token resumes after.
    pub(crate) fn position(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One change, as a watch replays it.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub change: ChangeType,
    pub key: ObjectKey,
    /// The object after the change; for a deletion, its last state at the deletion's version.
    pub object: Arc<Value>,
    /// The object before the change (none for an addition).
    pub prev: Option<Arc<Value>>,
}

pub(crate) struct Store {
    rv: u64,
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    history: VecDeque<Arc<Change>>,
    /// Every change at or below this version has been dropped from the history.
    compacted: u64,
    capacity: usize,
}

impl Store {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted: 0,
            capacity: capacity.max(1),
        }
    }

    /// The current global resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// The newest version that can no longer be replayed.
    pub(crate) fn compacted(&self) -> u64 {
        self.compacted
    }

    pub(crate) fn get(&self, key: &ObjectKey) -> Option<Arc<Value>> {
        self.objects.get(key).cloned()
    }

    /// The current objects of a type, optionally in one namespace, in key order.
    pub(crate) fn list(
        &self,
        gr: &GroupResource,
        namespace: Option<&str>,
    ) -> Vec<(ObjectKey, Arc<Value>)> {
        self.objects
            .iter()
            .filter(|(k, _)| &k.gr == gr && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every current object (for the garbage collector).
    pub(crate) fn all(&self) -> Vec<(ObjectKey, Arc<Value>)> {
        self.objects
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The objects of a type as they were at version `rv`, rebuilt by undoing newer changes.
    pub(crate) fn list_at(
        &self,
        gr: &GroupResource,
        namespace: Option<&str>,
        rv: u64,
    ) -> Result<Vec<(ObjectKey, Arc<Value>)>, Error> {
        if rv < self.compacted {
            return Err(Error::Expired(format!(
                "too old resource version: {rv} ({})",
                self.compacted + 1
            )));
        }
        let mut state: BTreeMap<ObjectKey, Arc<Value>> =
            self.list(gr, namespace).into_iter().collect();
        for change in self.history.iter().rev().take_while(|c| c.rv > rv) {
            if &change.key.gr != gr || namespace.is_some_and(|ns| change.key.namespace != ns) {
                continue;
            }
            match &change.prev {
                None => {
                    state.remove(&change.key);
                }
                Some(prev) => {
                    state.insert(change.key.clone(), prev.clone());
                }
            }
        }
        Ok(state.into_iter().collect())
    }

    /// The changes after version `rv`, or `Expired` when some were compacted away.
    pub(crate) fn changes_after(&self, rv: u64) -> Result<Vec<Arc<Change>>, Error> {
        if rv < self.compacted {
            return Err(Error::Expired(format!(
                "too old resource version: {rv} ({})",
                self.compacted + 1
            )));
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Ok(self.history.iter().skip(start).cloned().collect())
    }

    fn record(&mut self, change: Change) {
        self.history.push_back(Arc::new(change));
        while self.history.len() > self.capacity {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
    }

    /// Writes `obj` under `key` at a new version (stamped into `metadata.resourceVersion`).
    pub(crate) fn put(&mut self, key: ObjectKey, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        object::set_meta(
            &mut obj,
            "resourceVersion",
            Value::String(self.rv.to_string()),
        );
        let obj = Arc::new(obj);
        let prev = self.objects.insert(key.clone(), obj.clone());
        let change = if prev.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.record(Change {
            rv: self.rv,
            change,
            key,
            object: obj.clone(),
            prev,
        });
        obj
    }

    /// Removes the object under `key` at a new version; returns its last state.
    pub(crate) fn remove(&mut self, key: &ObjectKey) -> Option<Arc<Value>> {
        let prev = self.objects.remove(key)?;
        self.rv += 1;
        let mut last = (*prev).clone();
        object::set_meta(
            &mut last,
            "resourceVersion",
            Value::String(self.rv.to_string()),
        );
        let last = Arc::new(last);
        self.record(Change {
            rv: self.rv,
            change: ChangeType::Deleted,
            key: key.clone(),
            object: last.clone(),
            prev: Some(prev),
        });
        Some(last)
    }

    /// Drops the whole history, as an etcd compaction at the current version does.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(GroupResource::new("", "configmaps"), Some("ns"), name)
    }

    fn names(items: &[(ObjectKey, Arc<Value>)]) -> Vec<String> {
        items
            .iter()
            .map(|(k, v)| format!("{}@{}", k.name, object::resource_version(v).unwrap_or("?")))
            .collect()
    }

    #[test]
    fn lists_at_an_older_version_undo_newer_changes() {
        let mut s = Store::new(100);
        s.put(key("a"), json!({"metadata": {"name": "a"}}));
        s.put(key("b"), json!({"metadata": {"name": "b"}}));
        let gr = GroupResource::new("", "configmaps");
        s.put(
            key("a"),
            json!({"metadata": {"name": "a"}, "data": {"x": "1"}}),
        );
        s.remove(&key("b"));
        s.put(key("c"), json!({"metadata": {"name": "c"}}));
        assert_eq!(names(&s.list(&gr, None)), ["a@3", "c@5"]);
        assert_eq!(
            names(&s.list_at(&gr, None, 2).unwrap_or_default()),
            ["a@1", "b@2"]
        );
        assert_eq!(
            names(&s.list_at(&gr, None, 3).unwrap_or_default()),
            ["a@3", "b@2"]
        );
        assert_eq!(names(&s.list_at(&gr, None, 4).unwrap_or_default()), ["a@3"]);
    }

    #[test]
    fn a_bounded_history_expires_old_versions() {
        let mut s = Store::new(2);
        for i in 0..4 {
            s.put(key(&format!("o{i}")), json!({}));
        }
        assert_eq!(s.compacted(), 2);
        assert!(matches!(s.changes_after(1), Err(Error::Expired(_))));
        let after2: Vec<u64> = s
            .changes_after(2)
            .unwrap_or_default()
            .iter()
            .map(|c| c.rv)
            .collect();
        assert_eq!(after2, [3, 4]);
        s.compact();
        assert!(matches!(s.changes_after(3), Err(Error::Expired(_))));
        assert!(s.changes_after(4).is_ok_and(|c| c.is_empty()));
    }
}
