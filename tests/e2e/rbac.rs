//! The chart grants exactly what the controller uses: the RBAC rules derived from the request log
//! of the controller's own client (its bearer token names it in the log) are compared with
//! `deploy/helm/tests/rbac-rules.yaml`, the table `.ci/helm-check` compares the rendered chart
//! with. Every test of the suite checks "nothing used that is not granted" when its `Env` shuts
//! down; the test here drives every feature at once (three routers, conflicts, a release, an
//! invalid configuration reported twice, `--write-rollout-weights`, leader election) and checks
//! "nothing granted that is not used".

use std::collections::{BTreeMap, BTreeSet};

use kube::api::ListParams;
use serde::Deserialize;
use serde_json::{Value, json};
use test_apiserver::{RbacRule, RequestMatch, Verb};

use crate::harness::{self, Env, repo, resource, rollouts};

/// `(group, resource)` -> verbs.
type Rules = BTreeMap<(String, String), BTreeSet<String>>;

#[derive(Deserialize)]
struct Rule {
    group: String,
    resource: String,
    verbs: Vec<String>,
}

/// The table, per feature (`base`, `istio`, `nginx`, `alb`, `writeRolloutWeights`,
/// `leaderElection`, `argoPlugin`).
fn table() -> BTreeMap<String, Vec<Rule>> {
    let path = repo().join("deploy/helm/tests/rbac-rules.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// The rules of these features, joined.
fn granted(features: &[&str]) -> Rules {
    let table = table();
    let mut out = Rules::new();
    for feature in features {
        let rules = table
            .get(*feature)
            .unwrap_or_else(|| panic!("rbac-rules.yaml has no feature {feature}"));
        for r in rules {
            out.entry((r.group.clone(), r.resource.clone()))
                .or_default()
                .extend(r.verbs.iter().cloned());
        }
    }
    out
}

/// Every feature the controller itself has (the Argo plugin's rule is for another account).
const CONTROLLER_FEATURES: [&str; 6] = [
    "base",
    "writeRolloutWeights",
    "istio",
    "nginx",
    "alb",
    "leaderElection",
];

fn used(rules: &[RbacRule]) -> Rules {
    rules
        .iter()
        .map(|r| {
            (
                (r.group.clone(), r.resource.clone()),
                r.verb_names().into_iter().map(str::to_owned).collect(),
            )
        })
        .collect()
}

/// What `rules` use that no feature of the controller grants, as `group/resource: verbs`.
pub fn not_granted(rules: &[RbacRule]) -> Vec<String> {
    let granted = granted(&CONTROLLER_FEATURES);
    used(rules)
        .into_iter()
        .filter_map(|(key, verbs)| {
            let have = granted.get(&key).cloned().unwrap_or_default();
            let missing: Vec<_> = verbs.difference(&have).cloned().collect();
            (!missing.is_empty()).then(|| format!("{}/{}: {}", key.0, key.1, missing.join(",")))
        })
        .collect()
}

/// The objects of one bundled example, made creatable in the test namespace.
fn example(dir: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("examples").join(dir)).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for mut doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
            if let Some(meta) = doc["metadata"].as_object_mut() {
                for k in ["uid", "generation", "namespace", "resourceVersion"] {
                    meta.remove(k);
                }
            }
            out.push(doc);
        }
    }
    // Rollouts last: their routing objects exist when the controller first sees them.
    out.sort_by_key(|d| d["kind"] == "Rollout");
    out
}

fn replica_set(rollout: &Value, uid: &str, hash: &str) -> Value {
    let name = rollout["metadata"]["name"].as_str().unwrap();
    let mut labels = rollout["spec"]["selector"]["matchLabels"].clone();
    labels["rollouts-pod-template-hash"] = json!(hash);
    let replicas = rollout["spec"]["replicas"].as_i64().unwrap_or(1);
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"),
            "labels": labels,
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name, "uid": uid, "controller": true}]
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": rollout["spec"]["template"]["spec"]}
        },
        "status": {"replicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas}
    })
}

