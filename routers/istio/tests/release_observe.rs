//! `release` (hand the objects back) and `observe` (weights read back).

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_core::{ObservedWeights, Router, RouterError, WeightDestination};
use rollout_router_istio::ReleaseContext;
use serde_json::json;

fn wd(weight: i32, service: &str, hash: &str) -> WeightDestination {
    WeightDestination {
        weight,
        service_name: service.into(),
        pod_template_hash: hash.into(),
    }
}

#[test]
fn release_host_level_returns_to_stable_and_removes_managed_routes() {
    let router =
        host_router(vs_ref("checkout", &["primary"])).with_release_context(ReleaseContext {
            canary_service: "canary-svc".into(),
            stable_service: "stable-svc".into(),
            managed_routes: vec!["h".into()],
        });
    let user = json!({"name": "static", "route": [dest("cdn", 100)]});
    let before = objects([vs(json!({"http": [
        {"name": "h", "route": [{"destination": {"host": "canary-svc"}, "weight": 100}]},
        user.clone(),
        {"name": "primary", "route": [dest("stable-svc", 50), dest("canary-svc", 40), dest("exp", 10)]}]}))]);
    let changes = router.release(&rollout(), &before).unwrap();
    let mut after = before.clone();
    after.apply_all(&changes).unwrap();
    assert_eq!(
        after.get(&vs_key()).unwrap(),
        &vs(json!({"http": [user, primary(100, 0)]}))
    );
    assert_eq!(router.release(&rollout(), &after).unwrap(), vec![]);
    // Nothing to hand back when the objects are gone.
    assert_eq!(router.release(&rollout(), &objects([])).unwrap(), vec![]);
}

#[test]
fn release_subset_level_removes_the_hash_labels_only() {
    let router = subset_router(vs_ref("checkout", &["primary"]));
    let rule = |c: Option<&str>, s: Option<&str>| {
        let labels = |h: Option<&str>| match h {
            Some(h) => json!({"app": "checkout", "rollouts-pod-template-hash": h}),
            None => json!({"app": "checkout"}),
        };
        dr(json!({"host": "checkout", "subsets": [
            {"name": "canary", "labels": labels(c)}, {"name": "stable", "labels": labels(s)},
            {"name": "other", "labels": {"rollouts-pod-template-hash": "keep"}}]}))
    };
    let before = objects([
        rule(Some("c1"), Some("s1")),
        vs(json!({"http": [{"name": "primary", "route": [
        sdest("checkout", "stable", 70), sdest("checkout", "canary", 30)]}]})),
    ]);
    let changes = router.release(&rollout(), &before).unwrap();
    let mut after = before.clone();
    after.apply_all(&changes).unwrap();
    assert_eq!(after.get(&dr_key()).unwrap(), &rule(None, None));
    assert_eq!(
        after.get(&vs_key()).unwrap(),
        &vs(
            json!({"http": [{"name": "primary", "route": [sdest("checkout", "stable", 100), sdest("checkout", "canary", 0)]}]})
        )
    );
}

#[test]
fn release_of_a_host_split_needs_the_service_names() {
    let router = host_router(vs_ref("checkout", &["primary"]));
    assert!(matches!(
        router.release(
            &rollout(),
            &objects([vs(json!({"http": [primary(90, 10)]}))])
        ),
        Err(RouterError::InvalidConfig { .. })
    ));
}

#[test]
fn observe_reports_each_weighted_route() {
    let router = host_router(rollout_router_core::IstioVirtualService {
        name: "checkout".into(),
        routes: vec!["primary".into()],
        tcp_routes: vec![rollout_router_core::TcpRoute { port: Some(5432) }],
        ..Default::default()
    });
    let mut d = with_experiment(desired(20), "exp", 10);
    d.managed_routes = vec![unchanged("h")];
    let set = objects([vs(json!({
        "http": [{"name": "h", "route": [dest("canary-svc", 100)]},
                 {"name": "primary", "route": [dest("stable-svc", 70), dest("canary-svc", 20), dest("exp", 10)]}],
        "tcp": [{"match": [{"port": 5432}], "route": [dest("stable-svc", 100), dest("canary-svc", 0)]}],
    }))]);
    assert_eq!(
        router.observe(&d, &set).unwrap(),
        vec![
            ObservedWeights {
                object: vs_key(),
                location: "http[primary]".into(),
                canary: wd(20, "canary-svc", ""),
                stable: wd(70, "stable-svc", ""),
                additional: vec![wd(10, "exp", "")],
                verified: None,
                managed_routes: vec!["h".into()],
            },
            ObservedWeights {
                object: vs_key(),
                location: "tcp[0]".into(),
                canary: wd(0, "canary-svc", ""),
                stable: wd(100, "stable-svc", ""),
                additional: vec![],
                verified: None,
                managed_routes: vec!["h".into()],
            },
        ]
    );
}

#[test]
fn observe_in_subset_mode_reads_hashes_from_the_subsets() {
    let router = subset_router(vs_ref("checkout", &[]));
    let set = objects([
        dr(json!({"host": "checkout", "subsets": [
            {"name": "canary", "labels": {"rollouts-pod-template-hash": "c9"}},
            {"name": "stable", "labels": {"rollouts-pod-template-hash": "s9"}}]})),
        // A lone destination without a weight receives everything.
        vs(
            json!({"http": [{"route": [{"destination": {"host": "checkout", "subset": "stable"}}, sdest("checkout", "canary", 0)]}]}),
        ),
    ]);
    let observed = router.observe(&subset_desired(20), &set).unwrap();
    assert_eq!(observed[0].location, "http[0]");
    assert_eq!(
        (observed[0].canary.clone(), observed[0].stable.clone()),
        (wd(0, "", "c9"), wd(0, "", "s9"))
    );
    let lone = objects([
        dr(json!({"host": "checkout", "subsets": [{"name": "canary"}, {"name": "stable"}]})),
        vs(
            json!({"tcp": [{"route": [{"destination": {"host": "checkout", "subset": "stable"}}]}]}),
        ),
    ]);
    assert_eq!(
        router.observe(&subset_desired(0), &lone),
        Err(RouterError::InvalidObject {
            key: vs_key(),
            field: "spec.tcp[0].route".into(),
            message: "Canary DestinationRule subset 'canary' not found in route".into()
        })
    );
}

#[test]
fn object_keys_and_api_version() {
    let router = subset_router(vs_ref("checkout.shop.cluster.local", &[]));
    assert_eq!(router.object_keys(&rollout()), vec![vs_key(), dr_key()]);
    assert_eq!(router.name(), "istio");
    assert_eq!(router.api_version(), "networking.istio.io/v1alpha3");
    let router = router.with_api_version("v1");
    assert_eq!(router.api_version(), "networking.istio.io/v1");
    assert_eq!(
        router
            .with_api_version("networking.istio.io/v1beta1")
            .api_version(),
        "networking.istio.io/v1beta1"
    );
}
