//! Table tests of the desired-traffic engine against spec 00 §3 (every case), the worked
//! timeline of §3.4, the abort math of §3.2, `maxTrafficWeight` (§3.3), experiments (§2.3) and
//! the managed-route state function (§6.2). Each row asserts the whole `DesiredTraffic`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is the failure report"
)]

use pretty_assertions::assert_eq;
use rollout_router::engine::desired_traffic;
use rollout_router::rollout::{ExperimentView, ReplicaSetView, Rollout, TemplateStatus};
use rollout_router_core::{
    DesiredTraffic, HeaderRoutingMatch, Hold, HoldReason, ManagedRoute, ReplicaSetAvailability,
    RolloutRef, RouteSpec, RouteState, SetHeaderRoute, StringMatch, WeightCase, WeightDestination,
};
use serde_json::{Value, json};

const STABLE: &str = "stable1";
const CANARY: &str = "canary1";

/// The Rollout of the worked timeline (spec 00 §3.4): N = 10, managedRoutes [h1], steps
/// [setWeight 20, pause, setHeaderRoute h1 (X-Beta: on), setWeight 50, pause].
fn timeline_rollout() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "shop", "namespace": "prod", "uid": "u-1", "generation": 3,
                     "annotations": {"rollout.argoproj.io/revision": "2"}},
        "spec": {"replicas": 10, "strategy": {"canary": {
            "canaryService": "shop-canary", "stableService": "shop-stable",
            "trafficRouting": {"managedRoutes": [{"name": "h1"}],
                               "plugins": {"rollout-router/traffic": {"istio": {"virtualService": {"name": "vs"}}}}},
            "steps": [
                {"setWeight": 20}, {"pause": {}},
                {"setHeaderRoute": {"name": "h1", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "on"}}]}},
                {"setWeight": 50}, {"pause": {}}
            ]}}},
        "status": {"observedGeneration": "3", "stableRS": STABLE, "currentPodHash": CANARY, "currentStepIndex": 0}
    })
}

fn rollout(value: Value) -> Rollout {
    serde_json::from_value(value).unwrap()
}

/// Sets `path` (JSON pointer) in a JSON document, creating objects on the way.
fn set(mut doc: Value, path: &str, value: Value) -> Value {
    let mut cur = &mut doc;
    let tokens: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (i, t) in tokens.iter().enumerate() {
        if i + 1 == tokens.len() {
            match cur {
                Value::Array(a) => a[t.parse::<usize>().unwrap()] = value,
                _ => {
                    cur.as_object_mut().unwrap().insert((*t).to_owned(), value);
                }
            }
            break;
        }
        cur = match cur {
            Value::Array(a) => &mut a[t.parse::<usize>().unwrap()],
            _ => cur
                .as_object_mut()
                .unwrap()
                .entry(*t)
                .or_insert_with(|| json!({})),
        };
    }
    doc
}

fn rs(hash: &str, spec: i32, available: i32) -> ReplicaSetView {
    ReplicaSetView {
        name: format!("shop-{hash}"),
        pod_template_hash: hash.into(),
        spec_replicas: spec,
        replicas: spec,
        available_replicas: available,
    }
}

fn header_h1() -> RouteState {
    RouteState::Active {
        route: RouteSpec::SetHeaderRoute(SetHeaderRoute {
            name: "h1".into(),
            matches: vec![HeaderRoutingMatch {
                header_name: "X-Beta".into(),
                header_value: Some(StringMatch::exact("on")),
            }],
        }),
    }
}

/// The expected state for the timeline Rollout with the given case, canary weight, step index
/// and h1 state; hashes default to canary1/stable1.
fn expected(case: WeightCase, weight: i32, index: Option<i32>, h1: RouteState) -> DesiredTraffic {
    DesiredTraffic {
        rollout: RolloutRef {
            namespace: "prod".into(),
            name: "shop".into(),
            uid: "u-1".into(),
        },
        total: 100,
        canary: WeightDestination {
            weight,
            service_name: "shop-canary".into(),
            pod_template_hash: CANARY.into(),
        },
        stable: WeightDestination {
            weight: 100 - weight,
            service_name: "shop-stable".into(),
            pod_template_hash: STABLE.into(),
        },
        additional: vec![],
        ping_pong: None,
        managed_routes: vec![ManagedRoute {
            name: "h1".into(),
            state: h1,
        }],
        hold: None,
        case,
        step_index: index,
        replica_sets: vec![],
        aborting: false,
    }
}

