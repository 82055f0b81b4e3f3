//! Plans made from a stale copy of an object: the controller patches what it read, and when the
//! object changed in between (a user inserted or removed a route, or an earlier patch already
//! added the managed route) the patch must fail, so that the controller reads again and
//! re-plans, instead of applying to a different array (a managed route inserted twice, the
//! weight of another route rewritten). Also checks that `common::check_guarded`, which the
//! other test files run over every plan, rejects unguarded patches.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

mod common;

use common::*;
use proptest::prelude::*;
use rollout_router_core::{
    Change, DesiredTraffic, ManagedRoute, ObjectKey, ObjectSet, Router, StringMatch,
};
use rollout_router_istio::IstioRouter;
use serde_json::{Value, json};

/// The patch of `key` among `changes`.
fn patch_for<'c>(changes: &'c [Change], key: &ObjectKey) -> Option<&'c Change> {
    changes
        .iter()
        .find(|c| matches!(c, Change::Patch { key: k, .. } if k == key))
}

/// Applies `change` to `object` alone: `Err` when the API server would reject the patch (the
/// object is then left as it was).
fn apply_to(change: &Change, object: &Value) -> Result<Value, String> {
    let mut set = objects([object.clone()]);
    let before = set.clone();
    match set.apply(change) {
        Ok(()) => Ok(set.iter().next().unwrap().1.clone()),
        Err(e) => {
            assert_eq!(set, before, "a failed patch leaves the object as it was");
            Err(e.to_string())
        }
    }
}

/// `vs` with its `spec.http` list edited.
fn edit_http(vs: &Value, edit: impl FnOnce(&mut Vec<Value>)) -> Value {
    let mut vs = vs.clone();
    edit(vs["spec"]["http"].as_array_mut().unwrap());
    vs
}

fn shadow() -> ManagedRoute {
    active_mirror("shadow", Some(20), vec![get_route_match("GET", "/")])
}

#[test]
fn adding_a_managed_route_from_a_stale_copy_fails_once_it_is_there() {
    // The compaction bug: the controller planned the `shadow` mirror route from a copy without
    // it while the route was already in place; the unguarded insertion added it again.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = desired(20);
    d.managed_routes = vec![shadow()];
    for user in [
        json!([primary(80, 20)]),
        json!([{"name": "static", "route": [dest("cdn", 100)]}, primary(80, 20)]),
        // Unnamed first user route: its whole value is pinned.
        json!([{"match": [{"uri": {"prefix": "/s"}}], "route": [dest("cdn", 100)]}, primary(80, 20)]),
    ] {
        let stale = vs(json!({"http": user}));
        let changes = router.plan(&d, &objects([stale.clone()])).unwrap();
        assert_guarded(&changes);
        let change = patch_for(&changes, &vs_key()).unwrap();
        let fresh = apply_to(change, &stale).unwrap();
        assert_eq!(fresh["spec"]["http"][0]["name"], json!("shadow"), "{user}");
        assert!(
            apply_to(change, &fresh).is_err(),
            "the second application must fail, not insert `shadow` again: {user}"
        );
    }
}

#[test]
fn appending_to_a_list_of_managed_routes_from_a_stale_copy_fails() {
    // With no user HTTP route left to insert ahead of (a TCP-weighted VirtualService), the
    // whole list is pinned before an append.
    let router = host_router(vs_ref("checkout", &[]));
    let mut d = desired(20);
    d.managed_routes = vec![active_header("hdr", vec![("x", StringMatch::exact("1"))])];
    let stale = vs(json!({
        "http": [],
        "tcp": [{"match": [{"port": 3000}], "route": [dest("stable-svc", 100), dest("canary-svc", 0)]}],
    }));
    let changes = router.plan(&d, &objects([stale.clone()])).unwrap();
    assert_guarded(&changes);
    let change = patch_for(&changes, &vs_key()).unwrap();
    let fresh = apply_to(change, &stale).unwrap();
    assert_eq!(fresh["spec"]["http"].as_array().unwrap().len(), 1);
    assert!(apply_to(change, &fresh).is_err());
}

