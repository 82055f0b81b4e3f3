#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
//! The journal (src/journal.rs, docs/undo.md): recording the patches rollout-router applies to
//! user objects and handing every field back, driven by the real Istio and ALB routers.

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use rollout_router::journal::{
    self, LocateError, NotRestored, NotRestoredReason, apply_recorded, compact, locate, try_record,
    undo,
};
use rollout_router::traffic::JournalEntry;
use rollout_router_alb::AlbRouter;
use rollout_router_core::json_patch::Patch;
use rollout_router_core::{
    AlbConfig, Change, DesiredTraffic, IstioConfig, ObjectKey, ObjectSet, Router,
};
use rollout_router_istio::IstioRouter;
use serde_json::{Value, json};

const NS: &str = "shop";
const HASH_LABEL: &str = "rollouts-pod-template-hash";
const ACTION: &str = "alb.ingress.kubernetes.io/actions.shop-root";

// ---------------------------------------------------------------------------------------------
// Fixtures: the user's objects as they are in Git.

fn virtual_service(extra_routes: &[Value]) -> Value {
    let mut http = vec![
        json!({"name": "legacy", "match": [{"uri": {"prefix": "/v1"}}],
                               "route": [{"destination": {"host": "legacy"}}]}),
    ];
    http.extend(extra_routes.iter().cloned());
    http.push(json!({"name": "primary", "timeout": "5s", "route": [
        {"destination": {"host": "checkout", "subset": "stable"}, "weight": 100},
        {"destination": {"host": "checkout", "subset": "canary"}, "weight": 0}]}));
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "checkout", "namespace": NS, "uid": "vs-uid",
                     "annotations": {"team": "payments"}},
        "spec": {"hosts": ["checkout"], "gateways": ["mesh"], "http": http}
    })
}

fn destination_rule(extra_subsets: &[Value]) -> Value {
    let mut subsets = vec![
        json!({"name": "stable", "labels": {"app": "checkout"}}),
        json!({"name": "canary"}),
    ];
    subsets.extend(extra_subsets.iter().cloned());
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "checkout-dr", "namespace": NS, "uid": "dr-uid"},
        "spec": {"host": "checkout", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                 "subsets": subsets}
    })
}

fn ingress(extra_annotations: &[(String, String)]) -> Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "alb.ingress.kubernetes.io/scheme".into(),
        json!("internet-facing"),
    );
    // The user's own text of the weighted action: spaces, another key order.
    annotations.insert(
        ACTION.into(),
        json!(
            r#"{ "Type": "forward", "ForwardConfig": { "TargetGroups": [ { "ServicePort": "80", "ServiceName": "shop-stable", "Weight": 100 } ] } }"#
        ),
    );
    for (k, v) in extra_annotations {
        annotations.insert(k.clone(), json!(v));
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": NS, "uid": "ing-uid",
                     "labels": {"app": "shop"}, "annotations": annotations},
        "spec": {"ingressClassName": "alb", "rules": [{"host": "shop.example.com", "http": {
            "paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {
                "name": "shop-root", "port": {"name": "use-annotation"}}}}]}}]}
    })
}

fn vs_key() -> ObjectKey {
    ObjectKey::new("networking.istio.io", "VirtualService", NS, "checkout")
}

fn dr_key() -> ObjectKey {
    ObjectKey::new("networking.istio.io", "DestinationRule", NS, "checkout-dr")
}

fn ingress_key() -> ObjectKey {
    ObjectKey::new("networking.k8s.io", "Ingress", NS, "shop")
}

fn istio() -> IstioRouter {
    let config: IstioConfig = serde_json::from_value(json!({
        "virtualService": {"name": "checkout", "routes": ["primary"]},
        "destinationRule": {"name": "checkout-dr", "canarySubsetName": "canary",
                            "stableSubsetName": "stable"}
    }))
    .unwrap();
    IstioRouter::new(config)
}

fn alb() -> AlbRouter {
    let config: AlbConfig = serde_json::from_value(
        json!({"ingress": "shop", "servicePort": 80, "rootService": "shop-root"}),
    )
    .unwrap();
    AlbRouter::new(config)
}

/// One step of a canary: weight, hashes, managed routes (`(name, Some(step))` active, `None`
/// absent).
#[derive(Clone, Debug)]
struct Step {
    canary: i32,
    canary_hash: &'static str,
    stable_hash: &'static str,
    header: Option<bool>,
    mirror: Option<bool>,
}

