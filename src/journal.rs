//! The journal: the inverse of every change rollout-router made to an object it does not own,
//! recorded from the guarded JSON patches it applied and replayed as guarded patches when the
//! Rollout lets go of its routing (docs/undo.md).
//!
//! A journal entry names a field by a *locator* (`JournalEntry::path`) rather than a JSON
//! pointer, because array indices move: a step is a member name (a JSON string), a bare array
//! index (a JSON number, the last resort), or an array element found by what identifies it (a
//! JSON object such as `{"name": "primary"}` or `{"/destination/host": "stable-svc"}`: keys
//! starting with `/` are JSON pointers into the element, other keys are member names).
//!
//! Pure: no client, no I/O. The controller calls [`record`] after each patch it applied to a
//! user-owned object (release patches too), and [`undo`] after every router's `release`.

use std::collections::BTreeMap;
use std::fmt;

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{Patch, PatchOperation};
use rollout_router_core::patch::PatchBuilder;
use rollout_router_core::{ApplyError, Change, ObjectKey, ObjectSet};
use serde_json::{Map, Value};

use crate::traffic::JournalEntry;

/// A recorded patch could not be replayed on the object it was recorded against: the caller
/// passed a `before` that is not the object the patch was applied to.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{key}: patch operation on {path} does not apply to the object given as before")]
    Replay {
        key: ObjectKey,
        path: String,
        #[source]
        source: json_patch::PatchError,
    },
    #[error("{key}: {path} does not exist in the object given as before")]
    Missing { key: ObjectKey, path: String },
}

/// The changes that hand the journaled fields back, and the entries that cannot be.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Undo {
    /// One guarded patch per object that needs one, in journal order of first appearance.
    pub changes: Vec<Change>,
    /// Entries left as they are, with why; the controller reports them (Event, status) and
    /// then forgets them: nothing later can restore them either.
    pub not_restored: Vec<NotRestored>,
}

/// An entry [`undo`] leaves alone.
#[derive(Clone, Debug, PartialEq)]
pub struct NotRestored {
    pub entry: JournalEntry,
    pub reason: NotRestoredReason,
}

impl fmt::Display for NotRestored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            entry_key(&self.entry),
            describe(&self.entry.path),
            self.reason
        )
    }
}

/// Why an entry was not restored.
#[derive(Clone, Debug, PartialEq)]
pub enum NotRestoredReason {
    /// The object no longer exists (or was deleted and re-created: another `uid`).
    ObjectGone,
    /// An array element on the way no longer exists, or is no longer unique.
    Locate(LocateError),
    /// The field no longer holds what rollout-router wrote: someone changed it since, and
    /// their value is kept. `None` when it was removed.
    UserChanged { current: Option<Value> },
}

impl fmt::Display for NotRestoredReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ObjectGone => f.write_str("the object is gone"),
            Self::Locate(e) => e.fmt(f),
            Self::UserChanged { current: Some(v) } => {
                write!(f, "changed since rollout-router wrote it (now {v}); kept")
            }
            Self::UserChanged { current: None } => {
                f.write_str("removed since rollout-router wrote it; kept")
            }
        }
    }
}

/// A locator that does not lead to one place in an object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    /// No element matches `step` (or the array itself is gone).
    #[error("{at}: no element {step}")]
    ElementGone { at: String, step: String },
    /// Several elements match `step`: none is changed rather than the wrong one.
    #[error("{at}: more than one element {step}")]
    Ambiguous { at: String, step: String },
    /// A step goes through a value that is not an object or array, or a malformed step.
    #[error("{at}: cannot step into {step}")]
    Shape { at: String, step: String },
}

/// Where a locator leads in one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    /// The JSON pointer of the field, with the element indices of today.
    pub pointer: PointerBuf,
    /// The field's value; `None` when it (or a member on the way) does not exist.
    pub value: Option<Value>,
    /// `test` operations that pin every identified array element on the way.
    pub identity_tests: Vec<(PointerBuf, Value)>,
    /// Number of leading steps that exist (all of them when `value` is `Some`).
    pub existing_steps: usize,
}

/// The object an entry is about.
pub fn entry_key(entry: &JournalEntry) -> ObjectKey {
    ObjectKey::new(&entry.group, &entry.kind, &entry.namespace, &entry.name)
}