#[test]
fn experiment_destination_is_not_appended_twice() {
    let router = host_router(vs_ref("checkout", &["primary"]));
    let d = with_experiment(desired(20), "exp-svc", 10);
    let stale = vs(json!({"http": [primary(100, 0)]}));
    let changes = router.plan(&d, &objects([stale.clone()])).unwrap();
    assert_guarded(&changes);
    let change = patch_for(&changes, &vs_key()).unwrap();
    let fresh = apply_to(change, &stale).unwrap();
    assert!(apply_to(change, &fresh).is_err());
}

#[test]
fn user_route_inserted_or_removed_at_the_front_fails_the_stale_plan() {
    // Weights already in place: only the managed-route operations can notice the shift.
    let router = host_router(vs_ref("checkout", &["primary"]));
    let mut d = desired(30);
    d.managed_routes = vec![
        shadow(),
        active_header("beta", vec![("x-beta", StringMatch::exact("on"))]),
    ];
    let static_route = json!({"name": "static", "route": [dest("cdn", 100)]});
    let old_beta = json!({"name": "beta", "match": [{"headers": {"x-beta": {"exact": "old"}}}],
                          "route": [dest("canary-svc", 100)]});
    for http in [
        json!([primary(70, 30)]),
        json!([static_route, primary(70, 30)]),
        json!([old_beta, static_route, primary(70, 30)]),
        json!([static_route, old_beta, primary(70, 30)]),
    ] {
        let stale = vs(json!({"http": http}));
        let changes = router.plan(&d, &objects([stale.clone()])).unwrap();
        let change = patch_for(&changes, &vs_key()).unwrap();
        let intruder =
            json!({"match": [{"uri": {"prefix": "/new"}}], "route": [dest("other", 100)]});
        let inserted = edit_http(&stale, |h| h.insert(0, intruder));
        assert!(apply_to(change, &inserted).is_err(), "inserted: {http}");
        let removed = edit_http(&stale, |h| {
            h.remove(0);
        });
        assert!(apply_to(change, &removed).is_err(), "removed: {http}");
    }
}

#[test]
fn subset_inserted_at_the_front_fails_the_stale_destination_rule_patch() {
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let rule = |subsets: Value| dr(json!({"host": "checkout", "subsets": subsets}));
    let stale = rule(json!([
        {"name": "canary", "labels": {"rollouts-pod-template-hash": "old"}},
        {"name": "stable"},
    ]));
    let route = json!({"name": "primary", "route": [sdest("checkout", "stable", 100), sdest("checkout", "canary", 0)]});
    let changes = router
        .plan(
            &subset_desired(0),
            &objects([stale.clone(), vs(json!({"http": [route]}))]),
        )
        .unwrap();
    assert_guarded(&changes);
    let change = patch_for(&changes, &dr_key()).unwrap();
    let mut shifted = stale.clone();
    shifted["spec"]["subsets"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "other", "labels": {"app": "x"}}));
    assert!(apply_to(change, &shifted).is_err());
    // `stable` had no labels: the patch adds them whole, so labels added meanwhile fail it
    // rather than being overwritten.
    let mut labelled = stale.clone();
    labelled["spec"]["subsets"][1]["labels"] = json!({"team": "payments"});
    assert!(apply_to(change, &labelled).is_err());
    assert!(apply_to(change, &stale).is_ok());
}

