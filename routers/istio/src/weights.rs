//! The weight algorithm of one weighted route (spec 10 §4): which destination gets which
//! weight, which experiment destinations are appended and which foreign ones are deleted, and
//! the guarded JSON Patch operations that do it.

use rollout_router_core::json_patch::jsonptr::PointerBuf;
use rollout_router_core::patch::PatchBuilder;
use rollout_router_core::pointer;
use serde_json::{Value, json};

use crate::destination::{DestinationView, Role, Targets};
use crate::guard;
use crate::selection::Section;

/// The desired split, in Istio weight units.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Split<'a> {
    pub targets: &'a Targets,
    pub canary: i64,
    /// `total - canary - Σ experiment weights`, before subtracting this route's
    /// `additionalSubsetNames` weights.
    pub stable: i64,
}

/// The edits one route needs. Indexes are those of the route as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RouteEdit {
    /// `(destination index, new weight)`.
    pub sets: Vec<(usize, i64)>,
    /// New experiment destinations, in ascending service-name order.
    pub appends: Vec<Value>,
    /// Destinations to delete, in descending index order.
    pub deletes: Vec<usize>,
}

impl RouteEdit {
    /// The edits that give `destinations` the split.
    pub fn plan(destinations: &[Value], split: Split<'_>) -> Self {
        let targets = split.targets;
        let views: Vec<DestinationView<'_>> =
            destinations.iter().map(DestinationView::of).collect();
        let roles: Vec<Role> = views.iter().map(|d| targets.role(d)).collect();
        // Weights the user gave additionalSubsetNames subsets come out of the stable share;
        // the stable weight never goes negative (#4332, #3467).
        let kept: i64 = views
            .iter()
            .zip(&roles)
            .filter(|(_, r)| **r == Role::AdditionalSubset)
            .map(|(d, _)| d.weight_or_zero())
            .sum();
        let stable = (split.stable - kept).max(0);

        let mut edit = Self::default();
        let mut consumed = vec![false; targets.additional.len()];
        for (i, (d, role)) in views.iter().zip(&roles).enumerate() {
            let target = match *role {
                Role::Ignored | Role::AdditionalSubset => None,
                Role::Canary => Some(split.canary),
                Role::Stable => Some(stable),
                Role::Additional(a) => {
                    consumed[a] = true;
                    Some(targets.additional[a].1)
                }
                Role::Foreign => {
                    // Weight 0/absent: harmless, left as the user wrote it.
                    if d.weight_or_zero() != 0 {
                        edit.deletes.push(i);
                    }
                    None
                }
            };
            if let Some(weight) = target.filter(|w| *w != d.weight_or_zero()) {
                edit.sets.push((i, weight));
            }
        }
        let mut missing: Vec<&(String, i64)> = targets
            .additional
            .iter()
            .zip(&consumed)
            .filter(|(_, c)| !**c)
            .map(|(a, _)| a)
            .collect();
        missing.sort_by(|a, b| a.0.cmp(&b.0));
        edit.appends = missing
            .into_iter()
            .map(|(service, weight)| json!({"destination": {"host": service}, "weight": weight}))
            .collect();
        // Deletions go last and from the end (#4831: ascending order skipped entries).
        edit.deletes.reverse();
        edit
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty() && self.appends.is_empty() && self.deletes.is_empty()
    }

    /// Adds the guarded operations for the route at `spec.<section>[index]`: the route (its
    /// name, or its whole value when unnamed), the host/subset of every destination touched and
    /// the whole destination list before an append are tested first, so a concurrent edit or
    /// reordering fails the patch instead of moving weight to the wrong place or appending an
    /// experiment destination twice.
    pub fn emit(&self, ops: &mut PatchBuilder, section: Section, index: usize, route: &Value) {
        if self.is_empty() {
            return;
        }
        let sec = section.key();
        guard::element(ops, pointer!["spec", sec, index], route);
        let destinations = crate::json::array_field(route, "route").unwrap_or_default();
        let guard = |ops: &mut PatchBuilder, j: usize| {
            let d = DestinationView::of(&destinations[j]);
            ops.test(
                pointer!["spec", sec, index, "route", j, "destination", "host"],
                json!(d.host),
            );
            if !d.subset.is_empty() {
                ops.test(
                    pointer!["spec", sec, index, "route", j, "destination", "subset"],
                    json!(d.subset),
                );
            }
        };
        for &(j, weight) in &self.sets {
            guard(ops, j);
            let path: PointerBuf = pointer!["spec", sec, index, "route", j, "weight"];
            if destinations[j].get("weight").is_some() {
                ops.replace(path, json!(weight));
            } else {
                ops.add(path, json!(weight));
            }
        }
        if !self.appends.is_empty() {
            // The list as the weight updates above leave it, growing with each append.
            let mut current = self.with_sets(destinations);
            for value in &self.appends {
                guard::array(ops, pointer!["spec", sec, index, "route"], &current);
                ops.add(pointer!["spec", sec, index, "route", "-"], value.clone());
                current.push(value.clone());
            }
        }
        for &j in &self.deletes {
            guard(ops, j);
            ops.remove(pointer!["spec", sec, index, "route", j]);
        }
    }

    /// The destinations after the edit (what the route will say once the patch is applied).
    pub fn apply(&self, destinations: &[Value]) -> Vec<Value> {
        let mut out = self.with_sets(destinations);
        out.extend(self.appends.iter().cloned());
        for &j in &self.deletes {
            out.remove(j);
        }
        out
    }

    /// The destinations with only the weight updates applied.
    fn with_sets(&self, destinations: &[Value]) -> Vec<Value> {
        let mut out = destinations.to_vec();
        for &(j, weight) in &self.sets {
            if let Some(obj) = out[j].as_object_mut() {
                obj.insert("weight".into(), json!(weight));
            }
        }
        out
    }
}
