//! Builders shared by the ALB router tests: a Rollout `shop` in namespace `shop`, its Services,
//! and Ingresses in the shape the AWS Load Balancer Controller expects.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is the test failure"
)]

use rollout_router_alb::AlbRouter;
use rollout_router_core::{
    AlbConfig, Change, DesiredTraffic, HeaderRoutingMatch, ManagedRoute, ObjectKey, ObjectSet,
    RolloutRef, RouteSpec, RouteState, Router, SetHeaderRoute, StringMatch, WeightCase,
    WeightDestination,
};
use serde_json::{Value, json};

pub const NS: &str = "shop";
pub const ACTION: &str = "alb.ingress.kubernetes.io/actions.shop-root";
pub const STABLE_ACTION: &str = "alb.ingress.kubernetes.io/actions.shop-stable";
pub const BOOK: &str = "rollouts.argoproj.io/managed-alb-annotations";

pub fn config(value: Value) -> AlbConfig {
    serde_json::from_value(value).unwrap()
}

/// `ingress: shop`, `servicePort: 80`, `rootService: shop-root`.
pub fn root_router() -> AlbRouter {
    AlbRouter::new(config(
        json!({"ingress": "shop", "servicePort": 80, "rootService": "shop-root"}),
    ))
}

pub fn key(name: &str) -> ObjectKey {
    ObjectKey::new("networking.k8s.io", "Ingress", NS, name)
}

pub fn backend(service: &str) -> Value {
    json!({"service": {"name": service, "port": {"name": "use-annotation"}}})
}

pub fn path(p: &str, service: &str) -> Value {
    json!({"path": p, "pathType": "Prefix", "backend": backend(service)})
}

pub fn route_path(route: &str) -> Value {
    json!({"path": "/*", "pathType": "ImplementationSpecific", "backend": backend(route)})
}

/// An Ingress with the given annotations and rules (`spec.rules`).
pub fn ingress(name: &str, annotations: Value, rules: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "shop"}, "annotations": annotations},
        "spec": {"ingressClassName": "alb", "rules": rules}
    })
}

/// The usual user Ingress: one rule, `/` → `service` via `use-annotation`.
pub fn simple_ingress(name: &str, service: &str) -> Value {
    ingress(
        name,
        json!({"alb.ingress.kubernetes.io/scheme": "internet-facing"}),
        json!([{"host": "shop.example.com", "http": {"paths": [path("/", service)]}}]),
    )
}

pub fn objects(items: impl IntoIterator<Item = Value>) -> ObjectSet {
    items.into_iter().collect()
}

pub fn dest(weight: i32, service: &str) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: service.into(),
        pod_template_hash: String::new(),
    }
}

/// Desired traffic for Rollout `shop` with canary `shop-canary` at `canary` %.
pub fn desired(canary: i32) -> DesiredTraffic {
    DesiredTraffic {
        rollout: RolloutRef {
            namespace: NS.into(),
            name: "shop".into(),
            uid: "uid-1".into(),
        },
        total: 100,
        canary: dest(canary, "shop-canary"),
        stable: dest(100 - canary, "shop-stable"),
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

pub fn header_match(name: &str, value: &str) -> HeaderRoutingMatch {
    HeaderRoutingMatch {
        header_name: name.into(),
        header_value: Some(StringMatch::exact(value)),
    }
}

pub fn active(name: &str, matches: Vec<HeaderRoutingMatch>) -> ManagedRoute {
    ManagedRoute {
        name: name.into(),
        state: RouteState::Active {
            route: RouteSpec::SetHeaderRoute(SetHeaderRoute {
                name: name.into(),
                matches,
            }),
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

/// Plans, applies, and checks that planning again yields nothing. Returns the changes.
pub fn plan_apply(
    router: &AlbRouter,
    desired: &DesiredTraffic,
    set: &mut ObjectSet,
) -> Vec<Change> {
    let changes = router.plan(desired, set).unwrap();
    set.apply_all(&changes).unwrap();
    let again = router.plan(desired, set).unwrap();
    assert_eq!(again, vec![], "planning after applying must be a no-op");
    changes
}

/// Releases, applies, and checks that releasing again yields nothing.
pub fn release_apply(router: &AlbRouter, set: &mut ObjectSet) -> Vec<Change> {
    // Both ways the controller releases (`Router::release` cases (a) and (b)) agree.
    let before = set.clone();
    let changes = router.release(&snapshot(), set).unwrap();
    assert_eq!(router.release(&desired(0), &before).unwrap(), changes);
    set.apply_all(&changes).unwrap();
    assert_eq!(router.release(&snapshot(), set).unwrap(), vec![]);
    changes
}

/// What the controller releases with after the Rollout is deleted (`Router::release` case
/// (b)): 100 % stable, no pod-template hashes, managed routes absent.
pub fn snapshot() -> DesiredTraffic {
    let mut d = desired(0);
    d.case = WeightCase::B;
    d.canary.pod_template_hash.clear();
    d.stable.pod_template_hash.clear();
    d
}

pub fn annotations(set: &ObjectSet, name: &str) -> Value {
    set.get(&key(name)).unwrap()["metadata"]["annotations"].clone()
}

pub fn rules(set: &ObjectSet, name: &str) -> Value {
    set.get(&key(name)).unwrap()["spec"]["rules"].clone()
}

/// The changes as RFC 6902 JSON, for whole-patch comparisons.
pub fn patches(changes: &[Change]) -> Value {
    serde_json::to_value(changes).unwrap()
}

/// Canonical weighted action with `servicePort` 80.
pub fn action(groups: &[(&str, i64)]) -> String {
    let tgs: Vec<String> = groups
        .iter()
        .map(|(name, w)| format!(r#"{{"ServiceName":"{name}","ServicePort":"80","Weight":{w}}}"#))
        .collect();
    format!(
        r#"{{"Type":"forward","ForwardConfig":{{"TargetGroups":[{}]}}}}"#,
        tgs.join(",")
    )
}