/// The ReplicaSets the engine passes on for `views`: ordered by name, `replicas` from
/// `spec.replicas` (pinned down by hand in `replica_sets_and_aborting`).
fn sets_of(views: &[ReplicaSetView]) -> Vec<ReplicaSetAvailability> {
    let mut sets: Vec<ReplicaSetAvailability> = views
        .iter()
        .map(|rs| ReplicaSetAvailability {
            name: rs.name.clone(),
            pod_template_hash: rs.pod_template_hash.clone(),
            replicas: rs.spec_replicas,
            available_replicas: rs.available_replicas,
        })
        .collect();
    sets.sort_by(|a, b| a.name.cmp(&b.name));
    sets
}

/// `want` listing `views` as the Rollout's ReplicaSets.
fn listing(mut want: DesiredTraffic, views: &[ReplicaSetView]) -> DesiredTraffic {
    want.replica_sets = sets_of(views);
    want
}

fn at(index: i32) -> Value {
    set(timeline_rollout(), "/status/currentStepIndex", json!(index))
}

fn desired(doc: Value, rs: &[ReplicaSetView]) -> DesiredTraffic {
    desired_traffic(&rollout(doc), rs, None).unwrap()
}

/// Every row of the worked timeline, spec 00 §3.4.
#[test]
fn worked_timeline() {
    use RouteState::Absent;
    let stable = || rs(STABLE, 10, 10);
    let rows: Vec<(&str, Value, Vec<ReplicaSetView>, DesiredTraffic)> = vec![
        (
            "1: new RS, 0 pods",
            at(0),
            vec![stable(), rs(CANARY, 0, 0)],
            expected(WeightCase::D, 0, Some(0), Absent),
        ),
        (
            "2a: scaled to 2, none available",
            at(0),
            vec![stable(), rs(CANARY, 2, 0)],
            expected(WeightCase::D, 0, Some(0), Absent),
        ),
        (
            "2b: scaled to 2, 1 available",
            at(0),
            vec![stable(), rs(CANARY, 2, 1)],
            expected(WeightCase::F1, 0, Some(0), Absent),
        ),
        (
            "3: 2/2 available",
            at(0),
            vec![stable(), rs(CANARY, 2, 2)],
            expected(WeightCase::F2, 20, Some(0), Absent),
        ),
        (
            "4: pause",
            at(1),
            vec![stable(), rs(CANARY, 2, 2)],
            expected(WeightCase::F2, 20, Some(1), Absent),
        ),
        (
            "5: setHeaderRoute",
            at(2),
            vec![stable(), rs(CANARY, 2, 2)],
            expected(WeightCase::F2, 20, Some(2), header_h1()),
        ),
        (
            "6: scaling to 5",
            at(3),
            vec![stable(), rs(CANARY, 5, 3)],
            expected(WeightCase::F1, 20, Some(3), header_h1()),
        ),
        (
            "7: 5/5",
            at(3),
            vec![stable(), rs(CANARY, 5, 5)],
            expected(WeightCase::F2, 50, Some(3), header_h1()),
        ),
        (
            "8: all steps done, scaling to 10",
            at(5),
            vec![stable(), rs(CANARY, 10, 7)],
            expected(WeightCase::F1, 50, Some(5), header_h1()),
        ),
        (
            "9: 10/10",
            at(5),
            vec![stable(), rs(CANARY, 10, 10)],
            expected(WeightCase::F3, 100, Some(5), header_h1()),
        ),
    ];
    for (name, doc, replica_sets, want) in rows {
        let want = listing(want, &replica_sets);
        assert_eq!(desired(doc, &replica_sets), want, "row {name}");
    }

    // Row 10: promoted; both hashes are the new stable.
    let promoted = set(at(5), "/status/stableRS", json!(CANARY));
    let mut want = expected(WeightCase::B, 0, Some(5), Absent);
    want.stable.pod_template_hash = CANARY.into();
    let sets = [rs(CANARY, 10, 10)];
    assert_eq!(desired(promoted, &sets), listing(want, &sets), "row 10");

    // Abort at row 7 (no DSS): weight 0, routes removed, index reset to 0; abortLike.
    let aborted = set(at(0), "/status/abort", json!(true));
    let sets = [stable(), rs(CANARY, 5, 5)];
    let mut want = listing(expected(WeightCase::C, 0, Some(0), Absent), &sets);
    want.aborting = true;
    assert_eq!(desired(aborted, &sets), want);
}

