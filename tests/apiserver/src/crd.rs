//! What apiextensions-apiserver does with a CustomResourceDefinition: turn it into a served
//! resource type and report it `Established`. Schemas are not enforced (see the README).

use std::path::Path;

use serde_json::{Value, json};

use crate::error::Error;
use crate::object;
use crate::resource::ResourceType;

pub(crate) const CRD_GROUP: &str = "apiextensions.k8s.io";
pub(crate) const CRD_RESOURCE: &str = "customresourcedefinitions";

/// The resource type a CRD (as JSON) defines.
pub(crate) fn resource_type(crd: &Value) -> Result<ResourceType, Error> {
    let name = object::name(crd).unwrap_or_default().to_string();
    let invalid = |reason: &str| Error::InvalidCrd {
        name: name.clone(),
        reason: reason.to_string(),
    };
    let spec = crd.get("spec").ok_or_else(|| invalid("spec is required"))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let group = text(spec.get("group")).ok_or_else(|| invalid("spec.group is required"))?;
    let names = spec
        .get("names")
        .ok_or_else(|| invalid("spec.names is required"))?;
    let kind = text(names.get("kind")).ok_or_else(|| invalid("spec.names.kind is required"))?;
    let plural =
        text(names.get("plural")).ok_or_else(|| invalid("spec.names.plural is required"))?;
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            "metadata.name must be spec.names.plural + \".\" + spec.group",
        ));
    }
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = match spec.get("scope").and_then(Value::as_str) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err(invalid("spec.scope must be Namespaced or Cluster")),
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("spec.versions is required"))?;
    let mut served = Vec::new();
    let mut storage_has_status = false;
    for v in versions {
        let vname =
            text(v.get("name")).ok_or_else(|| invalid("spec.versions[].name is required"))?;
        let is_storage = v.get("storage").and_then(Value::as_bool).unwrap_or(false);
        if is_storage {
            storage_has_status = v.pointer("/subresources/status").is_some();
        }
        if v.get("served").and_then(Value::as_bool).unwrap_or(false) {
            if is_storage {
                served.insert(0, vname);
            } else {
                served.push(vname);
            }
        }
    }
    if served.is_empty() {
        return Err(invalid("no served version"));
    }
    Ok(ResourceType {
        group,
        versions: served,
        list_kind: text(names.get("listKind")).unwrap_or_else(|| format!("{kind}List")),
        singular: text(names.get("singular")).unwrap_or_else(|| kind.to_lowercase()),
        kind,
        plural,
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        namespaced,
        status_subresource: storage_has_status,
        generation: true,
        custom: true,
    })
}

/// The status apiextensions-apiserver reports once it serves the CRD.
pub(crate) fn established_status(crd: &Value) -> Value {
    let now = object::now_rfc3339();
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let condition = |type_: &str, reason: &str, message: &str| {
        json!({
            "type": type_, "status": "True", "lastTransitionTime": now,
            "reason": reason, "message": message,
        })
    };
    json!({
        "acceptedNames": names,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}

/// Every document of a YAML file (empty documents skipped).
pub(crate) fn read_yaml_documents(path: &Path) -> Result<Vec<Value>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|source| Error::ParseYaml {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}
