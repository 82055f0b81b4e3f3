//! How long the desired-traffic engine takes for a Rollout with 20 steps (expect microseconds).

use criterion::{Criterion, criterion_group, criterion_main};
use rollout_router::engine::desired_traffic;
use rollout_router::rollout::{ReplicaSetView, Rollout};
use serde_json::json;

fn rollout_with_20_steps() -> Rollout {
    let mut steps = Vec::new();
    for i in 0..5 {
        steps.push(json!({"setWeight": (i + 1) * 10}));
        steps.push(json!({"pause": {"duration": "1m"}}));
        steps.push(json!({"setHeaderRoute": {"name": format!("h{i}"),
            "match": [{"headerName": "X-Canary", "headerValue": {"exact": "on"}}]}}));
        steps.push(
            json!({"setMirrorRoute": {"name": format!("m{i}"), "percentage": 10,
            "match": [{"method": {"exact": "GET"}, "path": {"prefix": "/api"}}]}}),
        );
    }
    let managed: Vec<_> = (0..5)
        .flat_map(|i| {
            [
                json!({"name": format!("h{i}")}),
                json!({"name": format!("m{i}")}),
            ]
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "shop", "namespace": "prod", "generation": 4,
                     "annotations": {"rollout.argoproj.io/revision": "3"}},
        "spec": {"replicas": 20, "strategy": {"canary": {
            "canaryService": "shop-canary", "stableService": "shop-stable", "steps": steps,
            "trafficRouting": {"managedRoutes": managed,
                "plugins": {"rollout-router/traffic": {"istio": {"virtualService": {"name": "shop"}}}}}}}},
        "status": {"observedGeneration": "4", "stableRS": "s1", "currentPodHash": "c1", "currentStepIndex": 15}
    }))
    .unwrap_or_default()
}

fn engine(c: &mut Criterion) {
    let rollout = rollout_with_20_steps();
    let replica_sets = [
        ReplicaSetView {
            name: "shop-s1".into(),
            pod_template_hash: "s1".into(),
            spec_replicas: 20,
            replicas: 20,
            available_replicas: 20,
        },
        ReplicaSetView {
            name: "shop-c1".into(),
            pod_template_hash: "c1".into(),
            spec_replicas: 8,
            replicas: 8,
            available_replicas: 8,
        },
    ];
    c.bench_function("desired_traffic/20 steps, 10 managed routes", |b| {
        b.iter(|| desired_traffic(std::hint::black_box(&rollout), &replica_sets, None))
    });
}

criterion_group!(benches, engine);
criterion_main!(benches);