/// Records the inverse of `patch`, which was applied successfully to the user-owned object
/// `key`, whose state just before was `before`. Call it for every such patch, release patches
/// included, in the order they were applied.
///
/// Operations that insert into or remove from an array, or replace a whole array element, are
/// not recorded: those are managed routes and destinations, which `release` removes by name.
/// Everything else becomes (or updates) one entry per field: the first `original` is kept,
/// `written` follows the latest write, and an entry whose field is back at its original is
/// dropped.
///
/// A patch that does not replay on `before` (a stale `before`) is journaled up to the failing
/// operation and logged; [`try_record`] returns that error instead.
pub fn record(journal: &mut Vec<JournalEntry>, key: &ObjectKey, before: &Value, patch: &Patch) {
    if let Err(error) = try_record(journal, key, before, patch) {
        tracing::warn!(%error, "journal: patch not fully recorded");
    }
}

/// [`record`], returning the error of a patch that does not replay on `before`.
pub fn try_record(
    journal: &mut Vec<JournalEntry>,
    key: &ObjectKey,
    before: &Value,
    patch: &Patch,
) -> Result<(), RecordError> {
    let uid = uid_of(before);
    // Entries of a deleted and re-created object with the same name describe a dead object.
    journal.retain(|e| entry_key(e) != *key || e.uid.is_empty() || uid.is_empty() || e.uid == uid);
    let tests: Vec<(Vec<String>, &Value)> = patch
        .iter()
        .filter_map(|op| match op {
            PatchOperation::Test(t) => Some((tokens(&t.path), &t.value)),
            _ => None,
        })
        .collect();
    let writes: Vec<Vec<String>> = patch
        .iter()
        .flat_map(|op| match op {
            PatchOperation::Test(_) => vec![],
            PatchOperation::Move(m) => vec![tokens(&m.from), tokens(&m.path)],
            other => vec![tokens(other.path())],
        })
        .collect();
    let recorder = Recorder {
        key,
        uid: &uid,
        tests: &tests,
        writes: &writes,
    };
    let mut work = before.clone();
    for op in patch.iter() {
        match op {
            PatchOperation::Test(_) => {}
            PatchOperation::Add(a) => recorder.write(journal, &work, &a.path, Some(&a.value))?,
            PatchOperation::Replace(r) => {
                recorder.write(journal, &work, &r.path, Some(&r.value))?;
            }
            PatchOperation::Remove(r) => recorder.write(journal, &work, &r.path, None)?,
            PatchOperation::Copy(c) => {
                let value =
                    value_at(&work, &c.from)
                        .cloned()
                        .ok_or_else(|| RecordError::Missing {
                            key: key.clone(),
                            path: c.from.to_string(),
                        })?;
                recorder.write(journal, &work, &c.path, Some(&value))?;
            }
            PatchOperation::Move(m) => {
                let value =
                    value_at(&work, &m.from)
                        .cloned()
                        .ok_or_else(|| RecordError::Missing {
                            key: key.clone(),
                            path: m.from.to_string(),
                        })?;
                recorder.write(journal, &work, &m.from, None)?;
                let mut moved = work.clone();
                apply_op(key, &mut moved, &remove_op(&m.from))?;
                recorder.write(journal, &moved, &m.path, Some(&value))?;
            }
        }
        apply_op(key, &mut work, op)?;
    }
    Ok(())
}

/// Applies `change` to `objects` as the API server would and, when it patches an object that
/// `user_owned` accepts (state before the change), records it. The controller simulates each
/// router's `release` with it before calling [`undo`]: release writes user fields too (100 %
/// stable, subsets pointed at the stable hash), and undo must know rollout-router wrote them.
pub fn apply_recorded(
    journal: &mut Vec<JournalEntry>,
    objects: &mut ObjectSet,
    change: &Change,
    user_owned: impl Fn(&Value) -> bool,
) -> Result<(), ApplyError> {
    let before = match change {
        Change::Patch { key, .. } => objects.get(key).filter(|o| user_owned(o)).cloned(),
        Change::Create { .. } | Change::Delete { .. } => None,
    };
    objects.apply(change)?;
    if let (Some(before), Change::Patch { key, patch }) = (before, change) {
        record(journal, key, &before, patch);
    }
    Ok(())
}

