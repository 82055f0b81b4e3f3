//! Planning and observing for a stable Ingress with 20 rules (3 paths each, 2 on the stable
//! Service): creating the canary Ingress, updating its weight with a header route, and the
//! steady state (no change).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rollout_router_core::{
    DesiredTraffic, HeaderRoutingMatch, ManagedRoute, NginxConfig, ObjectSet, RolloutRef,
    RouteSpec, RouteState, Router, SetHeaderRoute, StringMatch, WeightCase, WeightDestination,
};
use rollout_router_nginx::NginxRouter;
use serde_json::{Value, json};

fn stable_ingress(rules: usize) -> Value {
    let rules: Vec<Value> = (0..rules)
        .map(|i| {
            json!({
                "host": format!("host-{i}.shop.example.com"),
                "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "shop-stable", "port": {"number": 80}}}},
                    {"path": "/api", "pathType": "Prefix",
                     "backend": {"service": {"name": "shop-stable", "port": {"name": "http"}}}},
                    {"path": "/static", "pathType": "Prefix",
                     "backend": {"service": {"name": "assets", "port": {"number": 80}}}},
                ]},
            })
        })
        .collect();
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "shop-public", "namespace": "shop",
                     "annotations": {"kubernetes.io/ingress.class": "nginx"}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["*.shop.example.com"], "secretName": "shop-tls"}],
            "rules": rules,
        },
    })
}

fn desired(weight: i32, header_route: bool) -> DesiredTraffic {
    let managed_routes = if header_route {
        vec![ManagedRoute {
            name: "h1".into(),
            state: RouteState::Active {
                route: RouteSpec::SetHeaderRoute(SetHeaderRoute {
                    name: "h1".into(),
                    matches: vec![HeaderRoutingMatch {
                        header_name: "X-Canary".into(),
                        header_value: Some(StringMatch::exact("always")),
                    }],
                }),
            },
        }]
    } else {
        Vec::new()
    };
    DesiredTraffic {
        rollout: RolloutRef {
            namespace: "shop".into(),
            name: "shop".into(),
            uid: "uid".into(),
        },
        total: 100,
        canary: WeightDestination {
            weight,
            service_name: "shop-canary".into(),
            pod_template_hash: "a".into(),
        },
        stable: WeightDestination {
            weight: 100 - weight,
            service_name: "shop-stable".into(),
            pod_template_hash: "b".into(),
        },
        additional: Vec::new(),
        ping_pong: None,
        managed_routes,
        hold: None,
        case: WeightCase::F2,
        step_index: Some(0),
        replica_sets: vec![],
        aborting: false,
    }
}

fn bench(c: &mut Criterion) {
    let router = NginxRouter::new(NginxConfig {
        stable_ingress: Some("shop-public".into()),
        ..NginxConfig::default()
    });
    let fresh: ObjectSet = [stable_ingress(20)].into_iter().collect();
    let mut programmed = fresh.clone();
    let create = router.plan(&desired(10, false), &fresh).unwrap_or_default();
    if programmed.apply_all(&create).is_err() {
        panic!("create does not apply");
    }
    let step = desired(50, true);
    let mut steady = programmed.clone();
    let update = router.plan(&step, &programmed).unwrap_or_default();
    if steady.apply_all(&update).is_err() {
        panic!("update does not apply");
    }

    let mut group = c.benchmark_group("nginx 20 rules");
    group.bench_function("plan create", |b| {
        b.iter(|| router.plan(black_box(&desired(10, false)), black_box(&fresh)))
    });
    group.bench_function("plan weight + header route update", |b| {
        b.iter(|| router.plan(black_box(&step), black_box(&programmed)))
    });
    group.bench_function("plan steady state (no change)", |b| {
        b.iter(|| router.plan(black_box(&step), black_box(&steady)))
    });
    group.bench_function("observe", |b| {
        b.iter(|| router.observe(black_box(&step), black_box(&steady)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
