{{/* The chart's name, cut to the 63 characters of a label value. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: the release name, followed by the chart's name unless
it already contains it (`helm install sluice ...` gives `sluice`).
*/}}
{{- define "sluice.fullname" -}}
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

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object of the release carries. */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels of the operator's objects: its Deployment, pods, Service, ServiceAccount. */}}
{{- define "sluice.operatorLabels" -}}
{{ include "sluice.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
What selects the operator's pods. Export pods are labelled app.kubernetes.io/name: sluice too,
but never with the release's instance, so they are never selected.
*/}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* RBAC bindings name the operator's ServiceAccount. */}}
{{- define "sluice.subjects" -}}
- kind: ServiceAccount
  name: {{ include "sluice.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/*
The export pods' ServiceAccount: the one the chart creates in each watched namespace, or the
one named in runner.serviceAccount.name, or "" (the namespace's default, without a token).
*/}}
{{- define "sluice.runnerServiceAccountName" -}}
{{- if and .Values.runner.serviceAccount.create .Values.watchNamespaces }}
{{- default (printf "%s-runner" (include "sluice.fullname" .) | trunc 63 | trimSuffix "-") .Values.runner.serviceAccount.name }}
{{- else }}
{{- .Values.runner.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "sluice.imageReference" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}

{{- define "sluice.image" -}}
{{- $image := .Values.image }}
{{- include "sluice.imageReference" (dict "repository" $image.repository "tag" (default .Chart.AppVersion $image.tag) "digest" $image.digest) }}
{{- end }}

{{- define "sluice.runnerImage" -}}
{{- $runner := .Values.runner.image }}
{{- if $runner.repository }}
{{- include "sluice.imageReference" (dict "repository" $runner.repository "tag" (default .Chart.AppVersion $runner.tag) "digest" $runner.digest) }}
{{- else }}
{{- include "sluice.image" . }}
{{- end }}
{{- end }}

{{/* Whether the store is SQLite: a file only one pod can use. */}}
{{- define "sluice.sqliteStore" -}}
{{- if and (not .Values.store.existingSecret) (hasPrefix "sqlite" .Values.store.url) }}true{{ end }}
{{- end }}

{{/* Combinations the schema cannot refuse with a clear message. */}}
{{- define "sluice.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (include "sluice.sqliteStore" .) }}
{{- fail (printf "replicaCount %d needs a store the replicas share: SQLite (store.url %s) is a file in one pod. Set store.existingSecret to a Secret holding a PostgreSQL URL, or replicaCount to 1." (int .Values.replicaCount) .Values.store.url) }}
{{- end }}
{{- end }}

{{/*
RBAC: the rules of what the operator does in a namespace it watches. Each rule names the code
that needs it (operator/sluice/controller/...); README.md explains them.
*/}}
{{- define "sluice.namespacedRules" -}}
# kopf lists and watches the three kinds; the reconciler lists them once at start (kube.py).
# No patch or update: the operator never writes spec, labels or annotations.
- apiGroups: [sluice.dev]
  resources: [workspaces, connections, exportpipelines]
  verbs: [list, watch]
# Status, conditions and run results: merge patches of the status subresource (kube.py).
- apiGroups: [sluice.dev]
  resources: [workspaces/status, connections/status, exportpipelines/status]
  verbs: [patch]
# Children's owner references block their pipeline's deletion: where the admission plugin
# OwnerReferencesPermissionEnforcement is on (OpenShift), that needs update on finalizers.
- apiGroups: [sluice.dev]
  resources: [exportpipelines/finalizers]
  verbs: [update]
# Each pipeline's ConfigMap and CronJob are server-side applied: a PATCH, which the API server
# also authorizes as a create when the object does not exist yet.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, patch]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [create, patch]
# Run-now Jobs are created; kopf lists and watches the Jobs of pipelines to record runs.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, list, watch]
# A finished Job's pod holds the run summary in its termination message (kube.py job_pod).
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# A Workspace's apiKeysSecretRef: its API keys are read, stored as digests (kube.py).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# Sluice's and kopf's Events (core v1).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* What kopf reads cluster-wide whatever it watches: CRDs, to notice Sluice's appearing. */}}
{{- define "sluice.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end }}
