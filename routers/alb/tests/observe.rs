//! Spec 30 §6 and spec 40 #55, #56: observed weights and the verification seam.

mod common;

use common::*;
use pretty_assertions::assert_eq;
use rollout_router_alb::{
    AlbRouter, ExpectedTargetGroup, TargetGroupRole, VerificationRequest, record_verification,
};
use rollout_router_core::{ObservedWeights, PingPongServices, Router, RouterError};
use serde_json::json;

#[test]
fn observe_reads_the_action_back() {
    let router = AlbRouter::new(config(
        json!({"ingresses": ["a", "b"], "servicePort": 80, "rootService": "shop-root"}),
    ));
    let mut set = objects([
        simple_ingress("a", "shop-root"),
        simple_ingress("b", "shop-root"),
    ]);
    let mut d = desired(20);
    d.additional = vec![dest(10, "exp")];
    d.stable.weight = 70;
    d.managed_routes = vec![absent("h0"), active("qa", vec![header_match("X", "1")])];
    plan_apply(&router, &d, &mut set);
    let observed = router.observe(&d, &set).unwrap();
    let expected = |name: &str| ObservedWeights {
        object: key(name),
        location: "actions.shop-root".into(),
        canary: dest(20, "shop-canary"),
        stable: dest(70, "shop-stable"),
        additional: vec![dest(10, "exp")],
        // #56: nothing is claimed as verified until AWS is asked.
        verified: None,
        managed_routes: vec!["qa".into()],
    };
    assert_eq!(observed, vec![expected("a"), expected("b")]);
}

// Weights are matched by Service name: after a ping-pong swap the old action reads correctly.
#[test]
fn observe_matches_by_name() {
    let router = root_router();
    let mut set = objects([simple_ingress("shop", "shop-root")]);
    let mut before = desired(100);
    before.ping_pong = Some(PingPongServices {
        canary_service: "pong".into(),
        stable_service: "ping".into(),
    });
    plan_apply(&router, &before, &mut set);
    let mut after = desired(0);
    after.ping_pong = Some(PingPongServices {
        canary_service: "ping".into(),
        stable_service: "pong".into(),
    });
    let observed = router.observe(&after, &set).unwrap();
    assert_eq!(observed[0].canary, dest(0, "ping"));
    assert_eq!(observed[0].stable, dest(100, "pong"));
    assert_eq!(observed[0].additional, vec![]);
}

#[test]
fn observe_errors() {
    let router = root_router();
    let unprogrammed = objects([simple_ingress("shop", "shop-root")]);
    assert_eq!(
        router
            .observe(&desired(0), &unprogrammed)
            .unwrap_err()
            .to_string(),
        "Ingress shop/shop: metadata.annotations[alb.ingress.kubernetes.io/actions.shop-root]: is missing: the Ingress is not programmed"
    );
    let mut obj = simple_ingress("shop", "shop-root");
    obj["metadata"]["annotations"][ACTION] = json!("{\"Type\":\"fixed-response\"}");
    assert!(matches!(
        router.observe(&desired(0), &objects([obj])),
        Err(RouterError::InvalidObject { .. })
    ));
    assert!(matches!(
        router.observe(&desired(0), &objects([])),
        Err(RouterError::NotFound { .. })
    ));
}

// #55: the request names every target group by LBC's resource tag, the stable one included,
// and additional destinations once per Ingress; the verdict lands on that Ingress only.
#[test]
fn verification_requests_and_recording() {
    let router = AlbRouter::new(config(
        json!({"ingresses": ["a", "b"], "servicePort": 443, "rootService": "shop-root"}),
    ));
    let mut a = simple_ingress("a", "shop-root");
    a["status"] = json!({"loadBalancer": {"ingress": [{"hostname": "k8s-shop-a-123.eu-west-1.elb.amazonaws.com"}, {"ip": "10.0.0.1"}]}});
    let set = objects([a, simple_ingress("b", "shop-root")]);
    let mut d = desired(20);
    d.additional = vec![dest(10, "exp")];
    d.stable.weight = 70;
    let requests = router.verification_requests(&d, &set).unwrap();
    let tg = |role, svc: &str, ing: &str, weight| ExpectedTargetGroup {
        role,
        service_name: svc.into(),
        resource_tag_value: format!("shop/{ing}-{svc}:443"),
        weight,
    };
    assert_eq!(
        requests,
        vec![
            VerificationRequest {
                ingress: key("a"),
                load_balancer_hostnames: vec!["k8s-shop-a-123.eu-west-1.elb.amazonaws.com".into()],
                target_groups: vec![
                    tg(TargetGroupRole::Canary, "shop-canary", "a", 20),
                    tg(TargetGroupRole::Additional, "exp", "a", 10),
                    tg(TargetGroupRole::Stable, "shop-stable", "a", 70),
                ],
            },
            VerificationRequest {
                ingress: key("b"),
                load_balancer_hostnames: vec![],
                target_groups: vec![
                    tg(TargetGroupRole::Canary, "shop-canary", "b", 20),
                    tg(TargetGroupRole::Additional, "exp", "b", 10),
                    tg(TargetGroupRole::Stable, "shop-stable", "b", 70),
                ],
            },
        ]
    );
    let mut programmed = set.clone();
    plan_apply(&router, &d, &mut programmed);
    let mut observed = router.observe(&d, &programmed).unwrap();
    record_verification(&mut observed, &key("a"), true);
    assert_eq!(
        observed.iter().map(|o| o.verified).collect::<Vec<_>>(),
        vec![Some(true), None]
    );
}
