//! The request log: every request the server answered, with its verb, resource, body and status,
//! so tests can assert write counts ("no write in steady state", "one PATCH per changed object")
//! and derive the RBAC rules a client needs from what it did.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

/// Kubernetes API verbs, as in audit logs and RBAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    /// Whether the verb changes state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Update | Self::Patch | Self::Delete | Self::DeleteCollection
        )
    }

    /// The lowercase name (`deletecollection`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One answered request, described as kube-apiserver's authorizer sees it (`RequestInfo`): the
/// RBAC verb, API group, resource, subresource, namespace and name, plus the answer's status.
/// Discovery and other non-resource requests have `resource: None` and verb `Get`.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// Position in the log, from 0.
    pub seq: usize,
    pub verb: Verb,
    pub method: String,
    pub path: String,
    pub query: String,
    pub group: Option<String>,
    pub version: Option<String>,
    /// Plural resource name.
    pub resource: Option<String>,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `Content-Type` of the body (tells the patch type).
    pub content_type: Option<String>,
    /// The request body, parsed as JSON (or YAML) when it is.
    pub body: Option<Value>,
    /// HTTP status of the answer (200 for a watch that was opened).
    pub status: u16,
    /// Answered by an injected fault rather than by the server's logic.
    pub injected: bool,
    /// When the request was logged: once its answer was ready (a write stored, its watch
    /// events queued), just before the response is sent. For latency figures in benchmarks.
    pub at: Instant,
    /// Who sent it, as token authentication names them: the bearer token of the
    /// `Authorization` header, or `None` for an anonymous request. Tests give each client its own
    /// token ([`crate::TestApiServer::client_as`]) to tell, say, the controller's requests from the
    /// test's own.
    pub user: Option<String>,
}

impl RequestRecord {
    /// `resource` or `resource/subresource`.
    pub fn resource_path(&self) -> String {
        match (&self.resource, &self.subresource) {
            (Some(r), Some(s)) => format!("{r}/{s}"),
            (Some(r), None) => r.clone(),
            _ => String::new(),
        }
    }
}

impl fmt::Display for RequestRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {}", self.seq, self.method, self.path)?;
        if !self.query.is_empty() {
            write!(f, "?{}", self.query)?;
        }
        write!(f, " -> {}", self.status)?;
        if self.injected {
            f.write_str(" (injected)")?;
        }
        Ok(())
    }
}

/// A position in the log, to look only at later requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogMark(pub(crate) usize);

/// Which requests a fault or a count applies to; unset fields match anything.
///
/// ```
/// use test_apiserver::{RequestMatch, Verb};
/// let patches_to_vs = RequestMatch::any().verb(Verb::Patch).resource("virtualservices");
/// let status_writes = RequestMatch::writes().resource("rollouts").subresource("status");
/// # let _ = (patches_to_vs, status_writes);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMatch {
    verbs: Option<Vec<Verb>>,
    group: Option<String>,
    resource: Option<String>,
    subresource: Option<Option<String>>,
    namespace: Option<String>,
    name: Option<String>,
    user: Option<String>,
}

impl RequestMatch {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches the writes: create, update, patch, delete, deletecollection.
    pub fn writes() -> Self {
        Self {
            verbs: Some(vec![
                Verb::Create,
                Verb::Update,
                Verb::Patch,
                Verb::Delete,
                Verb::DeleteCollection,
            ]),
            ..Self::default()
        }
    }

