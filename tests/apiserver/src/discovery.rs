//! Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`, `/version`) in
//! the unaggregated v1 format, and the slice of OpenAPI v3 kubectl reads to learn that the server
//! validates fields itself (so `kubectl apply` needs no `--validate=false`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use crate::resource::{ResourceType, Resources};

/// The Kubernetes version the server claims to be.
pub(crate) const KUBE_MAJOR: &str = "1";
pub(crate) const KUBE_MINOR: &str = "33";

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub(crate) fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0-test-apiserver"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({ "groupVersion": format!("{group}/{v}"), "version": v });
    let mut doc = json!({
        "name": group,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
    });
    if let Some(first) = versions.first() {
        doc["preferredVersion"] = gv(first);
    }
    doc
}

pub(crate) fn group_list(resources: &Resources) -> Value {
    let groups: Vec<Value> = resources
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(&g, &vs))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

pub(crate) fn group(resources: &Resources, group: &str) -> Option<Value> {
    let (g, vs) = resources
        .groups()
        .into_iter()
        .find(|(g, _)| g == group && !g.is_empty())?;
    let mut doc = group_doc(&g, &vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_entries(rt: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": VERBS,
    });
    if !rt.short_names.is_empty() {
        main["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        main["categories"] = json!(rt.categories);
    }
    let mut out = vec![main];
    if rt.status_subresource {
        out.push(json!({
            "name": format!("{}/status", rt.plural),
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    out
}

/// `APIResourceList` of a group version; `None` when nothing is served there (core `v1` always is).
pub(crate) fn resource_list(resources: &Resources, group: &str, version: &str) -> Option<Value> {
    let types = resources.in_group_version(group, version);
    if types.is_empty() && !(group.is_empty() && version == "v1") {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let entries: Vec<Value> = types.into_iter().flat_map(resource_entries).collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: one entry per served group version.
pub(crate) fn openapi_root(resources: &Resources) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, vs) in resources.groups() {
        for v in vs {
            let path = gv_path(&g, &v);
            let mut h = DefaultHasher::new();
            if let Some(doc) = openapi_group_version(resources, &g, &v) {
                doc.to_string().hash(&mut h);
            }
            paths.insert(
                path.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", h.finish()) }),
            );
        }
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/<gv>`: operations without schemas. Each PATCH carries the GVK extension and the
/// `fieldValidation` parameter (how kubectl decides the server validates fields), and no
/// request body, so kubectl does not try to build strategic merge patches from OpenAPI.
pub(crate) fn openapi_group_version(
    resources: &Resources,
    group: &str,
    version: &str,
) -> Option<Value> {
    let types = resources.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    for rt in types {
        let gvk = json!({ "group": rt.group, "version": version, "kind": rt.kind });
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", rt.kind),
                "parameters": [
                    { "name": "fieldValidation", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
                    { "name": "fieldManager", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
                    { "name": "dryRun", "in": "query", "schema": { "type": "string", "uniqueItems": true } },
                ],
                "responses": { "200": { "description": "OK" } },
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        let base = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", rt.plural)
        } else {
            format!("{prefix}/{}", rt.plural)
        };
        paths.insert(
            base.clone(),
            json!({ "post": op("post"), "get": op("list") }),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({ "get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete") }),
        );
        if rt.status_subresource {
            paths.insert(
                format!("{base}/{{name}}/status"),
                json!({ "get": op("get"), "put": op("put"), "patch": op("patch") }),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0") },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}
