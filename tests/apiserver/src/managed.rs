//! Field ownership for server-side apply: `metadata.managedFields` as kube-apiserver's field
//! manager keeps it, for leaf fields, with Apply conflicts (see the README for what is simpler).
//!
//! Every write names a manager. A write that is not an apply takes the fields it changes from
//! everyone else; an apply owns exactly the fields of its configuration and fails with a conflict
//! when it would change a field another manager owns, unless forced. Fields that disappear from the
//! object leave every set. The real field manager works on typed paths (`k:{...}` list keys, `v:`
//! set members); here a path is a chain of object keys and lists are atomic leaves.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::object;

/// A field: the chain of object keys from the root (`["spec", "holderIdentity"]`).
pub(crate) type FieldPath = Vec<String>;
/// A set of leaf fields.
pub(crate) type FieldSet = BTreeSet<FieldPath>;

/// `metadata` fields the field manager never tracks (kube-apiserver's `stripmeta.go`, plus the
/// deletion fields only DELETE sets).
const STRIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The manager kube-apiserver records when a request names none: the user agent up to its first
/// `/` (`kubectl/v1.32.0 (linux/amd64)` → `kubectl`); kube-rs sends no user agent, so it is empty.
pub(crate) fn default_manager(user_agent: &str) -> String {
    user_agent.split('/').next().unwrap_or_default().to_string()
}

/// Who writes, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldManager {
    /// `fieldManager` (or the user agent's default).
    pub name: String,
    /// `force=true` (apply only): take conflicting fields instead of failing.
    pub force: bool,
}

impl Default for FieldManager {
    /// Writes made by the test controls (`seed`, the namespaces every cluster has).
    fn default() -> Self {
        Self {
            name: "test-apiserver".into(),
            force: false,
        }
    }
}

/// What a write may own: with a status subresource, the main resource owns everything but
/// `status` and `/status` owns only `status`, as kube-apiserver's reset fields do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope {
    pub status_subresource: bool,
    pub status_write: bool,
}

impl Scope {
    fn owns(self, path: &FieldPath) -> bool {
        if !self.status_subresource {
            return true;
        }
        let is_status = path.first().is_some_and(|f| f == "status");
        is_status == self.status_write
    }

    fn subresource(self) -> Option<String> {
        (self.status_subresource && self.status_write).then(|| "status".to_string())
    }
}

fn is_tracked(path: &FieldPath) -> bool {
    match path.as_slice() {
        [] => false,
        [top] if top == "apiVersion" || top == "kind" => false,
        [meta, field, ..] if meta == "metadata" => !STRIPPED_META.contains(&field.as_str()),
        _ => true,
    }
}

/// The leaf fields of an object: non-object values and empty objects (lists are atomic).
/// `with_nulls: false` skips `null`s, which in an apply configuration or patch mean "remove".
pub(crate) fn leaves(value: &Value, with_nulls: bool) -> FieldSet {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet, with_nulls: bool) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    path.push(k.clone());
                    walk(child, path, out, with_nulls);
                    path.pop();
                }
            }
            Value::Null if !with_nulls => {}
            _ => {
                if is_tracked(path) {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    walk(value, &mut Vec::new(), &mut out, with_nulls);
    out
}

fn lookup<'a>(value: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(k))
}

/// Removes a field (parents stay, possibly empty, as the real pruning leaves them).
fn remove_path(value: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents
        .iter()
        .try_fold(&mut *value, |v, k| v.get_mut(k.as_str()));
    if let Some(Value::Object(m)) = parent {
        m.remove(last);
    }
}

/// `.spec.holderIdentity`, as structured-merge-diff prints a path.
pub(crate) fn path_string(path: &FieldPath) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    manager: String,
    /// `Apply` or `Update`.
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    fields: FieldSet,
}

impl Entry {
    fn key(&self) -> (&str, &str, Option<&str>) {
        (&self.manager, &self.operation, self.subresource.as_deref())
    }

    /// How kube-apiserver names the owner in a conflict message (`printManager`).
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {} at {}", self.api_version, self.time));
        }
        s
    }

    fn from_value(v: &Value) -> Option<Self> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let mut fields = FieldSet::new();
        if let Some(f) = v.get("fieldsV1") {
            decode_fields(f, &mut Vec::new(), &mut fields);
        }
        Some(Self {
            manager: text("manager").unwrap_or_default(),
            operation: text("operation")?,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time").unwrap_or_default(),
            subresource: text("subresource").filter(|s| !s.is_empty()),
            fields,
        })
    }

    fn to_value(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode_fields(&self.fields),
        });
        if let Some(sub) = &self.subresource {
            v["subresource"] = json!(sub);
        }
        v
    }
}

