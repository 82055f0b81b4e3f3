//! The `rollouts.argoproj.io/managed-alb-annotations` bookkeeping annotation (spec 30 §4): which
//! annotation keys each Rollout manages on an Ingress. rollout-router keeps Argo's key and format
//! so that a Rollout moved from Argo's built-in ALB routing keeps its history, and so that Argo
//! and rollout-router see each other's entries on a shared Ingress.

use std::collections::BTreeMap;

use crate::go_json::{write_key, write_string_array};

/// Fixed key, not affected by `annotationPrefix`.
pub const MANAGED_ANNOTATIONS: &str = "rollouts.argoproj.io/managed-alb-annotations";
/// Argo's older format `rollout1:actionKey1,rollout2:actionKey2`; never written, only cleaned.
pub const LEGACY_MANAGED_ACTIONS: &str = "rollouts.argoproj.io/managed-alb-actions";

/// Rollout name → annotation keys it manages, in insertion order. A `BTreeMap` serializes with
/// sorted keys, which is what Go's map encoding produces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedAnnotations {
    entries: BTreeMap<String, Vec<String>>,
}

impl ManagedAnnotations {
    /// Parses the annotation value; `None` (annotation absent) is an empty map. A `null` list
    /// (Go's nil slice) reads as empty.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        let Some(value) = value else {
            return Ok(Self::default());
        };
        let raw: BTreeMap<String, Option<Vec<String>>> = serde_json::from_str(value)
            .map_err(|e| format!("not a JSON object of Rollout name to key list: {e}"))?;
        Ok(Self {
            entries: raw
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        })
    }

    pub fn to_annotation(&self) -> String {
        let mut out = String::from("{");
        for (i, (rollout, keys)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_key(&mut out, rollout);
            write_string_array(&mut out, keys.iter().map(String::as_str));
        }
        out.push('}');
        out
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys `rollout` manages, if it has an entry.
    pub fn keys(&self, rollout: &str) -> Option<&[String]> {
        self.entries.get(rollout).map(Vec::as_slice)
    }

    /// Records that `rollout` manages `key` (appended once).
    pub fn add(&mut self, rollout: &str, key: &str) {
        let keys = self.entries.entry(rollout.to_owned()).or_default();
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_owned());
        }
    }

    /// Forgets `key` for `rollout`. An entry that becomes empty stays (`"name":[]`, like Argo);
    /// unlike Argo, removing from a Rollout without an entry creates nothing.
    pub fn remove(&mut self, rollout: &str, key: &str) {
        if let Some(keys) = self.entries.get_mut(rollout) {
            keys.retain(|k| k != key);
        }
    }

    /// Drops the whole entry of `rollout`; returns its keys.
    pub fn remove_rollout(&mut self, rollout: &str) -> Option<Vec<String>> {
        self.entries.remove(rollout)
    }
}

/// The legacy annotation without `rollout`'s entries; `None` when nothing is left.
pub fn legacy_without(value: &str, rollout: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(',')
        .filter(|entry| !entry.is_empty())
        .filter(|entry| {
            entry
                .split_once(':')
                .map_or(entry.trim(), |(r, _)| r.trim())
                != rollout
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_keys_insertion_ordered_lists() {
        let mut m = ManagedAnnotations::default();
        m.add("zeta", "a/actions.z");
        m.add("alpha", "a/actions.x");
        m.add("alpha", "a/conditions.h");
        m.add("alpha", "a/actions.x");
        assert_eq!(
            m.to_annotation(),
            r#"{"alpha":["a/actions.x","a/conditions.h"],"zeta":["a/actions.z"]}"#
        );
        m.remove("zeta", "a/actions.z");
        m.remove("nobody", "a/actions.z");
        assert_eq!(
            m.to_annotation(),
            r#"{"alpha":["a/actions.x","a/conditions.h"],"zeta":[]}"#
        );
        let back = ManagedAnnotations::parse(Some(&m.to_annotation())).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn parse_errors_and_nulls() {
        assert!(ManagedAnnotations::parse(Some("{oops")).is_err());
        assert!(ManagedAnnotations::parse(Some(r#"["a"]"#)).is_err());
        let m = ManagedAnnotations::parse(Some(r#"{"r":null}"#)).unwrap();
        assert_eq!(m.keys("r"), Some(&[][..]));
        assert!(ManagedAnnotations::parse(None).unwrap().is_empty());
    }

    #[test]
    fn legacy_entries() {
        assert_eq!(legacy_without("a:k1,b:k2", "a").as_deref(), Some("b:k2"));
        assert_eq!(legacy_without("a:k1", "a"), None);
        assert_eq!(legacy_without("b:k2", "a").as_deref(), Some("b:k2"));
    }
}