fn dss(doc: Value) -> Value {
    set(doc, "/spec/strategy/canary/dynamicStableScale", json!(true))
}

fn weights(doc: Value, canary: i32, canary_hash: &str) -> Value {
    set(
        doc,
        "/status/canary/weights",
        json!({"canary": {"weight": canary, "serviceName": "shop-canary", "podTemplateHash": canary_hash},
               "stable": {"weight": 100 - canary, "serviceName": "shop-stable", "podTemplateHash": STABLE}}),
    )
}

/// The ReplicaSets and abortLike flag the engine passes on for the Istio delay rule (spec 10
/// §6.1): every ReplicaSet, ordered by name, `replicas` = `spec.replicas`.
#[test]
fn replica_sets_and_aborting() {
    let mut scaling = rs(CANARY, 4, 1);
    scaling.replicas = 2; // status.replicas lags spec.replicas while scaling up
    let old = ReplicaSetView {
        name: "shop-0ld".into(),
        pod_template_hash: "0ld".into(),
        spec_replicas: 0,
        replicas: 0,
        available_replicas: 0,
    };
    let d = desired(at(0), &[rs(STABLE, 10, 9), scaling, old]);
    let avail = |name: &str, hash: &str, replicas, available_replicas| ReplicaSetAvailability {
        name: name.into(),
        pod_template_hash: hash.into(),
        replicas,
        available_replicas,
    };
    assert_eq!(
        (d.replica_sets, d.aborting),
        (
            vec![
                avail("shop-0ld", "0ld", 0, 0),
                avail("shop-canary1", CANARY, 4, 1),
                avail("shop-stable1", STABLE, 10, 9),
            ],
            false
        )
    );
    // status.abort is abortLike; it and the empty list stay out of the JSON when unset.
    let aborted = desired(set(at(0), "/status/abort", json!(true)), &[]);
    assert!(aborted.aborting);
    let json = serde_json::to_value(desired(at(0), &[])).unwrap();
    assert_eq!(
        (json.get("replicaSets"), json.get("aborting")),
        (None, None)
    );
}