/// The guarded patches that restore every journaled field still holding what rollout-router
/// wrote; entries whose field is already back at its original need nothing. Entries are
/// undone newest first, so a map rollout-router created is removed after its members.
pub fn undo(journal: &[JournalEntry], objects: &ObjectSet) -> Undo {
    let mut by_object: Vec<(ObjectKey, Vec<&JournalEntry>)> = Vec::new();
    for entry in journal {
        let key = entry_key(entry);
        match by_object.iter_mut().find(|(k, _)| *k == key) {
            Some((_, entries)) => entries.push(entry),
            None => by_object.push((key, vec![entry])),
        }
    }
    let mut result = Undo::default();
    for (key, entries) in by_object {
        let current = objects.get(&key);
        let Some(object) = current.filter(|o| entries.iter().all(|e| same_uid(e, o))) else {
            result
                .not_restored
                .extend(entries.into_iter().map(|e| NotRestored {
                    entry: e.clone(),
                    reason: NotRestoredReason::ObjectGone,
                }));
            continue;
        };
        let mut sim = object.clone();
        let mut ops = PatchBuilder::new();
        for entry in entries.into_iter().rev() {
            match restore(entry, &sim) {
                Ok(None) => {}
                Ok(Some(entry_ops)) => {
                    // The operations were built against `sim`; they cannot fail on it.
                    if json_patch::patch(&mut sim, &entry_ops).is_ok() {
                        for op in entry_ops {
                            push_op(&mut ops, op);
                        }
                    }
                }
                Err(reason) => result.not_restored.push(NotRestored {
                    entry: entry.clone(),
                    reason,
                }),
            }
        }
        if let Some(patch) = ops.build_if_changed() {
            result.changes.push(Change::Patch { key, patch });
        }
    }
    result
}

/// Drops the entries that need nothing any more: the field holds its original again (a
/// re-created object counts as gone and keeps its entries until [`undo`] reports them).
pub fn compact(journal: &mut Vec<JournalEntry>, objects: &ObjectSet) {
    journal.retain(|entry| {
        let Some(object) = objects.get(&entry_key(entry)) else {
            return true;
        };
        if !same_uid(entry, object) {
            return true;
        }
        match locate(object, &entry.path) {
            Ok(found) => found.value != entry.original,
            Err(_) => true,
        }
    });
}

/// Follows a locator through `object`.
pub fn locate(object: &Value, path: &[Value]) -> Result<Located, LocateError> {
    let mut pointer: Vec<String> = Vec::new();
    let mut identity_tests = Vec::new();
    let mut current = Some(object);
    let mut existing_steps = 0;
    for step in path {
        let at = describe_pointer(&pointer);
        match step {
            Value::String(member) => {
                current = match current {
                    Some(Value::Object(map)) => map.get(member),
                    None => None,
                    Some(_) => {
                        return Err(LocateError::Shape {
                            at,
                            step: member.clone(),
                        });
                    }
                };
                pointer.push(member.clone());
            }
            Value::Number(n) => {
                let items = array_at(current, &at, step)?;
                let index = n
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .filter(|i| *i < items.len())
                    .ok_or_else(|| LocateError::ElementGone {
                        at,
                        step: describe_step(step),
                    })?;
                current = items.get(index);
                pointer.push(index.to_string());
            }
            Value::Object(identity) => {
                let items = array_at(current, &at, step)?;
                let mut matching = items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| matches_identity(item, identity));
                let (index, item) = matching.next().ok_or_else(|| LocateError::ElementGone {
                    at: at.clone(),
                    step: describe_step(step),
                })?;
                if matching.next().is_some() {
                    return Err(LocateError::Ambiguous {
                        at,
                        step: describe_step(step),
                    });
                }
                pointer.push(index.to_string());
                for (sub, value) in identity {
                    let mut test = pointer.clone();
                    test.extend(identity_tokens(sub));
                    identity_tests.push((PointerBuf::from_tokens(&test), value.clone()));
                }
                current = Some(item);
            }
            _ => {
                return Err(LocateError::Shape {
                    at,
                    step: describe_step(step),
                });
            }
        }
        if current.is_some() {
            existing_steps += 1;
        }
    }
    Ok(Located {
        pointer: PointerBuf::from_tokens(&pointer),
        value: current.cloned(),
        identity_tests,
        existing_steps,
    })
}

