{{/*
text-classifier.name: the chart name, or .Values.nameOverride; cut to 63 characters (DNS label limit).
Usage: {{ include "text-classifier.name" . }}
*/}}
{{- define "text-classifier.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
text-classifier.fullname: the SeldonDeployment name. .Values.deploymentName if set, else "text-classifier" in
realtime mode and "text-classifier-streaming" in streaming mode (one release per mode can share a namespace).
Seldon derives Deployment and Service names from it, so it is cut to 45 characters.
Usage: {{ include "text-classifier.fullname" . }}
*/}}
{{- define "text-classifier.fullname" -}}
{{- if .Values.deploymentName }}
{{- .Values.deploymentName | trunc 45 | trimSuffix "-" }}
{{- else if eq .Values.mode "streaming" }}
{{- printf "%s-streaming" .Chart.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- .Chart.Name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
text-classifier.chart: "<chart name>-<chart version>" for the helm.sh/chart label.
Usage: {{ include "text-classifier.chart" . }}
*/}}
{{- define "text-classifier.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
text-classifier.selectorLabels: the labels that never change during a release's life (name, instance, component).
Usage: {{- include "text-classifier.selectorLabels" . | nindent 4 }}
*/}}
{{- define "text-classifier.selectorLabels" -}}
app.kubernetes.io/name: {{ include "text-classifier.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: model
{{- end }}

{{/*
text-classifier.labels: the common labels of every object of this chart.
Usage: {{- include "text-classifier.labels" . | nindent 4 }}
*/}}
{{- define "text-classifier.labels" -}}
helm.sh/chart: {{ include "text-classifier.chart" . }}
{{ include "text-classifier.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seldon-feedback
{{- end }}

{{/*
text-classifier.serviceAccountName: the model pods' ServiceAccount. This chart creates none; Seldon's default is used.
Usage: {{ include "text-classifier.serviceAccountName" . }}
*/}}
{{- define "text-classifier.serviceAccountName" -}}
default
{{- end }}

{{/*
text-classifier.namespace: the release namespace (never a value).
Usage: {{ include "text-classifier.namespace" . }}
*/}}
{{- define "text-classifier.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/*
text-classifier.image: "<repository>@<digest>" when image.digest is set, else "<repository>:<tag or appVersion>".
Fails on a "latest" tag, naming the value to set instead.
Usage: {{ include "text-classifier.image" . }}
*/}}
{{- define "text-classifier.image" -}}
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
text-classifier.collectorUrl: where the executor POSTs CloudEvents: .Values.logger.url, else the feedback-pipeline
collector Service's in-cluster URL http://<serviceName>.<namespace>.svc.cluster.local:<port>/
Usage: {{ include "text-classifier.collectorUrl" . }}
*/}}
{{- define "text-classifier.collectorUrl" -}}
{{- if .Values.logger.url }}
{{- .Values.logger.url }}
{{- else }}
{{- $ns := default .Release.Namespace .Values.logger.collector.namespace }}
{{- printf "http://%s.%s.svc.cluster.local:%d/" .Values.logger.collector.serviceName $ns (int .Values.logger.collector.port) }}
{{- end }}
{{- end }}

{{/*
text-classifier.kafkaSecurityEnv: the executor's Kafka TLS/SASL environment (shared by the streaming server and
direct Kafka logging); credentials come from existing Secrets by reference. Fails when SASL_SSL has no Secret.
Usage: {{- include "text-classifier.kafkaSecurityEnv" . | nindent 10 }}
*/}}
{{- define "text-classifier.kafkaSecurityEnv" -}}
{{- $k := .Values.kafka }}
{{- if ne $k.securityProtocol "PLAINTEXT" }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $k.securityProtocol | quote }}
{{- with $k.tls.existingSecret }}
- name: KAFKA_SSL_CA_CERT
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $k.tls.caCertKey | quote }}
{{- $clientSecret := default . $k.tls.clientSecret }}
{{- if $k.tls.clientCertKey }}
- name: KAFKA_SSL_CLIENT_CERT
  valueFrom:
    secretKeyRef:
      name: {{ $clientSecret | quote }}
      key: {{ $k.tls.clientCertKey | quote }}
{{- end }}
{{- if $k.tls.clientKeyKey }}
- name: KAFKA_SSL_CLIENT_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $clientSecret | quote }}
      key: {{ $k.tls.clientKeyKey | quote }}
{{- end }}
{{- end }}
{{- if eq $k.securityProtocol "SASL_SSL" }}
{{- if not $k.sasl.existingSecret }}
{{- fail "kafka.securityProtocol SASL_SSL needs kafka.sasl.existingSecret: the name of a Secret with the SASL user name and password" }}
{{- end }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  {{- with $k.sasl.username }}
  value: {{ . | quote }}
  {{- else }}
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret | quote }}
      key: {{ $k.sasl.usernameKey | quote }}
  {{- end }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret | quote }}
      key: {{ $k.sasl.passwordKey | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
text-classifier.checkCanary: fails with the fix when the canary cannot work: only in mode "realtime" (two Kafka-mode
predictors would both consume the input topic), with a name of its own, and with a model (a registry version or
its own image tag or digest).
Usage: {{- include "text-classifier.checkCanary" . -}}
*/}}
{{- define "text-classifier.checkCanary" -}}
{{- if .Values.canary.enabled }}
{{- if ne .Values.mode "realtime" }}
{{- fail (printf "canary.enabled needs mode \"realtime\" (got %q): Kafka-mode predictors would share the input topic" .Values.mode) }}
{{- end }}
{{- if eq .Values.canary.predictorName .Values.predictorName }}
{{- fail (printf "canary.predictorName %q must differ from predictorName: documents tell main and canary apart by it" .Values.canary.predictorName) }}
{{- end }}
{{- if not (or .Values.canary.modelVersion .Values.canary.image.tag .Values.canary.image.digest) }}
{{- fail "canary.enabled needs canary.modelVersion (a registered version) or canary.image.tag / canary.image.digest" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
text-classifier.canaryImage: the canary's image: image.repository with canary.image.digest or canary.image.tag, else
the main image (the canary then serves canary.modelVersion from the registry).
Usage: {{ include "text-classifier.canaryImage" . }}
*/}}
{{- define "text-classifier.canaryImage" -}}
{{- $image := .Values.canary.image }}
{{- if eq $image.tag "latest" }}
{{- fail "canary.image.tag \"latest\" is not allowed: set a fixed version or canary.image.digest to sha256:<digest>" }}
{{- end }}
{{- if $image.digest }}
{{- printf "%s@%s" .Values.image.repository $image.digest }}
{{- else if $image.tag }}
{{- printf "%s:%s" .Values.image.repository $image.tag }}
{{- else }}
{{- include "text-classifier.image" . }}
{{- end }}
{{- end }}

