{{/* Names and labels. With the release named "batchrunner" the objects have the names of manifests/. */}}

{{- define "batchrunner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name alone when it contains the chart's name. */}}
{{- define "batchrunner.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The controller's objects: Deployment, ServiceAccount, ClusterRole, ... (52 + "-controller" fits 63). */}}
{{- define "batchrunner.controllerName" -}}
{{- printf "%s-controller" (include "batchrunner.fullname" .) }}
{{- end }}

{{- define "batchrunner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "batchrunner.controllerName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "batchrunner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* What selects the controller's pods: the labels of manifests/ plus the release. */}}
{{- define "batchrunner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "batchrunner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "batchrunner.commonLabels" -}}
helm.sh/chart: {{ include "batchrunner.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: batchrunner
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "batchrunner.labels" -}}
{{ include "batchrunner.selectorLabels" . }}
{{ include "batchrunner.commonLabels" . }}
{{- end }}

{{- define "batchrunner.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The in-cluster S3 store (s3Store). */}}
{{- define "batchrunner.s3StoreName" -}}
{{- printf "%s-s3" (include "batchrunner.fullname" .) }}
{{- end }}

{{- define "batchrunner.s3StoreSelectorLabels" -}}
app.kubernetes.io/name: {{ include "batchrunner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: s3-store
{{- end }}

{{- define "batchrunner.s3StoreEndpoint" -}}
{{- printf "http://%s.%s.svc:9000" (include "batchrunner.s3StoreName" .) .Release.Namespace }}
{{- end }}

{{/* The restricted Pod Security Standard, for every container of the chart. */}}
{{- define "batchrunner.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
One environment variable, left out when its value is empty (so the controller's own default applies).
Whole numbers print as integers: values files give float64, which would print 1000000 as 1e+06.
*/}}
{{- define "batchrunner.envvar" -}}
{{- $name := index . 0 }}
{{- $value := index . 1 }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
- name: {{ $name }}
  value: {{ if and (kindIs "float64" $value) (eq $value (floor $value)) }}{{ $value | int64 | quote }}{{ else }}{{ $value | toString | quote }}{{ end }}
{{- end }}
{{- end }}

{{/* A list as BatchRunner__Section__Key__0, __1, ... (how .NET configuration binds arrays from the environment). */}}
{{- define "batchrunner.envlist" -}}
{{- $name := index . 0 }}
{{- range $i, $item := index . 1 }}
{{- include "batchrunner.envvar" (list (printf "%s__%d" $name $i) $item) }}
{{- end }}
{{- end }}