/// A locator for messages: `spec.subsets[name=canary].labels.rollouts-pod-template-hash`.
pub fn describe(path: &[Value]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Value::String(member) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(member);
            }
            other => out.push_str(&describe_step(other)),
        }
    }
    out
}

/// What [`record`] needs for every operation of one patch.
struct Recorder<'a> {
    key: &'a ObjectKey,
    uid: &'a str,
    /// The patch's `test` operations: what it assumed, and so what identifies elements.
    tests: &'a [(Vec<String>, &'a Value)],
    /// Every path the patch writes: a field written by the patch cannot identify an element.
    writes: &'a [Vec<String>],
}

impl Recorder<'_> {
    /// Records one write of `written` (`None`: removal) at `path`, `work` being the object just
    /// before the operation.
    fn write(
        &self,
        journal: &mut Vec<JournalEntry>,
        work: &Value,
        path: &PointerBuf,
        written: Option<&Value>,
    ) -> Result<(), RecordError> {
        let tokens = tokens(path);
        let Some((_, parent_tokens)) = tokens.split_last() else {
            // The whole object is never replaced by a router; nothing sensible to journal.
            return Ok(());
        };
        let missing = || RecordError::Missing {
            key: self.key.clone(),
            path: path.to_string(),
        };
        let parent = value_at_tokens(work, parent_tokens).ok_or_else(missing)?;
        if !parent.is_object() {
            // An element inserted into, removed from or replaced in an array: a managed route
            // or destination, handed back by `release` by name.
            return Ok(());
        }
        let locator = self.locator(work, &tokens).ok_or_else(missing)?;
        let original = value_at_tokens(work, &tokens).cloned();
        self.note(journal, locator, original, written.cloned());
        Ok(())
    }

    /// Adds or updates the entry for `path`. A new object where there was nothing is journaled
    /// member by member (`{}` for the map itself), so that undo removes only what
    /// rollout-router added and a member the user adds in between is kept.
    fn note(
        &self,
        journal: &mut Vec<JournalEntry>,
        path: Vec<Value>,
        original: Option<Value>,
        written: Option<Value>,
    ) {
        let key = self.key;
        let existing = journal
            .iter()
            .position(|e| entry_key(e) == *key && e.path == path);
        if let Some(index) = existing {
            if journal[index].original == written {
                journal.remove(index);
            } else {
                journal[index].written = written;
            }
            return;
        }
        if original == written {
            return;
        }
        if let (None, Some(Value::Object(members))) = (&original, &written) {
            journal.push(self.entry(path.clone(), None, Some(Value::Object(Map::new()))));
            for (member, value) in members {
                let mut member_path = path.clone();
                member_path.push(Value::String(member.clone()));
                self.note(journal, member_path, None, Some(value.clone()));
            }
            return;
        }
        journal.push(self.entry(path, original, written));
    }

    fn entry(
        &self,
        path: Vec<Value>,
        original: Option<Value>,
        written: Option<Value>,
    ) -> JournalEntry {
        JournalEntry {
            kind: self.key.kind.clone(),
            group: self.key.group.clone(),
            namespace: self.key.namespace.clone(),
            name: self.key.name.clone(),
            uid: self.uid.to_owned(),
            path,
            original,
            written,
        }
    }

    /// The locator of `tokens` in `work`: members stay names, array indices become the
    /// element's identity.
    fn locator(&self, work: &Value, tokens: &[String]) -> Option<Vec<Value>> {
        let mut steps = Vec::with_capacity(tokens.len());
        let mut current = work;
        // `tokens[..i]` with array indices generalised, to match the patch's tests and writes
        // whatever index they used (an insertion earlier in the patch shifts indices).
        let mut shape: Vec<Option<&str>> = Vec::new();
        for token in tokens {
            match current {
                Value::Array(items) => {
                    let index: usize = token.parse().ok()?;
                    let item = items.get(index)?;
                    steps.push(self.identify(items, index, &shape));
                    shape.push(None);
                    current = item;
                }
                Value::Object(map) => {
                    steps.push(Value::String(token.clone()));
                    shape.push(Some(token));
                    match map.get(token) {
                        Some(next) => current = next,
                        // Only the last token may be missing (an `add`).
                        None => return Some(steps),
                    }
                }
                _ => return None,
            }
        }
        Some(steps)
    }

    /// How to find `items[index]` again: the fields the patch's tests pinned on elements of
    /// this array (that the patch does not write), else its `name`, else the bare index.
    fn identify(&self, items: &[Value], index: usize, shape: &[Option<&str>]) -> Value {
        let item = &items[index];
        let mut identity = Map::new();
        for (test, value) in self.tests {
            let Some(sub) = element_sub_pointer(test, shape) else {
                continue;
            };
            if self.writes.iter().any(|w| overlaps(w, shape, sub)) {
                continue;
            }
            let Some(found) = object_path(item, sub) else {
                continue;
            };
            if found == *value {
                identity
                    .entry(identity_key(sub))
                    .or_insert_with(|| (*value).clone());
            }
        }
        if !identity.is_empty() && unique(items, &identity) {
            return Value::Object(identity);
        }
        if let Some(name) = item.get("name").filter(|n| n.is_string()) {
            let by_name = Map::from_iter([("name".to_owned(), name.clone())]);
            if unique(items, &by_name) {
                return Value::Object(by_name);
            }
        }
        Value::from(index)
    }
}

