//! Object references: VirtualService `name` / `name.namespace` parsing (spec 10 §1) and the
//! keys of the objects the router reads.

use rollout_router_core::ObjectKey;

/// API group of VirtualService and DestinationRule.
pub const GROUP: &str = "networking.istio.io";
pub const VIRTUAL_SERVICE_KIND: &str = "VirtualService";
pub const DESTINATION_RULE_KIND: &str = "DestinationRule";

/// Suffix Argo strips from VirtualService references.
const CLUSTER_LOCAL_SUFFIX: &str = ".cluster.local";

/// Resolves a VirtualService reference: a trailing `.cluster.local` is stripped; with at least
/// one `.` left the last part is the namespace and the rest the name (so a name containing dots
/// must be written `name.with.dots.namespace`); otherwise the Rollout's namespace applies.
/// `name.namespace.svc.cluster.local` is not understood (it resolves to namespace `svc`), exactly
/// as in Argo (#4766).
pub fn virtual_service_key(reference: &str, rollout_namespace: &str) -> ObjectKey {
    let trimmed = reference
        .strip_suffix(CLUSTER_LOCAL_SUFFIX)
        .unwrap_or(reference);
    let (name, namespace) = match trimmed.rsplit_once('.') {
        Some((name, namespace)) => (name, namespace),
        None => (trimmed, rollout_namespace),
    };
    ObjectKey::new(GROUP, VIRTUAL_SERVICE_KIND, namespace, name)
}

/// The DestinationRule is always in the Rollout's namespace.
pub fn destination_rule_key(name: &str, rollout_namespace: &str) -> ObjectKey {
    ObjectKey::new(GROUP, DESTINATION_RULE_KIND, rollout_namespace, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_service_references() {
        let cases = [
            ("vsvc", "ro-ns", "vsvc"),
            ("vsvc.other", "other", "vsvc"),
            ("vsvc.other.cluster.local", "other", "vsvc"),
            ("name.with.dots.team", "team", "name.with.dots"),
            // Not understood, as in Argo: the namespace becomes "svc".
            ("vsvc.other.svc.cluster.local", "svc", "vsvc.other"),
        ];
        for (reference, namespace, name) in cases {
            assert_eq!(
                virtual_service_key(reference, "ro-ns"),
                ObjectKey::new(GROUP, VIRTUAL_SERVICE_KIND, namespace, name),
                "{reference}"
            );
        }
        assert_eq!(
            destination_rule_key("dr", "ro-ns"),
            ObjectKey::new(GROUP, DESTINATION_RULE_KIND, "ro-ns", "dr")
        );
    }
}