fn route_state(name: &str, state: Option<bool>, mirror: bool) -> Value {
    match state {
        Some(true) if mirror => json!({"name": name, "state": "active",
            "setMirrorRoute": {"name": name, "percentage": 50,
                               "match": [{"method": {"exact": "GET"}}]}}),
        Some(true) => json!({"name": name, "state": "active",
            "setHeaderRoute": {"name": name,
                               "match": [{"headerName": "X-Beta", "headerValue": {"exact": "on"}}]}}),
        Some(false) => json!({"name": name, "state": "absent"}),
        None => json!({"name": name, "state": "unchanged"}),
    }
}

/// `services`: the Istio subset mode programs no Services; ALB needs them.
fn desired(step: &Step, services: bool, mirror_allowed: bool) -> DesiredTraffic {
    let svc = |s: &str| {
        if services {
            s.to_owned()
        } else {
            String::new()
        }
    };
    let mut routes = vec![route_state("beta", step.header, false)];
    if mirror_allowed {
        routes.push(route_state("shadow", step.mirror, true));
    }
    serde_json::from_value(json!({
        "rollout": {"namespace": NS, "name": "checkout", "uid": "rollout-uid"},
        "total": 100,
        "canary": {"weight": step.canary, "serviceName": svc("shop-canary"),
                   "podTemplateHash": step.canary_hash},
        "stable": {"weight": 100 - step.canary, "serviceName": svc("shop-stable"),
                   "podTemplateHash": step.stable_hash},
        "managedRoutes": routes,
        "case": "F2",
        "stepIndex": 0
    }))
    .unwrap()
}

/// What the controller releases with once the Rollout is gone: no hashes, 100 % stable,
/// every managed route absent (src/controller/reconcile.rs `release_snapshot`).
fn release_desired(services: bool, mirror_allowed: bool) -> DesiredTraffic {
    let step = Step {
        canary: 0,
        canary_hash: "",
        stable_hash: "",
        header: Some(false),
        mirror: Some(false),
    };
    desired(&step, services, mirror_allowed)
}

fn steps() -> Vec<Step> {
    let s = |canary, canary_hash, stable_hash, header, mirror| Step {
        canary,
        canary_hash,
        stable_hash,
        header,
        mirror,
    };
    vec![
        s(0, "c1", "s0", Some(false), Some(false)),
        s(20, "c1", "s0", Some(false), Some(false)),
        s(20, "c1", "s0", Some(true), Some(false)),
        s(50, "c1", "s0", Some(true), Some(true)),
        s(50, "c1", "s0", Some(false), Some(false)),
        s(100, "c1", "s0", Some(false), Some(false)),
        // Promoted: the new pods are stable, the canary subset follows them.
        s(0, "c1", "c1", Some(false), Some(false)),
    ]
}

/// Plans one step with every router and applies it, journaling the patches.
fn run_step(objects: &mut ObjectSet, journal: &mut Vec<JournalEntry>, step: &Step) {
    let plans = [
        istio().plan(&desired(step, false, true), objects).unwrap(),
        alb().plan(&desired(step, true, false), objects).unwrap(),
    ];
    for change in plans.iter().flatten() {
        apply_recorded(journal, objects, change, |_| true).unwrap();
    }
}

/// Releases with every router (journaling those patches too), then undoes the journal.
fn release_and_undo(objects: &mut ObjectSet, journal: &mut Vec<JournalEntry>) -> Vec<NotRestored> {
    let releases = [
        release(&istio(), &release_desired(false, true), objects),
        release(&alb(), &release_desired(true, false), objects),
    ];
    for change in releases.iter().flatten() {
        apply_recorded(journal, objects, change, |_| true).unwrap();
    }
    let result = undo(journal, objects);
    objects.apply_all(&result.changes).unwrap();
    // Undoing twice finds nothing left to do.
    let again = undo(journal, objects);
    assert_eq!(
        again.changes,
        vec![],
        "undo applied must leave nothing to undo"
    );
    result.not_restored
}

/// `Router::release` in one place: its signature moved from `&RolloutRef` to `&DesiredTraffic`.
fn release(router: &dyn Router, desired: &DesiredTraffic, objects: &ObjectSet) -> Vec<Change> {
    router.release(desired, objects).unwrap()
}

fn originals() -> ObjectSet {
    [virtual_service(&[]), destination_rule(&[]), ingress(&[])]
        .into_iter()
        .collect()
}

fn patch(ops: Value) -> Patch {
    serde_json::from_value(ops).unwrap()
}

fn entry(
    key: &ObjectKey,
    uid: &str,
    path: Value,
    original: Option<Value>,
    written: Option<Value>,
) -> JournalEntry {
    JournalEntry {
        kind: key.kind.clone(),
        group: key.group.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        uid: uid.into(),
        path: serde_json::from_value(path).unwrap(),
        original,
        written,
    }
}

fn record(journal: &mut Vec<JournalEntry>, key: &ObjectKey, before: &Value, ops: Value) {
    try_record(journal, key, before, &patch(ops)).unwrap();
}

