//! Expectations shared by the integration tests.

use serde_json::json;

/// The Rollout of `tests/go-host/main.go` as Argo would write it, minus what gob cannot carry
/// (zero values, quantities' amounts: see docs/argo-plugin.md).
#[allow(dead_code)] // each test binary uses what it needs
pub fn expected_rollout_json() -> serde_json::Value {
    json!({
        "kind": "Rollout",
        "apiVersion": "argoproj.io/v1alpha1",
        "metadata": {
            "name": "shop",
            "namespace": "prod",
            "uid": "8f3e1f8a-1111-4c4c-9d9d-123456789abc",
            "resourceVersion": "4242",
            "generation": 2,
            "creationTimestamp": "2024-05-06T07:08:09Z",
            "labels": {"app": "shop"},
            "annotations": {"rollout.argoproj.io/revision": "2"},
            "ownerReferences": [{
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Owner", "name": "o", "uid": "u",
                "controller": true
            }],
            "managedFields": [{
                "manager": "kubectl", "operation": "Update", "apiVersion": "argoproj.io/v1alpha1",
                "time": "2024-05-06T07:08:09Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"raw": {"f:spec": {}}}
            }]
        },
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}},
                "spec": {"containers": [{
                    "name": "shop",
                    "image": "registry.example.com/shop:2.0",
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": ""}, "requests": {"memory": ""}}
                }]}
            },
            "strategy": {"canary": {
                "canaryService": "shop-canary",
                "stableService": "shop-stable",
                "steps": [
                    {"setWeight": 20},
                    {"pause": {"duration": "1m"}},
                    {"setHeaderRoute": {"name": "header-route", "match": [
                        {"headerName": "X-Canary", "headerValue": {"exact": "yes"}}
                    ]}},
                    {"setMirrorRoute": {"name": "mirror-route", "percentage": 35, "match": [
                        {"method": {"exact": "GET"}, "path": {"prefix": "/"}}
                    ]}},
                    {"experiment": {"templates": [{"name": "exp", "specRef": "canary", "weight": 10}]}},
                    {"setCanaryScale": {"replicas": 2}},
                    {"setWeight": 0},
                    {"pause": {}}
                ],
                "trafficRouting": {
                    "managedRoutes": [{"name": "header-route"}, {"name": "mirror-route"}],
                    "plugins": {"rollout-router/traffic": {
                        "istio": {"virtualService": {"name": "shop", "routes": ["primary"]}}
                    }},
                    "maxTrafficWeight": 100
                },
                "maxUnavailable": 1,
                "maxSurge": "25%",
                "abortScaleDownDelaySeconds": 30,
                "minPodsPerReplicaSet": 2
            }},
            "restartAt": "2024-05-07T00:00:00Z"
        },
        "status": {
            "currentPodHash": "7bf84f9696",
            "replicas": 5,
            "observedGeneration": "2",
            "conditions": [{
                "type": "Progressing", "status": "True",
                "lastUpdateTime": "2024-05-06T07:08:09Z",
                "lastTransitionTime": "2024-05-06T07:08:09Z",
                "reason": "RolloutUpdated", "message": "updated"
            }],
            "canary": {"weights": {
                "canary": {"weight": 0, "serviceName": "shop-canary", "podTemplateHash": "7bf84f9696"},
                "stable": {"weight": 100, "serviceName": "shop-stable", "podTemplateHash": "5d58bd77d4"}
            }},
            "blueGreen": {},
            "HPAReplicas": 5,
            "stableRS": "5d58bd77d4",
            "phase": "Progressing",
            "albs": [{"ingress": "i"}]
        }
    })
}
