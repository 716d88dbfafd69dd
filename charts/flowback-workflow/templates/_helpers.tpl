{{/*
flowback-workflow.name: the chart name, or .Values.nameOverride; cut to 63 characters (DNS label limit).
Usage: {{ include "flowback-workflow.name" . }}
*/}}
{{- define "flowback-workflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
flowback-workflow.fullname: the WorkflowTemplate name: .Values.fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>"; cut to 63 characters.
Usage: {{ include "flowback-workflow.fullname" . }}
*/}}
{{- define "flowback-workflow.fullname" -}}
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
flowback-workflow.chart: "<chart name>-<chart version>" for the helm.sh/chart label.
Usage: {{ include "flowback-workflow.chart" . }}
*/}}
{{- define "flowback-workflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
flowback-workflow.selectorLabels: labels that never change during a release's life: name, instance, component.
Usage: {{- include "flowback-workflow.selectorLabels" . | nindent 4 }}
*/}}
{{- define "flowback-workflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flowback-workflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: flowback
{{- end }}

{{/*
flowback-workflow.labels: the common labels of every object of this chart.
Usage: {{- include "flowback-workflow.labels" . | nindent 4 }}
*/}}
{{- define "flowback-workflow.labels" -}}
helm.sh/chart: {{ include "flowback-workflow.chart" . }}
{{ include "flowback-workflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seldon-feedback
{{- end }}

{{/*
flowback-workflow.serviceAccountName: .Values.serviceAccount.name, else the fullname.
Usage: {{ include "flowback-workflow.serviceAccountName" . }}
*/}}
{{- define "flowback-workflow.serviceAccountName" -}}
{{- default (include "flowback-workflow.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
flowback-workflow.namespace: the release namespace (never a value).
Usage: {{ include "flowback-workflow.namespace" . }}
*/}}
{{- define "flowback-workflow.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/*
flowback-workflow.image: "<repository>@<digest>" or "<repository>:<tag>"; fails on "latest" or a missing tag.
Params: a dict with "image" (a {repository, tag, digest} value) and "key" (its values path, for the message).
Usage: {{ include "flowback-workflow.image" (dict "image" .Values.images.flowback "key" "images.flowback") }}
*/}}
{{- define "flowback-workflow.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else if or (not .image.tag) (eq .image.tag "latest") }}
{{- fail (printf "%s.tag must be a fixed version (not empty, not \"latest\"), or set %s.digest to sha256:<digest>" .key .key) }}
{{- else }}
{{- printf "%s:%s" .image.repository .image.tag }}
{{- end }}
{{- end }}

{{/*
flowback-workflow.env: the FLOWBACK_* environment of every `python -m feedback.flowback` step; credentials come from
the Secrets by reference, never as values.
Usage: {{- include "flowback-workflow.env" . | nindent 10 }}
*/}}
{{- define "flowback-workflow.env" -}}
- name: HOME
  value: /tmp
- name: FLOWBACK_MODEL_NAME
  value: {{ .Values.model.name | quote }}
- name: FLOWBACK_SEARCH_ENGINE
  value: {{ .Values.search.engine | quote }}
- name: FLOWBACK_SEARCH_URL
  value: {{ .Values.search.url | quote }}
- name: FLOWBACK_INDEX
  value: {{ .Values.search.index | quote }}
{{- with .Values.search.existingSecret }}
{{- if $.Values.search.username }}
- name: FLOWBACK_SEARCH_USERNAME
  value: {{ $.Values.search.username | quote }}
{{- else }}
- name: FLOWBACK_SEARCH_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.search.usernameKey | quote }}
{{- end }}
- name: FLOWBACK_SEARCH_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.search.passwordKey | quote }}
{{- end }}
{{- if .Values.search.caSecret }}
- name: FLOWBACK_SEARCH_CA_CERTS
  value: /search-ca/{{ .Values.search.caCertKey }}
{{- end }}
- name: FLOWBACK_S3_ENDPOINT
  value: {{ .Values.objectStore.endpoint | quote }}
- name: FLOWBACK_BUCKET
  value: {{ .Values.objectStore.bucket | quote }}
- name: AWS_REGION
  value: {{ .Values.objectStore.region | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.objectStore.existingSecret | quote }}
      key: {{ .Values.objectStore.accessKeyKey | quote }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.objectStore.existingSecret | quote }}
      key: {{ .Values.objectStore.secretKeyKey | quote }}
{{- end }}
