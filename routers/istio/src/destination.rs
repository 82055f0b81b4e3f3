//! Route destinations: how a destination is read, and which role (canary, stable, experiment,
//! foreign) it plays for a Rollout. Implements the host comparison rule of spec 10 §2.1 and the
//! classification order of §4.

use serde_json::Value;

use crate::json::{str_field, u64_field};

/// The fields of one `route[]` entry (`HTTPRouteDestination` / `RouteDestination`) that
/// rollout-router reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DestinationView<'a> {
    /// `destination.host` as written (possibly an FQDN).
    pub host: &'a str,
    /// `destination.subset`; empty when absent.
    pub subset: &'a str,
    /// `destination.port.number`.
    pub port: Option<u64>,
    /// `weight`; `None` when absent (Istio reads it as 0 unless the destination is alone).
    pub weight: Option<i64>,
}

impl<'a> DestinationView<'a> {
    pub fn of(entry: &'a Value) -> Self {
        let destination = entry.get("destination");
        let field = |key| destination.and_then(|d| str_field(d, key)).unwrap_or("");
        Self {
            host: field("host"),
            subset: field("subset"),
            port: destination
                .and_then(|d| d.get("port"))
                .and_then(|p| u64_field(p, "number")),
            weight: entry.get("weight").and_then(Value::as_i64),
        }
    }

    /// The weight as Argo compares it: absent counts as 0.
    pub fn weight_or_zero(&self) -> i64 {
        self.weight.unwrap_or(0)
    }

    /// The host as compared with Service names (§2.1).
    pub fn short_host(&self) -> &'a str {
        short_host(self.host)
    }
}

/// The text before the first `.` of a destination host: `stable.ns.svc.cluster.local` →
/// `stable`. A host starting with `.` yields "" and is ignored by the weight algorithm.
pub(crate) fn short_host(host: &str) -> &str {
    host.split('.').next().unwrap_or_default()
}

/// What a destination is to the Rollout (spec 10 §4, tested in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Host compares as empty: never touched.
    Ignored,
    Canary,
    Stable,
    /// An experiment destination: index into [`Targets::additional`].
    Additional(usize),
    /// A subset listed in `additionalSubsetNames`: its weight is the user's.
    AdditionalSubset,
    /// Anything else: deleted when it carries weight (this is how experiment destinations
    /// disappear once the experiment has ended).
    Foreign,
}

/// Who the canary and stable destinations are, for one Rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Targets {
    /// canarySvc / stableSvc (spec 10 §1: the ping-pong pair when both Services are empty).
    pub canary_service: String,
    pub stable_service: String,
    /// Subset names; empty in host-level mode.
    pub canary_subset: String,
    pub stable_subset: String,
    pub additional_subsets: Vec<String>,
    /// Experiment destinations `(service name, weight)`, deduplicated by service name (the
    /// later one wins, as in Argo) and without empty names (edge case 24: a destination with an
    /// empty host would black-hole its traffic).
    pub additional: Vec<(String, i64)>,
}

impl Targets {
    pub fn role(&self, d: &DestinationView<'_>) -> Role {
        let host = d.short_host();
        if host.is_empty() {
            return Role::Ignored;
        }
        let subset_is = |name: &str| !d.subset.is_empty() && d.subset == name;
        if host == self.canary_service || subset_is(&self.canary_subset) {
            Role::Canary
        } else if host == self.stable_service || subset_is(&self.stable_subset) {
            Role::Stable
        } else if let Some(i) = self.additional.iter().position(|(s, _)| s == host) {
            Role::Additional(i)
        } else if !d.subset.is_empty() && self.additional_subsets.iter().any(|s| s == d.subset) {
            Role::AdditionalSubset
        } else {
            Role::Foreign
        }
    }

    /// Whether weights are split by DestinationRule subsets (spec 10 §2).
    pub fn subset_mode(&self) -> bool {
        !self.canary_subset.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn targets() -> Targets {
        Targets {
            canary_service: "canary".into(),
            stable_service: "stable".into(),
            additional: vec![("exp".into(), 10)],
            additional_subsets: vec!["legacy".into()],
            ..Targets::default()
        }
    }

    #[test]
    fn host_comparison_uses_text_before_first_dot() {
        // §2.1 / edge case 38: the namespace part is not compared.
        let t = targets();
        for (host, role) in [
            ("canary", Role::Canary),
            ("canary.ns-a.svc.cluster.local", Role::Canary),
            ("canary.ns-b", Role::Canary),
            ("stable.ns", Role::Stable),
            ("exp.ns", Role::Additional(0)),
            (".canary", Role::Ignored),
            ("", Role::Ignored),
            ("other", Role::Foreign),
        ] {
            let v = json!({"destination": {"host": host}, "weight": 5});
            assert_eq!(t.role(&DestinationView::of(&v)), role, "{host}");
        }
        let legacy = json!({"destination": {"host": "svc", "subset": "legacy"}});
        assert_eq!(
            t.role(&DestinationView::of(&legacy)),
            Role::AdditionalSubset
        );
    }

    #[test]
    fn host_test_comes_before_subset_test() {
        // §4: a destination whose host is canarySvc is canary whatever its subset.
        let t = Targets {
            canary_subset: "c".into(),
            stable_subset: "s".into(),
            ..targets()
        };
        let v = json!({"destination": {"host": "canary", "subset": "s"}});
        assert_eq!(t.role(&DestinationView::of(&v)), Role::Canary);
        let v = json!({"destination": {"host": "app", "subset": "s", "port": {"number": 80}}, "weight": 3});
        let d = DestinationView::of(&v);
        assert_eq!(t.role(&d), Role::Stable);
        assert_eq!((d.port, d.weight), (Some(80), Some(3)));
    }
}