/// The restoring operations for one entry against `object`, `None` when the field is already
/// at its original.
fn restore(
    entry: &JournalEntry,
    object: &Value,
) -> Result<Option<Vec<PatchOperation>>, NotRestoredReason> {
    let found = locate(object, &entry.path).map_err(NotRestoredReason::Locate)?;
    if found.value == entry.original {
        return Ok(None);
    }
    if found.value != entry.written {
        return Err(NotRestoredReason::UserChanged {
            current: found.value,
        });
    }
    let mut ops = PatchBuilder::new();
    for (pointer, value) in found.identity_tests {
        ops.test(pointer, value);
    }
    let field = tokens(&found.pointer);
    match &entry.written {
        Some(written) => {
            ops.test(found.pointer.clone(), written.clone());
        }
        None => {
            // RFC 6902 cannot test that a member is absent: pin the closest existing
            // container instead (the annotations map, the labels map), so a concurrent edit
            // of it fails the patch.
            let existing = field.len().min(found.existing_steps);
            if existing > 0 {
                let container = &field[..existing];
                if let Some(value) = value_at_tokens(object, container) {
                    ops.test(PointerBuf::from_tokens(container), value.clone());
                }
            } else if let Some(rv) = object.pointer("/metadata/resourceVersion") {
                ops.test(
                    PointerBuf::from_tokens(["metadata", "resourceVersion"]),
                    rv.clone(),
                );
            }
        }
    }
    match (&entry.original, &entry.written) {
        (Some(original), Some(_)) => {
            ops.replace(found.pointer, original.clone());
        }
        (Some(original), None) => {
            // Missing maps on the way (say `metadata.annotations`) are created with just the
            // restored member.
            let first_missing = found.existing_steps.min(field.len().saturating_sub(1));
            let mut value = original.clone();
            for member in field[first_missing + 1..].iter().rev() {
                value = Value::Object(Map::from_iter([(member.clone(), value)]));
            }
            ops.add(PointerBuf::from_tokens(&field[..=first_missing]), value);
        }
        (None, _) => {
            ops.remove(found.pointer);
        }
    }
    Ok(Some(ops.build().0))
}

fn push_op(ops: &mut PatchBuilder, op: PatchOperation) {
    match op {
        PatchOperation::Test(t) => ops.test(t.path, t.value),
        PatchOperation::Add(a) => ops.add(a.path, a.value),
        PatchOperation::Replace(r) => ops.replace(r.path, r.value),
        PatchOperation::Remove(r) => ops.remove(r.path),
        // `restore` builds none of these.
        PatchOperation::Move(_) | PatchOperation::Copy(_) => ops,
    };
}

fn uid_of(object: &Value) -> String {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whether `object` is the one the entry was recorded on (unknown uids match).
fn same_uid(entry: &JournalEntry, object: &Value) -> bool {
    let uid = uid_of(object);
    entry.uid.is_empty() || uid.is_empty() || entry.uid == uid
}

fn tokens(pointer: &Pointer) -> Vec<String> {
    pointer.tokens().map(|t| t.decoded().into_owned()).collect()
}

fn value_at<'a>(object: &'a Value, pointer: &Pointer) -> Option<&'a Value> {
    value_at_tokens(object, &tokens(pointer))
}

fn value_at_tokens<'a>(object: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(object, |v, t| match v {
        Value::Object(map) => map.get(t),
        Value::Array(items) => items.get(t.parse::<usize>().ok()?),
        _ => None,
    })
}

