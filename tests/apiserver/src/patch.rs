//! PATCH bodies: RFC 6902 JSON Patch, RFC 7386 JSON merge patch, strategic merge patch (merge
//! semantics plus the list merge keys and `$patch`/`$setElementOrder`/`$retainKeys`/
//! `$deleteFromPrimitiveList` directives kubectl sends for the built-in kinds we serve) and
//! server-side apply's merge of the applied configuration (field ownership: `managed.rs`).

use serde_json::{Map, Value};

use crate::error::{Error, GroupResource};

/// The patch formats, by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

pub(crate) const SUPPORTED: &str = "application/json-patch+json, application/merge-patch+json, \
     application/strategic-merge-patch+json, application/apply-patch+yaml";

impl PatchType {
    pub(crate) fn from_content_type(content_type: &str) -> Result<Self, Error> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            _ => Err(Error::UnsupportedMediaType(SUPPORTED.to_string())),
        }
    }
}

/// Parses a patch body of `patch_type`.
pub(crate) fn parse_body(patch_type: PatchType, body: &[u8]) -> Result<Value, Error> {
    match patch_type {
        PatchType::Apply => {
            let text = std::str::from_utf8(body)
                .map_err(|e| Error::BadRequest(format!("apply patch is not UTF-8: {e}")))?;
            serde_saphyr::from_str(text)
                .map_err(|e| Error::BadRequest(format!("error decoding YAML: {e}")))
        }
        _ => serde_json::from_slice(body)
            .map_err(|e| Error::BadRequest(format!("error decoding patch: {e}"))),
    }
}

/// Applies `patch` to `target` (the current object). `name` and `resource` are for errors.
pub(crate) fn apply(
    patch_type: PatchType,
    target: &Value,
    patch: &Value,
    resource: &GroupResource,
    name: &str,
) -> Result<Value, Error> {
    let mut doc = target.clone();
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| Error::BadRequest(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| Error::Invalid {
                resource: resource.clone(),
                name: name.to_string(),
                message: e.to_string(),
            })?;
        }
        PatchType::Merge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(Error::BadRequest(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchType::StrategicMerge => {
            if !patch.is_object() {
                return Err(Error::BadRequest(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            doc = strategic_merge(Some(doc), patch).unwrap_or(Value::Null);
        }
    }
    Ok(doc)
}

/// Merge keys of the list fields of the built-in kinds (Go `patchMergeKey` tags), by field name;
/// when several kinds share a field name, the first key present in the patch's items wins.
fn merge_keys(field: &str) -> &'static [&'static str] {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => &["name"],
        "ports" => &["containerPort", "port"],
        "volumeMounts" => &["mountPath"],
        "volumeDevices" => &["devicePath"],
        "ownerReferences" => &["uid"],
        "conditions" => &["type"],
        "hostAliases" => &["ip"],
        _ => &[],
    }
}

/// Primitive lists whose patch strategy is `merge` (a union) rather than replace.
fn is_primitive_merge_list(field: &str) -> bool {
    field == "finalizers"
}

fn strategic_merge(target: Option<Value>, patch: &Value) -> Option<Value> {
    let Value::Object(p) = patch else {
        return Some(patch.clone());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("delete") => return None,
        Some("replace") => {
            let mut p = p.clone();
            p.remove("$patch");
            return Some(Value::Object(p));
        }
        _ => {}
    }
    let mut out = match target {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    let mut retain: Option<Vec<String>> = None;
    for (k, v) in p {
        if k == "$patch" {
            continue;
        } else if k == "$retainKeys" {
            retain = v.as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            });
        } else if let Some(list) = k.strip_prefix("$setElementOrder/") {
            orders.push((list.to_string(), v.as_array().cloned().unwrap_or_default()));
        } else if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) = (out.get_mut(list), v.as_array()) {
                items.retain(|i| !remove.contains(i));
            }
        } else if v.is_null() {
            out.remove(k);
        } else if let Value::Array(items) = v {
            let merged = merge_list(out.remove(k), items, k);
            out.insert(k.clone(), Value::Array(merged));
        } else if v.is_object() {
            match strategic_merge(out.remove(k), v) {
                Some(m) => {
                    out.insert(k.clone(), m);
                }
                None => {
                    out.remove(k);
                }
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    for (list, order) in orders {
        if let Some(Value::Array(items)) = out.get_mut(&list) {
            reorder(items, &order, &list);
        }
    }
    if let Some(keep) = retain {
        out.retain(|k, _| keep.contains(k));
    }
    Some(Value::Object(out))
}

fn key_of<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    item.as_object().and_then(|m| m.get(key))
}

