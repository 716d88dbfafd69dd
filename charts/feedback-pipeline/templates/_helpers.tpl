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
feedback-pipeline.kafkaSecretEnv: one service's Kafka login. SASL: the user name (kafka.clients.<component>.username,
else kafka.sasl.username, else the usernameKey of the Secret) and the password from the Secret
(kafka.clients.<component>.existingSecret, else kafka.sasl.existingSecret); fails when a SASL protocol has no Secret.
A client certificate (kafka.clients.<component>.certSecret): the paths of its mounted PEM files.
Params: a dict with "ctx" (the root context) and "component" (collector, indexer or monitor).
Usage: {{- include "feedback-pipeline.kafkaSecretEnv" (dict "ctx" . "component" "collector") | nindent 12 }}
*/}}
{{- define "feedback-pipeline.kafkaSecretEnv" -}}
{{- $k := .ctx.Values.kafka }}
{{- $client := index $k.clients .component }}
{{- if hasPrefix "sasl" $k.securityProtocol }}
{{- $secret := default $k.sasl.existingSecret $client.existingSecret }}
{{- $username := default $k.sasl.username $client.username }}
{{- if not $secret }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.clients.%s.existingSecret or kafka.sasl.existingSecret: the name of a Secret with the SASL password (and user name)" $k.securityProtocol .component) }}
{{- end }}
- name: KAFKA_SASL_USERNAME
  {{- if $username }}
  value: {{ $username | quote }}
  {{- else }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret | quote }}
      key: {{ $k.sasl.usernameKey | quote }}
  {{- end }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret | quote }}
      key: {{ $k.sasl.passwordKey | quote }}
{{- end }}
{{- if $client.certSecret }}
{{- if not (hasSuffix "ssl" $k.securityProtocol) }}
{{- fail (printf "kafka.clients.%s.certSecret needs kafka.securityProtocol ssl or sasl_ssl (client certificates are checked on a TLS listener)" .component) }}
{{- end }}
- name: KAFKA_SSL_CERTIFICATE_LOCATION
  value: /etc/feedback/kafka-client/user.crt
- name: KAFKA_SSL_KEY_LOCATION
  value: /etc/feedback/kafka-client/user.key
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
feedback-pipeline.kafkaCaVolume / kafkaCaMount: the Kafka cluster CA mounted read-only at /etc/feedback/kafka-ca and,
with kafka.clients.<component>.certSecret, the client certificate and key at /etc/feedback/kafka-client.
Params: a dict with "ctx" (the root context) and "component" (collector, indexer or monitor).
Usage: {{- include "feedback-pipeline.kafkaCaVolume" (dict "ctx" . "component" "collector") | nindent 8 }}
*/}}
{{- define "feedback-pipeline.kafkaCaVolume" -}}
{{- $k := .ctx.Values.kafka }}
{{- $client := index $k.clients .component }}
{{- if $k.tls.existingSecret }}
- name: kafka-ca
  secret:
    secretName: {{ $k.tls.existingSecret | quote }}
    items:
      - key: {{ $k.tls.caCertKey | quote }}
        path: ca.crt
{{- end }}
{{- with $client.certSecret }}
- name: kafka-client
  secret:
    secretName: {{ . | quote }}
    items:
      - key: user.crt
        path: user.crt
      - key: user.key
        path: user.key
{{- end }}
{{- end }}

{{- define "feedback-pipeline.kafkaCaMount" -}}
{{- $k := .ctx.Values.kafka }}
{{- if $k.tls.existingSecret }}
- name: kafka-ca
  mountPath: /etc/feedback/kafka-ca
  readOnly: true
{{- end }}
{{- if (index $k.clients .component).certSecret }}
- name: kafka-client
  mountPath: /etc/feedback/kafka-client
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

{{/*
feedback-pipeline.collectorListenersCheck: fails unless the collector's ports differ and the producer port and the
mesh have what they need. Renders nothing.
Usage: {{- include "feedback-pipeline.collectorListenersCheck" . }}
*/}}
{{- define "feedback-pipeline.collectorListenersCheck" -}}
{{- $c := .Values.collector -}}
{{- $ports := list (int $c.port) (int $c.metricsPort) -}}
{{- if $c.producers.enabled }}{{ $ports = append $ports (int $c.producers.port) }}{{ end -}}
{{- if ne (len $ports) (len (uniq $ports)) -}}
{{- fail (printf "collector.port=%v, collector.metricsPort=%v and collector.producers.port=%v (with collector.producers.enabled) must differ: each listener has its own port" $c.port $c.metricsPort $c.producers.port) -}}
{{- end -}}
{{- if and $c.producers.enabled (not $c.producers.existingSecret) -}}
{{- fail "collector.producers.enabled needs collector.producers.existingSecret: the Secret holding the producer tokens (one per line, key collector.producers.tokenKey)" -}}
{{- end -}}
{{- if and (eq .Values.mesh.type "istio") (empty .Values.mesh.seldonPrincipals) -}}
{{- fail "mesh.type istio needs mesh.seldonPrincipals: the principals (<trust domain>/ns/<namespace>/sa/<service account>) of the Seldon pods that log to the collector; without them no executor could reach it" -}}
{{- end -}}
{{- end }}

