//! The seeded cluster: N Rollouts spread over a few namespaces, a third each routed by Istio
//! (host split), NGINX (canary Ingress) and ALB (weighted action), each with a realistic pod
//! template (on the Rollout and on both ReplicaSets) and its routing objects and Services, as
//! in `examples/{istio-host,nginx-header,alb-header}`.

use serde_json::{Value, json};
use test_apiserver::TestApiServer;

pub const STABLE: &str = "6c9d4b7f8";
pub const CANARY: &str = "84f7b9c6d";
/// The canary steps; the driver cycles through them (75 % → 10 % counts as a step too).
pub const STEP_WEIGHTS: [i32; 5] = [10, 20, 30, 40, 50];
const NAMESPACES: usize = 10;
/// Replicas per Rollout. At every step weight (10-50 %) the canary needs ceil(2 × w / 100) = 1
/// pod, so the canary ReplicaSet (1 pod) is at its desired count at every step and the driver
/// moves a step with one status write, as Argo's last write of a step is.
const REPLICAS: i64 = 2;
const CANARY_REPLICAS: i64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Router {
    Istio,
    Nginx,
    Alb,
}

impl Router {
    pub fn of(i: usize) -> Self {
        match i % 3 {
            0 => Self::Istio,
            1 => Self::Nginx,
            _ => Self::Alb,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Istio => "istio",
            Self::Nginx => "nginx",
            Self::Alb => "alb",
        }
    }
}

/// Rollout `i`'s name. Every object routed for it starts with this name (fixed width), which
/// is how the request log is mapped back to Rollouts (see [`owner_of`]).
pub fn name(i: usize) -> String {
    format!("ro{i:05}")
}

pub fn namespace(i: usize) -> String {
    format!("bench-{}", i % NAMESPACES)
}

/// The Rollout a routing object (or RolloutTraffic) belongs to, from its name.
pub fn owner_of(object_name: &str) -> &str {
    object_name.get(..7).unwrap_or(object_name)
}

/// A pod template of the size production Rollouts carry (about 4 KiB of JSON): an app
/// container with env, probes and resources, a log shipper sidecar, an init container,
/// volumes, affinity and tolerations.
fn pod_template(app: &str, hash: Option<&str>) -> Value {
    let mut labels = json!({"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop",
        "team": "storefront", "tier": "backend"});
    if let Some(hash) = hash {
        labels["rollouts-pod-template-hash"] = json!(hash);
    }
    let env: Vec<Value> = [
        ("LOG_LEVEL", "info"),
        ("LOG_FORMAT", "json"),
        ("HTTP_PORT", "8080"),
        ("METRICS_PORT", "9090"),
        ("DATABASE_POOL_SIZE", "20"),
        ("DATABASE_TIMEOUT", "5s"),
        ("CACHE_TTL", "300s"),
        ("FEATURE_FLAGS_URL", "http://flags.platform.svc.cluster.local:8080"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.observability:4317"),
        ("OTEL_SERVICE_NAME", app),
        ("GOMAXPROCS", "2"),
        ("REGION", "eu-west-1"),
    ]
    .iter()
    .map(|(k, v)| json!({"name": k, "value": v}))
    .chain([
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("{app}-db"), "key": "password"}}}),
    ])
    .collect();
    json!({
        "metadata": {
            "labels": labels,
            "annotations": {
                "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                "kubectl.kubernetes.io/default-container": "app"
            }
        },
        "spec": {
            "serviceAccountName": app,
            "terminationGracePeriodSeconds": 45,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [{
                "name": "migrate",
                "image": format!("registry.example.com/storefront/{app}-migrate:4.2.0"),
                "args": ["--wait-for-db", "--timeout=120s"],
                "env": env[..6].to_vec(),
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
            }],
            "containers": [
                {
                    "name": "app",
                    "image": format!("registry.example.com/storefront/{app}:4.2.0"),
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["serve", "--config=/etc/app/config.yaml"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                              {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
                    "env": env,
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                  "limits": {"cpu": "1", "memory": "512Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                        "initialDelaySeconds": 5, "periodSeconds": 5, "failureThreshold": 3},
                    "livenessProbe": {"httpGet": {"path": "/live", "port": "http"},
                        "initialDelaySeconds": 15, "periodSeconds": 10, "failureThreshold": 6},
                    "startupProbe": {"httpGet": {"path": "/live", "port": "http"},
                        "periodSeconds": 2, "failureThreshold": 60},
                    "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 10"]}}},
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true},
                                     {"name": "tmp", "mountPath": "/tmp"},
                                     {"name": "tls", "mountPath": "/etc/tls", "readOnly": true}]
                },
                {
                    "name": "log-shipper",
                    "image": "registry.example.com/platform/fluent-bit:3.1.4",
                    "args": ["--config=/fluent-bit/etc/fluent-bit.yaml"],
                    "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
                    "volumeMounts": [{"name": "fluent-bit-config", "mountPath": "/fluent-bit/etc"},
                                     {"name": "tmp", "mountPath": "/var/log/app", "readOnly": true}]
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": format!("{app}-config")}},
                {"name": "fluent-bit-config", "configMap": {"name": "fluent-bit-sidecar"}},
                {"name": "tls", "secret": {"secretName": format!("{app}-tls")}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}
            ],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}}}
            }]}},
            "tolerations": [{"key": "workload", "operator": "Equal", "value": "storefront", "effect": "NoSchedule"}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}}}]
        }
    })
}

