//! What kube-apiserver's generic registry does to objects on each verb: metadata kube-apiserver
//! owns (`uid`, `creationTimestamp`, `resourceVersion`, `generation`, `deletionTimestamp`),
//! preconditions and conflicts, the status subresource, finalizers, `generateName`, list
//! resourceVersion semantics and pagination. Shared by the HTTP handlers and the test controls.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::crd;
use crate::error::{Error, GroupResource};
use crate::managed::{self, FieldManager, Scope};
use crate::object;
use crate::patch::{self, PatchType};
use crate::resource::{ResourceType, Resources};
use crate::selector::Selector;
use crate::store::{ObjectKey, Store};

/// `metav1.FinalizerOrphanDependents`.
pub(crate) const FINALIZER_ORPHAN: &str = "orphan";
/// `metav1.FinalizerDeleteDependents`.
pub(crate) const FINALIZER_FOREGROUND: &str = "foregroundDeletion";
/// The namespace finalizer in `spec.finalizers`.
pub(crate) const NAMESPACE_FINALIZER: &str = "kubernetes";

/// Everything the server knows: the served types and the objects.
pub(crate) struct State {
    pub resources: Resources,
    pub store: Store,
}

/// Options of a write.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteOptions {
    /// `dryRun=All`: run every check, store nothing.
    pub dry_run: bool,
    /// Keep `status` on create (test seeding; the API drops it for types with a status subresource).
    pub keep_status: bool,
    /// Who writes (`fieldManager`, `force`), for `metadata.managedFields`.
    pub manager: FieldManager,
}

/// `DeleteOptions`, from the body and the query.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteOptions {
    pub propagation_policy: Option<String>,
    pub preconditions: Option<Preconditions>,
    pub dry_run: Option<Vec<String>>,
    pub orphan_dependents: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// The result of a DELETE.
pub(crate) enum Deleted {
    /// Removed now; the last state.
    Gone(Value),
    /// Waiting for finalizers; the object with its `deletionTimestamp`.
    Pending(Value),
}

/// LIST query parameters.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    start: String,
}

fn encode_continue(rv: u64, after: &str) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: format!("{after}\u{0}"),
    };
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_continue(token: &str) -> Result<(u64, String), Error> {
    let invalid = |why: String| Error::BadRequest(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(e.to_string()))?;
    let token: ContinueToken =
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if token.v != "meta.k8s.io/v1" {
        return Err(invalid(format!("unsupported version {}", token.v)));
    }
    Ok((token.rv, token.start.trim_end_matches('\u{0}').to_string()))
}

/// The object as clients see it at `version`: `apiVersion` and `kind` first.
pub(crate) fn present(rt: &ResourceType, version: &str, obj: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(rt.api_version(version)));
    out.insert("kind".into(), Value::String(rt.kind.clone()));
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if k != "apiVersion" && k != "kind" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// What `metadata.generation` tracks: everything but metadata (and status, with a subresource).
fn generation_content(rt: &ResourceType, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "apiVersion", "kind"] {
            m.remove(k);
        }
        if rt.status_subresource {
            m.remove("status");
        }
    }
    o
}

fn is_namespace_type(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "namespaces"
}

pub(crate) fn is_crd_type(rt: &ResourceType) -> bool {
    rt.group == crd::CRD_GROUP && rt.plural == crd::CRD_RESOURCE
}

fn namespace_finalizers(obj: &Value) -> Vec<Value> {
    obj.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whether something still holds the object back from removal.
fn is_held(rt: &ResourceType, obj: &Value) -> bool {
    !object::finalizers(obj).is_empty()
        || (is_namespace_type(rt) && !namespace_finalizers(obj).is_empty())
}

/// The field manager's view of a write.
fn ownership<'a>(
    rt: &ResourceType,
    version: &str,
    status: bool,
    opts: &'a WriteOptions,
    applied: Option<&'a Value>,
) -> managed::Write<'a> {
    managed::Write {
        manager: &opts.manager,
        applied,
        scope: Scope {
            status_subresource: rt.status_subresource,
            status_write: status,
        },
        api_version: rt.api_version(version),
    }
}

