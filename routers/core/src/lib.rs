//! What every rollout-router router shares: the desired traffic state, the router configuration
//! carried in the Rollout, the router interface, routing objects and guarded JSON patches.
//!
//! This crate has no `kube` and no I/O on purpose (see ARCHITECTURE.md, "Routers are pure
//! translation libraries"): the controller and the offline `plan`/`render` commands drive the
//! same router code through [`Router`].

pub mod config;
pub mod desired;
pub mod matches;
pub mod objects;
pub mod patch;
pub mod router;
pub mod serde_util;

pub use config::{
    AlbConfig, IstioConfig, IstioDestinationRule, IstioVirtualService, NginxConfig, PluginConfig,
    StickinessConfig, TcpRoute, TlsRoute, ValidationError,
};
pub use desired::{
    DesiredTraffic, Hold, HoldReason, ManagedRoute, PingPongServices, ReplicaSetAvailability,
    RolloutRef, RouteSpec, RouteState, WeightCase, WeightDestination,
};
pub use matches::{HeaderRoutingMatch, RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch};
pub use objects::{ApplyError, Change, ObjectKey, ObjectSet};
pub use router::{ObservedWeights, Router, RouterError};

// Routers build patches with these types; re-exported so they need no direct dependency.
pub use json_patch;
