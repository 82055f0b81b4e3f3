//! An in-memory Kubernetes API server for rollout-router's end-to-end tests.
//!
//! It serves the Kubernetes REST API over plain HTTP on a loopback port for any registered
//! resource type — built-in kinds and custom resources from CRDs, namespaced or cluster-scoped —
//! with the semantics kube-rs and kubectl rely on: discovery, GET, paginated LIST, WATCH with
//! resourceVersion replay, bookmarks and `410 Gone`, POST/PUT/PATCH/DELETE with kube-apiserver's
//! metadata rules, conflicts, server-side apply field ownership, the status subresource,
//! finalizers and garbage collection. Tests control it directly: seed and read objects, count
//! requests and derive RBAC rules from them, inject faults.
//!
//! See `README.md` next to this crate for what it does not implement.

mod crd;
mod discovery;
mod error;
mod faults;
mod gc;
mod http;
mod kubeconfig;
mod managed;
mod object;
mod patch;
mod registry;
mod requests;
mod resource;
mod selector;
mod server;
mod store;
mod table;
mod watch;

pub use error::{Error, GroupResource};
pub use kubeconfig::CONTEXT;
pub use patch::PatchType;
pub use requests::{LogMark, RbacRule, RequestMatch, RequestRecord, Verb, rbac_rules};
pub use resource::ResourceType;
pub use server::{ServerOptions, TestApiServer};