/// The cases of spec 00 §3 not covered by the timeline: A, E (with and without DSS), G.
#[test]
fn decision_cases() {
    // A: spec reverted to the stable template with DSS while the stable is scaled down: hold
    // the recorded canary weight and the previous canary hash; routes untouched.
    let a = weights(
        dss(set(
            set(at(5), "/status/currentPodHash", json!(STABLE)),
            "/status/stableRS",
            json!(STABLE),
        )),
        50,
        CANARY,
    );
    // The dynamic rollback is abortLike (spec 10 §6.1).
    let sets = [rs(STABLE, 10, 6)];
    let mut want = listing(
        expected(WeightCase::A, 50, Some(5), RouteState::Unchanged),
        &sets,
    );
    want.aborting = true;
    assert_eq!(desired(a.clone(), &sets), want, "A");
    // Once the stable is fully available again, case B.
    let sets = [rs(STABLE, 10, 10)];
    want = listing(
        expected(WeightCase::B, 0, Some(5), RouteState::Absent),
        &sets,
    );
    want.canary.pod_template_hash = STABLE.into();
    assert_eq!(desired(a, &sets), want, "A -> B");

    // E without DSS: frozen at the recorded weight; routes removed.
    let e = set(
        weights(at(3), 30, CANARY),
        "/status/promoteFull",
        json!(true),
    );
    let sets = [rs(STABLE, 10, 10), rs(CANARY, 10, 7)];
    assert_eq!(
        desired(e.clone(), &sets),
        listing(
            expected(WeightCase::E, 30, Some(3), RouteState::Absent),
            &sets
        ),
        "E"
    );
    // E without DSS and no recorded weights: 0.
    let e0 = set(at(3), "/status/promoteFull", json!(true));
    assert_eq!(
        desired(e0, &[rs(STABLE, 10, 10), rs(CANARY, 10, 7)])
            .canary
            .weight,
        0,
        "E, no weights"
    );
    // E with DSS: MAX × available / N.
    let sets = [rs(STABLE, 3, 3), rs(CANARY, 10, 7)];
    assert_eq!(
        desired(dss(e.clone()), &sets),
        listing(
            expected(WeightCase::E, 70, Some(3), RouteState::Absent),
            &sets
        ),
        "E with DSS"
    );
    // E with DSS and more canary pods than N (setCanaryScale): clamped to MAX (Argo #4424).
    assert_eq!(
        desired(dss(e.clone()), &[rs(STABLE, 0, 0), rs(CANARY, 12, 12)])
            .canary
            .weight,
        100,
        "E clamped"
    );
    // E with DSS and N == 0: no division by zero.
    let e_zero = set(dss(e), "/spec/replicas", json!(0));
    let d = desired(e_zero, &[rs(STABLE, 0, 0), rs(CANARY, 0, 1)]);
    assert_eq!(
        (d.case, d.canary.weight),
        (WeightCase::E, 0),
        "E with N = 0"
    );

    // G: no steps: weight 0, no step index.
    let g = set(timeline_rollout(), "/spec/strategy/canary/steps", json!([]));
    let mut want = expected(WeightCase::G, 0, None, RouteState::Absent);
    want.managed_routes[0].state = RouteState::Absent;
    let sets = [rs(STABLE, 10, 10), rs(CANARY, 10, 10)];
    assert_eq!(desired(g, &sets), listing(want, &sets), "G");

    // B has priority over abort (#3064).
    let b = set(
        set(at(0), "/status/abort", json!(true)),
        "/status/stableRS",
        json!(CANARY),
    );
    assert_eq!(desired(b, &[rs(CANARY, 10, 10)]).case, WeightCase::B);
}

fn abort_dss(
    steps: Value,
    stable_avail: i32,
    canary_avail: i32,
    recorded: Option<i32>,
) -> DesiredTraffic {
    let mut doc = dss(set(
        set(at(0), "/status/abort", json!(true)),
        "/spec/strategy/canary/steps",
        steps,
    ));
    doc = set(
        doc,
        "/spec/strategy/canary/trafficRouting/managedRoutes",
        json!([]),
    );
    if let Some(c) = recorded {
        doc = weights(doc, c, CANARY);
    }
    desired(
        doc,
        &[rs(STABLE, 10, stable_avail), rs(CANARY, 10, canary_avail)],
    )
}

/// The abort math of spec 00 §3.2 with dynamicStableScale, and without it.
#[test]
fn abort_math() {
    let steps = json!([{"setWeight": 20}, {"setWeight": 50}, {"setWeight": 80}]);
    let w = |stable, canary, recorded| {
        abort_dss(steps.clone(), stable, canary, recorded)
            .canary
            .weight
    };
    // Stable still scaling up (s = 50 < MAX - d = 80): hold the applied weight.
    assert_eq!(w(5, 5, Some(80)), 80);
    // Stable at 8: reverse stepping finds no weight below the canary size: follow stable
    // availability, never increase: min(e = 20, c = 80).
    assert_eq!(w(8, 2, Some(80)), 20);
    // Never increases: applied 10 stays at most 10.
    assert_eq!(w(8, 2, Some(10)), 10);
    // Step down through the setWeight values: stable 5, canary 6 → d = 50 (5 < 6), s = 50 ≥ 50.
    assert_eq!(w(5, 6, Some(80)), 50);
    // No recorded weights: max(e, d).
    assert_eq!(w(7, 3, None), 30);
    // Stable fully available: 0.
    assert_eq!(w(10, 2, Some(80)), 0);

    // Argo #4841 (fixed): minPodsPerReplicaSet keeps 2 canary pods, so Argo parks at the
    // smallest step weight (10) forever; rollout-router returns 0 once the stable is full.
    let parks = dss(set(
        set(
            set(at(0), "/status/abort", json!(true)),
            "/spec/strategy/canary/steps",
            json!([{"setWeight": 10}, {"setWeight": 50}]),
        ),
        "/spec/strategy/canary/minPodsPerReplicaSet",
        json!(2),
    ));
    let d = desired(
        weights(parks, 10, CANARY),
        &[rs(STABLE, 10, 10), rs(CANARY, 2, 2)],
    );
    assert_eq!((d.case, d.canary.weight), (WeightCase::C, 0));

    // An explicit abortScaleDownDelaySeconds: the canary size does not bound the weight
    // (#4898): stable 8 → expected 2 → 20 is not below 2 pods → d = 0 → min(e = 20, c).
    let delayed = set(
        dss(set(
            set(at(0), "/status/abort", json!(true)),
            "/spec/strategy/canary/steps",
            steps.clone(),
        )),
        "/spec/strategy/canary/abortScaleDownDelaySeconds",
        json!(30),
    );
    assert_eq!(
        desired(
            weights(delayed.clone(), 80, CANARY),
            &[rs(STABLE, 10, 5), rs(CANARY, 10, 10)]
        )
        .canary
        .weight,
        80
    );
    // Without the explicit delay the kept canary (10 pods) bounds it: d = 80 → hold c.
    // With it, stable 6: expected 4 → d = 20 (2 < 4); s = 60 < 80 → hold c = 80.
    assert_eq!(
        desired(
            weights(delayed, 80, CANARY),
            &[rs(STABLE, 10, 6), rs(CANARY, 10, 10)]
        )
        .canary
        .weight,
        80
    );

    // Without DSS an abort is always 0.
    let plain = set(weights(at(0), 80, CANARY), "/status/abort", json!(true));
    assert_eq!(
        desired(plain, &[rs(STABLE, 10, 3), rs(CANARY, 10, 10)])
            .canary
            .weight,
        0
    );
}

