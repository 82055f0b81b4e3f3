//! The router interface: a pure translation from desired traffic and current objects to
//! changes, and from objects back to the weights they apply. Routers know their configuration
//! and their objects, not Rollouts and not the API server.

use serde::{Deserialize, Serialize};

use crate::desired::{DesiredTraffic, RolloutRef, RouteSpec, WeightDestination};
use crate::objects::{Change, ObjectKey, ObjectSet};

/// A router for one kind of routing objects (Istio, NGINX, ALB).
pub trait Router {
    /// Short, stable name used in status, Events and metric labels (`istio`, `nginx`, `alb`).
    fn name(&self) -> &'static str;

    /// The objects this router reads for `rollout` (the controller fetches them from its caches;
    /// `plan`/`render` from the input files). Objects rollout-router creates (the NGINX canary
    /// Ingress) are listed too; they may be absent.
    fn object_keys(&self, rollout: &RolloutRef) -> Vec<ObjectKey>;

    /// Router-specific checks of a managed-route step (`setHeaderRoute`/`setMirrorRoute`), run
    /// when the Rollout is validated: what this router cannot express is rejected there, with a
    /// message saying why, rather than silently dropped at reconcile time.
    fn validate_route(&self, route: &RouteSpec) -> Result<(), String> {
        let _ = route;
        Ok(())
    }

    /// The changes that bring `objects` to `desired`, in the order they must be applied. Empty
    /// when everything is in place.
    fn plan(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError>;

    /// The changes that hand the objects back to the user, in the order they must be applied.
    ///
    /// The controller calls it
    /// * (a) when the Rollout has completed or an abort has settled, with the engine's
    ///   `DesiredTraffic` (canary weight 0, the stable hash set, managed routes `Absent`);
    /// * (b) when the Rollout is deleted or drops the plugin block, with a `DesiredTraffic`
    ///   rebuilt from a snapshot: the Rollout reference, `total`, the canary/stable Service
    ///   names, the managed route names (state `Absent`) and EMPTY pod-template hashes.
    ///
    /// What it does, per router: every managed route named in `desired.managed_routes` (and
    /// only those) is removed; the weighted places send `total` (100 %) to stable; objects
    /// rollout-router created (the NGINX canary Ingress) are deleted and its bookkeeping (ALB
    /// annotations) removed. Istio's DestinationRule: with a non-empty
    /// `desired.stable.pod_template_hash` the canary and stable subsets both select it (the
    /// steady state of spec 10 §6.4); with an empty one it is left untouched (in (b) the
    /// controller's journal restores the labels). `hold` is not consulted: the controller
    /// releases only when nothing is in progress.
    ///
    /// Like `plan`, user objects are changed only with guarded patches, and the result is EMPTY
    /// when everything is already released (idempotent). A routing object that does not exist
    /// has nothing to hand back: it is skipped, not an error. Istio may return
    /// [`RouterError::Waiting`] under its DestinationRule delay rule, exactly as `plan` does.
    fn release(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<Change>, RouterError>;

    /// The weights the objects apply now, one entry per weighted place (route, Ingress, action).
    fn observe(
        &self,
        desired: &DesiredTraffic,
        objects: &ObjectSet,
    ) -> Result<Vec<ObservedWeights>, RouterError>;
}

/// The weights one weighted place of a routing object applies, as read back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedWeights {
    pub object: ObjectKey,
    /// Where in the object, e.g. `http[primary]`, `tcp[0]`, `actions.app-root`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    pub canary: WeightDestination,
    pub stable: WeightDestination,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional: Vec<WeightDestination>,
    /// Whether the data plane confirmed the weights: `None` when the router cannot ask it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Managed routes present in this place's object, in object order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<String>,
}

/// A router failure. Messages name the object and the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// A routing object the configuration references does not exist.
    #[error("{key} not found")]
    NotFound { key: ObjectKey },
    /// A routing object does not have what the configuration needs.
    #[error("{key}: {field}: {message}")]
    InvalidObject {
        key: ObjectKey,
        field: String,
        message: String,
    },
    /// The configuration cannot be applied (e.g. an unsupported combination).
    #[error("{field}: {message}")]
    InvalidConfig { field: String, message: String },
    /// An object with the name rollout-router would use exists and is not rollout-router's;
    /// it is never adopted silently.
    #[error("{key} exists and is not managed by this Rollout: {message}")]
    NotOwned { key: ObjectKey, message: String },
    /// A change must wait for the cluster to catch up (e.g. Istio's DestinationRule delay
    /// rule); retry later, nothing is wrong with the input.
    #[error("{message}")]
    Waiting { message: String },
}

impl RouterError {
    /// Bounded reason, for conditions, Event reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "ObjectNotFound",
            Self::InvalidObject { .. } => "InvalidObject",
            Self::InvalidConfig { .. } => "InvalidConfig",
            Self::NotOwned { .. } => "ObjectNotOwned",
            Self::Waiting { .. } => "Waiting",
        }
    }

    /// Whether retrying without a change to the input can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Waiting { .. })
    }

    pub fn invalid_object(
        key: &ObjectKey,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::InvalidObject {
            key: key.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}