{{/*
feedback-pipeline.metricsIngress: the NetworkPolicy ingress rule admitting the scraper (networkPolicy.metricsNamespace
and networkPolicy.metricsPodLabels) on the "metrics" port; renders nothing without networkPolicy.metricsNamespace.
Usage: {{- include "feedback-pipeline.metricsIngress" . | nindent 4 }}
*/}}
{{- define "feedback-pipeline.metricsIngress" -}}
{{- with .Values.networkPolicy.metricsNamespace -}}
# The scraper (Prometheus) reads /metrics on the metrics port, nothing else.
- from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ . | quote }}
      {{- with $.Values.networkPolicy.metricsPodLabels }}
      podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
  ports:
    - protocol: TCP
      port: metrics
{{- end -}}
{{- end }}

{{/*
feedback-pipeline.authorizationPolicy: an Istio ALLOW AuthorizationPolicy for one component: each rule admits its
principals (none: any source) on its port. Rendered only with mesh.type istio.
Params: a dict with "ctx" (the root context), "component" and "rules" (a list of dicts with "port" and
"principals").
Usage: {{- include "feedback-pipeline.authorizationPolicy" (dict "ctx" . "component" "indexer" "rules" (list (dict "port" 9090 "principals" list))) }}
*/}}
{{- define "feedback-pipeline.authorizationPolicy" -}}
{{- $ctx := .ctx -}}
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {{ include "feedback-pipeline.fullname" $ctx }}-{{ .component }}
  namespace: {{ include "feedback-pipeline.namespace" $ctx }}
  labels:
    {{- include "feedback-pipeline.labels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "feedback-pipeline.selectorLabels" (dict "ctx" $ctx "component" .component) | nindent 6 }}
  action: ALLOW
  rules:
    {{- range .rules }}
    - {{- with .principals }}
      from:
        - source:
            principals:
              {{- range . }}
              - {{ . | quote }}
              {{- end }}
      {{- end }}
      to:
        - operation:
            ports:
              - {{ .port | toString | quote }}
    {{- end }}
{{- end }}

{{/*
feedback-pipeline.searchSetupContainer: one setup command of the search setup Job (`python -m <module> setup`), with
the engine's URL and TLS from search.*, the index settings of that service and the admin user of search.setup (the
only pod that gets its password).
Usage: include "feedback-pipeline.searchSetupContainer" (dict "ctx" . "setup" (dict "name" .. "module" .. "prefix" ..))
*/}}
{{- define "feedback-pipeline.searchSetupContainer" -}}
{{- $ctx := .ctx }}
{{- $p := .setup.prefix }}
- name: {{ .setup.name }}
  image: {{ include "feedback-pipeline.image" $ctx | quote }}
  imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
  command: ["python", "-m", {{ .setup.module | quote }}, "setup"]
  env:
    - name: LOG_LEVEL
      value: {{ $ctx.Values.logLevel | quote }}
    - name: {{ $p }}_SEARCH_ENGINE
      value: {{ $ctx.Values.search.engine | quote }}
    - name: {{ $p }}_SEARCH_URL
      value: {{ $ctx.Values.search.url | quote }}
    - name: {{ $p }}_SEARCH_VERIFY_CERTS
      value: {{ $ctx.Values.search.tls.verify | quote }}
    {{- if $ctx.Values.search.tls.caSecret }}
    - name: {{ $p }}_SEARCH_CA_CERTS
      value: /etc/feedback/search-ca/ca.crt
    {{- end }}
    - name: {{ $p }}_INDEX
      value: {{ ternary $ctx.Values.search.index $ctx.Values.monitor.index (eq $p "INDEXER") | quote }}
    - name: {{ $p }}_INDEX_SHARDS
      value: {{ $ctx.Values.search.indexShards | quote }}
    - name: {{ $p }}_INDEX_REPLICAS
      value: {{ $ctx.Values.search.indexReplicas | quote }}
    {{- if eq $p "INDEXER" }}
    - name: INDEXER_INDEX_REFRESH_INTERVAL
      value: {{ $ctx.Values.search.refreshInterval | quote }}
    {{- end }}
    - name: {{ $p }}_SETUP_TIMEOUT_S
      value: {{ $ctx.Values.searchSetup.timeoutSeconds | quote }}
    {{- with $ctx.Values.search.setup.existingSecret }}
    - name: {{ $p }}_SEARCH_USERNAME
      value: {{ $ctx.Values.search.setup.username | quote }}
    - name: {{ $p }}_SEARCH_PASSWORD
      valueFrom:
        secretKeyRef:
          name: {{ . | quote }}
          key: {{ $ctx.Values.search.setup.passwordKey | quote }}
    {{- end }}
  resources:
    {{- toYaml $ctx.Values.searchSetup.resources | nindent 4 }}
  securityContext:
    {{- toYaml $ctx.Values.securityContext | nindent 4 }}
  {{- if $ctx.Values.search.tls.caSecret }}
  volumeMounts:
    - name: search-ca
      mountPath: /etc/feedback/search-ca
      readOnly: true
  {{- end }}
{{- end }}