fn merge_list(target: Option<Value>, patch: &[Value], field: &str) -> Vec<Value> {
    let current = match target {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    if patch.iter().all(|i| !i.is_object()) {
        if is_primitive_merge_list(field) {
            let mut out = current;
            for i in patch {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
            return out;
        }
        return patch.to_vec();
    }
    let key = merge_keys(field).iter().copied().find(|k| {
        patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .all(|i| key_of(i, k).is_some())
    });
    let Some(key) = key else {
        // No merge key: the list is replaced, as for a merge patch.
        return patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
    };
    let mut out = current;
    for item in patch {
        if item.get("$patch").and_then(Value::as_str) == Some("replace") {
            let mut replaced = item.clone();
            if let Some(m) = replaced.as_object_mut() {
                m.remove("$patch");
            }
            return patch
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .cloned()
                .chain([replaced])
                .collect();
        }
        let Some(id) = key_of(item, key) else {
            continue;
        };
        let pos = out.iter().position(|o| key_of(o, key) == Some(id));
        match (
            pos,
            strategic_merge(pos.and_then(|p| out.get(p).cloned()), item),
        ) {
            (Some(p), Some(merged)) => {
                if let Some(slot) = out.get_mut(p) {
                    *slot = merged;
                }
            }
            (Some(p), None) => {
                out.remove(p);
            }
            (None, Some(merged)) => out.push(merged),
            (None, None) => {}
        }
    }
    out
}

fn reorder(items: &mut [Value], order: &[Value], field: &str) {
    let rank = |item: &Value| -> usize {
        let found = if item.is_object() {
            merge_keys(field).iter().find_map(|k| {
                let id = key_of(item, k)?;
                order.iter().position(|o| key_of(o, k) == Some(id))
            })
        } else {
            order.iter().position(|o| o == item)
        };
        found.unwrap_or(usize::MAX)
    };
    items.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn smp(target: Value, patch: Value) -> Value {
        apply(
            PatchType::StrategicMerge,
            &target,
            &patch,
            &GroupResource::new("", "services"),
            "x",
        )
        .unwrap_or(Value::Null)
    }

    #[test]
    fn strategic_merge_merges_lists_by_key_and_honours_directives() {
        let svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}],
                         "selector": {"app": "a"}}, "metadata": {"finalizers": ["a"]}});
        let out = smp(
            svc.clone(),
            json!({"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                            "ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "$patch": "delete"}],
                            "selector": {"app": null, "v": "2"}},
                   "metadata": {"finalizers": ["b"]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"ports": [{"port": 80, "name": "http", "targetPort": 8080}],
                            "selector": {"v": "2"}}, "metadata": {"finalizers": ["a", "b"]}})
        );
        let replaced = smp(
            svc,
            json!({"spec": {"$patch": "replace", "type": "ClusterIP"}}),
        );
        assert_eq!(replaced["spec"], json!({"type": "ClusterIP"}));
    }

    #[test]
    fn json_patch_test_failures_are_invalid() {
        let target = json!({"spec": {"a": 1}});
        let patch = json!([{"op": "test", "path": "/spec/a", "value": 2}, {"op": "remove", "path": "/spec/a"}]);
        let err = apply(
            PatchType::Json,
            &target,
            &patch,
            &GroupResource::new("", "x"),
            "x",
        );
        assert!(matches!(err, Err(Error::Invalid { .. })), "{err:?}");
        let bad = apply(
            PatchType::Json,
            &target,
            &json!({"op": "add"}),
            &GroupResource::new("", "x"),
            "x",
        );
        assert!(matches!(bad, Err(Error::BadRequest(_))), "{bad:?}");
    }
}
