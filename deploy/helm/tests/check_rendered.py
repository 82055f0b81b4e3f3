#!/usr/bin/env python3
"""Checks one `helm template` rendering of the rollout-router chart.

Usage: check_rendered.py [--custom-out FILE.json] SCENARIO RENDERED.yaml K8S_VERSION...

1. Every object of a built-in kind validates (strictly: unknown fields are errors) against the
   Kubernetes OpenAPI schemas shipped by kubernetes-validate, for each Kubernetes version given.
   Custom resources are written to --custom-out for the CRD-schema check
   (servicemonitor-validate.mjs); a kind that is neither built in nor known there is an error.
2. The scenario's expectations hold: the RBAC rules equal, rule by rule, rbac-rules.yaml (the table the
   end-to-end suite checks against the controller's request log, not derived from the chart), and the Deployment's
   arguments, environment, probes and security context are what the values asked for.
"""

import argparse
import json
import os
import sys
from collections import defaultdict
from functools import lru_cache

import yaml
from kubernetes_validate import utils as kv

# Cache schema files: kubernetes-validate re-reads its multi-megabyte definitions on every call.
kv.schema_contents = lru_cache(maxsize=None)(kv.schema_contents)

RELEASE_NAMESPACE = "rollout-router"
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# What the controller requests, per feature: the table the e2e suite checks against the
# controller's request log (tests/e2e/rbac.rs).
RULES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rbac-rules.yaml")


def load_rules():
    with open(RULES_FILE) as f:
        table = yaml.safe_load(f)
    out = {}
    for feature, rules in table.items():
        grouped = defaultdict(set)
        for rule in rules:
            grouped[(rule["group"], rule["resource"])] |= set(rule["verbs"])
        out[feature] = dict(grouped)
    return out


RULES = load_rules()
BASE_RULES = RULES["base"]
LEASE_RULES = RULES["leaderElection"]
ARGO_PLUGIN_RULES = RULES["argoPlugin"]


def add_rules(rules, extra):
    for key, verbs in extra.items():
        rules[key] = rules.get(key, set()) | verbs


# Scenario name -> (values the scenario sets, as the check needs them).
SCENARIOS = {
    "defaults": {},
    "defaults-manifests": {},
    "istio-only": {"routers": {"istio": True, "nginx": False, "alb": False}},
    "nginx-only": {"routers": {"istio": False, "nginx": True, "alb": False}},
    "alb-only": {"routers": {"istio": False, "nginx": False, "alb": True}},
    "namespaced": {"namespaced": True, "watchNamespace": "shop"},
    "namespaced-default": {"namespaced": True},
    "argo-rollouts": {"argoRollouts": True},
    "namespaced-argo-rollouts": {"namespaced": True, "watchNamespace": "shop", "argoRollouts": True},
    "service-monitor": {"serviceMonitor": True},
    "extras": {"extras": True},
    "single-replica": {"replicaCount": 1, "leaderElection": False, "writeRolloutWeights": True,
                       "dryRun": True},
}


