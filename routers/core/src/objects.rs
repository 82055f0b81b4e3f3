//! Routing objects as routers see them: plain JSON (so unknown fields survive byte for byte),
//! keyed by group, kind, namespace and name, and the changes a plan makes to them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Identity of a routing object. The API version is not part of it: a VirtualService served as
/// `v1` and as `v1alpha3` is the same object.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKey {
    /// API group; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(
        group: impl Into<String>,
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a JSON object from its `apiVersion`, `kind` and `metadata`.
    pub fn of(object: &Value) -> Option<Self> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let kind = object.get("kind")?.as_str()?;
        let metadata = object.get("metadata")?;
        let name = metadata.get("name")?.as_str()?;
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Some(Self::new(group, kind, namespace, name))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One change a router wants made. Changes of one plan are applied in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Change {
    /// An RFC 6902 JSON Patch on an existing object. Patches on objects the user owns start
    /// with `test` operations on what they assume, so a concurrent edit fails the patch instead
    /// of being overwritten.
    Patch {
        key: ObjectKey,
        patch: json_patch::Patch,
    },
    /// Create an object rollout-router owns (e.g. the NGINX canary Ingress).
    Create { key: ObjectKey, object: Value },
    /// Delete an object rollout-router owns; `uid` is a precondition when known.
    Delete {
        key: ObjectKey,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
    },
}

impl Change {
    pub fn key(&self) -> &ObjectKey {
        match self {
            Self::Patch { key, .. } | Self::Create { key, .. } | Self::Delete { key, .. } => key,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0} not found")]
    NotFound(ObjectKey),
    #[error("{0} already exists")]
    AlreadyExists(ObjectKey),
    #[error("{key}: JSON patch failed")]
    Patch {
        key: ObjectKey,
        #[source]
        source: json_patch::PatchError,
    },
}

/// The routing objects of one reconcile, by key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectSet {
    objects: BTreeMap<ObjectKey, Value>,
}

impl ObjectSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an object; returns its key, or `None` when it has no
    /// `apiVersion`/`kind`/`metadata.name`.
    pub fn insert(&mut self, object: Value) -> Option<ObjectKey> {
        let key = ObjectKey::of(&object)?;
        self.objects.insert(key.clone(), object);
        Some(key)
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    pub fn remove(&mut self, key: &ObjectKey) -> Option<Value> {
        self.objects.remove(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &Value)> {
        self.objects.iter()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Objects of one group and kind in a namespace.
    pub fn of_kind<'a>(
        &'a self,
        group: &'a str,
        kind: &'a str,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Value)> + 'a {
        self.objects
            .iter()
            .filter(move |(k, _)| k.group == group && k.kind == kind && k.namespace == namespace)
    }

    /// Applies one change the way the API server would (atomically per change). This is what
    /// `plan`/`render` use to show the objects after a reconcile, and what the property tests
    /// use to check that planning after applying is a no-op.
    pub fn apply(&mut self, change: &Change) -> Result<(), ApplyError> {
        match change {
            Change::Patch { key, patch } => {
                let object = self
                    .objects
                    .get_mut(key)
                    .ok_or_else(|| ApplyError::NotFound(key.clone()))?;
                json_patch::patch(object, patch).map_err(|source| ApplyError::Patch {
                    key: key.clone(),
                    source,
                })
            }
            Change::Create { key, object } => {
                if self.objects.contains_key(key) {
                    return Err(ApplyError::AlreadyExists(key.clone()));
                }
                self.objects.insert(key.clone(), object.clone());
                Ok(())
            }
            Change::Delete { key, .. } => self
                .objects
                .remove(key)
                .map(drop)
                .ok_or_else(|| ApplyError::NotFound(key.clone())),
        }
    }

    /// Applies changes in order, stopping at the first failure.
    pub fn apply_all<'a>(
        &mut self,
        changes: impl IntoIterator<Item = &'a Change>,
    ) -> Result<(), ApplyError> {
        changes.into_iter().try_for_each(|c| self.apply(c))
    }
}

impl FromIterator<Value> for ObjectSet {
    /// Collects objects; ones without a key are skipped.
    fn from_iter<T: IntoIterator<Item = Value>>(iter: T) -> Self {
        let mut set = Self::new();
        for object in iter {
            set.insert(object);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::patch::PatchBuilder;
    use crate::pointer;

    fn vs() -> Value {
        json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
               "metadata": {"name": "vs", "namespace": "ns"}, "spec": {"http": [{"name": "a"}]}})
    }

    #[test]
    fn key_ignores_version() {
        let k = ObjectKey::of(&vs()).unwrap();
        assert_eq!(
            k,
            ObjectKey::new("networking.istio.io", "VirtualService", "ns", "vs")
        );
        assert_eq!(k.to_string(), "VirtualService ns/vs");
        let core = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        assert_eq!(ObjectKey::of(&core).unwrap().group, "");
    }

    #[test]
    fn failed_guard_leaves_object_unchanged() {
        let mut set: ObjectSet = [vs()].into_iter().collect();
        let key = ObjectKey::of(&vs()).unwrap();
        let mut b = PatchBuilder::new();
        b.replace(pointer!["spec", "http", 0, "name"], json!("b"));
        b.test(pointer!["spec", "http", 0, "name"], json!("zzz"));
        let change = Change::Patch {
            key: key.clone(),
            patch: b.build(),
        };
        assert!(matches!(set.apply(&change), Err(ApplyError::Patch { .. })));
        assert_eq!(set.get(&key), Some(&vs()));
    }

    #[test]
    fn create_and_delete() {
        let mut set = ObjectSet::new();
        let key = ObjectKey::of(&vs()).unwrap();
        let create = Change::Create {
            key: key.clone(),
            object: vs(),
        };
        set.apply(&create).unwrap();
        assert!(matches!(
            set.apply(&create),
            Err(ApplyError::AlreadyExists(_))
        ));
        set.apply(&Change::Delete {
            key: key.clone(),
            uid: None,
        })
        .unwrap();
        assert!(set.is_empty());
        assert!(matches!(
            set.apply(&Change::Delete { key, uid: None }),
            Err(ApplyError::NotFound(_))
        ));
    }
}