/// FieldsV1: `{"f:spec": {"f:holderIdentity": {}}}`; `"."` marks a member that also has children.
fn encode_fields(fields: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    fn render(node: &Node) -> Value {
        let mut m = Map::new();
        if node.member && !node.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, child) in &node.children {
            m.insert(format!("f:{k}"), render(child));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for path in fields {
        let node = path
            .iter()
            .fold(&mut root, |n, k| n.children.entry(k.clone()).or_default());
        node.member = true;
    }
    render(&root)
}

fn decode_fields(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    if m.is_empty() && !path.is_empty() {
        out.insert(path.clone());
        return;
    }
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
        } else if let Some(field) = k.strip_prefix("f:") {
            path.push(field.to_string());
            decode_fields(child, path, out);
            path.pop();
        }
        // `k:`, `v:` and `i:` keys come only from a real field manager: not ours to read.
    }
}

fn entries(obj: &Value) -> Vec<Entry> {
    object::meta(obj)
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::from_value).collect())
        .unwrap_or_default()
}

/// One field an apply would take from another manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// The owner, as kube-apiserver prints it (`"manager"`, or with `using <apiVersion> at <time>`).
    pub owner: String,
    /// `.spec.holderIdentity`.
    pub field: String,
}

/// The message of kube-apiserver's apply conflict error.
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.owner, only.field
        );
    }
    let mut by_owner: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in conflicts {
        by_owner.entry(&c.owner).or_default().push(&c.field);
    }
    let mut lines = Vec::new();
    for (owner, fields) in by_owner {
        lines.push(format!("conflicts with {owner}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// What one write does to ownership.
pub(crate) struct Write<'a> {
    pub manager: &'a FieldManager,
    /// The apply configuration, for an apply; `None` for every other write.
    pub applied: Option<&'a Value>,
    pub scope: Scope,
    /// `apiVersion` the request used (recorded in the entry).
    pub api_version: String,
}

impl Write<'_> {
    fn operation(&self) -> &'static str {
        if self.applied.is_some() {
            "Apply"
        } else {
            "Update"
        }
    }

    fn is_mine(&self, e: &Entry) -> bool {
        let sub = self.scope.subresource();
        e.key() == (&self.manager.name, self.operation(), sub.as_deref())
    }

    fn applied_fields(&self) -> FieldSet {
        self.applied
            .map(|c| leaves(c, false))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| self.scope.owns(p))
            .collect()
    }

    /// Apply's pruning: the fields this manager applied before, left out of this configuration
    /// and owned by no one else, are removed from `merged` (the live object with the
    /// configuration merged in).
    pub(crate) fn prune(&self, live: &Value, merged: &mut Value) {
        if self.applied.is_none() {
            return;
        }
        let all = entries(live);
        let Some(previous) = all.iter().find(|e| self.is_mine(e)) else {
            return;
        };
        let keep = self.applied_fields();
        let others: FieldSet = all
            .iter()
            .filter(|e| !self.is_mine(e))
            .flat_map(|e| e.fields.iter().cloned())
            .collect();
        for path in previous.fields.difference(&keep) {
            if !others.contains(path) {
                remove_path(merged, path);
            }
        }
    }

    /// Records the write in `new`'s `managedFields` (`old` is the stored object, `None` on
    /// create). Fails, changing nothing, when an unforced apply changes another manager's field.
    pub(crate) fn record(&self, old: Option<&Value>, new: &mut Value) -> Result<(), Vec<Conflict>> {
        let mut all = old.map(entries).unwrap_or_default();
        let old_fields = old.map(|o| leaves(o, true)).unwrap_or_default();
        let new_fields = leaves(new, true);
        let changed: FieldSet = new_fields
            .iter()
            .filter(|p| old.and_then(|o| lookup(o, p)) != lookup(new, p))
            .cloned()
            .collect();
        let mut conflicts = Vec::new();
        for e in all.iter_mut().filter(|e| !self.is_mine(e)) {
            // Fields an earlier write outside the field manager removed are nobody's.
            e.fields.retain(|p| old_fields.contains(p));
            let taken: Vec<FieldPath> = e.fields.intersection(&changed).cloned().collect();
            if self.applied.is_some() && !self.manager.force {
                conflicts.extend(taken.iter().map(|p| Conflict {
                    owner: e.describe(),
                    field: path_string(p),
                }));
            }
            for p in &taken {
                e.fields.remove(p);
            }
        }
        if !conflicts.is_empty() {
            return Err(conflicts);
        }
        let now = object::now_rfc3339();
        let mine = match all.iter().position(|e| self.is_mine(e)) {
            Some(i) => i,
            None => {
                all.push(Entry {
                    manager: self.manager.name.clone(),
                    operation: self.operation().to_string(),
                    api_version: self.api_version.clone(),
                    time: now.clone(),
                    subresource: self.scope.subresource(),
                    fields: FieldSet::new(),
                });
                all.len() - 1
            }
        };
        for (i, e) in all.iter_mut().enumerate() {
            let before = e.fields.clone();
            if i == mine {
                if self.applied.is_some() {
                    e.fields = self.applied_fields();
                } else {
                    e.fields
                        .extend(changed.iter().filter(|p| self.scope.owns(p)).cloned());
                }
            }
            e.fields.retain(|p| new_fields.contains(p));
            let touched = changed.iter().any(|p| e.fields.contains(p));
            if i == mine && (e.fields != before || touched) {
                e.time.clone_from(&now);
                e.api_version.clone_from(&self.api_version);
            }
        }
        all.retain(|e| !e.fields.is_empty());
        if all.is_empty() {
            object::remove_meta(new, "managedFields");
        } else {
            let list = all.iter().map(Entry::to_value).collect();
            object::set_meta(new, "managedFields", Value::Array(list));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> FieldPath {
        s.split('.').map(str::to_string).collect()
    }

    fn manager(name: &str, force: bool) -> FieldManager {
        FieldManager {
            name: name.into(),
            force,
        }
    }

    const MAIN: Scope = Scope {
        status_subresource: false,
        status_write: false,
    };

    fn write<'a>(m: &'a FieldManager, applied: Option<&'a Value>) -> Write<'a> {
        Write {
            manager: m,
            applied,
            scope: MAIN,
            api_version: "v1".into(),
        }
    }

    #[test]
    fn fields_v1_round_trips_and_marks_members_with_children() {
        let set: FieldSet = [path("spec.a"), path("spec.a.b"), path("metadata.labels.x")]
            .into_iter()
            .collect();
        let encoded = encode_fields(&set);
        assert_eq!(
            encoded,
            json!({"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:a": {".": {}, "f:b": {}}}})
        );
        let mut decoded = FieldSet::new();
        decode_fields(&encoded, &mut Vec::new(), &mut decoded);
        assert_eq!(decoded, set);
    }

    #[test]
    fn leaves_skip_server_owned_metadata_and_nulls_on_request() {
        let obj = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "resourceVersion": "1",
                         "labels": {"l": "1"}}, "spec": {"a": [1, 2], "b": {}, "c": null}});
        let with: Vec<String> = leaves(&obj, true).iter().map(path_string).collect();
        assert_eq!(
            with,
            [".metadata.labels.l", ".spec.a", ".spec.b", ".spec.c"]
        );
        assert!(!leaves(&obj, false).contains(&path("spec.c")));
    }

    #[test]
    fn apply_conflicts_on_changed_values_only_and_update_takes_ownership() {
        let a = manager("a", false);
        let b = manager("b", false);
        let config_a = json!({"spec": {"x": 1, "y": 2}});
        let mut obj = json!({"metadata": {"name": "o"}, "spec": {"x": 1, "y": 2}});
        write(&a, Some(&config_a)).record(None, &mut obj).unwrap();

        // Same value: shared ownership, no conflict.
        let same = json!({"spec": {"x": 1}});
        let mut shared = obj.clone();
        write(&b, Some(&same))
            .record(Some(&obj), &mut shared)
            .unwrap();
        assert_eq!(entries(&shared).len(), 2);

        // A different value conflicts, naming the owner and the field.
        let other = json!({"spec": {"y": 3}});
        let mut changed = obj.clone();
        changed["spec"]["y"] = json!(3);
        let err = write(&b, Some(&other))
            .record(Some(&obj), &mut changed.clone())
            .unwrap_err();
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.y"
        );
        // Forced, it moves.
        let forced = manager("b", true);
        write(&forced, Some(&other))
            .record(Some(&obj), &mut changed)
            .unwrap();
        let owners: Vec<(String, FieldSet)> = entries(&changed)
            .into_iter()
            .map(|e| (e.manager, e.fields))
            .collect();
        assert_eq!(
            owners,
            [
                ("a".to_string(), [path("spec.x")].into_iter().collect()),
                ("b".to_string(), [path("spec.y")].into_iter().collect()),
            ]
        );

        // An update takes what it changes; removed fields leave every set.
        let mut updated = changed.clone();
        updated["spec"] = json!({"y": 4});
        write(&manager("c", false), None)
            .record(Some(&changed), &mut updated)
            .unwrap();
        let owners: Vec<String> = entries(&updated).into_iter().map(|e| e.manager).collect();
        assert_eq!(owners, ["c"]);
    }

    #[test]
    fn several_conflicts_are_grouped_by_owner() {
        let conflicts = [
            Conflict {
                owner: "\"b\"".into(),
                field: ".spec.y".into(),
            },
            Conflict {
                owner: "\"a\"".into(),
                field: ".spec.x".into(),
            },
        ];
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.x\nconflicts with \"b\":\n- .spec.y"
        );
    }
}