fn plugin_block(i: usize) -> Value {
    let name = name(i);
    match Router::of(i) {
        Router::Istio => {
            json!({"istio": {"virtualService": {"name": name, "routes": ["primary"]}}})
        }
        Router::Nginx => json!({"nginx": {"stableIngress": format!("{name}-public")}}),
        Router::Alb => json!({"alb": {"ingress": name, "servicePort": 80}}),
    }
}

/// Rollout `i`, an update in progress at step 0 (weight 10).
pub fn rollout(i: usize) -> Value {
    let name = name(i);
    let steps: Vec<Value> = STEP_WEIGHTS
        .iter()
        .map(|w| json!({"setWeight": w}))
        .collect();
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": name, "namespace": namespace(i),
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"},
            "annotations": {"rollout.argoproj.io/revision": "2"}
        },
        "spec": {
            "replicas": REPLICAS,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": pod_template(&name, None),
            "strategy": {"canary": {
                "canaryService": format!("{name}-canary"),
                "stableService": format!("{name}-stable"),
                "steps": steps,
                "trafficRouting": {"plugins": {"rollout-router/traffic": plugin_block(i)}}
            }}
        },
        "status": {
            "observedGeneration": "1", "stableRS": STABLE, "currentPodHash": CANARY,
            "currentStepIndex": 0, "replicas": REPLICAS + CANARY_REPLICAS,
            "availableReplicas": REPLICAS + CANARY_REPLICAS
        }
    })
}

fn replica_set(i: usize, uid: &str, hash: &str) -> Value {
    let name = name(i);
    let replicas = if hash == CANARY {
        CANARY_REPLICAS
    } else {
        REPLICAS
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"), "namespace": namespace(i),
            "labels": {"app.kubernetes.io/name": name, "rollouts-pod-template-hash": hash},
            "annotations": {"rollout.argoproj.io/revision": if hash == CANARY { "2" } else { "1" },
                            "rollout.argoproj.io/desired-replicas": REPLICAS.to_string()},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name, "rollouts-pod-template-hash": hash}},
            "template": pod_template(&name, Some(hash))
        },
        "status": {"replicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas,
                   "fullyLabeledReplicas": replicas, "observedGeneration": 1}
    })
}

fn service(i: usize, role: &str) -> Value {
    let name = name(i);
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("{name}-{role}"), "namespace": namespace(i),
                     "labels": {"app.kubernetes.io/name": name}},
        "spec": {"selector": {"app.kubernetes.io/name": name},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    })
}

/// The routing object(s) Rollout `i` references, as a team would have written them.
fn routing_objects(i: usize) -> Vec<Value> {
    let name = name(i);
    let ns = namespace(i);
    let host = format!("{name}.{ns}.example.com");
    match Router::of(i) {
        Router::Istio => vec![json!({
            "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "hosts": [host], "gateways": ["mesh"],
                "http": [
                    {"name": "health", "match": [{"uri": {"exact": "/healthz"}}],
                     "route": [{"destination": {"host": format!("{name}-stable"), "port": {"number": 80}}}]},
                    {"name": "primary",
                     "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset,connect-failure"},
                     "timeout": "10s",
                     "route": [
                        {"destination": {"host": format!("{name}-stable"), "port": {"number": 80}}, "weight": 100},
                        {"destination": {"host": format!("{name}-canary"), "port": {"number": 80}}, "weight": 0}
                     ]}
                ]
            }
        })],
        Router::Nginx => vec![json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": format!("{name}-public"), "namespace": ns,
                "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                                "cert-manager.io/cluster-issuer": "letsencrypt"}},
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": [host], "secretName": format!("{name}-tls")}],
                "rules": [{"host": host, "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": format!("{name}-stable"), "port": {"name": "http"}}}}
                ]}}]
            }
        })],
        Router::Alb => vec![json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns,
                "annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing",
                                "alb.ingress.kubernetes.io/target-type": "ip",
                                "alb.ingress.kubernetes.io/group.name": "shop",
                                "alb.ingress.kubernetes.io/healthcheck-path": "/healthz"}},
            "spec": {
                "ingressClassName": "alb",
                "rules": [{"host": host, "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": format!("{name}-stable"), "port": {"name": "use-annotation"}}}}
                ]}}]
            }
        })],
    }
}

/// Seeds namespaces and Rollouts `range` with their ReplicaSets, Services and routing objects
/// (directly into the store: no HTTP, not in the request log).
pub fn seed(server: &TestApiServer, range: std::ops::Range<usize>) -> anyhow::Result<()> {
    for ns in 0..NAMESPACES.min(range.end) {
        server.seed(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace(ns)}}))?;
    }
    for i in range {
        let created = server.seed(rollout(i))?;
        let uid = created
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("seeded Rollout {} has no uid", name(i)))?
            .to_owned();
        for hash in [STABLE, CANARY] {
            server.seed(replica_set(i, &uid, hash))?;
        }
        for role in ["stable", "canary"] {
            server.seed(service(i, role))?;
        }
        for object in routing_objects(i) {
            server.seed(object)?;
        }
    }
    Ok(())
}

/// Size in bytes of one Rollout's JSON (for the report).
pub fn rollout_bytes() -> usize {
    serde_json::to_vec(&rollout(0)).map_or(0, |v| v.len())
}
