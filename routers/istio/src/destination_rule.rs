//! DestinationRule subsets (spec 10 §6): pointing the canary, stable and experiment subsets at
//! pod-template hashes through the `rollouts-pod-template-hash` label.
//!
//! Only that one label of those subsets is ever written. Every other subset, label and field
//! is kept: Argo rebuilds `spec.subsets` and drops every subset it does not manage (edge case
//! 31), which breaks DestinationRules shared with other workloads.

use rollout_router_core::patch::PatchBuilder;
use rollout_router_core::{IstioDestinationRule, ObjectKey, RouterError, json_patch, pointer};
use serde_json::{Value, json};

use crate::guard;
use crate::json::{name_of, spec_array, str_field};

/// The label that pins a subset to one ReplicaSet's pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "rollouts-pod-template-hash";

/// The hash each managed subset must select.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SubsetHashes<'a> {
    pub canary: &'a str,
    pub stable: &'a str,
    /// `(subset name = experiment service name, hash)`.
    pub additional: Vec<(&'a str, &'a str)>,
}

/// `spec.host`: where managed routes send traffic in subset mode (§7).
pub(crate) fn host(rule: &Value) -> Option<&str> {
    rule.get("spec")
        .and_then(|s| str_field(s, "host"))
        .filter(|h| !h.is_empty())
}

/// The hash label of subset `name`, if the subset exists and carries one.
pub(crate) fn subset_hash<'a>(rule: &'a Value, name: &str) -> Option<&'a str> {
    spec_array(rule, "subsets")?
        .iter()
        .find(|s| name_of(s) == Some(name))?
        .get("labels")
        .and_then(|l| str_field(l, POD_TEMPLATE_HASH_LABEL))
}

/// The patch that points the subsets at `hashes` (§6.2), or `None` when they already do.
///
/// The canary and stable subsets must exist (they are never created). A subset named after an
/// experiment Service is updated when the user created it; rollout-router does not append
/// such subsets (Argo does, §6.2 step 4): the experiment destinations it adds to the
/// VirtualService name the experiment Service as host without a subset, so nothing would
/// route through them.
pub(crate) fn plan_hashes(
    key: &ObjectKey,
    rule: &Value,
    config: &IstioDestinationRule,
    hashes: &SubsetHashes<'_>,
) -> Result<Option<json_patch::Patch>, RouterError> {
    let subsets = spec_array(rule, "subsets").unwrap_or_default();
    let find = |name: &str| subsets.iter().position(|s| name_of(s) == Some(name));
    let mut ops = PatchBuilder::new();
    for (name, hash, role) in [
        (&config.canary_subset_name, hashes.canary, "Canary"),
        (&config.stable_subset_name, hashes.stable, "Stable"),
    ] {
        let index = find(name).ok_or_else(|| {
            RouterError::invalid_object(
                key,
                "spec.subsets",
                format!("{role} subset '{name}' not found in the DestinationRule"),
            )
        })?;
        set_label(&mut ops, subsets, index, Some(hash));
    }
    for (name, hash) in &hashes.additional {
        if *name == config.canary_subset_name || *name == config.stable_subset_name {
            continue;
        }
        if let Some(index) = find(name) {
            set_label(&mut ops, subsets, index, Some(hash));
        }
    }
    Ok(ops.build_if_changed())
}

/// Sets (or, for `None`/empty, removes) the hash label of `subsets[index]`, guarded by the
/// subset's name at that index (its whole value when it has no `labels` yet).
fn set_label(ops: &mut PatchBuilder, subsets: &[Value], index: usize, hash: Option<&str>) {
    let subset = &subsets[index];
    let labels = subset.get("labels").and_then(Value::as_object);
    let current = labels
        .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
        .and_then(Value::as_str);
    let wanted = hash.filter(|h| !h.is_empty());
    if current == wanted {
        return;
    }
    if labels.is_some() {
        guard::element(ops, pointer!["spec", "subsets", index], subset);
    } else {
        // Adding `labels` whole assumes there is none: pin the whole subset (RFC 6902 cannot
        // test that a member is absent), so labels added meanwhile are not overwritten.
        ops.test(pointer!["spec", "subsets", index], subset.clone());
    }
    let label_path = pointer!["spec", "subsets", index, "labels", POD_TEMPLATE_HASH_LABEL];
    match (wanted, labels) {
        (Some(h), Some(_)) => {
            if labels.is_some_and(|l| l.contains_key(POD_TEMPLATE_HASH_LABEL)) {
                ops.replace(label_path, json!(h));
            } else {
                ops.add(label_path, json!(h));
            }
        }
        (Some(h), None) => {
            ops.add(
                pointer!["spec", "subsets", index, "labels"],
                json!({ POD_TEMPLATE_HASH_LABEL: h }),
            );
        }
        (None, _) => {
            ops.remove(label_path);
        }
    }
}
