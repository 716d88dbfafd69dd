{{/*
feedback-pipeline.name: the chart name, or .Values.nameOverride; cut to 63 characters (DNS label limit).
Usage: {{ include "feedback-pipeline.name" . }}
*/}}
{{- define "feedback-pipeline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
feedback-pipeline.fullname: the prefix of every object name: .Values.fullnameOverride, else the release name when it
already contains the chart name, else "<release>-<chart>". Cut to 47 characters so the "-collector" and
"-indexer-metrics" suffixes stay within 63.
Usage: {{ include "feedback-pipeline.fullname" . }}
*/}}
{{- define "feedback-pipeline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 47 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
feedback-pipeline.chart: "<chart name>-<chart version>" for the helm.sh/chart label.
Usage: {{ include "feedback-pipeline.chart" . }}
*/}}
{{- define "feedback-pipeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
feedback-pipeline.selectorLabels: labels that never change during a release's life: name, instance, component.
Params: a dict with "ctx" (the root context) and "component" ("collector" or "indexer").
Usage: {{- include "feedback-pipeline.selectorLabels" (dict "ctx" . "component" "collector") | nindent 6 }}
*/}}
{{- define "feedback-pipeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "feedback-pipeline.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
feedback-pipeline.labels: the common labels of every object of this chart.
Params: a dict with "ctx" (the root context) and "component" ("collector", "indexer" or "dashboard").
Usage: {{- include "feedback-pipeline.labels" (dict "ctx" . "component" "collector") | nindent 4 }}
*/}}
{{- define "feedback-pipeline.labels" -}}
helm.sh/chart: {{ include "feedback-pipeline.chart" .ctx }}
{{ include "feedback-pipeline.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: seldon-feedback
{{- end }}

{{/*
feedback-pipeline.serviceAccountName: both services run with the namespace's default ServiceAccount and no token
(they call no Kubernetes API).
Usage: {{ include "feedback-pipeline.serviceAccountName" . }}
*/}}
{{- define "feedback-pipeline.serviceAccountName" -}}
default
{{- end }}

{{/*
feedback-pipeline.namespace: the release namespace (never a value).
Usage: {{ include "feedback-pipeline.namespace" . }}
*/}}
{{- define "feedback-pipeline.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/*
feedback-pipeline.image: "<repository>@<digest>" when image.digest is set, else "<repository>:<tag or appVersion>".
Fails on a "latest" tag, naming the value to set instead.
Usage: {{ include "feedback-pipeline.image" . }}
*/}}
{{- define "feedback-pipeline.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}
{{- fail "image.tag \"latest\" is not allowed: set image.tag to a fixed version or image.digest to sha256:<digest>" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
feedback-pipeline.collectorServiceName: the collector Service's name: .Values.collector.service.name, else
"<fullname>-collector".
Usage: {{ include "feedback-pipeline.collectorServiceName" . }}
*/}}
{{- define "feedback-pipeline.collectorServiceName" -}}
{{- default (printf "%s-collector" (include "feedback-pipeline.fullname" .)) .Values.collector.service.name }}
{{- end }}

{{/*
feedback-pipeline.collectorUrl: the collector Service's in-cluster URL, the executor logger URL.
Usage: {{ include "feedback-pipeline.collectorUrl" . }}
*/}}
{{- define "feedback-pipeline.collectorUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:%d/" (include "feedback-pipeline.collectorServiceName" .) .Release.Namespace (int .Values.collector.service.port) }}
{{- end }}

{{/*
feedback-pipeline.kafkaSecretEnv: Kafka credentials of both services, by reference to an existing Secret (user name
and password). Fails when a SASL protocol has no Secret.
Usage: {{- include "feedback-pipeline.kafkaSecretEnv" . | nindent 12 }}
*/}}
{{- define "feedback-pipeline.kafkaSecretEnv" -}}
{{- $k := .Values.kafka }}
{{- if hasPrefix "sasl" $k.securityProtocol }}
{{- if not $k.sasl.existingSecret }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.existingSecret: the name of a Secret with the SASL user name and password" $k.securityProtocol) }}
{{- end }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret | quote }}
      key: {{ $k.sasl.usernameKey | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret | quote }}
      key: {{ $k.sasl.passwordKey | quote }}
{{- end }}
{{- end }}

{{/*
feedback-pipeline.redactHashKeyEnv: the <PREFIX>_REDACT_HASH_KEY variable from <component>.redact.hashKeySecret (the key
of the pseudonym a request id with personal data gets); nothing when no Secret is named.
Usage: {{ include "feedback-pipeline.redactHashKeyEnv" (dict "redact" .Values.collector.redact "variable" "COLLECTOR_REDACT_HASH_KEY") }}
*/}}
{{- define "feedback-pipeline.redactHashKeyEnv" -}}
{{- with .redact.hashKeySecret }}
- name: {{ $.variable }}
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.redact.hashKeySecretKey | quote }}
{{- end }}
{{- end }}

{{/*
feedback-pipeline.kafkaCaVolume / kafkaCaMount: the Kafka cluster CA mounted read-only at /etc/feedback/kafka-ca.
Usage: {{- include "feedback-pipeline.kafkaCaVolume" . | nindent 8 }}
*/}}
{{- define "feedback-pipeline.kafkaCaVolume" -}}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret | quote }}
    items:
      - key: {{ .Values.kafka.tls.caCertKey | quote }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "feedback-pipeline.kafkaCaMount" -}}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-ca
  mountPath: /etc/feedback/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
feedback-pipeline.probes: readiness (/readyz) and liveness (/healthz) probes on a named port.
Params: a dict with "ctx" (the root context) and "port" (the container port name).
Usage: {{- include "feedback-pipeline.probes" (dict "ctx" . "port" "http") | nindent 10 }}
*/}}
{{- define "feedback-pipeline.probes" -}}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  {{- toYaml .ctx.Values.probes.readiness | nindent 2 }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  {{- toYaml .ctx.Values.probes.liveness | nindent 2 }}
{{- end }}

{{/*
feedback-pipeline.egressPeer: one NetworkPolicy egress/ingress peer from a {namespace, podLabels} value.
Params: a dict with "ctx" (the root context) and "peer" (the value).
Usage: {{- include "feedback-pipeline.egressPeer" (dict "ctx" . "peer" .Values.networkPolicy.kafka) | nindent 8 }}
*/}}
{{- define "feedback-pipeline.egressPeer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ default .ctx.Release.Namespace .peer.namespace | quote }}
  {{- with .peer.podLabels }}
  podSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}

{{/*
feedback-pipeline.dnsEgress: the egress rule to the cluster DNS (UDP and TCP 53).
Usage: {{- include "feedback-pipeline.dnsEgress" . | nindent 4 }}
*/}}
{{- define "feedback-pipeline.dnsEgress" -}}
- to:
    {{- include "feedback-pipeline.egressPeer" (dict "ctx" . "peer" .Values.networkPolicy.dns) | nindent 4 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}

{{/*
feedback-pipeline.kafkaEgress: the egress rule to the Kafka brokers on every configured listener port.
Usage: {{- include "feedback-pipeline.kafkaEgress" . | nindent 4 }}
*/}}
{{- define "feedback-pipeline.kafkaEgress" -}}
- to:
    {{- include "feedback-pipeline.egressPeer" (dict "ctx" . "peer" .Values.networkPolicy.kafka) | nindent 4 }}
  ports:
    {{- range $name, $port := .Values.networkPolicy.kafka.ports }}
    - protocol: TCP
      port: {{ $port }}
    {{- end }}
{{- end }}
