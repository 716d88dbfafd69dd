"""Every stack key, walked to what it finally becomes, so that a renamed key, chart value or variable fails here.

`HOPS` follows each key that reaches one of our containers: stack key -> the value the Pulumi program hands our
chart (under mocks) -> what `helm template` of that chart renders for the container (environment variable,
executor variable, image, replicas, WorkflowTemplate parameter). Keys that configure upstream charts or custom
resources instead are in `ELSEWHERE`, each with the program resource it must change. Every key in
infra/config/keys.py is in one of the two tables (a new key must be added), and no table names a key that does not
exist.

All hop values come from one stack, `WALK` (dev with every walked key set to a value none of the defaults has),
so each assertion also proves that the key, not a default, produced the value.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra import config
from tests.infra.harness import TEST_SECRETS, Run, run_program
from tests.infra.rendering import (
    Objects,
    at,
    container_env,
    deployment_container,
    executor_env,
    only,
    workflow_container,
)

OUR_CHARTS = ("feedback-pipeline", "classifier-realtime", "classifier-streaming", "batch-workflow", "flowback-workflow")
WALK: dict[str, Any] = {
    "platform:appNamespace": "walk-apps",
    "platform:podDisruptionBudgets": True,
    "kafka:clusterName": "walk-kafka",
    "kafka:brokers": 2,  # budgets need two of everything
    "kafka:tls": True,
    "kafka:authentication": "scram-sha-512",
    "kafka:topics": {
        "modelInput": {"name": "walk-in"},
        "modelOutput": {"name": "walk-out"},
        "capture": {"name": "walk-capture"},
        "deadLetter": {"name": "walk-dead"},
    },
    "search:clusterName": "walk-search",
    "search:tls": True,
    "search:nodes": 2,
    "objectstore:namespace": "walk-minio",
    "objectstore:bucket": "walk-bucket",
    "seldon:version": "1.16.0",
    "seldon:loggerWorkQueueSize": 777,
    "seldon:loggerWriteTimeoutMs": 888,
    "classifier:image": {"repository": "ghcr.io/walk/classifier", "tag": "9.9.1"},
    "classifier:replicas": 2,
    "classifier:streamingReplicas": 3,
    "classifier:streamingWorkers": 7,
    "classifier:loggerMode": "response",
    "classifier:captureSink": "kafka",
    "classifier:resources": {"cpu": "300m", "memory": "1500Mi"},
    "feedback:image": {"repository": "ghcr.io/walk/feedback", "tag": "9.9.2"},
    "feedback:collectorReplicas": 2,
    "feedback:indexerReplicas": 2,
    "feedback:index": "walk-index",
    "feedback:samplingRate": 0.3,
    "feedback:indexShards": 3,
    "feedback:retentionDays": 45,
    "feedback:noResponseAfterSeconds": 300,
    "feedback:feedbackJoinDelaySeconds": 30,
    "feedback:feedbackJoinWindowSeconds": 7200,
    "feedback:sweepIntervalSeconds": 2.5,
    "feedback:monitorIndex": "walk-monitor",
    "feedback:monitorWindowSeconds": 77,
    "feedback:monitorSettleSeconds": 33,
    "feedback:monitorThresholds": {"fdr": 0.02, "consecutiveWindows": 3},
    "feedback:alerts": True,
    "feedback:metricsNamespace": "walk-monitoring",
    "feedback:metricsPodLabels": {"app": "walk-prometheus"},
    "feedback:redaction": {"headers": ["requestid", "userid"], "keyRegexes": ["^user-"], "hashKeySecret": "walk-pii"},
    "batch:workers": 9,
    "batch:retries": 5,
    "flowback:bucket": "walk-registry",
    "flowback:schedule": "15 4 * * 1",
    "flowback:timezone": "Europe/Paris",
    "flowback:lookback": "36h",
    "flowback:rule": {"heldOutMaxDrop": 0.02, "minFeedbackRows": 77},
}
# a canary predictor is its own scenario: the walk's executor hops read the one predictor of the SeldonDeployment
CANARY = {
    "classifier:canaryModelVersion": "1.0.0+walkcanary01",
    "classifier:canaryTraffic": 33,
    "flowback:bucket": "walk-registry",
}
# Existing services (kafka:existing, search:existing, objectstore:existing) and a registry mirror each walk from a
# stack of their own: they replace what WALK's keys configure.
EXISTING: dict[str, Any] = {
    "kafka:existing": {"bootstrap": "kafka.walk.example:9093", "tlsSecret": "walk-kafka-ca", "saslSecret": "walk-user"},
    "search:existing": {
        "url": "https://search.walk.example:9200",
        "engine": "opensearch",
        "username": "walker",
        "secret": "walk-search-user",
        "secretKey": "pw",
        "indexerUsername": "walk-indexer",
        "indexerSecret": "walk-search-indexer",
        "monitorUsername": "walk-monitor",
        "monitorSecret": "walk-search-monitor",
        "caSecret": "walk-search-ca",
    },
    "objectstore:existing": {"endpoint": "https://s3.walk.example", "secret": "walk-s3"},
}
MIRROR = "mirror.walk.example:5000/hub"
# an Istio mesh: AuthorizationPolicies by principal
MESH: dict[str, Any] = {
    "platform:mesh": "istio",
    "platform:meshTrustDomain": "walk.example",
    "feedback:seldonServiceAccounts": ["walk-executor"],
    "feedback:metricsPrincipals": ["walk.example/ns/walk-monitoring/sa/walk-prometheus"],
}
PRODUCER_TOKEN = "walk-producer-token-" + "w" * 32
# the batch chart pulls rclone by digest (charts/batch-workflow/values.yaml images.rclone.digest)
RCLONE_DIGEST = "sha256:74c51b8817e5431bd6d7ed27cb2a50d8ee78d77f6807b72a41ef6f898845942b"
SCENARIOS: dict[str, dict[str, Any]] = {
    "walk": WALK,
    "no-streaming": {"classifier:streaming": False},
    "no-monitor": {"feedback:monitor": False},
    "canary": CANARY,
    "existing": EXISTING,
    "mirror": {"platform:imageRegistry": MIRROR},
    "mesh": MESH,
}
BOOTSTRAP = "walk-kafka-kafka-bootstrap.walk-apps.svc.cluster.local:9093"


@dataclass(frozen=True)
class Lands:
    """Where a chart value ends up in the rendered chart: `what` for people, `read` for the test."""

    what: str
    read: Callable[[Objects], Any]
    expected: Any


@dataclass(frozen=True)
class Hop:
    """Stack `key` -> value `passed` at `path` of chart resource `chart` -> `lands` (None: an upstream chart the
    operator turns into the executor's flags; only the program's side is checked)."""

    key: str
    chart: str
    path: str  # dotted values path; "@namespace" is the release namespace
    passed: Any
    lands: Lands | None
    scenario: str = "walk"


def by_suffix(objects: Objects, kind: str, suffix: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]


def env(component: str, variable: str, expected: Any) -> Lands:
    return Lands(
        f"{component} env {variable}",
        lambda objects: container_env(objects, deployment_container(objects, component)).get(variable),
        expected,
    )


def setup_env(variable: str, expected: Any) -> Lands:
    """The indexer's setup command in the search setup Job (`<fullname>-search-setup-<hash>`, its init container)."""

    def read(objects: Objects) -> Any:
        (job,) = [o for o in objects if o["kind"] == "Job" and "-search-setup-" in o["metadata"]["name"]]
        return container_env(objects, job["spec"]["template"]["spec"]["initContainers"][0]).get(variable)

    return Lands(f"search setup Job env {variable}", read, expected)