class CheckError(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckError(message)


def expected_rules(values):
    routers = {"istio": True, "nginx": True, "alb": True, **values.get("routers", {})}
    rules = {k: set(v) for k, v in BASE_RULES.items()}
    if values.get("writeRolloutWeights"):
        add_rules(rules, RULES["writeRolloutWeights"])
    for router in ("istio", "nginx", "alb"):
        if routers[router]:
            add_rules(rules, RULES[router])
    return rules


def flatten_rules(role):
    """(apiGroup, resource) -> verbs, refusing wildcards and duplicate grants."""
    granted = defaultdict(set)
    for rule in role.get("rules") or []:
        expect("resourceNames" not in rule and "nonResourceURLs" not in rule,
               f"{role['kind']} {role['metadata']['name']}: unexpected rule {rule}")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    expect("*" not in (group, resource, verb),
                           f"{role['kind']} {role['metadata']['name']}: wildcard in {rule}")
                    expect(verb not in granted[(group, resource)],
                           f"{role['kind']} {role['metadata']['name']}: {verb} on "
                           f"{group}/{resource} granted twice")
                    granted[(group, resource)].add(verb)
    return dict(granted)


def compare_rules(what, granted, wanted):
    missing = {k: sorted(v - granted.get(k, set())) for k, v in wanted.items()}
    extra = {k: sorted(v - wanted.get(k, set())) for k, v in granted.items()}
    missing = {f"{g}/{r}": v for (g, r), v in missing.items() if v}
    extra = {f"{g}/{r}": v for (g, r), v in extra.items() if v}
    expect(not missing and not extra, f"{what}: missing {missing}, extra {extra}")


def validate_builtin(docs, versions):
    errors = []
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        name = f"{doc['kind']} {doc['metadata'].get('name')}"
        for version in versions:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                errors.append(f"{name} (Kubernetes {version}): {path}: {e.message}")
            except kv.SchemaNotFoundError as e:
                errors.append(f"{name}: {e.message}")
    expect(not errors, "schema validation failed:\n  " + "\n  ".join(errors))


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name=None):
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    expect(len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def check_rbac(docs, values):
    namespaced = values.get("namespaced", False)
    watch_ns = values.get("watchNamespace", RELEASE_NAMESPACE)
    leader = values.get("leaderElection", True)
    role_kind, binding_kind = ("Role", "RoleBinding") if namespaced else ("ClusterRole",
                                                                         "ClusterRoleBinding")
    role = one(docs, role_kind, "rollout-router")
    compare_rules(f"{role_kind} rollout-router", flatten_rules(role), expected_rules(values))
    binding = one(docs, binding_kind, "rollout-router")
    expect(binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                                  "name": "rollout-router"}, f"roleRef {binding['roleRef']}")
    expect(binding["subjects"] == [{"kind": "ServiceAccount", "name": "rollout-router",
                                    "namespace": RELEASE_NAMESPACE}],
           f"{binding_kind} subjects {binding['subjects']}")
    if namespaced:
        expect(role["metadata"].get("namespace") == watch_ns,
               f"Role namespace {role['metadata'].get('namespace')}, want {watch_ns}")
        expect(binding["metadata"].get("namespace") == watch_ns, "RoleBinding namespace")
        expect(not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding"),
               "namespaced mode renders no cluster-wide RBAC")

    lease_roles = [d for d in by_kind(docs, "Role") if d["metadata"]["name"].endswith("-leader-election")]
    if leader:
        expect(len(lease_roles) == 1, "one leader-election Role")
        expect(lease_roles[0]["metadata"]["namespace"] == RELEASE_NAMESPACE,
               "the Lease Role is in the release namespace")
        compare_rules("leader-election Role", flatten_rules(lease_roles[0]), LEASE_RULES)
    else:
        expect(not lease_roles, "no leader-election Role without leader election")

    argo = [d for d in docs if d["kind"] in ("ClusterRole", "Role")
            and d["metadata"]["name"].endswith("-argo-rollouts-plugin")]
    if values.get("argoRollouts"):
        expect(len(argo) == 1, "one Role/ClusterRole for Argo's service account")
        compare_rules("Argo plugin role", flatten_rules(argo[0]), ARGO_PLUGIN_RULES)
        expect(argo[0]["kind"] == role_kind, f"Argo's {argo[0]['kind']}, want a {role_kind}")
        argo_binding = one(docs, binding_kind, argo[0]["metadata"]["name"])
        if namespaced:
            expect(argo_binding["metadata"].get("namespace") == watch_ns,
                   "Argo's RoleBinding is in the watched namespace")
        expect(argo_binding["subjects"] == [{"kind": "ServiceAccount", "name": "argo-rollouts",
                                             "namespace": "argo-rollouts"}],
               f"Argo binding subjects {argo_binding['subjects']}")
    else:
        expect(not argo, "no Argo plugin RBAC unless argoRollouts.enabled")


def check_deployment(docs, values):
    deployment = one(docs, "Deployment")
    leader = values.get("leaderElection", True)
    replicas = values.get("replicaCount", 2)
    expect(deployment["spec"]["replicas"] == replicas, f"replicas {deployment['spec']['replicas']}")
    pod = deployment["spec"]["template"]["spec"]
    expect(len(pod["containers"]) == 1, f"{len(pod['containers'])} containers, want 1")
    container = pod["containers"][0]
    args = container["args"]
    expect(args[0] == "run", f"first argument {args[0]!r}, want the `run` subcommand")

    routers = {"istio": True, "nginx": True, "alb": True, **values.get("routers", {})}
    enabled = ",".join(r for r in ("istio", "nginx", "alb") if routers[r])
    wanted = {f"--routers={enabled}", "--plugin-key=rollout-router/traffic",
              "--admin-addr=0.0.0.0:8080"}
    if values.get("namespaced"):
        wanted.add(f"--namespace={values.get('watchNamespace', RELEASE_NAMESPACE)}")
    else:
        expect(not any(a.startswith("--namespace") for a in args), "--namespace only when namespaced")
    if leader:
        wanted |= {"--lease-name=rollout-router", "--lease-duration=15s"}
    else:
        wanted.add("--no-leader-election")
    for flag in ("writeRolloutWeights", "dryRun"):
        cli = {"writeRolloutWeights": "--write-rollout-weights", "dryRun": "--dry-run"}[flag]
        if values.get(flag):
            wanted.add(cli)
        else:
            expect(cli not in args, f"{cli} only when {flag}")
    expect(wanted <= set(args), f"arguments {args} lack {sorted(wanted - set(args))}")

    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
           for e in container.get("env", [])}
    expect(env.get("POD_NAME") == "metadata.name", "POD_NAME from the downward API")
    expect(env.get("POD_NAMESPACE") == "metadata.namespace", "POD_NAMESPACE from the downward API")

    expect(container["livenessProbe"]["httpGet"] == {"path": "/live", "port": "admin"}, "liveness")
    expect(container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}, "readiness")
    expect({"name": "admin", "containerPort": 8080, "protocol": "TCP"} in container["ports"],
           "admin port 8080")

    sc = container["securityContext"]
    expect(sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
           and sc.get("allowPrivilegeEscalation") is False
           and sc.get("capabilities") == {"drop": ["ALL"]}
           and sc.get("seccompProfile") == {"type": "RuntimeDefault"},
           f"container securityContext {sc}")
    expect(pod["securityContext"].get("runAsNonRoot") is True, "pod runAsNonRoot")

    pdbs = by_kind(docs, "PodDisruptionBudget")
    if replicas > 1:
        expect(len(pdbs) == 1 and pdbs[0]["spec"]["minAvailable"] == 1, "PDB minAvailable 1")
        expect(pdbs[0]["spec"]["selector"] == deployment["spec"]["selector"], "PDB selector")
    else:
        expect(not pdbs, "no PDB for a single replica")