/// maxTrafficWeight (spec 00 §3.3): weights in units of MAX, stable = MAX − canary.
#[test]
fn max_traffic_weight() {
    let doc = set(
        set(
            at(0),
            "/spec/strategy/canary/trafficRouting/maxTrafficWeight",
            json!(1000),
        ),
        "/spec/strategy/canary/steps/0/setWeight",
        json!(5),
    );
    // ceil(5 × 10 / 1000) = 1 canary pod.
    let d = desired(doc.clone(), &[rs(STABLE, 10, 10), rs(CANARY, 1, 1)]);
    assert_eq!(
        (d.total, d.canary.weight, d.stable.weight, d.case),
        (1000, 5, 995, WeightCase::F2)
    );
    // All steps done: MAX.
    let done = set(doc, "/status/currentStepIndex", json!(5));
    let d = desired(done, &[rs(STABLE, 10, 10), rs(CANARY, 10, 10)]);
    assert_eq!(
        (d.canary.weight, d.stable.weight, d.case),
        (1000, 0, WeightCase::F3)
    );
}

fn experiment_rollout(index: i32) -> Value {
    let doc = set(
        timeline_rollout(),
        "/spec/strategy/canary/steps",
        json!([{"setWeight": 20},
               {"experiment": {"templates": [{"name": "exp-a", "specRef": "canary", "weight": 10}, {"name": "exp-b", "specRef": "stable"}]}},
               {"setWeight": 40}]),
    );
    set(
        set(doc, "/status/currentStepIndex", json!(index)),
        "/status/canary/currentExperiment",
        json!("shop-exp"),
    )
}

fn experiment(phase: &str, service_a: &str) -> ExperimentView {
    ExperimentView {
        name: "shop-exp".into(),
        phase: phase.into(),
        template_statuses: vec![
            TemplateStatus {
                name: "exp-a".into(),
                service_name: service_a.into(),
                pod_template_hash: "ha".into(),
            },
            TemplateStatus {
                name: "exp-b".into(),
                service_name: "shop-exp-b".into(),
                pod_template_hash: "hb".into(),
            },
        ],
    }
}

