"""Every stack config key the program understands, declared once: name, type, default and description.

The JSON schema of the stack files and the key table of docs/deploy.md are generated from `KEYS`
(`python -m infra.config regenerate`), and every default lives here and nowhere else in infra/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Namespaces this program owns: every key in them must be declared in KEYS.
NAMESPACES = (
    "platform",
    "kafka",
    "search",
    "objectstore",
    "workflows",
    "seldon",
    "classifier",
    "feedback",
    "batch",
    "flowback",
)


@dataclass(frozen=True)
class Key:
    """One stack config key: `name` is "<namespace>:<key>", `kind` one of str|int|float|bool|object|list|secret
    (list: a list of strings)."""

    name: str
    kind: str
    default: Any
    doc: str
    fields: tuple[str, ...] = ()  # allowed sub-keys of an object value (empty: free-form string map)
    enum: tuple[str, ...] = ()


def _k(
    name: str, kind: str, default: Any, doc: str, *, fields: tuple[str, ...] = (), enum: tuple[str, ...] = ()
) -> Key:
    return Key(name, kind, default, doc, fields, enum)


RESOURCE_FIELDS = ("cpu", "memory")
TOPIC_FIELDS = ("name", "partitions", "retentionHours")
IMAGE_FIELDS = ("repository", "tag", "digest")
OPERATOR_MODES = ("install", "existing")
MESHES = ("none", "istio")
# The upstream charts the program installs, by chart name (platform:chartSources is keyed by these).
UPSTREAM_CHARTS = ("strimzi-kafka-operator", "eck-operator", "minio", "argo-workflows", "seldon-core-operator")
CHART_SOURCE_FIELDS = ("repository", "archive")
# per-client credentials on an existing cluster: <client>Secret, a Secret with username and password keys
EXISTING_KAFKA_CLIENT_SECRETS = {
    "collectorSecret": "collector",
    "indexerSecret": "indexer",
    "monitorSecret": "monitor",
    "executorSecret": "executor",
    "smokeSecret": "smoke",
}
EXISTING_KAFKA_FIELDS = ("bootstrap", "tlsSecret", "saslSecret", "saslMechanism", *EXISTING_KAFKA_CLIENT_SECRETS)
KAFKA_AUTHENTICATION = ("none", "scram-sha-512", "tls")
# Keys this program no longer reads: setting one is refused with what replaced it (never silently ignored).
REMOVED_KEYS = {
    "kafka:feedbackPassword": "each client has its own KafkaUser now, and Strimzi's User Operator generates its "
    "password into the Secret named after the user (feedback-collector, feedback-indexer, feedback-monitor, "
    "seldon-executor, smoke-tests; docs/deploy.md, Kafka users)",
    "kafka:executorPassword": "the executors log in as the KafkaUser seldon-executor, whose password Strimzi's User "
    "Operator generates into the Secret seldon-executor (docs/deploy.md, Kafka users)",
}
EXISTING_SEARCH_FIELDS = (
    "url",
    "engine",
    "username",
    "secret",
    "secretKey",
    "caSecret",
    "indexerUsername",
    "indexerSecret",
    "monitorUsername",
    "monitorSecret",
)
EXISTING_OBJECTSTORE_FIELDS = ("endpoint", "secret")
FLOWBACK_RULE_FIELDS = ("confidence", "heldOutMaxDrop", "feedbackMinGain", "feedbackSignificant", "minFeedbackRows")
REDACTION_FIELDS = ("fields", "patterns", "regexes", "keyRegexes", "headers", "hashKeySecret")
MONITOR_THRESHOLD_FIELDS = (
    "fdr",
    "multipleTesting",
    "consecutiveWindows",
    "psi",
    "domainAuc",
    "accuracyDrop",
    "minSamples",
)

KEYS: tuple[Key, ...] = (
    # platform: cross-cutting
    _k(
        "platform:appNamespace",
        "str",
        "seldon",
        "Namespace of the data plane: Kafka cluster, Elasticsearch, Kibana, collector, indexer, "
        "SeldonDeployments and the batch WorkflowTemplate (clients reference operator-made Secrets, "
        "which only works inside one namespace).",
    ),
    _k("platform:labels", "object", {}, "Extra labels added to every Kubernetes object (string to string)."),
    _k(
        "platform:protect",
        "bool",
        False,
        "Protect stateful resources (Kafka, node pools, topics, Elasticsearch, "
        "MinIO) from `pulumi destroy` and replacement.",
    ),
    _k(
        "platform:podDisruptionBudgets",
        "bool",
        False,
        "Create PodDisruptionBudgets for Kafka, Elasticsearch, MinIO, "
        "the collector, the indexer and the classifier; needs at least 2 replicas of each.",
    ),
    _k(
        "platform:defaultRequests",
        "object",
        {"cpu": "50m", "memory": "64Mi"},
        "Requests given to containers that "
        "declare neither requests nor limits (cpu in cores or millicores, memory with Mi/Gi).",
        fields=RESOURCE_FIELDS,
    ),
    _k(
        "platform:chartRepository",
        "str",
        "",
        "Chart repository that mirrors every upstream chart (Strimzi, ECK, MinIO, Argo Workflows, Seldon Core): "
        "an https:// Helm repository or an oci:// registry path; empty: each chart's own public repository.",
    ),
    _k(
        "platform:chartSources",
        "object",
        {},
        "Where one upstream chart comes from, by chart name (" + ", ".join(UPSTREAM_CHARTS) + "): "
        "{repository: <https:// or oci:// URL>} or {archive: <path of the chart's .tgz>}; wins over "
        "platform:chartRepository.",
        fields=UPSTREAM_CHARTS,
    ),
    _k(
        "platform:mesh",
        "str",
        "none",
        "Service mesh whose authorization the program configures: istio adds an AuthorizationPolicy per feedback "
        "service (the Seldon pods' ServiceAccounts, feedback:seldonServiceAccounts, on the collector's event port; "
        "feedback:metricsPrincipals on the metrics ports); none: NetworkPolicies only. Needs Istio >= 1.22 with "
        "sidecars and mTLS in platform:appNamespace.",
        enum=MESHES,
    ),
    _k(
        "platform:meshTrustDomain",
        "str",
        "cluster.local",
        "The mesh's trust domain, the first part of every principal (<trust domain>/ns/<namespace>/sa/<account>).",
    ),
    _k(
        "platform:imageRegistry",
        "str",
        "",
        "Registry (host[:port][/path]) that replaces the registry of every image the platform runs (ours and the "
        "operators', Kafka, Elasticsearch, MinIO, Argo and Seldon images), keeping each image's path and tag; "
        "empty: the images' own registries.",
    ),
    # kafka
    _k(
        "kafka:operator",
        "str",
        "install",
        "install: the program installs the Strimzi operator chart; existing: an operator already runs and watches "
        "platform:appNamespace (the program still creates the Kafka, node pool, topic and user resources).",
        enum=OPERATOR_MODES,
    ),
    _k(
        "kafka:existing",
        "object",
        {},
        "An existing Kafka cluster instead of one made by Strimzi: {bootstrap: host:port, tlsSecret: <Secret with "
        "ca.crt>, saslSecret: <Secret with username and password>, saslMechanism: SCRAM-SHA-512|SCRAM-SHA-256|"
        "PLAIN, collectorSecret/indexerSecret/monitorSecret/executorSecret/smokeSecret: a client's own Secret with "
        "username and password (default saslSecret)}; Secrets in platform:appNamespace, topics and ACLs made by you. "
        "Empty: Strimzi makes the cluster.",
        fields=EXISTING_KAFKA_FIELDS,
    ),
    _k("kafka:operatorNamespace", "str", "strimzi-system", "Namespace of the Strimzi cluster operator."),
    _k("kafka:operatorChartVersion", "str", "0.49.1", "Strimzi operator chart version (also its image tag)."),
    _k(
        "kafka:version",
        "str",
        "4.1.0",
        "Apache Kafka version run by Strimzi; it must be one the operator version supports (Strimzi release notes).",
    ),
    _k(
        "kafka:clusterName",
        "str",
        "seldon-kafka",
        "Kafka resource name; the bootstrap Service is <clusterName>-kafka-bootstrap.",
    ),
    _k("kafka:brokers", "int", 1, "Broker replicas (KafkaNodePool with role broker)."),
    _k("kafka:controllers", "int", 1, "KRaft controller replicas (odd: 1, 3 or 5)."),
    _k("kafka:brokerStorage", "str", "10Gi", "Persistent volume size of each broker."),
    _k("kafka:controllerStorage", "str", "2Gi", "Persistent volume size of each controller."),
    _k("kafka:storageClass", "str", "", "StorageClass of Kafka volumes; empty means the cluster default."),
    _k(
        "kafka:brokerResources",
        "object",
        {"cpu": "250m", "memory": "1Gi"},
        "Requests of each broker (memory is also the limit).",
        fields=RESOURCE_FIELDS,
    ),
    _k(
        "kafka:controllerResources",
        "object",
        {"cpu": "100m", "memory": "512Mi"},
        "Requests of each controller (memory is also the limit).",
        fields=RESOURCE_FIELDS,
    ),
    _k("kafka:replicationFactor", "int", 1, "Replicas of every topic (at most kafka:brokers)."),
    _k("kafka:minInsyncReplicas", "int", 1, "min.insync.replicas of every topic (at most kafka:replicationFactor)."),
    _k("kafka:partitions", "int", 3, "Default partitions of each topic."),
    _k("kafka:retentionHours", "int", 24, "Default retention of each topic, in hours."),
    _k(
        "kafka:topics",
        "object",
        {
            "modelInput": {"name": "model_input"},
            "modelOutput": {"name": "model_output"},
            "capture": {"name": "seldon-capture"},
            "deadLetter": {"name": "seldon-capture-dead-letter"},
        },
        "The topics by role (modelInput, modelOutput, capture, deadLetter), each with name, partitions and "
        "retentionHours; a field you set replaces that field of the default only (partitions and retention default "
        "to kafka:partitions and kafka:retentionHours). Every client gets these names from here.",
        fields=("modelInput", "modelOutput", "capture", "deadLetter"),
    ),
    _k("kafka:tls", "bool", False, "Serve clients on a TLS listener (port 9093) instead of plain text (9092)."),
    _k(
        "kafka:authentication",
        "str",
        "none",
        "Client authentication on the listener, and with it authorization (Strimzi simple): each client logs in as "
        "its own KafkaUser (feedback-collector, feedback-indexer, feedback-monitor, seldon-executor, smoke-tests) "
        "with the ACLs of infra/kafka_access.py; scram-sha-512 (SASL) or tls (client certificates), both need "
        "kafka:tls=true. none: anyone may do anything (dev only).",
        enum=KAFKA_AUTHENTICATION,
    ),
    # search
    _k(
        "search:operator",
        "str",
        "install",
        "install: the program installs the ECK operator chart; existing: an operator already runs and manages "
        "platform:appNamespace (the program still creates Elasticsearch and Kibana).",
        enum=OPERATOR_MODES,
    ),
    _k(
        "search:existing",
        "object",
        {},
        "An existing search engine instead of ECK's: {url, engine: elasticsearch|opensearch, username and secret: the "
        "admin user the setup Job uses (and the Kibana import), indexerUsername and indexerSecret, monitorUsername and "
        "monitorSecret: the users of the indexer and the monitor with the roles of docs/search-privileges.md, "
        "secretKey (the password's key in every one of those Secrets, default password), caSecret: <Secret with "
        "ca.crt>}; Secrets in platform:appNamespace. Empty: ECK makes Elasticsearch and Kibana.",
        fields=EXISTING_SEARCH_FIELDS,
    ),
    _k("search:operatorNamespace", "str", "elastic-system", "Namespace of the ECK operator."),
    _k("search:operatorChartVersion", "str", "3.5.0", "ECK operator chart version (also its image tag)."),
    _k(
        "search:version",
        "str",
        "8.19.2",
        "Elasticsearch and Kibana version; major 8 (the indexer uses the elasticsearch 8 client).",
    ),
    _k(
        "search:clusterName",
        "str",
        "seldon-search",
        "Elasticsearch resource name; ECK names the Service "
        "<clusterName>-es-http and the credentials Secret <clusterName>-es-elastic-user.",
    ),
    _k("search:nodes", "int", 1, "Elasticsearch nodes (one nodeSet, all roles)."),
    _k("search:storage", "str", "10Gi", "Persistent volume size of each Elasticsearch node."),
    _k("search:storageClass", "str", "", "StorageClass of Elasticsearch volumes; empty means the cluster default."),
    _k(
        "search:resources",
        "object",
        {"cpu": "500m", "memory": "2Gi"},
        "Requests of each Elasticsearch node (memory is also the limit; the heap is sized from it).",
        fields=RESOURCE_FIELDS,
    ),
    _k("search:tls", "bool", False, "Serve Elasticsearch and Kibana over HTTPS with ECK's self-signed certificates."),
    _k("search:kibana", "bool", True, "Deploy Kibana next to Elasticsearch."),
    _k(
        "search:indexerPassword",
        "secret",
        None,
        "Password of the indexer's Elasticsearch user (file realm, role seldon-feedback-indexer), at least 12 "
        "characters (required unless search:existing).",
    ),
    _k(
        "search:monitorPassword",
        "secret",
        None,
        "Password of the monitor's Elasticsearch user (file realm, role seldon-feedback-monitor), at least 12 "
        "characters (required unless search:existing).",
    ),
    _k("search:kibanaReplicas", "int", 1, "Kibana replicas."),
    # object store
    _k(
        "objectstore:existing",
        "object",
        {},
        "An existing S3 endpoint instead of MinIO: {endpoint: URL, secret: <Secret in platform:appNamespace with "
        "accessKey and secretKey>}; objectstore:bucket must exist there. Empty: the program installs MinIO.",
        fields=EXISTING_OBJECTSTORE_FIELDS,
    ),
    _k("objectstore:namespace", "str", "minio", "Namespace of MinIO."),
    _k("objectstore:chartVersion", "str", "5.4.0", "MinIO chart version."),
    _k("objectstore:imageTag", "str", "RELEASE.2024-12-18T13-15-44Z", "MinIO server image tag."),
    _k(
        "objectstore:mcImageTag",
        "str",
        "RELEASE.2024-11-21T17-21-54Z",
        "MinIO client (mc) image tag used by the bucket job.",
    ),
    _k("objectstore:mode", "str", "standalone", "MinIO topology.", enum=("standalone", "distributed")),
    _k("objectstore:replicas", "int", 1, "MinIO pods (1 in standalone mode, at least 4 in distributed mode)."),
    _k("objectstore:storage", "str", "10Gi", "Persistent volume size of each MinIO pod."),
    _k(
        "objectstore:resources",
        "object",
        {"cpu": "100m", "memory": "512Mi"},
        "Requests of each MinIO pod.",
        fields=RESOURCE_FIELDS,
    ),
    _k("objectstore:bucket", "str", "seldon-batch", "Bucket holding batch inputs and outputs."),
    _k("objectstore:rootUser", "str", "minio-admin", "MinIO root user name (also the batch access key)."),
    _k(
        "objectstore:rootPassword",
        "secret",
        None,
        "MinIO root password, at least 8 characters (required; set with --secret).",
    ),
    # workflows
    _k(
        "workflows:operator",
        "str",
        "install",
        "install: the program installs the argo-workflows chart; existing: a controller already runs and watches "
        "platform:appNamespace (the program still creates the WorkflowTemplate).",
        enum=OPERATOR_MODES,
    ),
    _k("workflows:namespace", "str", "argo", "Namespace of the Argo Workflows controller and server."),
    _k("workflows:chartVersion", "str", "0.47.5", "argo-workflows chart version."),
    _k("workflows:imageTag", "str", "v3.7.11", "Argo Workflows image tag (controller, server, executor)."),
    _k("workflows:server", "bool", True, "Deploy the Argo Server (UI and API)."),
    # seldon
    _k(
        "seldon:operator",
        "str",
        "install",
        "install: the program installs the seldon-core-operator chart; existing: an operator of seldon:version "
        "already runs (set its executor.requestLogger.defaultEndpoint to the collector.url output yourself).",
        enum=OPERATOR_MODES,
    ),
    _k("seldon:namespace", "str", "seldon-system", "Namespace of the Seldon Core operator."),
    _k(
        "seldon:version",
        "str",
        "1.17.1",
        "Seldon Core operator chart version (= operator and executor image tag); >= 1.3.0. Settings the chosen "
        "executor cannot honour are refused (docs/deploy.md, What each Seldon version can do).",
    ),
    _k("seldon:acceptBsl", "bool", False, "Accept the Business Source License 1.1 of Seldon Core >= 1.18.0."),
    _k("seldon:certManager", "bool", False, "Let cert-manager issue the webhook certificate (needs cert-manager)."),
    _k("seldon:loggerWorkQueueSize", "int", 10000, "Executor request-logger buffer, in events (Seldon >= 1.12)."),
    _k(
        "seldon:loggerWriteTimeoutMs",
        "int",
        2000,
        "How long (ms) the executor waits on a full logger buffer before dropping an event (Seldon >= 1.12).",
    ),
    # classifier
    _k(
        "classifier:image",
        "object",
        {"repository": "ghcr.io/seldon-feedback/text-classifier", "tag": "0.1.0"},
        "Classifier image: repository plus a fixed tag or a sha256 digest.",
        fields=IMAGE_FIELDS,
    ),
    _k("classifier:replicas", "int", 1, "Pods of the real-time (REST/gRPC) SeldonDeployment."),
    _k("classifier:streaming", "bool", True, "Also deploy the streaming (serverType kafka) SeldonDeployment."),
    _k("classifier:streamingReplicas", "int", 1, "Pods of the streaming SeldonDeployment."),
    _k("classifier:streamingWorkers", "int", 0, "Executor Kafka workers (KAFKA_WORKERS); 0 keeps Seldon's default."),
    _k(
        "classifier:loggerMode",
        "str",
        "all",
        "What the executor captures: all (requests, responses, ground truth), request, response (responses and "
        "ground truth) or off. Ground truth (feedback events) needs Seldon >= 1.4.0.",
        enum=("all", "request", "response", "off"),
    ),
    _k(
        "classifier:captureSink",
        "str",
        "collector",
        "Where the executor sends captured events: the collector "
        "(HTTP CloudEvents) or straight to Kafka (LOGGER_KAFKA_*, Seldon >= 1.11).",
        enum=("collector", "kafka"),
    ),
    _k(
        "classifier:resources",
        "object",
        {"cpu": "100m", "memory": "1Gi"},
        "Requests of each model container (memory is also the limit).",
        fields=RESOURCE_FIELDS,
    ),
    _k(
        "classifier:canaryModelVersion",
        "str",
        None,
        "A version of the flow back's registry (registry/text-classifier/<version>/ in the flowback:bucket) "
        "served by a canary predictor beside the main one of the real-time SeldonDeployment; unset: no canary.",
    ),
    _k("classifier:canaryTraffic", "int", 10, "Percent of real-time requests the canary predictor gets, 1 to 99."),
    # feedback pipeline
    _k(
        "feedback:image",
        "object",
        {"repository": "ghcr.io/seldon-feedback/feedback", "tag": "0.1.0"},
        "Collector and indexer image: repository plus a fixed tag or a sha256 digest.",
        fields=IMAGE_FIELDS,
    ),
    _k("feedback:collectorReplicas", "int", 1, "Collector pods."),
    _k("feedback:indexerReplicas", "int", 1, "Indexer pods (at most the capture topic's partitions)."),
    _k(
        "feedback:index",
        "str",
        "seldon-feedback",
        "Search index (or alias) the indexer writes; documents are found with the pattern <index>*.",
    ),
    _k(
        "feedback:samplingRate",
        "float",
        None,
        "Fraction of request ids the collector keeps, 0 to 1 (COLLECTOR_SAMPLING_RATE); unset leaves the "
        "collector's own default, which keeps every id.",
    ),
    _k(
        "feedback:indexShards",
        "int",
        None,
        "Primary shards of a new capture index (INDEXER_INDEX_SHARDS); unset leaves the chart's default, 1.",
    ),
    _k(
        "feedback:retentionDays",
        "int",
        None,
        "Capture documents older than this many days (by @timestamp) are deleted by the indexer, hourly "
        "(INDEXER_RETENTION_DAYS); unset or 0 keeps them forever.",
    ),
    _k(
        "feedback:noResponseAfterSeconds",
        "float",
        None,
        "Seconds after its request a request without a response becomes outcome no_response, 1 to 86400 "
        "(INDEXER_NO_RESPONSE_AFTER_S); unset leaves the indexer's own default, 120.",
    ),
    _k(
        "feedback:feedbackJoinDelaySeconds",
        "float",
        None,
        "Seconds a feedback without its prediction's puid waits before the fingerprint join, 1 to 86400 "
        "(INDEXER_FEEDBACK_JOIN_DELAY_S); unset leaves the indexer's own default, 60.",
    ),
    _k(
        "feedback:feedbackJoinWindowSeconds",
        "float",
        None,
        "Seconds between a feedback and its prediction's request the fingerprint join accepts, 1 to 2592000 "
        "(INDEXER_FEEDBACK_JOIN_WINDOW_S); unset leaves the indexer's own default, 3600.",
    ),
    _k(
        "feedback:sweepIntervalSeconds",
        "float",
        None,
        "Seconds between two sweeps of the index, 0.1 to 3600 (INDEXER_SWEEP_INTERVAL_S); unset leaves the "
        "indexer's own default, 10.",
    ),
    _k(
        "feedback:monitor",
        "bool",
        True,
        "Deploy the monitor: per window, capture health, drift against the classifier's training profile and "
        "quality from ground truth, in its own index and on /metrics.",
    ),
    _k(
        "feedback:monitorIndex",
        "str",
        "seldon-monitor",
        "Search index of the monitor's results and state; it must not start with '<feedback:index>-'.",
    ),
    _k(
        "feedback:monitorWindowSeconds",
        "int",
        None,
        "Length of a monitor window in seconds, 10 to 86400 (MONITOR_WINDOW_S); unset leaves the monitor's own "
        "default, 900.",
    ),
    _k(
        "feedback:monitorSettleSeconds",
        "int",
        None,
        "Seconds after its end a window is computed (MONITOR_SETTLE_S); unset leaves the monitor's own default, 120.",
    ),
    _k(
        "feedback:monitorThresholds",
        "object",
        {},
        "When a window breaches and breaches alarm; each field left out keeps the monitor's default: fdr (0.01), "
        "multipleTesting (bh|bonferroni), consecutiveWindows (2), psi (0.2), domainAuc (0.65), accuracyDrop (0.05), "
        "minSamples (50) (docs/monitoring.md).",
        fields=MONITOR_THRESHOLD_FIELDS,
    ),
    _k(
        "feedback:alerts",
        "bool",
        False,
        "Create the PrometheusRule of the pipeline's alerts (drift, quality drop, capture gaps, dead letters, lag); "
        "needs the Prometheus Operator's CRDs in the cluster.",
    ),
    _k(
        "feedback:seldonServiceAccounts",
        "list",
        ["default"],
        "ServiceAccounts the Seldon pods in platform:appNamespace run as (the classifier's SeldonDeployments name "
        "none, so default); with platform:mesh=istio only their principals may use the collector's event port.",
    ),
    _k(
        "feedback:metricsNamespace",
        "str",
        "",
        "Namespace of the Prometheus that scrapes the collector, indexer and monitor metrics ports (NetworkPolicy); "
        "empty: nothing may reach the metrics ports.",
    ),
    _k(
        "feedback:metricsPodLabels",
        "object",
        {"app.kubernetes.io/name": "prometheus"},
        "Labels of the scraper pods in feedback:metricsNamespace (all must match; at least one; the default is the "
        "label the Prometheus Operator puts on Prometheus pods).",
    ),
    _k(
        "feedback:metricsPrincipals",
        "list",
        [],
        "With platform:mesh=istio, the scraper's principals (<trust domain>/ns/<namespace>/sa/<account>) allowed "
        "on the metrics ports; empty: any source (a Prometheus outside the mesh has no principal).",
    ),
    _k(
        "feedback:producerToken",
        "secret",
        None,
        "Bearer token of feedback producers other than Seldon (e.g. a labelling tool), at least 32 characters, "
        "several separated by newlines while one is rotated; set: the collector opens its producer port (8081) and "
        "the program keeps the token in a Secret; unset: no producer port.",
    ),
    _k(
        "feedback:producerNamespaces",
        "list",
        [],
        "Namespaces whose pods may reach the collector's producer port (needs feedback:producerToken); empty: "
        "platform:appNamespace.",
    ),
    _k(
        "feedback:redaction",
        "object",
        {},
        "Redaction of personal data, the same for the collector and the indexer (collector.redact, indexer.redact; "
        "docs/feedback-pipeline.md#redaction); each field left out keeps the services' default: fields (list of JSON "
        "field names whose values are replaced), patterns (list of email|phone, or [none]; default both), regexes "
        "(list, matches replaced in values and keys), keyRegexes (list, a matching JSON key is replaced whole), "
        "headers (list of CloudEvent attributes / Kafka headers, [*] or [none]; default requestid, subject, "
        "traceparent, tracestate), hashKeySecret (a Secret in the application namespace with key hash-key: the key "
        "of a redacted request id's pseudonym).",
        fields=REDACTION_FIELDS,
    ),
    # batch
    _k("batch:workers", "int", 4, "Parallel seldon-batch-processor workers."),
    _k("batch:retries", "int", 3, "Retries of each batch request."),
    # flow back (docs/flowback.md)
    _k(
        "flowback:enabled",
        "bool",
        True,
        "Install the flow back's Argo WorkflowTemplate (charts/flowback-workflow: export, train, evaluate, register) "
        "in platform:appNamespace.",
    ),
    _k(
        "flowback:bucket",
        "str",
        "flowback",
        "Bucket of the flow back's datasets/ and model registry/ (the canary fetches its model there); another "
        "bucket than objectstore:bucket. Made in the installed MinIO; with objectstore:existing it must exist.",
    ),
    _k(
        "flowback:schedule",
        "str",
        "",
        "Five-field cron expression of a CronWorkflow running the WorkflowTemplate (e.g. '0 3 * * *'); empty: no "
        "schedule, runs are submitted with `argo submit`.",
    ),
    _k("flowback:timezone", "str", "", "IANA time zone of flowback:schedule (e.g. Europe/Berlin); empty: UTC."),
    _k(
        "flowback:lookback",
        "str",
        "24h",
        "Window each scheduled run exports, ending at its scheduled time: a number and s, m, h or d (e.g. 24h, 7d).",
    ),
    _k(
        "flowback:rule",
        "object",
        {},
        "Promotion rule of the evaluate step; each field left out keeps the chart's default: confidence (0.95), "
        "heldOutMaxDrop (0.01), feedbackMinGain (0.02), feedbackSignificant (true), minFeedbackRows (30) "
        "(docs/flowback.md).",
        fields=FLOWBACK_RULE_FIELDS,
    ),
)

KEYS_BY_NAME: dict[str, Key] = {key.name: key for key in KEYS}

# Keys whose names look like credentials: they must be declared as `secret` (a test checks the stack files too).
SECRET_NAME = re.compile(r"(password|secret|token|credential|apikey|accesskey)", re.IGNORECASE)
