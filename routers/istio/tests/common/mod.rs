//! Builders shared by the Istio router tests: desired states, objects and a plan → apply →
//! plan-again harness.
#![allow(dead_code)] // each test file uses a different subset
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

use rollout_router_core::json_patch::Patch;
use rollout_router_core::{
    Change, DesiredTraffic, HeaderRoutingMatch, IstioConfig, IstioDestinationRule,
    IstioVirtualService, ManagedRoute, ObjectKey, ObjectSet, ReplicaSetAvailability, RolloutRef,
    RouteMatch, RouteSpec, RouteState, Router, RouterError, SetHeaderRoute, SetMirrorRoute,
    StringMatch, WeightCase, WeightDestination,
};
use rollout_router_istio::IstioRouter;
use serde_json::{Value, json};

pub const NS: &str = "shop";

pub fn rollout() -> RolloutRef {
    RolloutRef {
        namespace: NS.into(),
        name: "checkout".into(),
        uid: "uid-1".into(),
    }
}

/// Host-level desired state: `canary-svc` / `stable-svc`, hashes `c1` / `s1`.
pub fn desired(canary: i32) -> DesiredTraffic {
    DesiredTraffic {
        rollout: rollout(),
        total: 100,
        canary: WeightDestination {
            weight: canary,
            service_name: "canary-svc".into(),
            pod_template_hash: "c1".into(),
        },
        stable: WeightDestination {
            weight: 100 - canary,
            service_name: "stable-svc".into(),
            pod_template_hash: "s1".into(),
        },
        additional: vec![],
        ping_pong: None,
        managed_routes: vec![],
        hold: None,
        case: WeightCase::F2,
        step_index: Some(0),
        replica_sets: vec![],
        aborting: false,
    }
}

/// Subset-level desired state: no Services, hashes `c1` / `s1`.
pub fn subset_desired(canary: i32) -> DesiredTraffic {
    let mut d = desired(canary);
    d.canary.service_name.clear();
    d.stable.service_name.clear();
    d
}

/// `d` with other canary / stable hashes.
pub fn with_hashes(mut d: DesiredTraffic, canary: &str, stable: &str) -> DesiredTraffic {
    d.canary.pod_template_hash = canary.into();
    d.stable.pod_template_hash = stable.into();
    d
}

/// One of the Rollout's ReplicaSets: `replicas` is `spec.replicas`.
pub fn rs(name: &str, hash: &str, replicas: i32, available: i32) -> ReplicaSetAvailability {
    ReplicaSetAvailability {
        name: name.into(),
        pod_template_hash: hash.into(),
        replicas,
        available_replicas: available,
    }
}

/// `d` with the Rollout's ReplicaSets and its abortLike flag, as the engine fills them.
pub fn with_replica_sets(
    mut d: DesiredTraffic,
    replica_sets: Vec<ReplicaSetAvailability>,
    aborting: bool,
) -> DesiredTraffic {
    d.replica_sets = replica_sets;
    d.aborting = aborting;
    d
}

/// The delay rule's answer (spec 10 §6.1) naming ReplicaSet `name`.
pub fn waiting(name: &str) -> Result<Vec<Change>, RouterError> {
    Err(RouterError::Waiting {
        message: format!("delaying destination rule switch: ReplicaSet {name} not fully available"),
    })
}

/// The kinds of the changed objects, in change order.
pub fn kinds(changes: &[Change]) -> Vec<&str> {
    changes.iter().map(|c| c.key().kind.as_str()).collect()
}

/// A weighted destination as `observe` reports it.
pub fn wd(weight: i32, service: &str, hash: &str) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: service.into(),
        pod_template_hash: hash.into(),
    }
}

pub fn with_experiment(mut d: DesiredTraffic, service: &str, weight: i32) -> DesiredTraffic {
    d.stable.weight -= weight;
    d.additional.push(WeightDestination {
        weight,
        service_name: service.into(),
        pod_template_hash: format!("{service}-hash"),
    });
    d
}

pub fn vs_ref(name: &str, routes: &[&str]) -> IstioVirtualService {
    IstioVirtualService {
        name: name.into(),
        routes: routes.iter().map(|r| (*r).to_owned()).collect(),
        ..IstioVirtualService::default()
    }
}

pub fn host_router(vs: IstioVirtualService) -> IstioRouter {
    IstioRouter::new(IstioConfig {
        virtual_service: Some(vs),
        ..IstioConfig::default()
    })
}

pub fn dr_config() -> IstioDestinationRule {
    IstioDestinationRule {
        name: "checkout-dr".into(),
        canary_subset_name: "canary".into(),
        stable_subset_name: "stable".into(),
        additional_subset_names: vec![],
    }
}