/// Weighted experiment destinations (spec 00 §2.3, spec 40 A5, A24).
#[test]
fn experiments() {
    let rsets = [rs(STABLE, 10, 10), rs(CANARY, 2, 2)];
    let exp = experiment("Running", "shop-exp-a");
    let run = |index, exp: Option<&ExperimentView>, sets: &[ReplicaSetView]| {
        desired_traffic(&rollout(experiment_rollout(index)), sets, exp).unwrap()
    };
    let d = run(1, Some(&exp), &rsets);
    let a = WeightDestination {
        weight: 10,
        service_name: "shop-exp-a".into(),
        pod_template_hash: "ha".into(),
    };
    assert_eq!(
        (
            d.case,
            d.canary.weight,
            d.additional.clone(),
            d.stable.weight
        ),
        (WeightCase::F2, 20, vec![a.clone()], 70)
    );
    // Still sent while the canary is not at its desired count (F1) and in case D.
    let d = run(1, Some(&exp), &[rs(STABLE, 10, 10), rs(CANARY, 2, 0)]);
    assert_eq!(
        (d.case, d.additional.clone()),
        (WeightCase::D, vec![a.clone()])
    );
    // The experiment step stays current for later steps while it runs.
    let d = run(2, Some(&exp), &[rs(STABLE, 10, 10), rs(CANARY, 4, 4)]);
    assert_eq!(
        (d.canary.weight, d.additional.clone(), d.stable.weight),
        (40, vec![a], 50)
    );
    // Not running: nothing.
    assert!(
        run(1, Some(&experiment("Successful", "shop-exp-a")), &rsets)
            .additional
            .is_empty()
    );
    // An empty Service name is skipped instead of black-holing traffic (#4890).
    assert!(
        run(1, Some(&experiment("Running", "")), &rsets)
            .additional
            .is_empty()
    );
    // Never once all steps are done.
    assert!(
        run(3, Some(&exp), &[rs(STABLE, 10, 10), rs(CANARY, 10, 10)])
            .additional
            .is_empty()
    );
    // Aborted: dropped.
    let aborted = set(experiment_rollout(1), "/status/abort", json!(true));
    assert!(
        desired_traffic(&rollout(aborted), &rsets, Some(&exp))
            .unwrap()
            .additional
            .is_empty()
    );
}

/// The managed-route state function (spec 00 §6.2) and the quirk decisions.
#[test]
fn managed_route_state_function() {
    let stable = || rs(STABLE, 10, 10);
    let h1 = |doc: Value, canary: ReplicaSetView| {
        desired(doc, &[stable(), canary]).managed_routes[0]
            .state
            .clone()
    };
    // Re-added when canary pods return after the header step was passed (Argo #4486, fixed).
    assert_eq!(h1(at(3), rs(CANARY, 5, 0)), RouteState::Absent);
    assert_eq!(h1(at(3), rs(CANARY, 5, 1)), header_h1());
    // Header step at index 0 and abort: stays removed (Argo re-adds it every abort reconcile).
    let first = set(
        set(
            at(0),
            "/spec/strategy/canary/steps",
            json!([
            {"setHeaderRoute": {"name": "h1", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "on"}}]}},
            {"setWeight": 20}]),
        ),
        "/status/abort",
        json!(true),
    );
    assert_eq!(h1(first, rs(CANARY, 2, 2)), RouteState::Absent);
    // First deployment (revision 1): never applied.
    let rev1 = set(
        at(3),
        "/metadata/annotations/rollout.argoproj.io~1revision",
        json!("1"),
    );
    let rev1 = set(
        rev1,
        "/metadata/annotations",
        json!({"rollout.argoproj.io/revision": "1"}),
    );
    assert_eq!(h1(rev1, rs(CANARY, 5, 5)), RouteState::Absent);
    // A later step without match removes it; an empty list means the same.
    for removal in [json!({"name": "h1"}), json!({"name": "h1", "match": []})] {
        let doc = set(
            at(4),
            "/spec/strategy/canary/steps/4",
            json!({"setHeaderRoute": removal}),
        );
        assert_eq!(h1(doc, rs(CANARY, 5, 5)), RouteState::Absent);
    }
    // The latest defining step wins.
    let redefined = set(
        at(4),
        "/spec/strategy/canary/steps/4",
        json!({"setHeaderRoute": {"name": "h1", "match": [{"headerName": "X-Beta", "headerValue": {"prefix": "o"}}]}}),
    );
    let RouteState::Active {
        route: RouteSpec::SetHeaderRoute(h),
    } = h1(redefined, rs(CANARY, 5, 5))
    else {
        panic!("h1 should be active")
    };
    assert_eq!(h.matches[0].header_value, Some(StringMatch::prefix("o")));
    // Before the header step: absent.
    assert_eq!(h1(at(1), rs(CANARY, 2, 2)), RouteState::Absent);
    // promoteFull: removed.
    assert_eq!(
        h1(
            set(at(3), "/status/promoteFull", json!(true)),
            rs(CANARY, 5, 5)
        ),
        RouteState::Absent
    );
}