{{/*
text-classifier.fetchModel: the init container that downloads a registered model version (every file checked against
its registration) into the registry-model volume, with `python -m feedback.flowback fetch-model`.
Params: a dict with "root" (the chart context) and "version" (the registry version).
Usage: {{- include "text-classifier.fetchModel" (dict "root" $ "version" $p.modelVersion) | nindent 14 }}
*/}}
{{- define "text-classifier.fetchModel" -}}
{{- $registry := .root.Values.canary.registry -}}
- name: fetch-model
  image: {{ include "text-classifier.registryImage" .root | quote }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command:
    - python
    - -m
    - feedback.flowback
  args:
    - fetch-model
    - --version={{ .version }}
    - --dest=/mnt/registry-model
  env:
    - name: HOME
      value: /tmp
    - name: FLOWBACK_MODEL_NAME
      value: {{ $registry.modelName | quote }}
    - name: FLOWBACK_S3_ENDPOINT
      value: {{ $registry.endpoint | quote }}
    - name: FLOWBACK_BUCKET
      value: {{ $registry.bucket | quote }}
    - name: AWS_REGION
      value: {{ $registry.region | quote }}
    - name: AWS_ACCESS_KEY_ID
      valueFrom:
        secretKeyRef:
          name: {{ $registry.existingSecret | quote }}
          key: {{ $registry.accessKeyKey | quote }}
    - name: AWS_SECRET_ACCESS_KEY
      valueFrom:
        secretKeyRef:
          name: {{ $registry.existingSecret | quote }}
          key: {{ $registry.secretKeyKey | quote }}
  resources:
    {{- toYaml $registry.resources | nindent 4 }}
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: registry-model
      mountPath: /mnt/registry-model
{{- end }}

{{/*
text-classifier.registryImage: the image of the fetch-model init container (the feedback image); fails on "latest"
or a missing tag.
Usage: {{ include "text-classifier.registryImage" . }}
*/}}
{{- define "text-classifier.registryImage" -}}
{{- $image := .Values.canary.registry.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else if or (not $image.tag) (eq $image.tag "latest") }}
{{- fail "canary.registry.image.tag must be a fixed version (not empty, not \"latest\"), or set canary.registry.image.digest" }}
{{- else }}
{{- printf "%s:%s" $image.repository $image.tag }}
{{- end }}
{{- end }}
