//! The seam for verifying target-group weights against AWS (spec 30 §6). This crate does no I/O:
//! it describes what to check ([`VerificationRequest`]); an implementation of
//! [`TargetGroupVerifier`] in the controller asks ELBv2, and [`record_verification`] folds the
//! answer into the observed weights. Until then `verified` stays `None`.
//!
//! Differences from Argo, for the implementer: the stable target group is part of the request
//! (Argo never checks it, spec 40 #55), additional destinations are expected once per Ingress
//! (Argo expects them once in total, so multi-Ingress experiments never verify), and an Ingress
//! without a load balancer host name cannot be verified (`false`).

use std::future::Future;

use rollout_router_core::{ObjectKey, ObservedWeights};

/// Tag the AWS Load Balancer Controller puts on the target groups it creates; its value is
/// `<namespace>/<ingress>-<service>:<port>` (Argo flag `--alb-tag-key-resource-id`).
pub const TARGET_GROUP_RESOURCE_TAG: &str = "ingress.k8s.aws/resource";

/// The role of a target group in the weighted action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetGroupRole {
    Canary,
    Additional,
    Stable,
}

/// One target group and the weight the weighted listener rule must forward to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedTargetGroup {
    pub role: TargetGroupRole,
    pub service_name: String,
    /// Value of [`TARGET_GROUP_RESOURCE_TAG`] that identifies the target group.
    pub resource_tag_value: String,
    pub weight: i64,
}

/// What to check for one Ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationRequest {
    pub ingress: ObjectKey,
    /// `status.loadBalancer.ingress[].hostname`: the load balancers' DNS names.
    pub load_balancer_hostnames: Vec<String>,
    /// In action order: canary, additional destinations, stable.
    pub target_groups: Vec<ExpectedTargetGroup>,
}

/// Asks the data plane whether an Ingress's target groups carry the expected weights. Header
/// routes forward 100 % to the canary target group in their own listener rules; an
/// implementation must look at the rule of the weighted action only (Argo lets the last rule
/// read win, spec 40 #55).
pub trait TargetGroupVerifier {
    type Error: std::error::Error + Send + Sync + 'static;

    fn verify(
        &self,
        request: &VerificationRequest,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// The resource tag value of the target group LBC creates for `service` behind `ingress`.
pub fn resource_tag_value(ingress: &ObjectKey, service: &str, port: i32) -> String {
    format!("{}/{}-{service}:{port}", ingress.namespace, ingress.name)
}

/// Sets `verified` on the observed weights of `ingress`.
pub fn record_verification(observed: &mut [ObservedWeights], ingress: &ObjectKey, verified: bool) {
    for o in observed.iter_mut().filter(|o| &o.object == ingress) {
        o.verified = Some(verified);
    }
}