#[test]
fn guard_check_rejects_unguarded_patches() {
    // `check_guarded` is what the rest of the suite runs over every plan: it must be able to
    // fail. Each case is a patch the router emitted before managed routes were guarded, or an
    // obvious variant.
    let route = json!({"name": "h"});
    let unguarded = [
        json!([{"op": "add", "path": "/spec/http/0", "value": route}]),
        // A test of another element does not pin the insertion point.
        json!([
            {"op": "test", "path": "/spec/http/1/name", "value": "primary"},
            {"op": "add", "path": "/spec/http/0", "value": route},
        ]),
        // The name of the route does not pin the length of its destination list.
        json!([
            {"op": "test", "path": "/spec/http/0/name", "value": "primary"},
            {"op": "add", "path": "/spec/http/0/route/-", "value": dest("exp", 1)},
        ]),
        // The test was made before an insertion shifted the element.
        json!([
            {"op": "test", "path": "/spec/http/0/name", "value": "static"},
            {"op": "add", "path": "/spec/http/0", "value": route},
            {"op": "add", "path": "/spec/http/1", "value": route},
        ]),
        // An unnamed weighted route: the destination is pinned, the route is not.
        json!([
            {"op": "test", "path": "/spec/http/0/route/0/destination/host", "value": "s"},
            {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 1},
        ]),
        json!([{"op": "remove", "path": "/spec/subsets/0/labels/x"}]),
    ];
    for ops in unguarded {
        let change = patch_change(vs_key(), ops.clone());
        assert!(check_guarded(&[change]).is_err(), "{ops}");
    }
    let guarded = json!([
        {"op": "test", "path": "/spec/http/0/name", "value": "static"},
        {"op": "add", "path": "/spec/http/0", "value": route},
        {"op": "test", "path": "/spec/http/1/name", "value": "static"},
        {"op": "add", "path": "/spec/http/1", "value": route},
        {"op": "test", "path": "/spec/http", "value": [route, route]},
        {"op": "add", "path": "/spec/http/2", "value": route},
    ]);
    assert_eq!(check_guarded(&[patch_change(vs_key(), guarded)]), Ok(()));
}

// ---- property: any stale plan fails rather than applying to a shifted list ----

#[derive(Clone, Debug)]
struct World {
    /// `primary` named and selected by name; otherwise the one unnamed user route.
    named_primary: bool,
    /// The weighted route's canary weight.
    canary: i64,
    vs: Value,
}

/// A user route distinct from every other: named `user-<i>` or unnamed with its own match.
fn user_route(i: usize, named: bool) -> Value {
    let mut r =
        json!({"match": [{"uri": {"prefix": format!("/u{i}")}}], "route": [dest("other", 100)]});
    if named {
        r["name"] = json!(format!("user-{i}"));
    }
    r
}

/// A managed route as an earlier step left it (a different match than any step writes now).
fn old_managed(name: &str, copy: usize) -> Value {
    json!({"name": name, "match": [{"headers": {"x-old": {"exact": copy.to_string()}}}],
           "route": [dest("canary-svc", 100)]})
}

fn world() -> impl Strategy<Value = World> {
    (
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 0..3),
        (0..=100i64, any::<prop::sample::Index>()),
        // Copies of each managed route already present (2 = a duplicate left by the bug), and
        // where they go.
        (0..3usize, 0..3usize),
        prop::collection::vec(any::<prop::sample::Index>(), 4),
    )
        .prop_map(|(named_primary, users, (canary, at), (hdr, mir), places)| {
            let mut http: Vec<Value> = if named_primary {
                users
                    .iter()
                    .enumerate()
                    .map(|(i, named)| user_route(i, *named))
                    .collect()
            } else {
                Vec::new()
            };
            let mut weighted =
                json!({"route": [dest("stable-svc", 100 - canary), dest("canary-svc", canary)]});
            if named_primary {
                weighted["name"] = json!("primary");
            }
            http.insert(at.index(http.len() + 1), weighted);
            let copies = (0..hdr)
                .map(|c| old_managed("hdr", c))
                .chain((0..mir).map(|c| old_managed("mir", c)));
            for (route, place) in copies.zip(places.iter().cycle()) {
                http.insert(place.index(http.len() + 1), route);
            }
            World {
                named_primary,
                canary,
                vs: vs(json!({"hosts": ["checkout"], "http": http})),
            }
        })
}