fn only_patch(changes: &[Change]) -> Value {
    match changes {
        [Change::Patch { patch, .. }] => serde_json::to_value(patch).unwrap(),
        other => panic!("expected one patch, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// (a) A whole rollout with the real routers, then release + undo: every byte is back.

#[test]
fn whole_rollout_is_handed_back_exactly() {
    let original = originals();
    let mut objects = original.clone();
    let mut journal = Vec::new();
    for step in steps() {
        run_step(&mut objects, &mut journal, &step);
    }
    assert_ne!(objects, original, "the rollout changed the user's objects");
    // The promoted DestinationRule pins both subsets on the new hash: journaled, the canary
    // subset's label map member by member because rollout-router created that map.
    let dr_entries: Vec<(Value, Option<Value>, Option<Value>)> = journal
        .iter()
        .filter(|e| e.kind == "DestinationRule")
        .map(|e| {
            (
                Value::Array(e.path.clone()),
                e.original.clone(),
                e.written.clone(),
            )
        })
        .collect();
    assert_eq!(
        dr_entries,
        vec![
            (
                json!(["spec", "subsets", {"name": "canary"}, "labels"]),
                None,
                Some(json!({}))
            ),
            (
                json!(["spec", "subsets", {"name": "canary"}, "labels", HASH_LABEL]),
                None,
                Some(json!("c1"))
            ),
            (
                json!(["spec", "subsets", {"name": "stable"}, "labels", HASH_LABEL]),
                None,
                Some(json!("c1"))
            ),
        ]
    );
    let ingress_action = journal
        .iter()
        .find(|e| e.path.last() == Some(&json!(ACTION)))
        .expect("the weighted action is journaled");
    assert_eq!(
        ingress_action.original,
        original.get(&ingress_key()).unwrap()["metadata"]["annotations"]
            .get(ACTION)
            .cloned()
    );

    let not_restored = release_and_undo(&mut objects, &mut journal);
    assert_eq!(not_restored, vec![]);
    assert_eq!(objects.get(&vs_key()), original.get(&vs_key()));
    assert_eq!(objects.get(&dr_key()), original.get(&dr_key()));
    assert_eq!(objects.get(&ingress_key()), original.get(&ingress_key()));
    // Key order too (preserve_order): compare the serialized text.
    for (key, value) in original.iter() {
        assert_eq!(
            serde_json::to_string(objects.get(key).unwrap()).unwrap(),
            serde_json::to_string(value).unwrap(),
            "{key}"
        );
    }
}

// The undo patch of the DestinationRule after the promotion, exactly: guarded by the subset's
// name and the written hash; the label map rollout-router created is removed once empty.
#[test]
fn destination_rule_undo_patch_is_guarded() {
    let mut objects = originals();
    let mut journal = Vec::new();
    for step in steps() {
        run_step(&mut objects, &mut journal, &step);
    }
    let dr_journal: Vec<JournalEntry> = journal
        .into_iter()
        .filter(|e| e.kind == "DestinationRule")
        .collect();
    let result = undo(&dr_journal, &objects);
    assert_eq!(result.not_restored, vec![]);
    assert_eq!(
        only_patch(&result.changes),
        json!([
            {"op": "test", "path": "/spec/subsets/0/name", "value": "stable"},
            {"op": "test", "path": "/spec/subsets/0/labels/rollouts-pod-template-hash", "value": "c1"},
            {"op": "remove", "path": "/spec/subsets/0/labels/rollouts-pod-template-hash"},
            {"op": "test", "path": "/spec/subsets/1/name", "value": "canary"},
            {"op": "test", "path": "/spec/subsets/1/labels/rollouts-pod-template-hash", "value": "c1"},
            {"op": "remove", "path": "/spec/subsets/1/labels/rollouts-pod-template-hash"},
            {"op": "test", "path": "/spec/subsets/1/name", "value": "canary"},
            {"op": "test", "path": "/spec/subsets/1/labels", "value": {}},
            {"op": "remove", "path": "/spec/subsets/1/labels"},
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// (b) The user edits an unrelated field and a journaled field in between.

#[test]
fn user_edits_in_between_win() {
    let original = originals();
    let mut objects = original.clone();
    let mut journal = Vec::new();
    for step in steps().into_iter().take(4) {
        run_step(&mut objects, &mut journal, &step);
    }
    // Unrelated: the legacy route's timeout. Journaled: the canary subset's hash label.
    let mut vs = objects.get(&vs_key()).unwrap().clone();
    let legacy = vs["spec"]["http"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["name"] == "legacy")
        .unwrap();
    legacy["timeout"] = json!("3s");
    objects.insert(vs);
    let mut dr = objects.get(&dr_key()).unwrap().clone();
    dr["spec"]["subsets"][1]["labels"][HASH_LABEL] = json!("pinned-by-user");
    objects.insert(dr);

    let not_restored = release_and_undo(&mut objects, &mut journal);

    let mut expected_vs = original.get(&vs_key()).unwrap().clone();
    expected_vs["spec"]["http"][0]["timeout"] = json!("3s");
    assert_eq!(objects.get(&vs_key()), Some(&expected_vs));
    let mut expected_dr = original.get(&dr_key()).unwrap().clone();
    expected_dr["spec"]["subsets"][1]["labels"] = json!({HASH_LABEL: "pinned-by-user"});
    assert_eq!(objects.get(&dr_key()), Some(&expected_dr));
    assert_eq!(objects.get(&ingress_key()), original.get(&ingress_key()));

    let reported: Vec<(String, String)> = not_restored
        .iter()
        .map(|n| (journal::describe(&n.entry.path), n.reason.to_string()))
        .collect();
    assert_eq!(
        reported,
        vec![
            (
                format!("spec.subsets[name=canary].labels.{HASH_LABEL}"),
                r#"changed since rollout-router wrote it (now "pinned-by-user"); kept"#.to_owned()
            ),
            (
                "spec.subsets[name=canary].labels".to_owned(),
                format!(
                    r#"changed since rollout-router wrote it (now {{"{HASH_LABEL}":"pinned-by-user"}}); kept"#
                )
            ),
        ]
    );
    assert_eq!(
        not_restored[0].to_string(),
        format!(
            "DestinationRule shop/checkout-dr: spec.subsets[name=canary].labels.{HASH_LABEL}: \
             changed since rollout-router wrote it (now \"pinned-by-user\"); kept"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// (c) Elements inserted ahead between record and undo: locators follow the element.

#[test]
fn locator_follows_the_element_when_indices_shift() {
    let key = vs_key();
    let before = virtual_service(&[]);
    let mut journal = Vec::new();
    record(
        &mut journal,
        &key,
        &before,
        json!([
            {"op": "test", "path": "/spec/http/1/name", "value": "primary"},
            {"op": "test", "path": "/spec/http/1/route/1/destination/host", "value": "checkout"},
            {"op": "test", "path": "/spec/http/1/route/1/destination/subset", "value": "canary"},
            {"op": "replace", "path": "/spec/http/1/route/1/weight", "value": 30},
            {"op": "replace", "path": "/spec/http/1/timeout", "value": "10s"},
        ]),
    );
    assert_eq!(
        journal,
        vec![
            entry(
                &key,
                "vs-uid",
                json!(["spec", "http", {"name": "primary"}, "route",
                       {"/destination/host": "checkout", "/destination/subset": "canary"}, "weight"]),
                Some(json!(0)),
                Some(json!(30))
            ),
            entry(
                &key,
                "vs-uid",
                json!(["spec", "http", {"name": "primary"}, "timeout"]),
                Some(json!("5s")),
                Some(json!("10s"))
            ),
        ]
    );
    let mut after = before.clone();
    json_patch_apply(
        &mut after,
        json!([
        {"op": "replace", "path": "/spec/http/1/route/1/weight", "value": 30},
        {"op": "replace", "path": "/spec/http/1/timeout", "value": "10s"}]),
    );
    // Someone inserts two routes ahead of primary and a destination ahead of the canary one.
    after["spec"]["http"]
        .as_array_mut()
        .unwrap()
        .splice(0..0, [json!({"name": "new-a"}), json!({"name": "new-b"})]);
    after["spec"]["http"][3]["route"]
        .as_array_mut()
        .unwrap()
        .insert(
            0,
            json!({"destination": {"host": "mirror-svc"}, "weight": 0}),
        );
    let objects: ObjectSet = [after.clone()].into_iter().collect();
    let result = undo(&journal, &objects);
    assert_eq!(result.not_restored, vec![]);
    assert_eq!(
        only_patch(&result.changes),
        json!([
            {"op": "test", "path": "/spec/http/3/name", "value": "primary"},
            {"op": "test", "path": "/spec/http/3/timeout", "value": "10s"},
            {"op": "replace", "path": "/spec/http/3/timeout", "value": "5s"},
            {"op": "test", "path": "/spec/http/3/name", "value": "primary"},
            {"op": "test", "path": "/spec/http/3/route/2/destination/host", "value": "checkout"},
            {"op": "test", "path": "/spec/http/3/route/2/destination/subset", "value": "canary"},
            {"op": "test", "path": "/spec/http/3/route/2/weight", "value": 30},
            {"op": "replace", "path": "/spec/http/3/route/2/weight", "value": 0},
        ])
    );
    let located = locate(&after, &journal[1].path).unwrap();
    assert_eq!(located.pointer.as_str(), "/spec/http/3/timeout");
    assert_eq!(located.value, Some(json!("10s")));
}

fn json_patch_apply(doc: &mut Value, ops: Value) {
    rollout_router_core::json_patch::patch(doc, &patch(ops)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Table tests of record / undo / compact on hand-written patches.

fn annotated(annotations: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "shop", "namespace": NS, "uid": "ing-uid", "resourceVersion": "7",
                        "annotations": annotations},
           "spec": {}})
}

#[test]
fn record_table() {
    let key = ingress_key();
    struct Case {
        name: &'static str,
        before: Value,
        patches: Vec<Value>,
        expected: Vec<(Value, Option<Value>, Option<Value>)>,
    }
    let cases = [
        Case {
            name: "replace keeps the original text",
            before: annotated(json!({"a": "1"})),
            patches: vec![
                json!([{"op": "test", "path": "/metadata/annotations/a", "value": "1"},
                                 {"op": "replace", "path": "/metadata/annotations/a", "value": "2"}]),
            ],
            expected: vec![(
                json!(["metadata", "annotations", "a"]),
                Some(json!("1")),
                Some(json!("2")),
            )],
        },
        Case {
            name: "later writes keep the first original",
            before: annotated(json!({"a": "1"})),
            patches: vec![
                json!([{"op": "replace", "path": "/metadata/annotations/a", "value": "2"}]),
                json!([{"op": "replace", "path": "/metadata/annotations/a", "value": "3"}]),
            ],
            expected: vec![(
                json!(["metadata", "annotations", "a"]),
                Some(json!("1")),
                Some(json!("3")),
            )],
        },
        Case {
            name: "writing the original back drops the entry",
            before: annotated(json!({"a": "1"})),
            patches: vec![
                json!([{"op": "add", "path": "/metadata/annotations/b~1c", "value": "x"}]),
                json!([{"op": "remove", "path": "/metadata/annotations/b~1c"}]),
            ],
            expected: vec![],
        },
        Case {
            name: "a removal has no written value",
            before: annotated(json!({"a": "1"})),
            patches: vec![json!([{"op": "remove", "path": "/metadata/annotations/a"}])],
            expected: vec![(
                json!(["metadata", "annotations", "a"]),
                Some(json!("1")),
                None,
            )],
        },
        Case {
            name: "writing the value already there records nothing",
            before: annotated(json!({"a": "1"})),
            patches: vec![
                json!([{"op": "replace", "path": "/metadata/annotations/a", "value": "1"}]),
            ],
            expected: vec![],
        },
        Case {
            name: "a created map is journaled member by member",
            before: json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                           "metadata": {"name": "shop", "namespace": NS}}),
            patches: vec![
                json!([{"op": "add", "path": "/metadata/annotations", "value": {"a": "1", "b": {"c": 2}}}]),
            ],
            expected: vec![
                (json!(["metadata", "annotations"]), None, Some(json!({}))),
                (
                    json!(["metadata", "annotations", "a"]),
                    None,
                    Some(json!("1")),
                ),
                (
                    json!(["metadata", "annotations", "b"]),
                    None,
                    Some(json!({})),
                ),
                (
                    json!(["metadata", "annotations", "b", "c"]),
                    None,
                    Some(json!(2)),
                ),
            ],
        },
        Case {
            name: "array insertions, removals and whole-element replaces are not journaled",
            before: json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                           "metadata": {"name": "shop", "namespace": NS},
                           "spec": {"rules": [{"host": "a"}, {"host": "b"}]}}),
            patches: vec![json!([
                {"op": "add", "path": "/spec/rules/0", "value": {"host": "managed"}},
                {"op": "add", "path": "/spec/rules/-", "value": {"host": "managed2"}},
                {"op": "replace", "path": "/spec/rules/1", "value": {"host": "x"}},
                {"op": "remove", "path": "/spec/rules/2"},
            ])],
            expected: vec![],
        },
        Case {
            name: "without tests or a name, the element is its index",
            before: json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                           "metadata": {"name": "shop", "namespace": NS},
                           "spec": {"rules": [{"host": "a", "http": {"paths": [1]}}]}}),
            patches: vec![json!([
                {"op": "test", "path": "/spec/rules/0/http/paths", "value": [1]},
                {"op": "replace", "path": "/spec/rules/0/http/paths", "value": [0, 1]}])],
            // The test pins the field being written: it cannot identify the rule.
            expected: vec![(
                json!(["spec", "rules", 0, "http", "paths"]),
                Some(json!([1])),
                Some(json!([0, 1])),
            )],
        },
        Case {
            name: "an untested element is found by its unique name",
            before: json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                           "metadata": {"name": "shop", "namespace": NS},
                           "spec": {"x": [{"name": "a", "v": 1}, {"name": "b", "v": 1}]}}),
            patches: vec![json!([{"op": "replace", "path": "/spec/x/1/v", "value": 2}])],
            expected: vec![(
                json!(["spec", "x", {"name": "b"}, "v"]),
                Some(json!(1)),
                Some(json!(2)),
            )],
        },
        Case {
            name: "an insertion earlier in the patch does not confuse the identity",
            before: json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                           "metadata": {"name": "shop", "namespace": NS},
                           "spec": {"x": [{"id": "a", "v": 1}, {"id": "b", "v": 1}]}}),
            patches: vec![json!([
                {"op": "test", "path": "/spec/x/0/id", "value": "a"},
                {"op": "add", "path": "/spec/x/0", "value": {"id": "managed"}},
                {"op": "replace", "path": "/spec/x/1/v", "value": 5}])],
            expected: vec![(
                json!(["spec", "x", {"id": "a"}, "v"]),
                Some(json!(1)),
                Some(json!(5)),
            )],
        },
    ];
    for case in cases {
        let mut journal = Vec::new();
        let mut before = case.before.clone();
        for ops in case.patches {
            try_record(&mut journal, &key, &before, &patch(ops.clone())).unwrap();
            json_patch_apply(&mut before, ops);
        }
        let got: Vec<(Value, Option<Value>, Option<Value>)> = journal
            .into_iter()
            .map(|e| (Value::Array(e.path), e.original, e.written))
            .collect();
        assert_eq!(got, case.expected, "{}", case.name);
    }
}

