//! Planning cost for a Rollout routed through 5 ALB Ingresses: the first SetWeight (every
//! Ingress patched), the steady state (nothing to do), and adding a header route.
#![allow(clippy::unwrap_used, reason = "benchmark setup")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rollout_router_alb::AlbRouter;
use rollout_router_core::{
    DesiredTraffic, HeaderRoutingMatch, ManagedRoute, ObjectSet, RolloutRef, RouteSpec, RouteState,
    Router, SetHeaderRoute, StringMatch, WeightCase, WeightDestination,
};
use serde_json::json;

const INGRESSES: usize = 5;

fn ingress(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": format!("shop-{i}"), "namespace": "shop", "resourceVersion": "1",
            "annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing",
                            "alb.ingress.kubernetes.io/target-type": "ip"}},
        "spec": {"ingressClassName": "alb", "rules": [
            {"host": format!("shop-{i}.example.com"), "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop-root", "port": {"name": "use-annotation"}}}},
                {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}
    })
}

fn desired(weight: i32, route: bool) -> DesiredTraffic {
    let dest = |weight, name: &str| WeightDestination {
        weight,
        service_name: name.into(),
        pod_template_hash: String::new(),
    };
    DesiredTraffic {
        rollout: RolloutRef {
            namespace: "shop".into(),
            name: "shop".into(),
            uid: String::new(),
        },
        total: 100,
        canary: dest(weight, "shop-canary"),
        stable: dest(100 - weight, "shop-stable"),
        additional: vec![],
        ping_pong: None,
        managed_routes: vec![ManagedRoute {
            name: "qa".into(),
            state: if route {
                RouteState::Active {
                    route: RouteSpec::SetHeaderRoute(SetHeaderRoute {
                        name: "qa".into(),
                        matches: vec![HeaderRoutingMatch {
                            header_name: "X-Env".into(),
                            header_value: Some(StringMatch::exact("qa")),
                        }],
                    }),
                }
            } else {
                RouteState::Unchanged
            },
        }],
        hold: None,
        case: WeightCase::F2,
        step_index: Some(0),
        replica_sets: vec![],
        aborting: false,
    }
}

fn bench(c: &mut Criterion) {
    let names: Vec<String> = (0..INGRESSES).map(|i| format!("shop-{i}")).collect();
    let router = AlbRouter::new(
        serde_json::from_value(
            json!({"ingresses": names, "servicePort": 80, "rootService": "shop-root"}),
        )
        .unwrap(),
    );
    let fresh: ObjectSet = (0..INGRESSES).map(ingress).collect();
    let weighted = desired(10, false);
    let mut steady = fresh.clone();
    steady
        .apply_all(&router.plan(&weighted, &fresh).unwrap())
        .unwrap();
    let with_route = desired(10, true);

    c.bench_function("alb plan 5 ingresses: first setWeight", |b| {
        b.iter(|| {
            router
                .plan(black_box(&weighted), black_box(&fresh))
                .unwrap()
        })
    });
    c.bench_function("alb plan 5 ingresses: steady state (no change)", |b| {
        b.iter(|| {
            router
                .plan(black_box(&weighted), black_box(&steady))
                .unwrap()
        })
    });
    c.bench_function("alb plan 5 ingresses: add header route", |b| {
        b.iter(|| {
            router
                .plan(black_box(&with_route), black_box(&steady))
                .unwrap()
        })
    });
    c.bench_function("alb observe 5 ingresses", |b| {
        b.iter(|| {
            router
                .observe(black_box(&weighted), black_box(&steady))
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