pub fn subset_router(vs: IstioVirtualService) -> IstioRouter {
    IstioRouter::new(IstioConfig {
        virtual_service: Some(vs),
        destination_rule: Some(dr_config()),
        ..IstioConfig::default()
    })
}

pub fn vs_named(name: &str, namespace: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

pub fn vs(spec: Value) -> Value {
    vs_named("checkout", NS, spec)
}

pub fn vs_key() -> ObjectKey {
    ObjectKey::new("networking.istio.io", "VirtualService", NS, "checkout")
}

pub fn dr(spec: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "checkout-dr", "namespace": NS},
        "spec": spec,
    })
}

pub fn dr_key() -> ObjectKey {
    ObjectKey::new("networking.istio.io", "DestinationRule", NS, "checkout-dr")
}

/// A destination entry.
pub fn dest(host: &str, weight: i64) -> Value {
    json!({"destination": {"host": host}, "weight": weight})
}

pub fn sdest(host: &str, subset: &str, weight: i64) -> Value {
    json!({"destination": {"host": host, "subset": subset}, "weight": weight})
}

/// The usual host-level primary route.
pub fn primary(stable: i64, canary: i64) -> Value {
    json!({"name": "primary", "route": [dest("stable-svc", stable), dest("canary-svc", canary)]})
}

pub fn objects(list: impl IntoIterator<Item = Value>) -> ObjectSet {
    list.into_iter().collect()
}

pub fn patch(ops: Value) -> Patch {
    serde_json::from_value(ops).unwrap()
}

pub fn patch_change(key: ObjectKey, ops: Value) -> Change {
    Change::Patch {
        key,
        patch: patch(ops),
    }
}

/// Plans, checks that every operation is guarded, applies, checks that planning again changes
/// nothing, and returns the changes and the resulting objects.
pub fn run(
    router: &IstioRouter,
    desired: &DesiredTraffic,
    objects: &ObjectSet,
) -> (Vec<Change>, ObjectSet) {
    let changes = router.plan(desired, objects).unwrap();
    assert_guarded(&changes);
    let mut after = objects.clone();
    after.apply_all(&changes).unwrap();
    let again = router.plan(desired, &after).unwrap();
    assert_eq!(
        again,
        vec![],
        "planning again after applying must change nothing"
    );
    (changes, after)
}

/// Releases, checks that every operation is guarded, applies, checks that releasing again
/// changes nothing, and returns the changes and the resulting objects.
pub fn run_release(
    router: &IstioRouter,
    desired: &DesiredTraffic,
    objects: &ObjectSet,
) -> (Vec<Change>, ObjectSet) {
    let changes = router.release(desired, objects).unwrap();
    assert_guarded(&changes);
    let mut after = objects.clone();
    after.apply_all(&changes).unwrap();
    pretty_assertions::assert_eq!(
        router.release(desired, &after),
        Ok(vec![]),
        "release is idempotent"
    );
    (changes, after)
}

pub fn header_step(name: &str, matches: Vec<(&str, StringMatch)>) -> SetHeaderRoute {
    SetHeaderRoute {
        name: name.into(),
        matches: matches
            .into_iter()
            .map(|(h, v)| HeaderRoutingMatch {
                header_name: h.into(),
                header_value: Some(v),
            })
            .collect(),
    }
}

pub fn active_header(name: &str, matches: Vec<(&str, StringMatch)>) -> ManagedRoute {
    ManagedRoute {
        name: name.into(),
        state: RouteState::Active {
            route: RouteSpec::SetHeaderRoute(header_step(name, matches)),
        },
    }
}

pub fn mirror_step(
    name: &str,
    percentage: Option<i32>,
    matches: Vec<RouteMatch>,
) -> SetMirrorRoute {
    SetMirrorRoute {
        name: name.into(),
        matches,
        percentage,
    }
}

pub fn active_mirror(
    name: &str,
    percentage: Option<i32>,
    matches: Vec<RouteMatch>,
) -> ManagedRoute {
    ManagedRoute {
        name: name.into(),
        state: RouteState::Active {
            route: RouteSpec::SetMirrorRoute(mirror_step(name, percentage, matches)),
        },
    }
}

pub fn absent(name: &str) -> ManagedRoute {
    ManagedRoute {
        name: name.into(),
        state: RouteState::Absent,
    }
}

pub fn unchanged(name: &str) -> ManagedRoute {
    ManagedRoute {
        name: name.into(),
        state: RouteState::Unchanged,
    }
}

pub fn get_route_match(method: &str, prefix: &str) -> RouteMatch {
    RouteMatch {
        method: Some(StringMatch::exact(method)),
        path: Some(StringMatch::prefix(prefix)),
        headers: Default::default(),
    }
}

