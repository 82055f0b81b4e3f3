//! rollout-router: the Rollout model, validation, the desired-traffic engine, the offline
//! `plan`/`render` simulation and the command line. The routers live in `routers/*`.

pub mod argo_plugin;
pub mod cli;
pub mod controller;
pub mod crds;
pub mod engine;
pub mod input;
pub mod journal;
pub mod manifests;
pub mod reconcile;
pub mod rollout;
pub mod routers;
pub mod simulate;
pub mod traffic;
pub mod validation;