fn desired_state() -> impl Strategy<Value = DesiredTraffic> {
    (0..=100i32, 0..=10i32, 0..3u8, 0..3u8).prop_map(|(weight, experiment, hdr, mir)| {
        let mut d = desired(weight);
        if experiment > 0 && weight + experiment <= 100 {
            d = with_experiment(d, "exp-svc", experiment);
        }
        let state = |name: &str, choice: u8| match (name, choice) {
            (_, 0) => absent(name),
            (_, 1) => unchanged(name),
            ("hdr", _) => active_header(name, vec![("x-new", StringMatch::exact("1"))]),
            _ => active_mirror(name, Some(15), vec![get_route_match("GET", "/")]),
        };
        d.managed_routes = vec![state("hdr", hdr), state("mir", mir)];
        d
    })
}

fn router(world: &World) -> IstioRouter {
    let routes: &[&str] = if world.named_primary {
        &["primary"]
    } else {
        &[]
    };
    host_router(vs_ref("checkout", routes))
}

/// No two routes share a name: a `test` of a name then tells shifted elements apart.
fn names_unique(vs: &Value) -> bool {
    let names: Vec<&str> = vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    names
        .iter()
        .enumerate()
        .all(|(i, n)| !names[..i].contains(n))
}

/// Whether the patch inserts or removes an element of a list (applying it twice is not a
/// no-op).
fn changes_a_list(change: &Change) -> bool {
    let Change::Patch { patch, .. } = change else {
        return false;
    };
    serde_json::to_value(patch)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .any(|op| {
            let path = op["path"].as_str().unwrap_or_default();
            let last = path.rsplit('/').next().unwrap_or_default();
            (op["op"] == "add" || op["op"] == "remove")
                && (last == "-" || last.parse::<usize>().is_ok())
        })
}

fn touches_http(change: &Change) -> bool {
    let Change::Patch { patch, .. } = change else {
        return false;
    };
    patch
        .iter()
        .any(|op| op.path().as_str().starts_with("/spec/http/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The plan already applied (the managed route is there, the experiment destination
    /// appended): applying it again fails, or changes nothing (weights only).
    #[test]
    fn stale_plan_applied_twice_fails_or_changes_nothing(world in world(), d in desired_state()) {
        let set: ObjectSet = objects([world.vs.clone()]);
        let changes = router(&world).plan(&d, &set).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_guarded(&changes).map_err(TestCaseError::fail)?;
        let Some(change) = patch_for(&changes, &vs_key()) else { return Ok(()) };
        let once = apply_to(change, &world.vs).map_err(TestCaseError::fail)?;
        match apply_to(change, &once) {
            Err(_) => {}
            Ok(twice) => {
                prop_assert!(!changes_a_list(change), "a list edit applied twice: {}", twice);
                prop_assert_eq!(twice, once);
            }
        }
    }

    /// A user route inserted at, or removed from, the front of `spec.http` since the plan was
    /// made: every patch that edits `spec.http` fails.
    #[test]
    fn stale_plan_fails_after_the_list_shifts(
        world in world(),
        d in desired_state(),
        insert in any::<bool>(),
        keep_weights in any::<bool>(),
    ) {
        prop_assume!(names_unique(&world.vs));
        let mut d = d;
        if keep_weights {
            // Only managed routes change: their operations alone must notice the shift.
            let canary = i32::try_from(world.canary).unwrap();
            d.canary.weight = canary;
            d.stable.weight = 100 - canary;
            d.additional.clear();
        }
        let set: ObjectSet = objects([world.vs.clone()]);
        let changes = router(&world).plan(&d, &set).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Some(change) = patch_for(&changes, &vs_key()).filter(|c| touches_http(c)) else {
            return Ok(());
        };
        let fresh = edit_http(&world.vs, |http| {
            if insert {
                http.insert(0, json!({"match": [{"uri": {"prefix": "/intruder"}}], "route": [dest("other", 100)]}));
            } else {
                http.remove(0);
            }
        });
        let result = apply_to(change, &fresh);
        prop_assert!(result.is_err(), "applied to a shifted list: {:?}", result);
    }
}