/// Asserts that `set` holds exactly `expected` as the VirtualService.
#[track_caller]
pub fn assert_vs(set: &ObjectSet, expected: Value) {
    pretty_assertions::assert_eq!(set.get(&vs_key()), Some(&expected));
}

/// Asserts that `set` holds the VirtualService with exactly this `spec`.
#[track_caller]
pub fn assert_vs_spec(set: &ObjectSet, spec: Value) {
    assert_vs(set, vs(spec));
}

/// Asserts that `set` holds exactly `expected` as the DestinationRule.
#[track_caller]
pub fn assert_dr(set: &ObjectSet, expected: Value) {
    pretty_assertions::assert_eq!(set.get(&dr_key()), Some(&expected));
}

/// Asserts that `set` holds the DestinationRule with exactly this `spec`.
#[track_caller]
pub fn assert_dr_spec(set: &ObjectSet, spec: Value) {
    assert_dr(set, dr(spec));
}

/// Checks that every operation of every patch in `changes` is guarded: each array element the
/// operation's path goes through (`/spec/http/2`, `/spec/http/2/route/1`, or the array itself
/// for an append at `-`) is pinned by an earlier `test` of that element (its name, a
/// destination's host, its whole value or an enclosing value) that no insertion or removal in
/// between has shifted or outdated. A patch planned from a stale copy then fails instead of
/// applying to a different element.
pub fn check_guarded(changes: &[Change]) -> Result<(), String> {
    for change in changes {
        if let Change::Patch { key, patch } = change {
            check_patch(patch).map_err(|e| format!("{}: {e}", key.name))?;
        }
    }
    Ok(())
}

/// Panics with the unguarded operation when [`check_guarded`] fails.
pub fn assert_guarded(changes: &[Change]) {
    if let Err(e) = check_guarded(changes) {
        panic!("{e}\nchanges: {changes:#?}");
    }
}

fn tokens(path: &str) -> Vec<String> {
    path.split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn is_index(token: &str) -> bool {
    token == "-" || token.parse::<usize>().is_ok()
}

/// `prefix` is `path` or one of its ancestors.
fn encloses(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len() && prefix == &path[..prefix.len()]
}

fn check_patch(patch: &Patch) -> Result<(), String> {
    use rollout_router_core::json_patch::PatchOperation;
    let ops: Vec<(&PatchOperation, Vec<String>)> = patch
        .iter()
        .map(|op| (op, tokens(op.path().as_str())))
        .collect();
    let is_test = |i: usize| matches!(ops[i].0, PatchOperation::Test(_));
    for (o, (op, path)) in ops.iter().enumerate() {
        match op {
            PatchOperation::Test(_) => continue,
            PatchOperation::Add(_) | PatchOperation::Remove(_) | PatchOperation::Replace(_) => {}
            other => return Err(format!("unexpected operation {other:?}")),
        }
        let anchors: Vec<usize> = (0..path.len()).filter(|&t| is_index(&path[t])).collect();
        if anchors.is_empty() {
            let covered = (0..o).any(|t| is_test(t) && encloses(&ops[t].1, path));
            if !covered {
                return Err(format!("operation #{o} {op:?} has no preceding test"));
            }
            continue;
        }
        for (n, &a) in anchors.iter().enumerate() {
            let element = &path[..=a];
            let array = &path[..a];
            let pins = |test: &[String]| {
                if path[a] == "-" {
                    return encloses(test, array);
                }
                encloses(test, element)
                    || [&["name"][..], &["destination", "host"][..]]
                        .iter()
                        .any(|suffix| {
                            test.len() == element.len() + suffix.len()
                                && encloses(element, test)
                                && test[element.len()..] == **suffix
                        })
            };
            // An insertion or removal between the test and the operation, in the array of this
            // element or of an enclosing one, at or before its index, shifts what the test saw;
            // any change to an array the test pinned whole outdates it.
            let outdated = |t: usize| {
                ops[t + 1..o].iter().any(|(between, spath)| {
                    if !matches!(between, PatchOperation::Add(_) | PatchOperation::Remove(_)) {
                        return false;
                    }
                    let Some((last, sarray)) = spath.split_last() else {
                        return false;
                    };
                    if !is_index(last) {
                        return false;
                    }
                    anchors[..=n].iter().any(|&b| {
                        path[..b] == *sarray
                            && (encloses(&ops[t].1, sarray)
                                || last.parse::<usize>().is_ok_and(|si| {
                                    path[b].parse::<usize>().is_ok_and(|ei| si <= ei)
                                }))
                    })
                })
            };
            let covered = (0..o).any(|t| is_test(t) && pins(&ops[t].1) && !outdated(t));
            if !covered {
                return Err(format!(
                    "operation #{o} {op:?}: element /{} is not pinned by a preceding test",
                    element.join("/")
                ));
            }
        }
    }
    Ok(())
}
