//! End-to-end tests of the in-memory API server, driven by a real `kube::Client` (and, where
//! installed, the real `kubectl`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected errors"
)]

mod apply;
mod binary;
mod builtins;
mod common;
mod crud;
mod faults;
mod gc;
mod kubectl;
mod leader;
mod patch_status;
mod watch;