/// `sub` inside `item`, through objects only: a field under a nested array is no identity.
fn object_path<'a>(item: &'a Value, sub: &[String]) -> Option<&'a Value> {
    sub.iter()
        .try_fold(item, |v, t| v.as_object().and_then(|m| m.get(t)))
}

fn remove_op(path: &PointerBuf) -> PatchOperation {
    PatchOperation::Remove(json_patch::RemoveOperation { path: path.clone() })
}

fn apply_op(key: &ObjectKey, work: &mut Value, op: &PatchOperation) -> Result<(), RecordError> {
    json_patch::patch(work, std::slice::from_ref(op)).map_err(|source| RecordError::Replay {
        key: key.clone(),
        path: op.path().to_string(),
        source,
    })
}

/// When `test` addresses a field of an element of the array at `shape` (same members, any
/// indices), the pointer of that field inside the element.
fn element_sub_pointer<'t>(test: &'t [String], shape: &[Option<&str>]) -> Option<&'t [String]> {
    if test.len() < shape.len() + 2 || !same_shape(&test[..shape.len()], shape) {
        return None;
    }
    test[shape.len()].parse::<usize>().ok()?;
    Some(&test[shape.len() + 1..])
}

/// Whether `write` touches `<shape>/<any index>/<sub>`, one containing the other.
fn overlaps(write: &[String], shape: &[Option<&str>], sub: &[String]) -> bool {
    if write.len() <= shape.len() || !same_shape(&write[..shape.len()], shape) {
        return false;
    }
    let rest = &write[shape.len() + 1..];
    // A whole element inserted, removed or replaced leaves the others' fields alone.
    if rest.is_empty() {
        return false;
    }
    let n = rest.len().min(sub.len());
    rest[..n] == sub[..n]
}

fn same_shape(tokens: &[String], shape: &[Option<&str>]) -> bool {
    tokens.iter().zip(shape).all(|(t, s)| match s {
        Some(member) => t == member,
        None => t.parse::<usize>().is_ok() || t == "-",
    })
}

/// `name` for a member of the element, `/a/b` for a deeper field.
fn identity_key(sub: &[String]) -> String {
    match sub {
        [member] if !member.starts_with('/') => member.clone(),
        _ => PointerBuf::from_tokens(sub).to_string(),
    }
}

fn identity_tokens(key: &str) -> Vec<String> {
    if key.starts_with('/') {
        PointerBuf::parse(key).map_or_else(|_| vec![key.to_owned()], |p| tokens(&p))
    } else {
        vec![key.to_owned()]
    }
}

fn matches_identity(item: &Value, identity: &Map<String, Value>) -> bool {
    identity
        .iter()
        .all(|(key, value)| object_path(item, &identity_tokens(key)) == Some(value))
}

fn unique(items: &[Value], identity: &Map<String, Value>) -> bool {
    items
        .iter()
        .filter(|item| matches_identity(item, identity))
        .count()
        == 1
}

fn array_at<'a>(
    current: Option<&'a Value>,
    at: &str,
    step: &Value,
) -> Result<&'a Vec<Value>, LocateError> {
    match current {
        Some(Value::Array(items)) => Ok(items),
        None => Err(LocateError::ElementGone {
            at: at.to_owned(),
            step: describe_step(step),
        }),
        Some(_) => Err(LocateError::Shape {
            at: at.to_owned(),
            step: describe_step(step),
        }),
    }
}

fn describe_step(step: &Value) -> String {
    match step {
        Value::String(s) => s.clone(),
        Value::Number(n) => format!("[{n}]"),
        Value::Object(identity) => {
            let parts: Vec<String> = identity
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            format!("[{}]", parts.join(","))
        }
        other => format!("[{other}]"),
    }
}

fn describe_pointer(tokens: &[String]) -> String {
    if tokens.is_empty() {
        "the object".to_owned()
    } else {
        tokens.join(".")
    }
}

/// Entries per object, for status and logs: `VirtualService shop/checkout: 3`.
pub fn summary(journal: &[JournalEntry]) -> BTreeMap<ObjectKey, usize> {
    let mut out = BTreeMap::new();
    for entry in journal {
        *out.entry(entry_key(entry)).or_insert(0) += 1;
    }
    out
}