/// Records a write in `new`'s `managedFields`; an unforced apply that would change another
/// manager's fields is a `409 Conflict`.
fn record_ownership(
    rt: &ResourceType,
    version: &str,
    old: Option<&Value>,
    new: &mut Value,
    status: bool,
    opts: &WriteOptions,
    applied: Option<&Value>,
) -> Result<(), Error> {
    ownership(rt, version, status, opts, applied)
        .record(old, new)
        .map_err(|conflicts| Error::ApplyConflict {
            message: managed::conflict_message(&conflicts),
            causes: conflicts
                .into_iter()
                .map(|c| (c.field, format!("conflict with {}", c.owner)))
                .collect(),
        })
}

fn check_type_meta(rt: &ResourceType, version: &str, obj: &Value) -> Result<(), Error> {
    let expected = rt.api_version(version);
    if let Some(av) = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        && av != expected
    {
        return Err(Error::BadRequest(format!(
            "the API version in the data ({av}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(kind) = obj
        .get("kind")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        && kind != rt.kind
    {
        return Err(Error::BadRequest(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

impl State {
    pub(crate) fn new(history_capacity: usize) -> Self {
        Self {
            resources: Resources::default(),
            store: Store::new(history_capacity),
        }
    }

    fn key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> ObjectKey {
        ObjectKey::new(
            rt.group_resource(),
            if rt.namespaced { namespace } else { None },
            name,
        )
    }

    fn namespace_arg<'a>(
        rt: &ResourceType,
        namespace: Option<&'a str>,
    ) -> Result<Option<&'a str>, Error> {
        if !rt.namespaced {
            return Ok(None);
        }
        match namespace {
            Some(ns) if !ns.is_empty() => Ok(Some(ns)),
            _ => Err(Error::BadRequest(
                "the namespace of the object must be set".into(),
            )),
        }
    }

    fn not_found(rt: &ResourceType, name: &str) -> Error {
        Error::NotFound {
            resource: rt.group_resource(),
            name: name.to_string(),
        }
    }

    /// NamespaceLifecycle admission: namespaced objects need a live namespace.
    fn check_namespace_open(&self, namespace: Option<&str>) -> Result<(), Error> {
        let Some(ns) = namespace else { return Ok(()) };
        let ns_gr = GroupResource::new("", "namespaces");
        if self.resources.get(&ns_gr).is_none() {
            return Ok(());
        }
        match self.store.get(&ObjectKey::new(ns_gr.clone(), None, ns)) {
            None => Err(Error::NotFound {
                resource: ns_gr,
                name: ns.to_string(),
            }),
            Some(obj) if object::is_deleting(&obj) => Err(Error::Forbidden {
                resource: ns_gr,
                name: ns.to_string(),
                message: format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            }),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn get(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, Error> {
        let key = Self::key(rt, namespace, name);
        self.store
            .get(&key)
            .map(|o| present(rt, version, &o))
            .ok_or_else(|| Self::not_found(rt, name))
    }

    pub(crate) fn create(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, Error> {
        self.create_with(rt, version, namespace, obj, opts, None)
    }

    /// POST, or the create of a server-side apply (`applied` is then its configuration).
    fn create_with(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        applied: Option<&Value>,
    ) -> Result<Value, Error> {
        if !obj.is_object() {
            return Err(Error::BadRequest("the object must be a JSON object".into()));
        }
        check_type_meta(rt, version, &obj)?;
        let namespace = if rt.namespaced {
            let url_ns = Self::namespace_arg(rt, namespace.or(object::namespace(&obj)))?;
            if let (Some(body_ns), Some(url_ns)) = (object::namespace(&obj), url_ns)
                && body_ns != url_ns
            {
                return Err(Error::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request"
                            .into(),
                    ));
            }
            url_ns.map(str::to_string)
        } else {
            None
        };
        if object::resource_version(&obj).is_some() {
            return Err(Error::Internal(
                "resourceVersion should not be set on objects to be created".into(),
            ));
        }
        let name = match object::name(&obj) {
            Some(n) => n.to_string(),
            None => match object::meta_str(&obj, "generateName") {
                Some(prefix) => loop {
                    let candidate = format!("{prefix}{}", object::name_suffix());
                    if self
                        .store
                        .get(&Self::key(rt, namespace.as_deref(), &candidate))
                        .is_none()
                    {
                        break candidate;
                    }
                },
                None => {
                    return Err(Error::Invalid {
                        resource: rt.group_resource(),
                        name: String::new(),
                        message: format!(
                            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            rt.kind
                        ),
                    });
                }
            },
        };
        if name.contains('/') || name.contains('%') || name == "." || name == ".." {
            return Err(Error::Invalid {
                resource: rt.group_resource(),
                name: name.clone(),
                message: format!(
                    "{} \"{name}\" is invalid: metadata.name: Invalid value: may not contain '/' or '%'",
                    rt.kind
                ),
            });
        }
        let key = Self::key(rt, namespace.as_deref(), &name);
        self.check_namespace_open(namespace.as_deref())?;
        if self.store.get(&key).is_some() {
            return Err(Error::AlreadyExists {
                resource: rt.group_resource(),
                name,
            });
        }
        obj = present(rt, version, &obj);
        object::set_meta(&mut obj, "name", Value::String(name.clone()));
        match &namespace {
            Some(ns) => object::set_meta(&mut obj, "namespace", Value::String(ns.clone())),
            None => object::remove_meta(&mut obj, "namespace"),
        }
        object::set_meta(&mut obj, "uid", Value::String(object::new_uid()));
        object::set_meta(
            &mut obj,
            "creationTimestamp",
            Value::String(object::now_rfc3339()),
        );
        for field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "generation",
            "managedFields",
        ] {
            object::remove_meta(&mut obj, field);
        }
        if rt.generation {
            object::set_meta(&mut obj, "generation", json!(1));
        }
        if rt.status_subresource
            && !opts.keep_status
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        if is_namespace_type(rt) {
            obj["spec"] = json!({ "finalizers": [NAMESPACE_FINALIZER] });
            if !opts.keep_status || obj.get("status").is_none() {
                obj["status"] = json!({ "phase": "Active" });
            }
        }
        if is_crd_type(rt) {
            let served = crd::resource_type(&obj).map_err(|e| Error::Invalid {
                resource: rt.group_resource(),
                name: name.clone(),
                message: e.to_string(),
            })?;
            obj["status"] = crd::established_status(&obj);
            if !opts.dry_run {
                self.resources.register(served);
            }
        }
        record_ownership(rt, version, None, &mut obj, false, opts, applied)?;
        if opts.dry_run {
            return Ok(present(rt, version, &obj));
        }
        let stored = self.store.put(key, obj);
        Ok(present(rt, version, &stored))
    }

    /// PUT (main resource or `/status`).
    #[allow(clippy::too_many_arguments, reason = "mirrors the REST call's parts")]
    pub(crate) fn update(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        obj: Value,
        status: bool,
        opts: &WriteOptions,
    ) -> Result<Value, Error> {
        if !obj.is_object() {
            return Err(Error::BadRequest("the object must be a JSON object".into()));
        }
        check_type_meta(rt, version, &obj)?;
        let body_name = object::name(&obj).unwrap_or_default();
        if body_name != name {
            return Err(Error::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if rt.namespaced
            && let (Some(body_ns), Some(url_ns)) = (object::namespace(&obj), namespace)
            && body_ns != url_ns
        {
            return Err(Error::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request"
                            .into(),
                    ));
        }
        let key = Self::key(rt, namespace, name);
        let current = self
            .store
            .get(&key)
            .ok_or_else(|| Self::not_found(rt, name))?;
        match object::resource_version(&obj) {
            Some(rv) if Some(rv) != object::resource_version(&current) => {
                return Err(Error::Conflict {
                    resource: rt.group_resource(),
                    name: name.to_string(),
                    message: "the object has been modified; please apply your changes to the latest version and try again".into(),
                });
            }
            None if rt.custom => {
                return Err(Error::Invalid {
                    resource: rt.group_resource(),
                    name: name.to_string(),
                    message: format!(
                        "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                        rt.kind
                    ),
                });
            }
            _ => {}
        }
        self.write_update(rt, version, key, &current, obj, status, opts, None)
    }

    /// The common tail of PUT and PATCH: apply kube-apiserver's update strategy and store.
    #[allow(clippy::too_many_arguments, reason = "mirrors the REST call's parts")]
    fn write_update(
        &mut self,
        rt: &ResourceType,
        version: &str,
        key: ObjectKey,
        current: &Arc<Value>,
        obj: Value,
        status: bool,
        opts: &WriteOptions,
        applied: Option<&Value>,
    ) -> Result<Value, Error> {
        let current_v = present(rt, version, current);
        let mut new = if status {
            // Status strategy: everything but `status` comes from the stored object.
            let mut n = current_v.clone();
            match obj.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    if let Some(m) = n.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            n
        } else {
            let mut n = present(rt, version, &obj);
            if rt.status_subresource {
                match current_v.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(m) = n.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            n
        };
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            object::copy_meta(&current_v, &mut new, field);
        }
        object::remove_meta(&mut new, "selfLink");
        if is_namespace_type(rt) && !status {
            // spec.finalizers only changes through /finalize (the namespace controller).
            if let Some(spec) = current_v.get("spec") {
                new["spec"] = spec.clone();
            }
        }
        if object::is_deleting(&current_v) {
            let old = object::finalizers(&current_v);
            let added: Vec<String> = object::finalizers(&new)
                .into_iter()
                .filter(|f| !old.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(Error::Invalid {
                    resource: rt.group_resource(),
                    name: key.name.clone(),
                    message: format!(
                        "{} \"{}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}",
                        rt.kind, key.name
                    ),
                });
            }
        }
        if rt.generation && generation_content(rt, &new) != generation_content(rt, &current_v) {
            let next = object::generation(&current_v) + 1;
            object::set_meta(&mut new, "generation", json!(next));
        }
        if is_crd_type(rt) {
            let served = crd::resource_type(&new).map_err(|e| Error::Invalid {
                resource: rt.group_resource(),
                name: key.name.clone(),
                message: e.to_string(),
            })?;
            new["status"] = crd::established_status(&new);
            if !opts.dry_run {
                self.resources.register(served);
            }
        }
        record_ownership(
            rt,
            version,
            Some(&current_v),
            &mut new,
            status,
            opts,
            applied,
        )?;
        if new == current_v {
            // kube-apiserver skips the storage write of a no-op update: same resourceVersion, no event.
            return Ok(current_v);
        }
        if opts.dry_run {
            return Ok(new);
        }
        if object::is_deleting(&new) && !is_held(rt, &new) {
            self.remove(rt, &key);
            return Ok(new);
        }
        let stored = self.store.put(key, new);
        Ok(present(rt, version, &stored))
    }

    /// PATCH (main resource or `/status`). Returns the object and whether it was created
    /// (server-side apply creates).
    #[allow(clippy::too_many_arguments, reason = "mirrors the REST call's parts")]
    pub(crate) fn patch(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch_body: &Value,
        status: bool,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), Error> {
        if patch_type == PatchType::StrategicMerge && rt.custom {
            return Err(Error::UnsupportedMediaType(
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    .into(),
            ));
        }
        // An apply configuration carries no ownership of its own: the server records it.
        let mut applied = patch_body.clone();
        if patch_type == PatchType::Apply {
            object::remove_meta(&mut applied, "managedFields");
        }
        let patch_body = &applied;
        let applied = (patch_type == PatchType::Apply).then_some(patch_body);
        let key = Self::key(rt, namespace, name);
        let Some(current) = self.store.get(&key) else {
            if patch_type == PatchType::Apply && !status {
                let mut obj = patch_body.clone();
                object::set_meta(&mut obj, "name", Value::String(name.to_string()));
                return self
                    .create_with(rt, version, namespace, obj, opts, applied)
                    .map(|o| (o, true));
            }
            return Err(Self::not_found(rt, name));
        };
        let current_v = present(rt, version, &current);
        let mut patched = patch::apply(
            patch_type,
            &current_v,
            patch_body,
            &rt.group_resource(),
            name,
        )?;
        ownership(rt, version, status, opts, applied).prune(&current_v, &mut patched);
        if !patched.is_object() {
            return Err(Error::BadRequest(
                "the patched object is not a JSON object".into(),
            ));
        }
        check_type_meta(rt, version, &patched)?;
        if object::name(&patched) != Some(name) {
            return Err(Error::Invalid {
                resource: rt.group_resource(),
                name: name.to_string(),
                message: format!(
                    "{} \"{name}\" is invalid: metadata.name: Invalid value: field is immutable",
                    rt.kind
                ),
            });
        }
        // A resourceVersion the patch sets is a precondition, as in kube-apiserver.
        if let Some(rv) = object::resource_version(&patched)
            && Some(rv) != object::resource_version(&current)
        {
            return Err(Error::Conflict {
                    resource: rt.group_resource(),
                    name: name.to_string(),
                    message: "the object has been modified; please apply your changes to the latest version and try again".into(),
                });
        }
        self.write_update(rt, version, key, &current, patched, status, opts, applied)
            .map(|o| (o, false))
    }

    /// Removes an object now, with the side effects of its type.
    pub(crate) fn remove(&mut self, rt: &ResourceType, key: &ObjectKey) -> Option<Arc<Value>> {
        let last = self.store.remove(key)?;
        if is_crd_type(rt)
            && let Ok(served) = crd::resource_type(&last)
        {
            let gr = served.group_resource();
            self.resources.unregister(&gr);
            for (k, _) in self.store.list(&gr, None) {
                self.store.remove(&k);
            }
        }
        Some(last)
    }

    pub(crate) fn delete(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, Error> {
        let key = Self::key(rt, namespace, name);
        let current = self
            .store
            .get(&key)
            .ok_or_else(|| Self::not_found(rt, name))?;
        if let Some(pre) = &options.preconditions {
            let check = |what: &str,
                         want: &Option<String>,
                         have: Option<&str>|
             -> Result<(), Error> {
                match want {
                    Some(w) if Some(w.as_str()) != have => Err(Error::Conflict {
                        resource: rt.group_resource(),
                        name: name.to_string(),
                        message: format!(
                            "Precondition failed: {what} in precondition: {w}, {what} in object meta: {}",
                            have.unwrap_or_default()
                        ),
                    }),
                    _ => Ok(()),
                }
            };
            check("UID", &pre.uid, object::uid(&current))?;
            check(
                "ResourceVersion",
                &pre.resource_version,
                object::resource_version(&current),
            )?;
        }
        let dry_run = options.dry_run.as_ref().is_some_and(|d| !d.is_empty());
        let policy_finalizer = match options.propagation_policy.as_deref() {
            Some("Orphan") => Some(FINALIZER_ORPHAN),
            Some("Foreground") => Some(FINALIZER_FOREGROUND),
            Some("Background") | None => match options.orphan_dependents {
                Some(true) => Some(FINALIZER_ORPHAN),
                _ => None,
            },
            Some(other) => {
                return Err(Error::Invalid {
                    resource: rt.group_resource(),
                    name: name.to_string(),
                    message: format!("propagationPolicy: Unsupported value: \"{other}\""),
                });
            }
        };
        let mut obj = present(rt, version, &current);
        if let Some(f) = policy_finalizer {
            let mut fs = object::finalizers(&obj);
            if !fs.iter().any(|x| x == f) && !object::is_deleting(&obj) {
                fs.push(f.to_string());
                object::set_finalizers(&mut obj, &fs);
            }
        }
        if !is_held(rt, &obj) {
            if dry_run {
                return Ok(Deleted::Gone(obj));
            }
            let last = self
                .remove(rt, &key)
                .ok_or_else(|| Self::not_found(rt, name))?;
            return Ok(Deleted::Gone(present(rt, version, &last)));
        }
        if object::is_deleting(&obj) {
            return Ok(Deleted::Pending(obj));
        }
        // markAsDeleting: generation bump, deletionTimestamp, zero grace period.
        if object::generation(&obj) > 0 {
            let next = object::generation(&obj) + 1;
            object::set_meta(&mut obj, "generation", json!(next));
        }
        object::set_meta(
            &mut obj,
            "deletionTimestamp",
            Value::String(object::now_rfc3339()),
        );
        object::set_meta(&mut obj, "deletionGracePeriodSeconds", json!(0));
        if is_namespace_type(rt) {
            obj["status"] = json!({ "phase": "Terminating" });
        }
        if dry_run {
            return Ok(Deleted::Pending(obj));
        }
        let stored = self.store.put(key, obj);
        Ok(Deleted::Pending(present(rt, version, &stored)))
    }

    /// Deletes every object a collection request selects; returns what was deleted.
    pub(crate) fn delete_collection(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<Value, Error> {
        let selector = Selector::parse(
            list.label_selector.as_deref(),
            list.field_selector.as_deref(),
        )?;
        let targets: Vec<(ObjectKey, Arc<Value>)> = self
            .store
            .list(
                &rt.group_resource(),
                if rt.namespaced { namespace } else { None },
            )
            .into_iter()
            .filter(|(_, o)| selector.matches(o))
            .collect();
        let mut items = Vec::new();
        for (k, _) in targets {
            let ns = if k.namespace.is_empty() {
                None
            } else {
                Some(k.namespace.as_str())
            };
            match self.delete(rt, version, ns, &k.name, options)? {
                Deleted::Gone(o) | Deleted::Pending(o) => items.push(o),
            }
        }
        Ok(json!({
            "apiVersion": rt.api_version(version),
            "kind": rt.list_kind,
            "metadata": { "resourceVersion": self.store.rv().to_string() },
            "items": items,
        }))
    }

    /// LIST with kube-apiserver's resourceVersion semantics and pagination.
    pub(crate) fn list(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Value, Error> {
        let selector = Selector::parse(
            opts.label_selector.as_deref(),
            opts.field_selector.as_deref(),
        )?;
        let gr = rt.group_resource();
        let namespace = if rt.namespaced { namespace } else { None };
        let current = self.store.rv();
        let parse_rv = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| Error::BadRequest(format!("invalid resource version: {s}")))
        };
        let rv = opts.resource_version.as_deref().filter(|s| !s.is_empty());
        let rv_match = opts
            .resource_version_match
            .as_deref()
            .filter(|s| !s.is_empty());
        let (snapshot_rv, after) = if let Some(token) =
            opts.continue_token.as_deref().filter(|s| !s.is_empty())
        {
            if rv.is_some_and(|r| r != "0") {
                return Err(Error::BadRequest(
                    "specifying resource version is not allowed when using continue".into(),
                ));
            }
            let (rv, after) = decode_continue(token)?;
            if rv < self.store.compacted() {
                return Err(Error::Expired(
                    "The provided continue parameter is too old to display a consistent list result. \
                     You can start a new list without the continue parameter, or use the continue token \
                     in this response to retrieve the remainder of the results."
                        .into(),
                ));
            }
            (rv, Some(after))
        } else {
            match (rv, rv_match) {
                (None, Some(_)) => {
                    return Err(Error::Invalid {
                        resource: gr.clone(),
                        name: String::new(),
                        message: "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
                    });
                }
                (None, None) | (Some("0"), _) => (current, None),
                (Some(r), m) => {
                    let r = parse_rv(r)?;
                    if r > current {
                        return Err(Error::Timeout(format!(
                            "Too large resource version: {r}, current: {current}"
                        )));
                    }
                    let exact = match m {
                        Some("Exact") => true,
                        Some("NotOlderThan") => false,
                        Some(other) => {
                            return Err(Error::BadRequest(format!(
                                "unsupported resourceVersionMatch: {other}"
                            )));
                        }
                        None => opts.limit.is_some_and(|l| l > 0),
                    };
                    (if exact { r } else { current }, None)
                }
            }
        };
        let objects = if snapshot_rv == current {
            self.store.list(&gr, namespace)
        } else {
            self.store.list_at(&gr, namespace, snapshot_rv)?
        };
        let mut matching: Vec<(ObjectKey, Arc<Value>)> = objects
            .into_iter()
            .filter(|(k, _)| after.as_deref().is_none_or(|a| k.position().as_str() > a))
            .filter(|(_, o)| selector.matches(o))
            .collect();
        let mut metadata = Map::new();
        metadata.insert(
            "resourceVersion".into(),
            Value::String(snapshot_rv.to_string()),
        );
        if let Some(limit) = opts.limit.filter(|l| *l > 0)
            && matching.len() > limit
        {
            let rest = matching.split_off(limit);
            if let Some((last, _)) = matching.last() {
                metadata.insert(
                    "continue".into(),
                    Value::String(encode_continue(snapshot_rv, &last.position())),
                );
            }
            if selector.is_empty() {
                metadata.insert("remainingItemCount".into(), json!(rest.len()));
            }
        }
        let items: Vec<Value> = matching
            .iter()
            .map(|(_, o)| present(rt, version, o))
            .collect();
        Ok(json!({
            "apiVersion": rt.api_version(version),
            "kind": rt.list_kind,
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Objects by type for the garbage collector: uid → (type, key, object).
    pub(crate) fn objects_by_uid(&self) -> BTreeMap<String, (ResourceType, ObjectKey, Arc<Value>)> {
        let mut out = BTreeMap::new();
        for (key, obj) in self.store.all() {
            let (Some(uid), Some(rt)) = (object::uid(&obj), self.resources.get(&key.gr)) else {
                continue;
            };
            out.insert(uid.to_string(), (rt.clone(), key, obj));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "ns/name");
        assert_eq!(decode_continue(&t).ok(), Some((42, "ns/name".to_string())));
        assert!(decode_continue("not a token!").is_err());
    }
}
