{{/*
batch-workflow.name: the chart name, or .Values.nameOverride; cut to 63 characters (DNS label limit).
Usage: {{ include "batch-workflow.name" . }}
*/}}
{{- define "batch-workflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
batch-workflow.fullname: the WorkflowTemplate name: .Values.fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>"; cut to 63 characters.
Usage: {{ include "batch-workflow.fullname" . }}
*/}}
{{- define "batch-workflow.fullname" -}}
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

{{/*
batch-workflow.chart: "<chart name>-<chart version>" for the helm.sh/chart label.
Usage: {{ include "batch-workflow.chart" . }}
*/}}
{{- define "batch-workflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
batch-workflow.selectorLabels: labels that never change during a release's life: name, instance, component.
Usage: {{- include "batch-workflow.selectorLabels" . | nindent 4 }}
*/}}
{{- define "batch-workflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "batch-workflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: batch
{{- end }}

{{/*
batch-workflow.labels: the common labels of every object of this chart.
Usage: {{- include "batch-workflow.labels" . | nindent 4 }}
*/}}
{{- define "batch-workflow.labels" -}}
helm.sh/chart: {{ include "batch-workflow.chart" . }}
{{ include "batch-workflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seldon-feedback
{{- end }}

{{/*
batch-workflow.serviceAccountName: .Values.serviceAccount.name, else the fullname.
Usage: {{ include "batch-workflow.serviceAccountName" . }}
*/}}
{{- define "batch-workflow.serviceAccountName" -}}
{{- default (include "batch-workflow.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
batch-workflow.namespace: the release namespace (never a value).
Usage: {{ include "batch-workflow.namespace" . }}
*/}}
{{- define "batch-workflow.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/*
batch-workflow.image: "<repository>:<tag>@<digest>" (tag and digest both set), "<repository>@<digest>" (digest
only) or "<repository>:<tag>"; fails on "latest" or a missing tag. With both, the runtime pulls by digest and the
tag only tells readers the version.
Params: a dict with "image" (a {repository, tag, digest} value) and "key" (its values path, for the message).
Usage: {{ include "batch-workflow.image" (dict "image" .Values.images.rclone "key" "images.rclone") }}
*/}}
{{- define "batch-workflow.image" -}}
{{- if and .image.digest .image.tag (ne .image.tag "latest") }}
{{- printf "%s:%s@%s" .image.repository .image.tag .image.digest }}
{{- else if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else if or (not .image.tag) (eq .image.tag "latest") }}
{{- fail (printf "%s.tag must be a fixed version (not empty, not \"latest\"), or set %s.digest to sha256:<digest>" .key .key) }}
{{- else }}
{{- printf "%s:%s" .image.repository .image.tag }}
{{- end }}
{{- end }}

{{/*
batch-workflow.host: the gateway host:port seldon-batch-processor calls: .Values.seldonDeployment.host, else the
predictor Service "<name>-<predictor>.<namespace>.svc.cluster.local:8000" (gatewayType seldon). Fails when an
ingress gateway type has no host.
Usage: {{ include "batch-workflow.host" . }}
*/}}
{{- define "batch-workflow.host" -}}
{{- $sd := .Values.seldonDeployment }}
{{- if $sd.host }}
{{- $sd.host }}
{{- else if eq $sd.gatewayType "seldon" }}
{{- printf "%s-%s.%s.svc.cluster.local:8000" $sd.name $sd.predictorName (default .Release.Namespace $sd.namespace) }}
{{- else }}
{{- fail (printf "seldonDeployment.gatewayType %s needs seldonDeployment.host (the ingress gateway host:port)" $sd.gatewayType) }}
{{- end }}
{{- end }}

{{/*
batch-workflow.rcloneEnv: rclone's remote "store" configured from environment variables; the keys come from the
object-store Secret by reference.
Usage: {{- include "batch-workflow.rcloneEnv" . | nindent 10 }}
*/}}
{{- define "batch-workflow.rcloneEnv" -}}
- name: HOME
  value: /tmp
- name: RCLONE_CONFIG
  value: /tmp/rclone.conf
- name: RCLONE_CONFIG_STORE_TYPE
  value: s3
- name: RCLONE_CONFIG_STORE_PROVIDER
  value: {{ .Values.objectStore.provider | quote }}
- name: RCLONE_CONFIG_STORE_ENDPOINT
  value: {{ .Values.objectStore.endpoint | quote }}
- name: RCLONE_CONFIG_STORE_REGION
  value: {{ .Values.objectStore.region | quote }}
- name: RCLONE_CONFIG_STORE_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.objectStore.existingSecret | quote }}
      key: {{ .Values.objectStore.accessKeyKey | quote }}
- name: RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.objectStore.existingSecret | quote }}
      key: {{ .Values.objectStore.secretKeyKey | quote }}
{{- end }}