def executor(variable: str, expected: Any) -> Lands:
    return Lands(f"executor env {variable}", lambda objects: executor_env(objects).get(variable), expected)


def rendered(kind: str, path: str, expected: Any, suffix: str = "") -> Lands:
    return Lands(f"{kind} {path}", lambda objects: at(only(objects, kind, suffix), path), expected)


def workflow(template: str, path: str, expected: Any) -> Lands:
    return Lands(
        f"WorkflowTemplate step {template} {path}",
        lambda objects: at(workflow_container(objects, template), path),
        expected,
    )


def flowback_env(variable: str, expected: Any) -> Lands:
    return Lands(
        f"flowback export step env {variable}",
        lambda objects: container_env(objects, workflow_container(objects, "export")).get(variable),
        expected,
    )


def rule_json(field: str, expected: Any) -> Lands:
    return Lands(
        f"rule ConfigMap rule.json {field}",
        lambda objects: json.loads(only(objects, "ConfigMap", "-rule")["data"]["rule.json"])[field],
        expected,
    )


def parameter(name: str, expected: Any) -> Lands:
    def read(objects: Objects) -> Any:
        parameters = only(objects, "WorkflowTemplate")["spec"]["arguments"]["parameters"]
        return next(p["value"] for p in parameters if p["name"] == name)

    return Lands(f"WorkflowTemplate parameter {name} (seldon-batch-processor --{name})", read, expected)


def model_container(path: str, expected: Any) -> Lands:
    spec = "spec.predictors.0.componentSpecs.0.spec.containers.0"
    return rendered("SeldonDeployment", f"{spec}.{path}", expected)