    /// Only this verb.
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verbs = Some(vec![verb]);
        self
    }

    /// Only this API group (`""` for core).
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }

    /// Only this plural resource name.
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    /// Only this subresource (`"status"`).
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(Some(subresource.to_string()));
        self
    }

    /// Only the main resource, not a subresource.
    pub fn main_resource(mut self) -> Self {
        self.subresource = Some(None);
        self
    }

    /// Only this namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Only this object name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Only requests sent by this user (see [`RequestRecord::user`]).
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_string());
        self
    }

    /// Whether a request matches.
    pub fn matches(&self, r: &RequestRecord) -> bool {
        fn field(want: &Option<String>, have: &Option<String>) -> bool {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        }
        self.verbs.as_ref().is_none_or(|vs| vs.contains(&r.verb))
            && field(&self.group, &r.group)
            && field(&self.resource, &r.resource)
            && self
                .subresource
                .as_ref()
                .is_none_or(|s| s == &r.subresource)
            && field(&self.namespace, &r.namespace)
            && field(&self.name, &r.name)
            && field(&self.user, &r.user)
    }
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    records: Vec<RequestRecord>,
}

impl RequestLog {
    pub(crate) fn push(&mut self, mut record: RequestRecord) -> usize {
        let seq = self.records.len();
        record.seq = seq;
        record.at = Instant::now();
        self.records.push(record);
        seq
    }

    /// Sets the status of a request logged before its answer was ready.
    pub(crate) fn answered(&mut self, seq: usize, status: u16) {
        if let Some(r) = self.records.get_mut(seq) {
            r.status = status;
        }
    }

    pub(crate) fn mark(&self) -> LogMark {
        LogMark(self.records.len())
    }

    pub(crate) fn since(&self, mark: LogMark) -> Vec<RequestRecord> {
        self.records
            .get(mark.0..)
            .map(<[RequestRecord]>::to_vec)
            .unwrap_or_default()
    }

    pub(crate) fn counts(&self, mark: LogMark) -> BTreeMap<(Verb, String), usize> {
        let mut out = BTreeMap::new();
        for r in self.records.get(mark.0..).unwrap_or_default() {
            if r.resource.is_some() {
                *out.entry((r.verb, r.resource_path())).or_insert(0) += 1;
            }
        }
        out
    }
}

/// One RBAC rule: the verbs a client used on a resource (or `resource/subresource`) of a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RbacRule {
    /// API group, `""` for core.
    pub group: String,
    /// `leases`, or `rollouts/status` for a subresource, as RBAC names it.
    pub resource: String,
    /// In RBAC's usual order (get, list, watch, create, update, patch, delete, deletecollection).
    pub verbs: BTreeSet<Verb>,
}

impl RbacRule {
    /// The verbs as RBAC spells them.
    pub fn verb_names(&self) -> Vec<&'static str> {
        self.verbs.iter().map(|v| v.as_str()).collect()
    }

    /// The rule as a `rbac.authorization.k8s.io/v1` `PolicyRule` (for a ClusterRole or Role).
    pub fn to_policy_rule(&self) -> PolicyRule {
        PolicyRule {
            api_groups: Some(vec![self.group.clone()]),
            resources: Some(vec![self.resource.clone()]),
            verbs: self.verb_names().into_iter().map(str::to_string).collect(),
            ..PolicyRule::default()
        }
    }
}

impl fmt::Display for RbacRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "\"\""
        } else {
            &self.group
        };
        write!(
            f,
            "{group} {}: {}",
            self.resource,
            self.verb_names().join(",")
        )
    }
}

/// Folds requests into RBAC rules, one per group and `resource[/subresource]`, sorted by group
/// then resource. Non-resource requests (discovery, `/version`) are left out: RBAC grants those
/// through `nonResourceURLs`, which the default `system:discovery` role already covers. Every
/// request counts, whatever its answer: a denied or failed request was still attempted.
pub fn rbac_rules<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> Vec<RbacRule> {
    let mut rules: BTreeMap<(String, String), BTreeSet<Verb>> = BTreeMap::new();
    for r in records {
        let Some(resource) = r.resource.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let resource = match &r.subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.clone(),
        };
        let group = r.group.clone().unwrap_or_default();
        rules.entry((group, resource)).or_default().insert(r.verb);
    }
    rules
        .into_iter()
        .map(|((group, resource), verbs)| RbacRule {
            group,
            resource,
            verbs,
        })
        .collect()
}