#[test]
fn record_rejects_a_stale_before() {
    let mut journal = Vec::new();
    let err = try_record(
        &mut journal,
        &ingress_key(),
        &annotated(json!({})),
        &patch(json!([{"op": "replace", "path": "/metadata/annotations/a", "value": "2"}])),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Ingress shop/shop: patch operation on /metadata/annotations/a does not apply to the object given as before"
    );
}

#[test]
fn undo_table() {
    let key = ingress_key();
    let ann = |path: &str| json!(["metadata", "annotations", path]);
    struct Case {
        name: &'static str,
        entries: Vec<JournalEntry>,
        current: Option<Value>,
        patch: Option<Value>,
        not_restored: Vec<NotRestoredReason>,
    }
    let cases = [
        Case {
            name: "a replaced value goes back, guarded by what was written",
            entries: vec![entry(
                &key,
                "ing-uid",
                ann("a"),
                Some(json!("1")),
                Some(json!("2")),
            )],
            current: Some(annotated(json!({"a": "2", "z": "0"}))),
            patch: Some(json!([
                {"op": "test", "path": "/metadata/annotations/a", "value": "2"},
                {"op": "replace", "path": "/metadata/annotations/a", "value": "1"}])),
            not_restored: vec![],
        },
        Case {
            name: "an added annotation is removed, only that key",
            entries: vec![entry(&key, "ing-uid", ann("b/c"), None, Some(json!("x")))],
            current: Some(annotated(json!({"a": "1", "b/c": "x"}))),
            patch: Some(json!([
                {"op": "test", "path": "/metadata/annotations/b~1c", "value": "x"},
                {"op": "remove", "path": "/metadata/annotations/b~1c"}])),
            not_restored: vec![],
        },
        Case {
            name: "a removed annotation is added back, guarded by the map",
            entries: vec![entry(&key, "ing-uid", ann("a"), Some(json!("1")), None)],
            current: Some(annotated(json!({"z": "0"}))),
            patch: Some(json!([
                {"op": "test", "path": "/metadata/annotations", "value": {"z": "0"}},
                {"op": "add", "path": "/metadata/annotations/a", "value": "1"}])),
            not_restored: vec![],
        },
        Case {
            name: "a removed annotation whose map is gone brings the map back",
            entries: vec![entry(&key, "ing-uid", ann("a"), Some(json!("1")), None)],
            current: Some(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                 "metadata": {"name": "shop", "namespace": NS, "uid": "ing-uid"}}),
            ),
            patch: Some(json!([
                {"op": "test", "path": "/metadata", "value": {"name": "shop", "namespace": NS, "uid": "ing-uid"}},
                {"op": "add", "path": "/metadata/annotations", "value": {"a": "1"}}])),
            not_restored: vec![],
        },
        Case {
            name: "a field already back at its original needs nothing",
            entries: vec![entry(
                &key,
                "ing-uid",
                ann("a"),
                Some(json!("1")),
                Some(json!("2")),
            )],
            current: Some(annotated(json!({"a": "1"}))),
            patch: None,
            not_restored: vec![],
        },
        Case {
            name: "a user's value is kept and reported",
            entries: vec![entry(
                &key,
                "ing-uid",
                ann("a"),
                Some(json!("1")),
                Some(json!("2")),
            )],
            current: Some(annotated(json!({"a": "mine"}))),
            patch: None,
            not_restored: vec![NotRestoredReason::UserChanged {
                current: Some(json!("mine")),
            }],
        },
        Case {
            name: "a user's removal is kept and reported",
            entries: vec![entry(
                &key,
                "ing-uid",
                ann("a"),
                Some(json!("1")),
                Some(json!("2")),
            )],
            current: Some(annotated(json!({}))),
            patch: None,
            not_restored: vec![NotRestoredReason::UserChanged { current: None }],
        },
        Case {
            name: "the object is gone",
            entries: vec![entry(
                &key,
                "ing-uid",
                ann("a"),
                Some(json!("1")),
                Some(json!("2")),
            )],
            current: None,
            patch: None,
            not_restored: vec![NotRestoredReason::ObjectGone],
        },
        Case {
            name: "the object was re-created (another uid)",
            entries: vec![entry(
                &key,
                "old-uid",
                ann("a"),
                Some(json!("1")),
                Some(json!("2")),
            )],
            current: Some(annotated(json!({"a": "2"}))),
            patch: None,
            not_restored: vec![NotRestoredReason::ObjectGone],
        },
        Case {
            name: "the element is gone",
            entries: vec![entry(
                &key,
                "ing-uid",
                json!(["spec", "x", {"name": "b"}, "v"]),
                Some(json!(1)),
                Some(json!(2)),
            )],
            current: Some(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                 "metadata": {"name": "shop", "namespace": NS},
                                 "spec": {"x": [{"name": "a", "v": 2}]}}),
            ),
            patch: None,
            not_restored: vec![NotRestoredReason::Locate(LocateError::ElementGone {
                at: "spec.x".into(),
                step: "[name=b]".into(),
            })],
        },
        Case {
            name: "an element that is no longer unique is left alone",
            entries: vec![entry(
                &key,
                "ing-uid",
                json!(["spec", "x", {"name": "b"}, "v"]),
                Some(json!(1)),
                Some(json!(2)),
            )],
            current: Some(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                 "metadata": {"name": "shop", "namespace": NS},
                                 "spec": {"x": [{"name": "b", "v": 2}, {"name": "b", "v": 2}]}}),
            ),
            patch: None,
            not_restored: vec![NotRestoredReason::Locate(LocateError::Ambiguous {
                at: "spec.x".into(),
                step: "[name=b]".into(),
            })],
        },
        Case {
            name: "a bare index is used as is, without an identity test",
            entries: vec![entry(
                &key,
                "ing-uid",
                json!(["spec", "x", 1, "v"]),
                Some(json!(1)),
                Some(json!(2)),
            )],
            current: Some(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                 "metadata": {"name": "shop", "namespace": NS},
                                 "spec": {"x": [{"v": 0}, {"v": 2}]}}),
            ),
            patch: Some(json!([
                {"op": "test", "path": "/spec/x/1/v", "value": 2},
                {"op": "replace", "path": "/spec/x/1/v", "value": 1}])),
            not_restored: vec![],
        },
    ];
    for case in cases {
        let objects: ObjectSet = case.current.into_iter().collect();
        let result = undo(&case.entries, &objects);
        let got_patch = match result.changes.as_slice() {
            [] => None,
            changes => Some(only_patch(changes)),
        };
        assert_eq!(got_patch, case.patch, "{}", case.name);
        let reasons: Vec<NotRestoredReason> =
            result.not_restored.into_iter().map(|n| n.reason).collect();
        assert_eq!(reasons, case.not_restored, "{}", case.name);
        // Every produced patch applies to the object it was computed for.
        let mut applied = objects.clone();
        applied.apply_all(&result.changes).unwrap();
    }
}

