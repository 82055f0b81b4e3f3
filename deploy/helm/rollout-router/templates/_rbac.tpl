{{/*
The exact permissions the controller uses, in one place: the (Cluster)Role of the watched scope
and the Lease Role. deploy/helm/tests/rbac-rules.yaml lists the same rules: .ci/helm-check compares
the rendered chart with it, and the end-to-end suite (tests/e2e/rbac.rs) compares it with the
requests the controller makes. A rule is added here only when the controller makes that request.
*/}}

{{/* Rules in the watched scope: every namespace (ClusterRole) or `watchNamespace` (Role). */}}
{{- define "rollout-router.rules" -}}
# Inputs are read from the watch caches only: list and watch, no get.
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["list", "watch"]
{{- if .Values.writeRolloutWeights }}
# --write-rollout-weights: status.canary.weights on the Rollout.
- apiGroups: ["argoproj.io"]
  resources: ["rollouts/status"]
  verbs: ["patch"]
{{- end }}
- apiGroups: ["argoproj.io"]
  resources: ["experiments"]
  verbs: ["list", "watch"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list", "watch"]
- apiGroups: ["rollout-router.io"]
  resources: ["rollouttraffics"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["rollout-router.io"]
  resources: ["rollouttraffics/status"]
  verbs: ["patch"]
{{- if .Values.routers.istio }}
# Istio router: weights and managed routes in VirtualServices, subset hashes in DestinationRules.
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices", "destinationrules"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- if .Values.routers.nginx }}
# NGINX router: reads stable Ingresses, creates, patches and deletes canary Ingresses.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "patch", "create", "delete"]
{{- else if .Values.routers.alb }}
# ALB router: patches action and condition annotations of existing Ingresses.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Leader election, in the release namespace (`--lease-namespace` = POD_NAMESPACE). */}}
{{- define "rollout-router.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "patch"]
{{- end }}

{{/* What Argo Rollouts' service account needs for the plugin's VerifyWeight. */}}
{{- define "rollout-router.argoPluginRules" -}}
- apiGroups: ["rollout-router.io"]
  resources: ["rollouttraffics"]
  verbs: ["get"]
{{- end }}
