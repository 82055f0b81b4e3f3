//! The crate's one error type: API errors (rendered as `Status` objects with kube-apiserver's
//! `reason` and `code`) and the setup errors of the test controls.

use std::fmt;
use std::path::PathBuf;

use serde_json::{Value, json};

/// A resource type as kube-apiserver names it in errors: `rollouts.argoproj.io`, `services`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// A group/resource pair.
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// Everything that can fail, in the server and in its test controls.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404 for a named object.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        resource: GroupResource,
        name: String,
    },
    /// 404 for a path the server does not serve.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// 409 on create of an existing name.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        resource: GroupResource,
        name: String,
    },
    /// 409 on a stale `resourceVersion` or a failed precondition.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        resource: GroupResource,
        name: String,
        message: String,
    },
    /// 409 from server-side apply: the apply would change fields other managers own.
    #[error("{message}")]
    ApplyConflict {
        message: String,
        /// `(field, "conflict with \"owner\"")`, the `FieldManagerConflict` causes.
        causes: Vec<(String, String)>,
    },
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 422 (a failed JSON Patch `test`, a missing name, ...).
    #[error("{message}")]
    Invalid {
        resource: GroupResource,
        name: String,
        message: String,
    },
    /// 403 (create in a terminating namespace).
    #[error("{message}")]
    Forbidden {
        resource: GroupResource,
        name: String,
        message: String,
    },
    /// 405.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 415.
    #[error("the body of the request was in an unknown format - accepted media types include: {0}")]
    UnsupportedMediaType(String),
    /// 410 with reason `Expired`: a resourceVersion or continue token older than the history.
    #[error("{0}")]
    Expired(String),
    /// 504 with reason `Timeout` (a resourceVersion from the future).
    #[error("Timeout: {0}")]
    Timeout(String),
    /// 500.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// A failure injected by a test through [`crate::TestApiServer::fail_next`].
    #[error("{message}")]
    Injected { code: u16, message: String },

    /// Reading a file given to a test control or the binary.
    #[error("cannot read {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing a kubeconfig.
    #[error("cannot write {path}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// YAML that does not parse.
    #[error("cannot parse YAML in {path}")]
    ParseYaml {
        path: PathBuf,
        #[source]
        source: serde_saphyr::Error,
    },
    /// YAML that cannot be written.
    #[error("cannot render YAML")]
    RenderYaml(#[source] serde_saphyr::SerializeError),
    /// A value that does not (de)serialize as expected.
    #[error("cannot convert {what} to or from JSON")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A CustomResourceDefinition the server cannot serve.
    #[error("invalid CustomResourceDefinition {name}: {reason}")]
    InvalidCrd { name: String, reason: String },
    /// An object whose apiVersion/kind is not registered.
    #[error("no resource is registered for {api_version} {kind}")]
    UnknownKind { api_version: String, kind: String },
    /// Binding the listening socket.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Building a kube client for the server.
    #[error("cannot build a kube client")]
    Client(#[source] kube::Error),
    /// A condition a test waited for did not hold within its deadline.
    #[error("timed out after {within:?} waiting for {what}")]
    WaitTimeout {
        what: String,
        within: std::time::Duration,
    },
}

impl Error {
    /// The HTTP status code kube-apiserver answers with.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } | Self::NoRoute | Self::UnknownKind { .. } => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } | Self::ApplyConflict { .. } => 409,
            Self::BadRequest(_) => 400,
            Self::Invalid { .. } | Self::InvalidCrd { .. } => 422,
            Self::Forbidden { .. } => 403,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedMediaType(_) => 415,
            Self::Expired(_) => 410,
            Self::Timeout(_) => 504,
            Self::Injected { code, .. } => *code,
            Self::Internal(_)
            | Self::ReadFile { .. }
            | Self::WriteFile { .. }
            | Self::ParseYaml { .. }
            | Self::RenderYaml(_)
            | Self::Json { .. }
            | Self::Bind { .. }
            | Self::Client(_)
            | Self::WaitTimeout { .. } => 500,
        }
    }

    /// The `Status.reason` kube-apiserver uses for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } | Self::NoRoute | Self::UnknownKind { .. } => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } | Self::ApplyConflict { .. } => "Conflict",
            Self::BadRequest(_) => "BadRequest",
            Self::Invalid { .. } | Self::InvalidCrd { .. } => "Invalid",
            Self::Forbidden { .. } => "Forbidden",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Expired(_) => "Expired",
            Self::Timeout(_) => "Timeout",
            Self::Injected { code, .. } => reason_for_code(*code),
            _ => "InternalError",
        }
    }

    /// The error as a `meta.k8s.io/v1` `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name, .. }
            | Self::Invalid { resource, name, .. }
            | Self::Forbidden { resource, name, .. } => {
                let mut d = json!({ "name": name, "kind": resource.resource });
                if !resource.group.is_empty() {
                    d["group"] = json!(resource.group);
                }
                Some(d)
            }
            Self::ApplyConflict { causes, .. } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|(field, message)| {
                        json!({"type": "FieldManagerConflict", "message": message, "field": field})
                    })
                    .collect();
                Some(json!({ "causes": causes }))
            }
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        if matches!(self.code(), 429 | 504) {
            status["details"] = json!({ "retryAfterSeconds": 1 });
        }
        status
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            what: what.into(),
            source,
        }
    }
}

/// The reason kube-apiserver's `NewGenericServerResponse` gives a bare status code.
pub(crate) fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}