#[test]
fn compact_drops_only_entries_back_at_their_original() {
    let key = ingress_key();
    let ann = |k: &str| json!(["metadata", "annotations", k]);
    let mut journal = vec![
        entry(
            &key,
            "ing-uid",
            ann("back"),
            Some(json!("1")),
            Some(json!("2")),
        ),
        entry(
            &key,
            "ing-uid",
            ann("written"),
            Some(json!("1")),
            Some(json!("2")),
        ),
        entry(
            &key,
            "ing-uid",
            ann("added-then-removed"),
            None,
            Some(json!("x")),
        ),
        entry(
            &ObjectKey::new("", "Service", NS, "gone"),
            "",
            ann("a"),
            None,
            Some(json!("x")),
        ),
    ];
    let objects: ObjectSet = [annotated(json!({"back": "1", "written": "2"}))]
        .into_iter()
        .collect();
    compact(&mut journal, &objects);
    let left: Vec<String> = journal.iter().map(|e| journal::describe(&e.path)).collect();
    assert_eq!(
        left,
        vec![
            "metadata.annotations.written".to_owned(),
            "metadata.annotations.a".to_owned()
        ]
    );
}

#[test]
fn recording_a_recreated_object_forgets_the_dead_one() {
    let key = ingress_key();
    let mut journal = vec![entry(
        &key,
        "old-uid",
        json!(["metadata", "annotations", "a"]),
        Some(json!("0")),
        Some(json!("1")),
    )];
    record(
        &mut journal,
        &key,
        &annotated(json!({"a": "1"})),
        json!([{"op": "replace", "path": "/metadata/annotations/a", "value": "2"}]),
    );
    assert_eq!(
        journal,
        vec![entry(
            &key,
            "ing-uid",
            json!(["metadata", "annotations", "a"]),
            Some(json!("1")),
            Some(json!("2"))
        )]
    );
}

