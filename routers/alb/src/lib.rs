//! ALB traffic translation: turns a `DesiredTraffic` plus the user's AWS Load Balancer Controller
//! Ingresses into guarded JSON patches of their `actions.*`/`conditions.*` annotations and
//! header-route paths, and reads the applied weights back (spec 30). Pure: no I/O.
//!
//! Entry point: [`AlbRouter::new`], used through [`rollout_router_core::Router`].

mod action;
mod bookkeeping;
mod condition;
mod edit;
mod go_json;
mod ingress;
mod observe;
mod plan;
mod release;
mod router;
mod verify;

pub use action::{ForwardAction, Stickiness, TargetGroup};
pub use bookkeeping::{LEGACY_MANAGED_ACTIONS, MANAGED_ANNOTATIONS, ManagedAnnotations};
pub use condition::conditions_annotation;
pub use ingress::{GROUP, KIND, ROUTE_PATH, ROUTE_PATH_TYPE, USE_ANNOTATION};
pub use plan::ALB_TOTAL_WEIGHT;
pub use router::AlbRouter;
pub use verify::{
    ExpectedTargetGroup, TARGET_GROUP_RESOURCE_TAG, TargetGroupRole, TargetGroupVerifier,
    VerificationRequest, record_verification, resource_tag_value,
};
