//! The resource types the server serves (what kube-apiserver learns from its built-in scheme and
//! from CustomResourceDefinitions), and the catalogue discovery and routing look them up in.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::error::GroupResource;

/// One resource type: a kind served under one group at one or more versions.
///
/// Objects are stored once per type, whatever version they were written at; reads at another
/// served version only change `apiVersion` (the CRD conversion strategy `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// Served versions; the first is the storage version.
    pub versions: Vec<String>,
    /// `Rollout`.
    pub kind: String,
    /// `RolloutList`.
    pub list_kind: String,
    /// `rollouts`.
    pub plural: String,
    /// `rollout`.
    pub singular: String,
    /// `ro`.
    pub short_names: Vec<String>,
    /// `all`, `istio-io`, ...
    pub categories: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether the type has a `/status` subresource (then writes to the main resource ignore
    /// `status` and writes to `/status` change nothing else).
    pub status_subresource: bool,
    /// Whether the server maintains `metadata.generation` (all custom resources; built-ins whose
    /// registry strategy sets it, such as ReplicaSets and Ingresses).
    pub generation: bool,
    /// A custom resource: no strategic merge patch, `resourceVersion` required on PUT.
    pub custom: bool,
}

impl ResourceType {
    fn new(api_version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        let (group, version) = split_api_version(api_version);
        Self {
            group: group.to_string(),
            versions: vec![version.to_string()],
            kind: kind.to_string(),
            list_kind: format!("{kind}List"),
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            short_names: Vec::new(),
            categories: Vec::new(),
            namespaced,
            status_subresource: false,
            generation: false,
            custom: false,
        }
    }

    /// A namespaced built-in type, e.g. `ResourceType::namespaced("v1", "ConfigMap", "configmaps")`.
    pub fn namespaced(api_version: &str, kind: &str, plural: &str) -> Self {
        Self::new(api_version, kind, plural, true)
    }

    /// A cluster-scoped built-in type.
    pub fn cluster_scoped(api_version: &str, kind: &str, plural: &str) -> Self {
        Self::new(api_version, kind, plural, false)
    }

    /// Adds the `/status` subresource.
    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// Maintains `metadata.generation`.
    pub fn with_generation(mut self) -> Self {
        self.generation = true;
        self
    }

    /// Adds short names (`kubectl get ro`).
    pub fn with_short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| (*s).to_string()).collect();
        self
    }

    /// Serves more versions after the storage version.
    pub fn with_versions(mut self, more: &[&str]) -> Self {
        self.versions.extend(more.iter().map(|s| (*s).to_string()));
        self
    }

    /// Marks the type as a custom resource (see [`ResourceType::custom`]).
    pub fn custom(mut self) -> Self {
        self.custom = true;
        self.generation = true;
        self
    }

    /// The group and plural name.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    /// `apiVersion` at `version`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The version clients see when they do not ask for one (the highest-priority served version).
    pub fn preferred_version(&self) -> &str {
        let mut versions: Vec<&String> = self.versions.iter().collect();
        versions.sort_by(|a, b| compare_versions(a, b));
        versions.first().map_or("", |v| v.as_str())
    }

    pub(crate) fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// The built-in kinds the controller touches, as kube-apiserver 1.33 serves them.
    pub fn builtins() -> Vec<ResourceType> {
        vec![
            Self::cluster_scoped("v1", "Namespace", "namespaces")
                .with_status()
                .with_short_names(&["ns"]),
            Self::namespaced("v1", "Service", "services")
                .with_status()
                .with_short_names(&["svc"]),
            Self::namespaced("v1", "ConfigMap", "configmaps").with_short_names(&["cm"]),
            Self::namespaced("v1", "Secret", "secrets"),
            Self::namespaced("v1", "Pod", "pods")
                .with_status()
                .with_short_names(&["po"]),
            Self::namespaced("v1", "Event", "events").with_short_names(&["ev"]),
            Self::namespaced("apps/v1", "ReplicaSet", "replicasets")
                .with_status()
                .with_generation()
                .with_short_names(&["rs"]),
            Self::namespaced("apps/v1", "Deployment", "deployments")
                .with_status()
                .with_generation()
                .with_short_names(&["deploy"]),
            Self::namespaced("networking.k8s.io/v1", "Ingress", "ingresses")
                .with_status()
                .with_generation()
                .with_short_names(&["ing"]),
            Self::namespaced("coordination.k8s.io/v1", "Lease", "leases"),
            Self::namespaced("events.k8s.io/v1", "Event", "events").with_short_names(&["ev"]),
            Self::cluster_scoped(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
            )
            .with_status()
            .with_generation()
            .with_short_names(&["crd", "crds"]),
        ]
    }
}

/// `("argoproj.io", "v1alpha1")` from `argoproj.io/v1alpha1`, `("", "v1")` from `v1`.
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// kube-apiserver's version priority: GA before beta before alpha, higher numbers first, then
/// anything not shaped like a Kubernetes version, alphabetically.
pub(crate) fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((0, major, 0));
        }
        let (stage, n) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n)
        } else {
            return None;
        };
        Some((stage, major, n.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((sa, ma, na)), Some((sb, mb, nb))) => sa.cmp(&sb).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// All registered types, keyed by group and plural.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    types: BTreeMap<GroupResource, ResourceType>,
}

impl Resources {
    pub(crate) fn register(&mut self, rt: ResourceType) {
        self.types.insert(rt.group_resource(), rt);
    }

    pub(crate) fn unregister(&mut self, gr: &GroupResource) {
        self.types.remove(gr);
    }

    pub(crate) fn get(&self, gr: &GroupResource) -> Option<&ResourceType> {
        self.types.get(gr)
    }

    /// The type served at `group/version` under `plural`.
    pub(crate) fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .get(&GroupResource::new(group, plural))
            .filter(|rt| rt.serves(version))
    }

    /// The type of an object, from its `apiVersion` and `kind`.
    pub(crate) fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .values()
            .find(|rt| rt.group == group && rt.kind == kind && rt.serves(version))
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }

    /// Groups (core first, then alphabetically) with their versions in priority order.
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rt in self.types.values() {
            let versions = groups.entry(rt.group.clone()).or_default();
            for v in &rt.versions {
                if !versions.contains(v) {
                    versions.push(v.clone());
                }
            }
        }
        groups
            .into_iter()
            .map(|(g, mut vs)| {
                vs.sort_by(|a, b| compare_versions(a, b));
                (g, vs)
            })
            .collect()
    }

    /// The types served at `group/version`.
    pub(crate) fn in_group_version(&self, group: &str, version: &str) -> Vec<&ResourceType> {
        self.types
            .values()
            .filter(|rt| rt.group == group && rt.serves(version))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kube_apiserver() {
        let mut v = vec![
            "v1alpha3", "foo", "v1beta1", "v2", "v1", "v10beta2", "v1alpha1",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            [
                "v2", "v1", "v10beta2", "v1beta1", "v1alpha3", "v1alpha1", "foo"
            ]
        );
    }

    #[test]
    fn api_versions_split() {
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert_eq!(
            split_api_version("argoproj.io/v1alpha1"),
            ("argoproj.io", "v1alpha1")
        );
    }
}