#[test]
fn journal_entry_json_shape() {
    let key = dr_key();
    let e = entry(
        &key,
        "dr-uid",
        json!(["spec", "subsets", {"name": "canary"}, "labels", HASH_LABEL]),
        None,
        Some(json!("c1")),
    );
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"kind": "DestinationRule", "group": "networking.istio.io", "namespace": NS,
               "name": "checkout-dr", "uid": "dr-uid",
               "path": ["spec", "subsets", {"name": "canary"}, "labels", HASH_LABEL],
               "written": "c1"})
    );
}

// ---------------------------------------------------------------------------------------------
// (d) Random extra routes, subsets, annotations and weights: every byte comes back.

fn extra_route() -> impl Strategy<Value = Value> {
    ("[a-z]{1,6}", prop::option::of("[0-9]{1,2}s"), 0usize..3).prop_map(|(name, timeout, kind)| {
        let name = format!("user-{name}");
        let mut route = match kind {
            0 => json!({"name": name, "route": [{"destination": {"host": "other"}}]}),
            1 => json!({"name": name, "match": [{"headers": {"x": {"exact": name}}}],
                        "route": [{"destination": {"host": "checkout", "subset": "stable"}}]}),
            _ => json!({"route": [{"destination": {"host": "unnamed"}, "weight": 100}]}),
        };
        if let Some(t) = timeout {
            route["timeout"] = json!(t);
        }
        route
    })
}