HOPS: tuple[Hop, ...] = (
    # platform
    Hop(
        "platform:appNamespace",
        "feedback-pipeline",
        "@namespace",
        "walk-apps",
        rendered("Deployment", "metadata.namespace", "walk-apps", "-collector"),
    ),
    Hop(
        "platform:appNamespace",
        "classifier-realtime",
        "@namespace",
        "walk-apps",
        rendered("SeldonDeployment", "metadata.namespace", "walk-apps"),
    ),
    Hop(
        "platform:podDisruptionBudgets",
        "feedback-pipeline",
        "collector.pdb.enabled",
        True,
        rendered("PodDisruptionBudget", "spec.minAvailable", 1, "-collector"),
    ),
    Hop(
        "platform:podDisruptionBudgets",
        "feedback-pipeline",
        "indexer.pdb.enabled",
        True,
        rendered("PodDisruptionBudget", "spec.maxUnavailable", 1, "-indexer"),
    ),
    Hop(
        "platform:podDisruptionBudgets",
        "classifier-realtime",
        "pdb.enabled",
        True,
        rendered("SeldonDeployment", "spec.predictors.0.componentSpecs.0.pdbSpec.minAvailable", 1),
    ),
    # kafka
    Hop(
        "kafka:clusterName",
        "feedback-pipeline",
        "kafka.bootstrapServers",
        BOOTSTRAP,
        env("collector", "KAFKA_BOOTSTRAP_SERVERS", BOOTSTRAP),
    ),
    Hop(
        "kafka:clusterName",
        "feedback-pipeline",
        "kafka.bootstrapServers",
        BOOTSTRAP,
        env("indexer", "KAFKA_BOOTSTRAP_SERVERS", BOOTSTRAP),
    ),
    Hop("kafka:clusterName", "classifier-streaming", "kafka.broker", BOOTSTRAP, executor("KAFKA_BROKER", BOOTSTRAP)),
    Hop(
        "kafka:clusterName",
        "classifier-realtime",
        "logger.kafka.broker",
        BOOTSTRAP,
        executor("LOGGER_KAFKA_BROKER", BOOTSTRAP),
    ),
    Hop(
        "kafka:tls",
        "feedback-pipeline",
        "kafka.tls.existingSecret",
        "walk-kafka-cluster-ca-cert",
        env("indexer", "KAFKA_SSL_CA_LOCATION", "/etc/feedback/kafka-ca/ca.crt"),
    ),
    Hop(
        "kafka:tls",
        "classifier-realtime",
        "kafka.tls.existingSecret",
        "walk-kafka-cluster-ca-cert",
        executor("KAFKA_SSL_CA_CERT", {"secretKeyRef": {"name": "walk-kafka-cluster-ca-cert", "key": "ca.crt"}}),
    ),
    Hop(
        "kafka:authentication",
        "feedback-pipeline",
        "kafka.securityProtocol",
        "sasl_ssl",
        env("collector", "KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
    ),
    Hop(
        "kafka:authentication",
        "feedback-pipeline",
        "kafka.sasl.mechanism",
        "SCRAM-SHA-512",
        env("indexer", "KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
    ),
    Hop(
        "kafka:authentication",
        "classifier-streaming",
        "kafka.securityProtocol",
        "SASL_SSL",
        executor("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
    ),
    Hop(
        "kafka:authentication",
        "classifier-streaming",
        "kafka.sasl.mechanism",
        "SCRAM-SHA-512",
        executor("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
    ),
    Hop(
        "kafka:authentication",
        "feedback-pipeline",
        "kafka.clients.collector.existingSecret",
        "feedback-collector",
        env(
            "collector",
            "KAFKA_SASL_PASSWORD",
            {"secretKeyRef": {"name": "feedback-collector", "key": "password"}},
        ),
    ),
    Hop(
        "kafka:authentication",
        "classifier-streaming",
        "kafka.sasl.existingSecret",
        "seldon-executor",
        executor("KAFKA_SASL_PASSWORD", {"secretKeyRef": {"name": "seldon-executor", "key": "password"}}),
    ),
    Hop(
        "kafka:topics",
        "feedback-pipeline",
        "kafka.captureTopic",
        "walk-capture",
        env("collector", "CAPTURE_TOPIC", "walk-capture"),
    ),
    Hop(
        "kafka:topics",
        "feedback-pipeline",
        "kafka.captureTopic",
        "walk-capture",
        env("indexer", "CAPTURE_TOPIC", "walk-capture"),
    ),
    Hop(
        "kafka:topics",
        "feedback-pipeline",
        "kafka.deadLetterTopic",
        "walk-dead",
        env("indexer", "INDEXER_DEAD_LETTER_TOPIC", "walk-dead"),
    ),
    Hop(
        "kafka:topics",
        "classifier-streaming",
        "streaming.inputTopic",
        "walk-in",
        executor("KAFKA_INPUT_TOPIC", "walk-in"),
    ),
    Hop(
        "kafka:topics",
        "classifier-streaming",
        "streaming.outputTopic",
        "walk-out",
        executor("KAFKA_OUTPUT_TOPIC", "walk-out"),
    ),
    Hop(
        "kafka:topics",
        "classifier-realtime",
        "logger.kafka.topic",
        "walk-capture",
        executor("LOGGER_KAFKA_TOPIC", "walk-capture"),
    ),
    # search
    Hop(
        "search:clusterName",
        "feedback-pipeline",
        "search.url",
        "https://walk-search-es-http.walk-apps.svc.cluster.local:9200",
        env("indexer", "INDEXER_SEARCH_URL", "https://walk-search-es-http.walk-apps.svc.cluster.local:9200"),
    ),
    Hop(
        "search:clusterName",
        "feedback-pipeline",
        "search.indexer.existingSecret",
        "walk-search-feedback-indexer-user",
        env(
            "indexer",
            "INDEXER_SEARCH_PASSWORD",
            {"secretKeyRef": {"name": "walk-search-feedback-indexer-user", "key": "password"}},
        ),
    ),
    Hop(
        "search:clusterName",
        "feedback-pipeline",
        "search.setup.existingSecret",
        "walk-search-es-elastic-user",
        setup_env(
            "INDEXER_SEARCH_PASSWORD",
            {"secretKeyRef": {"name": "walk-search-es-elastic-user", "key": "elastic"}},
        ),
    ),
    Hop(
        "search:tls",
        "feedback-pipeline",
        "search.tls.caSecret",
        "walk-search-es-http-certs-public",
        env("indexer", "INDEXER_SEARCH_CA_CERTS", "/etc/feedback/search-ca/ca.crt"),
    ),
    # objectstore
    Hop(
        "objectstore:namespace",
        "batch-workflow",
        "objectStore.endpoint",
        "http://minio.walk-minio.svc.cluster.local:9000",
        workflow("download-object-store", "env.4.value", "http://minio.walk-minio.svc.cluster.local:9000"),
    ),
    Hop(
        "objectstore:bucket",
        "batch-workflow",
        "objectStore.bucket",
        "walk-bucket",
        workflow("download-object-store", "args.1", "store:walk-bucket/{{workflow.parameters.input-path}}"),
    ),
    # existing services and mirrors
    Hop(
        "kafka:existing",
        "feedback-pipeline",
        "kafka.bootstrapServers",
        "kafka.walk.example:9093",
        env("collector", "KAFKA_BOOTSTRAP_SERVERS", "kafka.walk.example:9093"),
        "existing",
    ),
    Hop(
        "kafka:existing",
        "classifier-streaming",
        "kafka.tls.existingSecret",
        "walk-kafka-ca",
        executor("KAFKA_SSL_CA_CERT", {"secretKeyRef": {"name": "walk-kafka-ca", "key": "ca.crt"}}),
        "existing",
    ),
    Hop(
        "kafka:existing",
        "feedback-pipeline",
        "kafka.sasl.existingSecret",
        "walk-user",
        env("indexer", "KAFKA_SASL_PASSWORD", {"secretKeyRef": {"name": "walk-user", "key": "password"}}),
        "existing",
    ),
    Hop(
        "search:existing",
        "feedback-pipeline",
        "search.url",
        "https://search.walk.example:9200",
        env("indexer", "INDEXER_SEARCH_URL", "https://search.walk.example:9200"),
        "existing",
    ),
    Hop(
        "search:existing",
        "feedback-pipeline",
        "search.engine",
        "opensearch",
        env("indexer", "INDEXER_SEARCH_ENGINE", "opensearch"),
        "existing",
    ),
    Hop(
        "search:existing",
        "feedback-pipeline",
        "search.indexer.username",
        "walk-indexer",
        env("indexer", "INDEXER_SEARCH_USERNAME", "walk-indexer"),
        "existing",
    ),
    Hop(
        "search:existing",
        "feedback-pipeline",
        "search.indexer.existingSecret",
        "walk-search-indexer",
        env("indexer", "INDEXER_SEARCH_PASSWORD", {"secretKeyRef": {"name": "walk-search-indexer", "key": "pw"}}),
        "existing",
    ),
    Hop(
        "search:existing",
        "feedback-pipeline",
        "search.monitor.existingSecret",
        "walk-search-monitor",
        env("monitor", "MONITOR_SEARCH_PASSWORD", {"secretKeyRef": {"name": "walk-search-monitor", "key": "pw"}}),
        "existing",
    ),
    Hop(
        "search:existing",
        "feedback-pipeline",
        "search.tls.caSecret",
        "walk-search-ca",
        env("indexer", "INDEXER_SEARCH_CA_CERTS", "/etc/feedback/search-ca/ca.crt"),
        "existing",
    ),
    Hop(
        "objectstore:existing",
        "batch-workflow",
        "objectStore.endpoint",
        "https://s3.walk.example",
        workflow("download-object-store", "env.4.value", "https://s3.walk.example"),
        "existing",
    ),
    Hop(
        "objectstore:existing",
        "batch-workflow",
        "objectStore.existingSecret",
        "walk-s3",
        workflow("download-object-store", "env.6.valueFrom.secretKeyRef.name", "walk-s3"),
        "existing",
    ),
    Hop(
        "platform:imageRegistry",
        "feedback-pipeline",
        "image.repository",
        f"{MIRROR}/seldon-feedback/feedback",
        Lands(
            "collector image",
            lambda o: deployment_container(o, "collector")["image"],
            f"{MIRROR}/seldon-feedback/feedback:0.1.0",
        ),
        "mirror",
    ),
    Hop(
        "platform:imageRegistry",
        "classifier-realtime",
        "image.repository",
        f"{MIRROR}/seldon-feedback/text-classifier",
        model_container("image", f"{MIRROR}/seldon-feedback/text-classifier:0.1.0"),
        "mirror",
    ),
    Hop(
        "platform:imageRegistry",
        "batch-workflow",
        "images.batchProcessor.repository",
        f"{MIRROR}/seldon-feedback/text-classifier",
        workflow("process-batch-inputs", "image", f"{MIRROR}/seldon-feedback/text-classifier:0.1.0"),
        "mirror",
    ),
    Hop(
        "platform:imageRegistry",
        "batch-workflow",
        "images.rclone.repository",
        f"{MIRROR}/rclone/rclone",
        workflow("download-object-store", "image", f"{MIRROR}/rclone/rclone:1.68.2@{RCLONE_DIGEST}"),
        "mirror",
    ),
    # seldon (upstream chart: the operator passes these to every executor)
    Hop("seldon:version", "seldon-operator", "executor.image.tag", "1.16.0", None),
    # ... and the protos both feedback services decode the executors' gRPC payloads with
    Hop(
        "seldon:version",
        "feedback-pipeline",
        "seldonProtoVersion",
        "1.16.0",
        env("collector", "SELDON_PROTO_VERSION", "1.16.0"),
    ),
    Hop(
        "seldon:version",
        "feedback-pipeline",
        "seldonProtoVersion",
        "1.16.0",
        env("indexer", "SELDON_PROTO_VERSION", "1.16.0"),
    ),
    Hop(
        "seldon:loggerWorkQueueSize", "seldon-operator", "executor.requestLogger.workQueueSize", 777, None
    ),  # --log_work_buffer_size
    Hop(
        "seldon:loggerWriteTimeoutMs", "seldon-operator", "executor.requestLogger.writeTimeoutMs", 888, None
    ),  # --log_write_timeout_ms
    # classifier
    Hop(
        "classifier:image",
        "classifier-realtime",
        "image.tag",
        "9.9.1",
        model_container("image", "ghcr.io/walk/classifier:9.9.1"),
    ),
    Hop(
        "classifier:image",
        "batch-workflow",
        "images.batchProcessor.repository",
        "ghcr.io/walk/classifier",
        workflow("process-batch-inputs", "image", "ghcr.io/walk/classifier:9.9.1"),
    ),
    Hop(
        "classifier:replicas",
        "classifier-realtime",
        "replicas",
        2,
        rendered("SeldonDeployment", "spec.predictors.0.replicas", 2),
    ),
    Hop(
        "classifier:streaming",
        "feedback-pipeline",
        "indexer.streamingDeployments",
        [],
        env("indexer", "INDEXER_STREAMING_DEPLOYMENTS", None),
        "no-streaming",
    ),
    Hop(
        "classifier:streamingReplicas",
        "classifier-streaming",
        "replicas",
        3,
        rendered("SeldonDeployment", "spec.predictors.0.replicas", 3),
    ),
    Hop("classifier:streamingWorkers", "classifier-streaming", "streaming.workers", 7, executor("KAFKA_WORKERS", "7")),
    Hop(
        "classifier:loggerMode",
        "classifier-realtime",
        "logger.mode",
        "response",
        rendered("SeldonDeployment", "spec.predictors.0.graph.logger.mode", "response"),
    ),
    Hop(
        "classifier:captureSink",
        "classifier-realtime",
        "logger.sink",
        "kafka",
        rendered("SeldonDeployment", "spec.predictors.0.graph.logger.url", None),
    ),
    Hop(
        "classifier:resources",
        "classifier-realtime",
        "resources.requests",
        {"cpu": "300m", "memory": "1500Mi"},
        model_container("resources.requests", {"cpu": "300m", "memory": "1500Mi"}),
    ),
    Hop(
        "classifier:canaryModelVersion",
        "classifier-realtime",
        "canary.modelVersion",
        "1.0.0+walkcanary01",
        rendered(
            "SeldonDeployment",
            "spec.predictors.1.componentSpecs.0.spec.initContainers.0.args.1",
            "--version=1.0.0+walkcanary01",
        ),
        "canary",
    ),
    Hop(
        "classifier:canaryTraffic",
        "classifier-realtime",
        "canary.traffic",
        33,
        rendered("SeldonDeployment", "spec.predictors.1.traffic", 33),
        "canary",
    ),
    # feedback
    Hop(
        "feedback:image",
        "feedback-pipeline",
        "image.tag",
        "9.9.2",
        Lands(
            "collector image", lambda o: deployment_container(o, "collector")["image"], "ghcr.io/walk/feedback:9.9.2"
        ),
    ),
    Hop(
        "feedback:image",
        "feedback-pipeline",
        "image.repository",
        "ghcr.io/walk/feedback",
        Lands("indexer image", lambda o: deployment_container(o, "indexer")["image"], "ghcr.io/walk/feedback:9.9.2"),
    ),
    Hop(
        "feedback:collectorReplicas",
        "feedback-pipeline",
        "collector.replicas",
        2,
        rendered("Deployment", "spec.replicas", 2, "-collector"),
    ),
    Hop(
        "feedback:indexerReplicas",
        "feedback-pipeline",
        "indexer.replicas",
        2,
        rendered("Deployment", "spec.replicas", 2, "-indexer"),
    ),
    Hop(
        "feedback:index",
        "feedback-pipeline",
        "search.index",
        "walk-index",
        env("indexer", "INDEXER_INDEX", "walk-index"),
    ),
    Hop(
        "feedback:indexShards",
        "feedback-pipeline",
        "search.indexShards",
        3,
        env("indexer", "INDEXER_INDEX_SHARDS", "3"),
    ),
    Hop(
        "feedback:retentionDays",
        "feedback-pipeline",
        "search.retentionDays",
        45,
        env("indexer", "INDEXER_RETENTION_DAYS", "45"),
    ),
    Hop(
        "feedback:noResponseAfterSeconds",
        "feedback-pipeline",
        "indexer.noResponseAfterSeconds",
        300,
        env("indexer", "INDEXER_NO_RESPONSE_AFTER_S", "300"),
    ),
    Hop(
        "feedback:feedbackJoinDelaySeconds",
        "feedback-pipeline",
        "indexer.feedbackJoinDelaySeconds",
        30,
        env("indexer", "INDEXER_FEEDBACK_JOIN_DELAY_S", "30"),
    ),
    Hop(
        "feedback:feedbackJoinWindowSeconds",
        "feedback-pipeline",
        "indexer.feedbackJoinWindowSeconds",
        7200,
        env("indexer", "INDEXER_FEEDBACK_JOIN_WINDOW_S", "7200"),
    ),
    Hop(
        "feedback:sweepIntervalSeconds",
        "feedback-pipeline",
        "indexer.sweepIntervalSeconds",
        2.5,
        env("indexer", "INDEXER_SWEEP_INTERVAL_S", "2.5"),
    ),
    Hop(
        "feedback:samplingRate",
        "feedback-pipeline",
        "collector.samplingRate",
        0.3,
        env("collector", "COLLECTOR_SAMPLING_RATE", "0.3"),
    ),
    Hop(
        "feedback:monitor",
        "feedback-pipeline",
        "monitor.enabled",
        False,
        Lands("monitor Deployments", lambda o: len(by_suffix(o, "Deployment", "-monitor")), 0),
        scenario="no-monitor",
    ),
    Hop(
        "feedback:monitorIndex",
        "feedback-pipeline",
        "monitor.index",
        "walk-monitor",
        env("monitor", "MONITOR_INDEX", "walk-monitor"),
    ),
    Hop(
        "feedback:monitorWindowSeconds",
        "feedback-pipeline",
        "monitor.windowSeconds",
        77,
        env("monitor", "MONITOR_WINDOW_S", "77"),
    ),
    Hop(
        "feedback:monitorSettleSeconds",
        "feedback-pipeline",
        "monitor.settleSeconds",
        33,
        env("monitor", "MONITOR_SETTLE_S", "33"),
    ),
    Hop(
        "feedback:monitorThresholds",
        "feedback-pipeline",
        "monitor.thresholds.fdr",
        0.02,
        env("monitor", "MONITOR_FDR", "0.02"),
    ),
    Hop(
        "feedback:monitorThresholds",
        "feedback-pipeline",
        "monitor.thresholds.consecutiveWindows",
        3,
        env("monitor", "MONITOR_CONSECUTIVE_WINDOWS", "3"),
    ),
    Hop(
        "feedback:redaction",
        "feedback-pipeline",
        "collector.redact.headers",
        "requestid,userid",
        env("collector", "COLLECTOR_REDACT_HEADERS", "requestid,userid"),
    ),
    Hop(
        "feedback:redaction",
        "feedback-pipeline",
        "indexer.redact.headers",
        "requestid,userid",
        env("indexer", "INDEXER_REDACT_HEADERS", "requestid,userid"),
    ),
    Hop(
        "feedback:redaction",
        "feedback-pipeline",
        "indexer.redact.keyRegexes",
        ["^user-"],
        env("indexer", "INDEXER_REDACT_KEY_REGEXES", '["^user-"]'),
    ),
    Hop(
        "feedback:redaction",
        "feedback-pipeline",
        "collector.redact.hashKeySecret",
        "walk-pii",
        env("collector", "COLLECTOR_REDACT_HASH_KEY", {"secretKeyRef": {"name": "walk-pii", "key": "hash-key"}}),
    ),
    Hop(
        "feedback:alerts",
        "feedback-pipeline",
        "alerts.enabled",
        True,
        rendered("PrometheusRule", "metadata.name", "feedback-pipeline"),
    ),
    Hop(
        "classifier:image",
        "feedback-pipeline",
        "monitor.profileImages.classifier",
        "ghcr.io/walk/classifier:9.9.1",
        Lands(
            "monitor's profile init container image",
            lambda o: only(o, "Deployment", "-monitor")["spec"]["template"]["spec"]["initContainers"][0]["image"],
            "ghcr.io/walk/classifier:9.9.1",
        ),
    ),
    Hop(
        "feedback:metricsNamespace",
        "feedback-pipeline",
        "networkPolicy.metricsNamespace",
        "walk-monitoring",
        Lands(
            "indexer NetworkPolicy: the scraper's namespace",
            lambda o: only(o, "NetworkPolicy", "-indexer")["spec"]["ingress"][0]["from"][0]["namespaceSelector"][
                "matchLabels"
            ]["kubernetes.io/metadata.name"],
            "walk-monitoring",
        ),
    ),
    Hop(
        "feedback:metricsPodLabels",
        "feedback-pipeline",
        "networkPolicy.metricsPodLabels",
        {"app": "walk-prometheus"},
        Lands(
            "collector NetworkPolicy: the scraper's pod labels",
            lambda o: only(o, "NetworkPolicy", "-collector")["spec"]["ingress"][-1]["from"][0]["podSelector"][
                "matchLabels"
            ],
            {"app": "walk-prometheus"},
        ),
    ),
    Hop(
        "platform:mesh",
        "feedback-pipeline",
        "mesh.type",
        "istio",
        rendered("AuthorizationPolicy", "spec.action", "ALLOW", "-collector"),
        scenario="mesh",
    ),
    Hop(
        "platform:meshTrustDomain",
        "feedback-pipeline",
        "mesh.seldonPrincipals",
        ["walk.example/ns/seldon/sa/walk-executor"],
        rendered(
            "AuthorizationPolicy",
            "spec.rules.0.from.0.source.principals",
            ["walk.example/ns/seldon/sa/walk-executor"],
            "-collector",
        ),
        scenario="mesh",
    ),
    Hop(
        "feedback:seldonServiceAccounts",
        "feedback-pipeline",
        "mesh.seldonPrincipals",
        ["walk.example/ns/seldon/sa/walk-executor"],
        rendered("AuthorizationPolicy", "spec.rules.0.to.0.operation.ports", ["8080"], "-collector"),
        scenario="mesh",
    ),
    Hop(
        "feedback:metricsPrincipals",
        "feedback-pipeline",
        "mesh.metricsPrincipals",
        ["walk.example/ns/walk-monitoring/sa/walk-prometheus"],
        rendered(
            "AuthorizationPolicy",
            "spec.rules.0.from.0.source.principals",
            ["walk.example/ns/walk-monitoring/sa/walk-prometheus"],
            "-indexer",
        ),
        scenario="mesh",
    ),
    # batch
    Hop("batch:workers", "batch-workflow", "batch.workers", 9, parameter("workers", "9")),
    Hop("batch:retries", "batch-workflow", "batch.retries", 5, parameter("retries", "5")),
    # flow back
    Hop(
        "flowback:bucket",
        "flowback-workflow",
        "objectStore.bucket",
        "walk-registry",
        flowback_env("FLOWBACK_BUCKET", "walk-registry"),
    ),
    Hop(
        "flowback:bucket",
        "classifier-realtime",
        "canary.registry.bucket",
        "walk-registry",
        Lands(
            "canary fetch-model init container FLOWBACK_BUCKET",
            lambda objects: {
                e["name"]: e.get("value")
                for e in only(objects, "SeldonDeployment")["spec"]["predictors"][1]["componentSpecs"][0]["spec"][
                    "initContainers"
                ][0]["env"]
            }["FLOWBACK_BUCKET"],
            "walk-registry",
        ),
        scenario="canary",
    ),
    Hop(
        "flowback:bucket",
        "feedback-pipeline",
        "monitor.registry.bucket",
        "walk-registry",
        env("monitor", "MONITOR_REGISTRY_BUCKET", "walk-registry"),
    ),
    Hop(
        "flowback:schedule",
        "flowback-workflow",
        "schedule.cron",
        "15 4 * * 1",
        rendered("CronWorkflow", "spec.schedules.0", "15 4 * * 1"),
    ),
    Hop(
        "flowback:timezone",
        "flowback-workflow",
        "schedule.timezone",
        "Europe/Paris",
        rendered("CronWorkflow", "spec.timezone", "Europe/Paris"),
    ),
    Hop(
        "flowback:lookback",
        "flowback-workflow",
        "schedule.lookback",
        "36h",
        rendered("CronWorkflow", "spec.workflowSpec.arguments.parameters.0.value", "-36h"),
    ),
    Hop("flowback:rule", "flowback-workflow", "rule.heldOutMaxDrop", 0.02, rule_json("held_out_max_drop", 0.02)),
    Hop("flowback:rule", "flowback-workflow", "rule.minFeedbackRows", 77, rule_json("min_feedback_rows", 77)),
)


@dataclass(frozen=True)
class Elsewhere:
    """A key that configures no container of ours: setting it to `value` (on top of `base`) must change program
    resource `resource` (its inputs after the platform transforms, its protect flag, or whether it exists)."""

    key: str
    value: Any
    resource: str
    base: Mapping[str, Any] = field(default_factory=dict)
    also: Mapping[str, Any] = field(default_factory=dict)  # keys the value needs beside it (asserted at `path`)
    path: str = ""  # with `also`: the inputs path that must show `value`
    secrets: Mapping[str, str] = field(default_factory=dict)  # optional secrets both runs set (beside TEST_SECRETS)


ELSEWHERE: tuple[Elsewhere, ...] = (
    Elsewhere("platform:labels", {"team": "walk"}, "kafka-cluster"),
    Elsewhere("platform:protect", True, "kafka-cluster"),
    Elsewhere("platform:defaultRequests", {"cpu": "75m", "memory": "96Mi"}, "default-requests"),
    Elsewhere("platform:chartRepository", "oci://charts.walk.example/mirror", "kafka-operator"),
    Elsewhere(
        "platform:chartSources", {"eck-operator": {"repository": "https://charts.walk.example/e"}}, "search-operator"
    ),
    Elsewhere("kafka:operator", "existing", "kafka-operator"),
    Elsewhere("search:operator", "existing", "search-operator"),
    Elsewhere("workflows:operator", "existing", "workflows-argo"),
    Elsewhere("seldon:operator", "existing", "seldon-operator"),
    Elsewhere("kafka:operatorNamespace", "walk-strimzi", "kafka-operator"),
    Elsewhere("kafka:operatorChartVersion", "0.48.0", "kafka-operator"),
    Elsewhere("kafka:version", "4.0.0", "kafka-cluster"),
    Elsewhere("kafka:brokers", 3, "kafka-brokers"),
    Elsewhere("kafka:controllers", 3, "kafka-controllers"),
    Elsewhere("kafka:brokerStorage", "50Gi", "kafka-brokers"),
    Elsewhere("kafka:controllerStorage", "5Gi", "kafka-controllers"),
    Elsewhere("kafka:storageClass", "walk-ssd", "kafka-brokers"),
    Elsewhere("kafka:brokerResources", {"cpu": "750m"}, "kafka-brokers"),
    Elsewhere("kafka:controllerResources", {"cpu": "150m"}, "kafka-controllers"),
    Elsewhere("kafka:replicationFactor", 2, "kafka-cluster", {"kafka:brokers": 2}),
    Elsewhere("kafka:minInsyncReplicas", 2, "kafka-cluster", {"kafka:brokers": 2, "kafka:replicationFactor": 2}),
    Elsewhere("kafka:partitions", 5, "kafka-topic-capture"),
    Elsewhere("kafka:retentionHours", 48, "kafka-topic-capture"),
    Elsewhere("search:indexerPassword", "walk-indexer-password", "search-indexer-user"),
    Elsewhere("search:monitorPassword", "walk-monitor-password", "search-monitor-user"),
    Elsewhere("search:operatorNamespace", "walk-elastic", "search-operator"),
    Elsewhere("search:operatorChartVersion", "3.4.0", "search-operator"),
    Elsewhere("search:version", "8.18.0", "search-elasticsearch"),
    Elsewhere("search:nodes", 3, "search-elasticsearch"),
    Elsewhere("search:storage", "50Gi", "search-elasticsearch"),
    Elsewhere("search:storageClass", "walk-ssd", "search-elasticsearch"),
    Elsewhere("search:resources", {"cpu": "750m"}, "search-elasticsearch"),
    Elsewhere("search:kibana", False, "search-kibana"),
    Elsewhere("search:kibanaReplicas", 2, "search-kibana"),
    Elsewhere("objectstore:namespace", "walk-minio", "objectstore-minio"),
    Elsewhere("objectstore:chartVersion", "5.3.0", "objectstore-minio"),
    Elsewhere("objectstore:imageTag", "RELEASE.2024-11-07T00-52-20Z", "objectstore-minio"),
    Elsewhere("objectstore:mcImageTag", "RELEASE.2024-10-29T15-34-59Z", "objectstore-minio"),
    Elsewhere(
        "objectstore:mode", "distributed", "objectstore-minio", also={"objectstore:replicas": 4}, path="values.mode"
    ),
    Elsewhere(
        "objectstore:replicas", 6, "objectstore-minio", {"objectstore:mode": "distributed", "objectstore:replicas": 4}
    ),
    Elsewhere("objectstore:storage", "50Gi", "objectstore-minio"),
    Elsewhere("objectstore:resources", {"cpu": "250m"}, "objectstore-minio"),
    Elsewhere("objectstore:rootUser", "walk-admin", "objectstore-client-credentials"),
    Elsewhere("objectstore:rootPassword", "walk-root-password", "objectstore-root-credentials"),
    Elsewhere("workflows:namespace", "walk-argo", "workflows-argo"),
    Elsewhere("workflows:chartVersion", "0.47.4", "workflows-argo"),
    Elsewhere("workflows:imageTag", "v3.7.10", "workflows-argo"),
    Elsewhere("workflows:server", False, "workflows-argo"),
    Elsewhere("seldon:namespace", "walk-seldon", "seldon-operator"),
    Elsewhere("seldon:acceptBsl", True, "seldon-operator", {"seldon:version": "1.18.2"}),
    Elsewhere("seldon:certManager", True, "seldon-operator"),
    # the token goes into a Secret of the program's; the chart only learns its name
    Elsewhere("feedback:producerToken", PRODUCER_TOKEN, "feedback-producer-token"),
    Elsewhere(
        "feedback:producerNamespaces",
        ["walk-labelling"],
        "feedback-pipeline",
        secrets={"feedback:producerToken": PRODUCER_TOKEN},
    ),
    Elsewhere("flowback:enabled", False, "flowback-workflow"),
)

SECRETS = {key.name for key in config.KEYS if key.kind == "secret"}


# ---- the tables cover every key ---------------------------------------------------------------------------------


def test_every_stack_key_is_walked_or_placed() -> None:
    declared = {key.name for key in config.KEYS}
    tabled = {hop.key for hop in HOPS} | {entry.key for entry in ELSEWHERE}
    assert not declared - tabled, f"stack keys missing from HOPS/ELSEWHERE (add them): {sorted(declared - tabled)}"
    assert not tabled - declared, (
        f"HOPS/ELSEWHERE name keys infra/config/keys.py does not declare: {sorted(tabled - declared)}"
    )
    walked = {key for overrides in SCENARIOS.values() for key in overrides}
    hop_keys = {hop.key for hop in HOPS} - SECRETS  # secrets come from the harness's test secrets
    assert not hop_keys - walked, f"hops whose key the walk never sets: {sorted(hop_keys - walked)}"
    for key, value in WALK.items():
        assert value != config.KEYS_BY_NAME[key].default, f"WALK sets {key} to its default: it proves nothing"


# ---- stack key -> chart value -> container ----------------------------------------------------------------------


@dataclass
class Walked:
    run: Run
    default: Run
    rendered: dict[str, Objects]


@pytest.fixture(scope="module")
def walked(chart_render: Any) -> dict[str, Walked]:
    default = run_program("dev")
    result = {}
    for name, overrides in SCENARIOS.items():
        run = run_program("dev", overrides=overrides)
        charts = {}
        for chart in run.charts():
            if chart.name in OUR_CHARTS:
                charts[chart.name] = chart_render(
                    Path(chart.inputs["chart"]).name,
                    chart.inputs["values"],
                    release=chart.inputs["name"],
                    namespace=chart.inputs["namespace"],
                )
        result[name] = Walked(run, default, charts)
    return result


def passed_value(run: Run, chart: str, path: str) -> Any:
    inputs = next(r for r in run.charts() if r.name == chart).inputs
    return inputs["namespace"] if path == "@namespace" else at(inputs.get("values") or {}, path)


def hop_id(hop: Hop) -> str:
    return f"{hop.key}->{hop.chart}.{hop.path}" + (f"->{hop.lands.what}" if hop.lands else "")


@pytest.mark.parametrize("hop", HOPS, ids=hop_id)
def test_stack_key_reaches_its_container(hop: Hop, walked: dict[str, Walked]) -> None:
    walk = walked[hop.scenario]
    passed = passed_value(walk.run, hop.chart, hop.path)
    assert passed == hop.passed, f"{hop.key}: the program passes {hop.chart} {hop.path}={passed!r}"
    if hop.key not in SECRETS:  # the default stack gives something else: the key, not a default, set it
        assert passed_value(walk.default, hop.chart, hop.path) != passed, f"{hop.key} did not change {hop.path}"
    if hop.lands is not None:
        landed = hop.lands.read(walk.rendered[hop.chart])
        assert landed == hop.lands.expected, f"{hop.chart} {hop.path} renders {hop.lands.what}={landed!r}"


# ---- keys that configure other people's software ----------------------------------------------------------------


def observed(run: Run, resource: str) -> Any:
    """What the program registered for `resource` after the platform transforms, with its protect flag; None when
    the run registers no such resource. "default-requests" is a container without requests run through them."""
    if resource == "default-requests":
        props: dict[str, Any] = {
            "kind": "Deployment",
            "metadata": {"name": "x", "namespace": "x"},
            "spec": {"template": {"spec": {"containers": [{"name": "x"}]}}},
        }
        return transformed(run, "kafka", "kubernetes:apps/v1:Deployment", "x", props)
    found = [r for r in run.resources if r.name == resource]
    if not found:
        return None
    (registered,) = found
    props = transformed(run, resource, registered.typ, registered.name, copy.deepcopy(registered.inputs))
    return props, bool(run.registration(resource).opts.protect)


def transformed(run: Run, start: str, typ: str, name: str, props: dict[str, Any]) -> dict[str, Any]:
    """`props` after the transforms of `start` and of every component above it, as the engine applies them."""
    registration: Any = run.registration(start)
    while registration is not None:
        for transform in registration.opts.transforms or []:
            result = transform(pulumi.ResourceTransformArgs(True, typ, name, props, pulumi.ResourceOptions()))
            props = result.props if result is not None else props
        registration = run.parent_of(registration.name)
    return props


@pytest.mark.parametrize("entry", ELSEWHERE, ids=lambda entry: f"{entry.key}->{entry.resource}")
def test_other_keys_change_the_resource_they_configure(entry: Elsewhere) -> None:
    if entry.key in SECRETS:
        secrets = {key: f"{entry.key}-before" if key == entry.key else f"{key}-value" for key in SECRETS}
        before = run_program("dev", overrides=dict(entry.base), secrets=secrets)
        after = run_program("dev", overrides=dict(entry.base), secrets={**secrets, entry.key: str(entry.value)})
    elif entry.key == "seldon:acceptBsl":  # a licence gate: the base (a BSL version) is refused without it
        with pytest.raises(config.ConfigError, match="seldon:acceptBsl"):
            run_program("dev", overrides=dict(entry.base))
        before = run_program("dev")
        after = run_program("dev", overrides={**entry.base, entry.key: entry.value})
    else:
        secrets = {**TEST_SECRETS, **entry.secrets}
        before = run_program("dev", overrides=dict(entry.base), secrets=secrets)
        after = run_program("dev", overrides={**entry.base, **entry.also, entry.key: entry.value}, secrets=secrets)
    if entry.path:
        assert at(after.named(entry.resource).inputs, entry.path) == entry.value, f"{entry.key} -> {entry.path}"
    assert observed(after, entry.resource) is not None or observed(before, entry.resource) is not None
    assert observed(after, entry.resource) != observed(before, entry.resource), (
        f"{entry.key}={entry.value!r} does not change {entry.resource}"
    )
