//! Fixtures shared by the nginx router tests: the spec 20 §3 example (Rollout `shop`, stable
//! Ingress `shop-public`), desired states and a plan → apply → plan-again helper.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the fixtures"
)]

use rollout_router_core::{
    Change, DesiredTraffic, HeaderRoutingMatch, Hold, HoldReason, ManagedRoute, NginxConfig,
    ObjectKey, ObjectSet, RolloutRef, RouteSpec, RouteState, Router, SetHeaderRoute, StringMatch,
    WeightCase, WeightDestination,
};
use rollout_router_nginx::NginxRouter;
use serde_json::{Value, json};

pub const NS: &str = "shop";
pub const UID: &str = "1b0d7e4c-5a39-4c1e-9d8b-0f2b7c0c1a11";
pub const CANARY_NAME: &str = "shop-shop-public-canary";
pub const P: &str = "nginx.ingress.kubernetes.io";

pub fn rollout() -> RolloutRef {
    RolloutRef {
        namespace: NS.into(),
        name: "shop".into(),
        uid: UID.into(),
    }
}

pub fn config() -> NginxConfig {
    NginxConfig {
        stable_ingress: Some("shop-public".into()),
        ..NginxConfig::default()
    }
}

pub fn router() -> NginxRouter {
    NginxRouter::new(config())
}

pub fn key(name: &str) -> ObjectKey {
    ObjectKey::new("networking.k8s.io", "Ingress", NS, name)
}

pub fn canary_key() -> ObjectKey {
    key(CANARY_NAME)
}

/// The stable Ingress of the spec 20 §3 example.
pub fn stable_ingress() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "shop-public",
            "namespace": NS,
            "uid": "stable-uid",
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [{
                "host": "shop.example.com",
                "http": {"paths": [{
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "shop-stable", "port": {"number": 80}}},
                }]},
            }],
        },
    })
}

/// The rules of the canary Ingress derived from [`stable_ingress`].
pub fn canary_rules() -> Value {
    json!([{
        "host": "shop.example.com",
        "http": {"paths": [{
            "path": "/",
            "pathType": "Prefix",
            "backend": {"service": {"name": "shop-canary", "port": {"number": 80}}},
        }]},
    }])
}

pub fn owner_references() -> Value {
    json!([{
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": "shop",
        "uid": UID,
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// The canary Ingress rollout-router creates from [`stable_ingress`] with `annotations`.
pub fn canary_ingress(annotations: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": CANARY_NAME,
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "rollout-router"},
            "annotations": annotations,
            "ownerReferences": owner_references(),
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": canary_rules(),
        },
    })
}

/// The annotations of the canary Ingress at `weight` without header route, bookkeeping
/// included.
pub fn weight_annotations(weight: i32) -> Value {
    json!({
        "kubernetes.io/ingress.class": "nginx",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": weight.to_string(),
        "rollout-router.io/managed-annotations":
            "kubernetes.io/ingress.class,nginx.ingress.kubernetes.io/canary,nginx.ingress.kubernetes.io/canary-weight",
    })
}

pub fn desired(weight: i32) -> DesiredTraffic {
    desired_total(weight, 100)
}

pub fn desired_total(weight: i32, total: i32) -> DesiredTraffic {
    DesiredTraffic {
        rollout: rollout(),
        total,
        canary: WeightDestination {
            weight,
            service_name: "shop-canary".into(),
            pod_template_hash: "7d9c8b6f5".into(),
        },
        stable: WeightDestination {
            weight: total - weight,
            service_name: "shop-stable".into(),
            pod_template_hash: "5f6b7c8d9".into(),
        },
        additional: Vec::new(),
        ping_pong: None,
        managed_routes: Vec::new(),
        hold: None,
        case: WeightCase::F2,
        step_index: Some(0),
        replica_sets: vec![],
        aborting: false,
    }
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

pub fn held(mut desired: DesiredTraffic) -> DesiredTraffic {
    desired.hold = Some(Hold {
        reason: HoldReason::StableCapacity,
        message: "stable ReplicaSet has 3 of 10 pods available".into(),
    });
    desired
}

pub fn header(name: &str, value: StringMatch) -> HeaderRoutingMatch {
    HeaderRoutingMatch {
        header_name: name.into(),
        header_value: Some(value),
    }
}

pub fn header_step(name: &str, matches: Vec<HeaderRoutingMatch>) -> SetHeaderRoute {
    SetHeaderRoute {
        name: name.into(),
        matches,
    }
}

pub fn active(name: &str, matches: Vec<HeaderRoutingMatch>) -> ManagedRoute {
    ManagedRoute {
        name: name.into(),
        state: RouteState::Active {
            route: RouteSpec::SetHeaderRoute(header_step(name, matches)),
        },
    }
}

pub fn route(name: &str, state: RouteState) -> ManagedRoute {
    ManagedRoute {
        name: name.into(),
        state,
    }
}

pub fn objects(list: impl IntoIterator<Item = Value>) -> ObjectSet {
    list.into_iter().collect()
}

/// Plans, applies the changes like the API server would, and checks that planning again
/// changes nothing. Returns the changes and the objects afterwards.
pub fn plan_apply(
    router: &NginxRouter,
    desired: &DesiredTraffic,
    objects: &ObjectSet,
) -> (Vec<Change>, ObjectSet) {
    let changes = router.plan(desired, objects).expect("plan");
    let mut after = objects.clone();
    after.apply_all(&changes).expect("changes apply");
    let again = router.plan(desired, &after).expect("plan again");
    assert_eq!(
        again,
        Vec::new(),
        "planning again after applying changed something"
    );
    (changes, after)
}

/// The canary Ingress after planning `desired` on `objects` and applying.
pub fn canary_after(router: &NginxRouter, desired: &DesiredTraffic, objects: &ObjectSet) -> Value {
    let (_, after) = plan_apply(router, desired, objects);
    after
        .get(&canary_key())
        .cloned()
        .expect("canary Ingress exists")
}

/// `object` with `f` applied to it, for small variations of fixtures.
pub fn with(mut object: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut object);
    object
}