fn extra_subset() -> impl Strategy<Value = Value> {
    ("[a-z]{1,6}", prop::option::of("[a-z0-9]{1,5}")).prop_map(|(name, label)| match label {
        Some(l) => json!({"name": format!("extra-{name}"), "labels": {"version": l}}),
        None => json!({"name": format!("extra-{name}")}),
    })
}

fn weights() -> impl Strategy<Value = Vec<(i32, bool)>> {
    prop::collection::vec((0..=100i32, any::<bool>()), 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn record_release_undo_restores_every_byte(
        routes in prop::collection::vec(extra_route(), 0..4),
        subsets in prop::collection::vec(extra_subset(), 0..3),
        annotations in prop::collection::vec(("[a-z]{1,8}\\.example\\.com/[a-z]{1,5}", "[ -~]{0,12}"), 0..4),
        canary_labels in prop::option::of("[a-z]{1,5}"),
        steps in weights(),
        promote in any::<bool>(),
    ) {
        let mut dr = destination_rule(&subsets);
        if let Some(l) = &canary_labels {
            dr["spec"]["subsets"][1]["labels"] = json!({"track": l});
        }
        let original: ObjectSet = [virtual_service(&routes), dr, ingress(&annotations)]
            .into_iter()
            .collect();
        let mut objects = original.clone();
        let mut journal = Vec::new();
        for (canary, header) in &steps {
            let step = Step { canary: *canary, canary_hash: "c1", stable_hash: "s0",
                              header: Some(*header), mirror: Some(*header) };
            run_step(&mut objects, &mut journal, &step);
        }
        if promote {
            let step = Step { canary: 0, canary_hash: "c1", stable_hash: "c1",
                              header: Some(false), mirror: Some(false) };
            run_step(&mut objects, &mut journal, &step);
        }
        let not_restored = release_and_undo(&mut objects, &mut journal);
        prop_assert_eq!(not_restored, vec![]);
        for (key, value) in original.iter() {
            prop_assert_eq!(
                serde_json::to_string(objects.get(key).unwrap()).unwrap(),
                serde_json::to_string(value).unwrap()
            );
        }
    }
}