def check_extras(docs):
    """values-extras.yaml: every pass-through value reaches the objects."""
    pod = one(docs, "Deployment")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    expect(container["image"] == "registry.example.com/platform/rollout-router:0.1.0-rc.1",
           f"image {container['image']}")
    expect(container["imagePullPolicy"] == "Always", "imagePullPolicy")
    expect(container["args"][-1] == "--identity=rollout-router-canary", "extraArgs come last")
    expect("--log-level=info,rollout_router=debug" in container["args"], "logLevel")
    expect("--log-format=text" in container["args"], "logFormat")
    names = [e["name"] for e in container["env"]]
    expect(names == ["POD_NAMESPACE", "POD_NAME", "RUST_BACKTRACE", "NODE_NAME"], f"env {names}")
    expect(pod["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}], "imagePullSecrets")
    expect(pod["spec"]["priorityClassName"] == "system-cluster-critical", "priorityClassName")
    expect(pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}, "nodeSelector")
    expect(pod["spec"]["tolerations"][0]["key"] == "dedicated", "tolerations")
    expect("podAntiAffinity" in pod["spec"]["affinity"], "affinity")
    expect(pod["metadata"]["annotations"] == {"example.com/team": "platform"}, "podAnnotations")
    expect(pod["metadata"]["labels"].get("example.com/tier") == "control-plane", "podLabels")
    expect(container["resources"]["limits"]["memory"] == "512Mi", "resources")
    account = one(docs, "ServiceAccount")
    expect("eks.amazonaws.com/role-arn" in account["metadata"]["annotations"],
           "serviceAccount.annotations")


def check_service(docs, values):
    service = one(docs, "Service")
    port = 9090 if values.get("extras") else 8080
    expect(service["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "admin",
                                         "protocol": "TCP"}], f"Service ports {service['spec']['ports']}")
    deployment = one(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    expect(all(labels.get(k) == v for k, v in service["spec"]["selector"].items()),
           "the metrics Service selects the controller pods")
    monitors = by_kind(docs, "ServiceMonitor")
    if values.get("serviceMonitor"):
        expect(len(monitors) == 1, "one ServiceMonitor")
        monitor = monitors[0]
        expect(monitor["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor port name")
        svc_labels = service["metadata"]["labels"]
        expect(all(svc_labels.get(k) == v
                   for k, v in monitor["spec"]["selector"]["matchLabels"].items()),
               "the ServiceMonitor selects the metrics Service")
    else:
        expect(not monitors, "no ServiceMonitor unless serviceMonitor.enabled")


def check_crd(docs):
    crd = one(docs, "CustomResourceDefinition")
    expect(crd["metadata"]["name"] == "rollouttraffics.rollout-router.io", "the RolloutTraffic CRD")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--custom-out", help="where to write the custom resources (JSON list)")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("rendered")
    parser.add_argument("versions", nargs="+", metavar="K8S_VERSION")
    args = parser.parse_args()
    scenario, path, versions = args.scenario, args.rendered, args.versions
    values = SCENARIOS[scenario]
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    try:
        validate_builtin(docs, versions)
        check_crd(docs)
        check_rbac(docs, values)
        check_deployment(docs, values)
        check_service(docs, values)
        if values.get("extras"):
            check_extras(docs)
    except CheckError as e:
        print(f"FAIL {scenario}: {e}", file=sys.stderr)
        return 1
    custom = [d for d in docs if (d["apiVersion"], d["kind"]) in CUSTOM_KINDS]
    if custom and not args.custom_out:
        print(f"FAIL {scenario}: custom resources rendered but no --custom-out", file=sys.stderr)
        return 1
    if args.custom_out:
        with open(args.custom_out, "w") as f:
            json.dump(custom, f)
    print(f"ok   {scenario}: {len(docs)} objects valid for Kubernetes {', '.join(versions)}; "
          f"{len(custom)} custom resource(s) left for the CRD-schema check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