/// The index of the step after the first `setHeaderRoute`: a weight and a header route active.
fn after_header_route(rollout: &Value) -> i64 {
    let steps = rollout["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .unwrap();
    let i = steps
        .iter()
        .position(|s| s.get("setHeaderRoute").is_some())
        .unwrap();
    i64::try_from(i + 1).unwrap()
}

async fn wait_routed(env: &Env, name: &str) {
    env.wait_traffic(name, |rt| {
        rt.status.as_ref().is_some_and(|s| {
            !s.routes.is_empty()
                && s.applied_weight.is_some_and(|w| w > 0)
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
}

/// A user's edit of a Rollout's spec, then the rollout controller observing it.
async fn edit_rollout(env: &Env, name: &str, patch: Value, json_patch: bool) {
    let edited = if json_patch {
        env.patch_json(&rollouts(), name, patch).await
    } else {
        env.patch(&rollouts(), name, patch).await
    };
    let generation = edited["metadata"]["generation"].as_i64().unwrap();
    env.patch_status(
        &rollouts(),
        name,
        json!({"observedGeneration": generation.to_string()}),
    )
    .await;
}

async fn wait_invalid(env: &Env, name: &str, invalid: bool) {
    env.wait_traffic(name, |rt| {
        rt.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "InvalidConfig" && (c.status == "True") == invalid)
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_uses_exactly_what_the_chart_grants() {
    let mut env = Env::new("rbac").await;
    if env.server().is_none() {
        eprintln!("skipped on a real cluster: it needs the test server's request log");
        return;
    }

    // The three bundled examples, each at the step after its first header route.
    let mut names = Vec::new();
    for dir in ["istio-subset", "nginx-header", "alb-header"] {
        for doc in example(dir) {
            if doc["kind"] != "Rollout" {
                env.create(doc).await;
                continue;
            }
            let mut rollout = doc;
            rollout["status"]["currentStepIndex"] = json!(after_header_route(&rollout));
            rollout["status"]["observedGeneration"] = json!("1");
            let created = env.create(rollout.clone()).await;
            let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
            for key in ["stableRS", "currentPodHash"] {
                let hash = rollout["status"][key].as_str().unwrap();
                env.create(replica_set(&rollout, &uid, hash)).await;
            }
            names.push(created["metadata"]["name"].as_str().unwrap().to_owned());
        }
    }
    let mut settings = env.settings("rbac-controller", true);
    settings.write_rollout_weights = true;
    env.start_controller(settings).await;
    for name in &names {
        wait_routed(&env, name).await;
    }

    // A conflict on each kind of routing object: the re-plan reads it fresh (GET).
    let server = env.server().unwrap();
    let mark = server.mark();
    for resource in ["virtualservices", "destinationrules", "ingresses"] {
        server.conflict_next(RequestMatch::any().verb(Verb::Patch).resource(resource), 1);
    }
    for name in &names {
        let rollout = env.get(&rollouts(), name).await.unwrap();
        let next = rollout["status"]["currentStepIndex"].as_i64().unwrap() + 1;
        env.patch_status(&rollouts(), name, json!({"currentStepIndex": next}))
            .await;
        let steps = rollout["spec"]["strategy"]["canary"]["steps"]
            .as_array()
            .unwrap()
            .len();
        let label = format!("{next}/{steps}");
        env.wait_traffic(name, |rt| {
            rt.status.as_ref().is_some_and(|s| {
                s.step == label
                    && s.applied_weight.is_some()
                    && s.applied_weight == s.desired_weight
            })
        })
        .await;
    }
    let conflicts = server.count_since(
        mark,
        &RequestMatch::any().verb(Verb::Get).resource("ingresses"),
    );
    assert!(
        conflicts >= 1,
        "the Ingress conflict was re-planned from a fresh GET"
    );

    // An invalid configuration reported, fixed and reported again: the second Warning is the
    // same Event, patched (its series grows) rather than created again.
    let alb = "checkout";
    for _ in 0..2 {
        edit_rollout(
            &env,
            alb,
            json!({"spec": {"strategy": {"canary": {"trafficRouting": {"plugins": {"rollout-router/traffic": {"alb": {"ingress": "missing"}}}}}}}}),
            false,
        )
        .await;
        wait_invalid(&env, alb, true).await;
        edit_rollout(
            &env,
            alb,
            json!({"spec": {"strategy": {"canary": {"trafficRouting": {"plugins": {"rollout-router/traffic": {"alb": {"ingress": "checkout"}}}}}}}}),
            false,
        )
        .await;
        wait_invalid(&env, alb, false).await;
    }

    // Releases: the plugin block dropped from one Rollout (its RolloutTraffic is deleted); another
    // Rollout completes (rollout-router's canary Ingress is deleted), then is deleted itself.
    edit_rollout(
        &env,
        "catalog",
        json!([{"op": "remove", "path": "/spec/strategy/canary/trafficRouting/plugins"}]),
        true,
    )
    .await;
    harness::wait_object(&env.traffic_api(), "catalog", |o| o.is_none()).await;
    let shop = env.get(&rollouts(), "shop").await.unwrap();
    let steps = shop["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .unwrap()
        .len();
    env.patch_status(
        &rollouts(),
        "shop",
        json!({"stableRS": shop["status"]["currentPodHash"], "currentStepIndex": steps}),
    )
    .await;
    env.wait_traffic("shop", |rt| {
        rt.status
            .as_ref()
            .is_some_and(|s| s.step == "completed" && s.applied_weight == Some(0))
    })
    .await;
    let ingresses = env.api(&resource("networking.k8s.io", "v1", "Ingress", "ingresses"));
    let names: Vec<String> = ingresses
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|i| i.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["checkout", "shop-public"],
        "the canary Ingress is deleted"
    );
    env.delete(&rollouts(), "shop").await;
    harness::wait_object(&env.traffic_api(), "shop", |o| o.is_none()).await;

    // Stopping releases the Lease.
    for c in env.controllers.drain(..) {
        c.shutdown().await;
    }
    let used = used(&env.controller_rules());
    let wanted = granted(&CONTROLLER_FEATURES);
    let events = env
        .api(&resource("events.k8s.io", "v1", "Event", "events"))
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.data["series"]["count"].as_i64().is_some_and(|c| c >= 2)),
        "a repeated Warning is one Event with a series"
    );
    let server = env.server().unwrap();
    let test_writes = server.count_since(mark, &RequestMatch::writes().user("rbac-controller"));
    assert!(test_writes > 0, "the controller's requests are in the log");
    env.shutdown().await;
    assert_eq!(
        used, wanted,
        "rules used by the controller (left) against deploy/helm/tests/rbac-rules.yaml (right)"
    );
}