/// Holds: the stable capacity guard (spec 00 §2.5) and an unobserved generation (§11).
#[test]
fn holds() {
    // Stable cannot take 50 % (needs 5 available, has 4): hold; an active route is not added.
    let d = desired(at(3), &[rs(STABLE, 10, 4), rs(CANARY, 5, 5)]);
    assert_eq!(
        d.hold.as_ref().map(|h| h.reason),
        Some(HoldReason::StableCapacity)
    );
    assert_eq!(d.managed_routes[0].state, RouteState::Unchanged);
    // ... but removals still happen (abort with a shrunken stable, no DSS: desired 0 needs 10).
    let d = desired(
        set(at(3), "/status/abort", json!(true)),
        &[rs(STABLE, 10, 4), rs(CANARY, 5, 5)],
    );
    assert_eq!(
        d.hold.as_ref().map(|h| h.reason),
        Some(HoldReason::StableCapacity)
    );
    assert_eq!(d.managed_routes[0].state, RouteState::Absent);
    // replicaProgressThreshold relaxes the guard (#3878): 4 of 5 required is 80 %.
    let relaxed = set(
        at(3),
        "/spec/strategy/canary/replicaProgressThreshold",
        json!({"type": "Percent", "value": 80}),
    );
    assert_eq!(
        desired(relaxed, &[rs(STABLE, 10, 4), rs(CANARY, 5, 5)]).hold,
        None
    );
    // No stable ReplicaSet (first deployment): hold.
    let d = desired(at(0), &[rs(CANARY, 2, 2)]);
    assert_eq!(
        d.hold.as_ref().map(|h| h.reason),
        Some(HoldReason::StableCapacity)
    );

    // observedGeneration behind: everything held, removals too.
    let behind = set(
        set(at(3), "/status/observedGeneration", json!("2")),
        "/status/abort",
        json!(true),
    );
    let d = desired(behind, &[rs(STABLE, 10, 10), rs(CANARY, 5, 5)]);
    assert_eq!(
        d.hold,
        Some(Hold {
            reason: HoldReason::GenerationNotObserved,
            message: "status.observedGeneration 2 does not match metadata.generation 3: waiting for the rollout controller".into()
        })
    );
    assert_eq!(d.managed_routes[0].state, RouteState::Unchanged);
    // A non-numeric observedGeneration (old Argo) cannot be compared and does not hold.
    let hashed = set(at(3), "/status/observedGeneration", json!("6b9f5d7c4"));
    assert_eq!(
        desired(hashed, &[rs(STABLE, 10, 10), rs(CANARY, 5, 5)]).hold,
        None
    );
}

/// setCanaryScale and minPodsPerReplicaSet in the replica gate (spec 00 §2.4).
#[test]
fn replica_gate() {
    let scaled = set(
        at(1),
        "/spec/strategy/canary/steps",
        json!([{"setCanaryScale": {"replicas": 3}}, {"setWeight": 20}, {"pause": {}}]),
    );
    // At setWeight 20 with setCanaryScale replicas 3: needs 3 canary pods, not 2.
    assert_eq!(
        desired(scaled.clone(), &[rs(STABLE, 10, 10), rs(CANARY, 2, 2)]).case,
        WeightCase::F1
    );
    assert_eq!(
        desired(scaled, &[rs(STABLE, 10, 10), rs(CANARY, 3, 3)])
            .canary
            .weight,
        20
    );
    // minPodsPerReplicaSet 4 raises the wanted canary size at 20 % (2 pods) to 4.
    let min = set(
        at(0),
        "/spec/strategy/canary/minPodsPerReplicaSet",
        json!(4),
    );
    assert_eq!(
        desired(min.clone(), &[rs(STABLE, 10, 10), rs(CANARY, 2, 2)]).case,
        WeightCase::F1
    );
    assert_eq!(
        desired(min, &[rs(STABLE, 10, 10), rs(CANARY, 4, 4)]).case,
        WeightCase::F2
    );
    // Without DSS the stable must be fully created at N.
    assert_eq!(
        desired(at(0), &[rs(STABLE, 9, 9), rs(CANARY, 2, 2)]).case,
        WeightCase::F1
    );
}

