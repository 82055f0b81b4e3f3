{{/* Names, labels and the values every template derives from. */}}

{{- define "rollout-router.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollout-router.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rollout-router.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollout-router.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollout-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rollout-router.labels" -}}
helm.sh/chart: {{ include "rollout-router.chart" . }}
{{ include "rollout-router.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "rollout-router.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rollout-router.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace the controller watches in namespaced mode (`--namespace`). */}}
{{- define "rollout-router.watchNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace }}
{{- end }}

{{/* `--routers`: the enabled routers in a fixed order, comma separated. */}}
{{- define "rollout-router.routerList" -}}
{{- $enabled := list }}
{{- range $router := list "istio" "nginx" "alb" }}
{{- if index $.Values.routers $router }}
{{- $enabled = append $enabled $router }}
{{- end }}
{{- end }}
{{- join "," $enabled }}
{{- end }}

{{/*
Combinations the schema cannot express; failing here names the values to change.
*/}}
{{- define "rollout-router.validate" -}}
{{- if not (include "rollout-router.routerList" .) }}
{{- fail "values: routers: enable at least one of routers.istio, routers.nginx, routers.alb" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "values: replicaCount: %d replicas need leaderElection.enabled=true (without a leader every replica writes and they fight)" (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.watchNamespace (not .Values.namespaced) }}
{{- fail "values: watchNamespace is set but namespaced is false: set namespaced=true to watch one namespace" }}
{{- end }}
{{- end }}
