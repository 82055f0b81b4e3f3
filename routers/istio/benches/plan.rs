//! Plan time of the Istio router: one VirtualService with 50 HTTP routes and 3 managed routes,
//! and 10 VirtualServices; both when everything is in place (the common reconcile) and when a
//! weight step must be written.

#![allow(
    clippy::unwrap_used,
    reason = "benchmark setup: a panic is the failure report"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rollout_router_core::{
    DesiredTraffic, HeaderRoutingMatch, IstioConfig, IstioVirtualService, ManagedRoute, ObjectSet,
    RolloutRef, RouteMatch, RouteSpec, RouteState, Router, SetHeaderRoute, SetMirrorRoute,
    StringMatch, WeightCase, WeightDestination,
};
use rollout_router_istio::IstioRouter;
use serde_json::{Value, json};

fn desired(weight: i32) -> DesiredTraffic {
    let header = |name: &str| ManagedRoute {
        name: name.into(),
        state: RouteState::Active {
            route: RouteSpec::SetHeaderRoute(SetHeaderRoute {
                name: name.into(),
                matches: vec![HeaderRoutingMatch {
                    header_name: "x-canary".into(),
                    header_value: Some(StringMatch::exact(name)),
                }],
            }),
        },
    };
    DesiredTraffic {
        rollout: RolloutRef {
            namespace: "shop".into(),
            name: "checkout".into(),
            uid: String::new(),
        },
        total: 100,
        canary: WeightDestination {
            weight,
            service_name: "canary-svc".into(),
            pod_template_hash: "c1".into(),
        },
        stable: WeightDestination {
            weight: 100 - weight,
            service_name: "stable-svc".into(),
            pod_template_hash: "s1".into(),
        },
        additional: vec![],
        ping_pong: None,
        managed_routes: vec![
            header("header-a"),
            header("header-b"),
            ManagedRoute {
                name: "mirror".into(),
                state: RouteState::Active {
                    route: RouteSpec::SetMirrorRoute(SetMirrorRoute {
                        name: "mirror".into(),
                        matches: vec![RouteMatch {
                            method: Some(StringMatch::exact("GET")),
                            path: Some(StringMatch::prefix("/")),
                            headers: Default::default(),
                        }],
                        percentage: Some(20),
                    }),
                },
            },
        ],
        hold: None,
        case: WeightCase::F2,
        step_index: Some(2),
        replica_sets: vec![],
        aborting: false,
    }
}

fn virtual_service(name: &str, routes: usize) -> Value {
    let http: Vec<Value> = (0..routes)
        .map(|i| {
            let name = if i == routes / 2 { "primary".to_owned() } else { format!("route-{i}") };
            json!({
                "name": name,
                "match": [{"uri": {"prefix": format!("/api/v{i}")}, "headers": {"x-tenant": {"exact": "a"}}}],
                "retries": {"attempts": 3, "perTryTimeout": "2s"},
                "route": [
                    {"destination": {"host": "stable-svc", "port": {"number": 8080}}, "weight": 100},
                    {"destination": {"host": "canary-svc", "port": {"number": 8080}}, "weight": 0},
                ],
            })
        })
        .collect();
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"hosts": ["checkout"], "http": http},
    })
}

/// A router over `count` VirtualServices of `routes` HTTP routes each, and the objects after
/// the plan for `weight` was applied.
fn setup(count: usize, routes: usize, weight: i32) -> (IstioRouter, ObjectSet, ObjectSet) {
    let names: Vec<String> = (0..count).map(|i| format!("vs-{i}")).collect();
    let router = IstioRouter::new(IstioConfig {
        virtual_services: names
            .iter()
            .map(|n| IstioVirtualService {
                name: n.clone(),
                routes: vec!["primary".into()],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    let before: ObjectSet = names.iter().map(|n| virtual_service(n, routes)).collect();
    let mut applied = before.clone();
    applied
        .apply_all(&router.plan(&desired(weight), &before).unwrap())
        .unwrap();
    (router, before, applied)
}

fn bench(c: &mut Criterion) {
    for (label, count, routes) in [
        ("1 VS x 50 routes + 3 managed", 1, 50),
        ("10 VS x 5 routes + 3 managed", 10, 5),
    ] {
        let (router, before, applied) = setup(count, routes, 20);
        let d = desired(20);
        assert!(router.plan(&d, &applied).unwrap().is_empty());
        c.bench_function(&format!("plan {label}: in place"), |b| {
            b.iter(|| router.plan(black_box(&d), black_box(&applied)).unwrap())
        });
        let next = desired(50);
        c.bench_function(&format!("plan {label}: weight step"), |b| {
            b.iter(|| router.plan(black_box(&next), black_box(&applied)).unwrap())
        });
        c.bench_function(&format!("plan {label}: first step (routes added)"), |b| {
            b.iter(|| router.plan(black_box(&d), black_box(&before)).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