#[test]
fn ping_pong_roles() {
    let doc = set(
        set(
            at(0),
            "/spec/strategy/canary/pingPong",
            json!({"pingService": "ping", "pongService": "pong"}),
        ),
        "/status/canary/stablePingPong",
        json!("ping"),
    );
    let d = desired(doc.clone(), &[rs(STABLE, 10, 10), rs(CANARY, 2, 2)]);
    let pp = d.ping_pong.unwrap();
    assert_eq!(
        (pp.stable_service.as_str(), pp.canary_service.as_str()),
        ("ping", "pong")
    );
    let d = desired(
        set(doc, "/status/canary/stablePingPong", json!("pong")),
        &[rs(STABLE, 10, 10), rs(CANARY, 2, 2)],
    );
    let pp = d.ping_pong.unwrap();
    assert_eq!(
        (pp.stable_service.as_str(), pp.canary_service.as_str()),
        ("pong", "ping")
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn arb_rollout() -> impl Strategy<Value = (Value, Vec<ReplicaSetView>)> {
        (
            0i32..25,                                       // replicas
            prop_oneof![Just(100i32), Just(1000), Just(7)], // MAX
            prop::collection::vec(-60i32..1100, 0..8),      // setWeight values (some invalid)
            0i32..10,                                       // index
            any::<(bool, bool, bool)>(),                    // abort, promoteFull, DSS
            prop::option::of(-50i32..1200),                 // recorded canary weight
            (0i32..30, 0i32..30),                           // stable, canary available
            prop::option::of(0i32..5),                      // minPods
        )
            .prop_map(
                |(n, max, step_weights, index, (abort, full, dss), recorded, (sa, ca), min)| {
                    let steps: Vec<Value> = step_weights
                        .iter()
                        .map(|w| json!({"setWeight": w}))
                        .collect();
                    let mut doc = set(timeline_rollout(), "/spec/replicas", json!(n));
                    doc = set(doc, "/spec/strategy/canary/steps", json!(steps));
                    doc = set(
                        doc,
                        "/spec/strategy/canary/trafficRouting/maxTrafficWeight",
                        json!(max),
                    );
                    doc = set(doc, "/spec/strategy/canary/dynamicStableScale", json!(dss));
                    doc = set(doc, "/status/currentStepIndex", json!(index));
                    doc = set(doc, "/status/abort", json!(abort));
                    doc = set(doc, "/status/promoteFull", json!(full));
                    if let Some(m) = min {
                        doc = set(doc, "/spec/strategy/canary/minPodsPerReplicaSet", json!(m));
                    }
                    if let Some(c) = recorded {
                        doc = weights(doc, c, CANARY);
                    }
                    (doc, vec![rs(STABLE, n, sa), rs(CANARY, n, ca)])
                },
            )
    }

    proptest! {
        #[test]
        fn weights_stay_in_range((doc, sets) in arb_rollout()) {
            let d = desired_traffic(&rollout(doc), &sets, None).unwrap();
            prop_assert!(d.canary.weight >= 0 && d.canary.weight <= d.total, "{d:?}");
            prop_assert!(d.stable.weight >= 0, "{d:?}");
            prop_assert!(d.additional.iter().all(|a| a.weight >= 0));
            prop_assert_eq!(d.canary.weight + d.additional_weight() + d.stable.weight, d.total);
        }

        #[test]
        fn experiment_weights_never_push_stable_below_zero(w in 0i32..500, set_weight in 0i32..100) {
            let doc = set(experiment_rollout(1), "/spec/strategy/canary/steps/1/experiment/templates/0/weight", json!(w));
            let doc = set(doc, "/spec/strategy/canary/steps/0/setWeight", json!(set_weight));
            let exp = experiment("Running", "shop-exp-a");
            let sets = [rs(STABLE, 10, 10), rs(CANARY, 10, 10)];
            let d = desired_traffic(&rollout(doc), &sets, Some(&exp)).unwrap();
            prop_assert!(d.stable.weight >= 0);
            prop_assert_eq!(d.canary.weight + d.additional_weight() + d.stable.weight, 100);
        }
    }
}
