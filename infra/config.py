"""Typed, validated stack configuration: the only module that reads `pulumi.Config`.

Every key the program understands is declared once in `KEYS` (name, type, default, description). `load()` reads
the stack config, rejects unknown keys in our namespaces, parses and range-checks every value, applies the
cross-key rules (replication factor at most the broker count, Seldon version >= 1.3.0, BSL opt-in, ...) and
returns a frozen `StackConfig`. All problems are reported together, each naming the full key, the bad value,
what is allowed and how to fix it, before the first resource is created.

`python -m infra.config regenerate` rewrites the JSON schema of the stack files (`stacks/config.schema.json`) and
the key table of `docs/deploy.md` from `KEYS` (`schema` and `table` print them), so code, schema and docs cannot
drift apart (a test compares them).
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

# Namespaces this program owns: every key in them must be declared in KEYS.
NAMESPACES = ("platform", "kafka", "search", "objectstore", "workflows", "seldon", "classifier", "feedback", "batch")

MIN_SELDON = (1, 3, 0)  # first release with the Kafka server type (serverType: kafka) the streaming classifier uses
BSL_FROM = (1, 18, 0)  # first release under the Business Source License 1.1 (1.17.1 is the last Apache-2.0 one)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_KAFKA_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_ARGO_TAG = re.compile(r"^v\d+\.\d+\.\d+$")
_MINIO_TAG = re.compile(r"^RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ConfigError(pulumi.RunError):
    """The stack configuration is invalid; the message lists every problem with its key and fix."""


@dataclass(frozen=True)
class Key:
    """One stack config key: `name` is "<namespace>:<key>", `kind` one of str|int|float|bool|object|list|secret."""

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


_RES = ("cpu", "memory")
_TOPIC = ("name", "partitions", "retentionHours")
_IMAGE = ("repository", "tag", "digest")

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
        fields=_RES,
    ),
    # kafka
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
        fields=_RES,
    ),
    _k(
        "kafka:controllerResources",
        "object",
        {"cpu": "100m", "memory": "512Mi"},
        "Requests of each controller (memory is also the limit).",
        fields=_RES,
    ),
    _k("kafka:replicationFactor", "int", 1, "Replicas of every topic (at most kafka:brokers)."),
    _k("kafka:minInsyncReplicas", "int", 1, "min.insync.replicas of every topic (at most kafka:replicationFactor)."),
    _k("kafka:partitions", "int", 3, "Default partitions of each topic."),
    _k("kafka:retentionHours", "int", 24, "Default retention of each topic, in hours."),
    _k(
        "kafka:topics",
        "object",
        {},
        "Per-topic overrides keyed by role (modelInput, modelOutput, capture, "
        "deadLetter), each with optional name, partitions, retentionHours.",
        fields=("modelInput", "modelOutput", "capture", "deadLetter"),
    ),
    _k("kafka:tls", "bool", False, "Serve clients on a TLS listener (port 9093) instead of plain text (9092)."),
    _k("kafka:authentication", "str", "none", "Client authentication on the listener.", enum=("none", "scram-sha-512")),
    _k(
        "kafka:feedbackPassword",
        "secret",
        None,
        "SCRAM password of the KafkaUser shared by the collector and the "
        "indexer (required with kafka:authentication=scram-sha-512).",
    ),
    _k(
        "kafka:executorPassword",
        "secret",
        None,
        "SCRAM password of the Seldon executors' KafkaUser (required with kafka:authentication=scram-sha-512).",
    ),
    # search
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
        fields=_RES,
    ),
    _k("search:tls", "bool", False, "Serve Elasticsearch and Kibana over HTTPS with ECK's self-signed certificates."),
    _k("search:kibana", "bool", True, "Deploy Kibana next to Elasticsearch."),
    _k("search:kibanaReplicas", "int", 1, "Kibana replicas."),
    # object store
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
        fields=_RES,
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
    _k("workflows:namespace", "str", "argo", "Namespace of the Argo Workflows controller and server."),
    _k("workflows:chartVersion", "str", "0.47.5", "argo-workflows chart version."),
    _k("workflows:imageTag", "str", "v3.7.11", "Argo Workflows image tag (controller, server, executor)."),
    _k("workflows:server", "bool", True, "Deploy the Argo Server (UI and API)."),
    # seldon
    _k("seldon:namespace", "str", "seldon-system", "Namespace of the Seldon Core operator."),
    _k(
        "seldon:version",
        "str",
        "1.17.1",
        "Seldon Core operator chart version (= operator and executor image tag); >= 1.3.0.",
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
        fields=_IMAGE,
    ),
    _k("classifier:replicas", "int", 1, "Pods of the real-time (REST/gRPC) SeldonDeployment."),
    _k("classifier:streaming", "bool", True, "Also deploy the streaming (serverType kafka) SeldonDeployment."),
    _k("classifier:streamingReplicas", "int", 1, "Pods of the streaming SeldonDeployment."),
    _k("classifier:streamingWorkers", "int", 0, "Executor Kafka workers (KAFKA_WORKERS); 0 keeps Seldon's default."),
    _k(
        "classifier:loggerMode", "str", "all", "What the executor captures.", enum=("all", "request", "response", "off")
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
        fields=_RES,
    ),
    # feedback pipeline
    _k(
        "feedback:image",
        "object",
        {"repository": "ghcr.io/seldon-feedback/feedback", "tag": "0.1.0"},
        "Collector and indexer image: repository plus a fixed tag or a sha256 digest.",
        fields=_IMAGE,
    ),
    _k("feedback:collectorReplicas", "int", 1, "Collector pods."),
    _k("feedback:indexerReplicas", "int", 1, "Indexer pods (at most the capture topic's partitions)."),
    _k(
        "feedback:index",
        "str",
        "seldon-feedback",
        "Search index (or alias) the indexer writes; documents are found with the pattern <index>*.",
    ),
    _k("feedback:samplingRate", "float", 1.0, "Fraction of request ids the collector keeps (0 to 1)."),
    # batch
    _k("batch:workers", "int", 4, "Parallel seldon-batch-processor workers."),
    _k("batch:retries", "int", 3, "Retries of each batch request."),
)

KEYS_BY_NAME: dict[str, Key] = {key.name: key for key in KEYS}

# Keys whose names look like credentials: they must be declared as `secret` (a test checks the stack files too).
SECRET_NAME = re.compile(r"(password|secret|token|credential|apikey|accesskey)", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------------------------
# Typed settings, one per component (plain values; components add the Outputs they are wired to).


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Container requests: `cpu` in cores or millicores ("250m"), `memory` with a binary suffix ("1Gi")."""

    cpu: str
    memory: str

    def requests(self) -> dict[str, str]:
        return {"cpu": self.cpu, "memory": self.memory}


@dataclass(frozen=True, kw_only=True)
class Image:
    """A pinned image: `repository` plus a fixed `tag` or a `digest` ("sha256:<64 hex>")."""

    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"


@dataclass(frozen=True, kw_only=True)
class Topic:
    """A Kafka topic: its `name`, `partitions` and retention in hours."""

    name: str
    partitions: int
    retention_hours: int

    @property
    def retention_ms(self) -> int:
        return self.retention_hours * 3_600_000


@dataclass(frozen=True, kw_only=True)
class PlatformSettings:
    stack: str
    app_namespace: str
    labels: Mapping[str, str]
    protect: bool
    pod_disruption_budgets: bool
    default_requests: Resources


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    operator_namespace: str
    operator_chart_version: str
    version: str
    cluster_name: str
    brokers: int
    controllers: int
    broker_storage: str
    controller_storage: str
    storage_class: str
    broker_resources: Resources
    controller_resources: Resources
    replication_factor: int
    min_insync_replicas: int
    model_input: Topic
    model_output: Topic
    capture: Topic
    dead_letter: Topic
    tls: bool
    scram: bool
    # SCRAM passwords per client role ("feedback": collector and indexer, "executor"); empty unless scram.
    passwords: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)

    @property
    def topics(self) -> dict[str, Topic]:
        """Every topic by role."""
        return {
            "modelInput": self.model_input,
            "modelOutput": self.model_output,
            "capture": self.capture,
            "deadLetter": self.dead_letter,
        }

    @property
    def listener_port(self) -> int:
        return 9093 if self.tls else 9092


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    operator_namespace: str
    operator_chart_version: str
    version: str
    cluster_name: str
    nodes: int
    storage: str
    storage_class: str
    resources: Resources
    tls: bool
    kibana: bool
    kibana_replicas: int


@dataclass(frozen=True, kw_only=True)
class ObjectStoreSettings:
    namespace: str
    chart_version: str
    image_tag: str
    mc_image_tag: str
    mode: str
    replicas: int
    storage: str
    resources: Resources
    bucket: str
    root_user: str
    root_password: pulumi.Output[str]


@dataclass(frozen=True, kw_only=True)
class WorkflowsSettings:
    namespace: str
    chart_version: str
    image_tag: str
    server: bool


@dataclass(frozen=True, kw_only=True)
class SeldonSettings:
    namespace: str
    version: str
    accept_bsl: bool
    cert_manager: bool
    logger_work_queue_size: int
    logger_write_timeout_ms: int

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return _version_tuple(self.version) or (0, 0, 0)


@dataclass(frozen=True, kw_only=True)
class ClassifierSettings:
    image: Image
    replicas: int
    streaming: bool
    streaming_replicas: int
    streaming_workers: int
    logger_mode: str
    capture_sink: str
    resources: Resources


@dataclass(frozen=True, kw_only=True)
class FeedbackSettings:
    image: Image
    collector_replicas: int
    indexer_replicas: int
    index: str
    sampling_rate: float


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    workers: int
    retries: int


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """Everything the program needs, validated."""

    platform: PlatformSettings
    kafka: KafkaSettings
    search: SearchSettings
    objectstore: ObjectStoreSettings
    workflows: WorkflowsSettings
    seldon: SeldonSettings
    classifier: ClassifierSettings
    feedback: FeedbackSettings
    batch: BatchSettings


# ----------------------------------------------------------------------------------------------------------------
# Reading


def _version_tuple(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _raw_config() -> dict[str, Any]:
    """Every config key the engine gave us (mocks set them through `set_all_config`)."""
    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return {_normalise_key(key): value for key, value in raw.items()}


def _normalise_key(key: str) -> str:
    # The engine may pass "<namespace>:config:<name>"; the CLI shows "<namespace>:<name>".
    parts = key.split(":")
    return f"{parts[0]}:{parts[2]}" if len(parts) == 3 and parts[1] == "config" else key


class _Reader:
    """Parses raw config strings for the keys in KEYS and collects every problem."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: list[str] = []
        self._configs: dict[str, pulumi.Config] = {}

    def error(self, message: str) -> None:
        self.errors.append(message)

    def check_unknown(self) -> None:
        for name in sorted(self.raw):
            namespace = name.split(":", 1)[0]
            if namespace in NAMESPACES and name not in KEYS_BY_NAME:
                close = difflib.get_close_matches(name, KEYS_BY_NAME, n=1)
                hint = (
                    f"did you mean {close[0]}?"
                    if close
                    else f"known {namespace}:* keys: "
                    + ", ".join(k.name for k in KEYS if k.name.startswith(namespace + ":"))
                )
                self.error(f"{name} is not a known key ({hint}); remove it with `pulumi config rm {name}`")

    def _text(self, key: Key) -> str | None:
        namespace, short = key.name.split(":", 1)
        config = self._configs.setdefault(namespace, pulumi.Config(namespace))
        return config.get(short)

    def get(self, name: str) -> Any:
        key = KEYS_BY_NAME[name]
        text = self._text(key)
        if text is None:
            return key.default
        parse: Callable[[Key, str], Any] = getattr(self, f"_parse_{key.kind}")
        try:
            return parse(key, text)
        except ValueError as exc:
            self.error(f"{key.name}={text!r} {exc}")
            return key.default

    def secret(self, name: str, *, required: bool, why: str) -> pulumi.Output[str] | None:
        key = KEYS_BY_NAME[name]
        namespace, short = key.name.split(":", 1)
        config = self._configs.setdefault(namespace, pulumi.Config(namespace))
        if config.get(short) is None:
            if required:
                self.error(f"{key.name} is required {why}; set it with `pulumi config set --secret {key.name} <value>`")
            return None
        full_key = config.full_key(short)
        if not (runtime_config.is_config_secret(full_key) or full_key in runtime_config.get_config_secret_keys_env()):
            self.error(
                f"{key.name} is stored in plain text; store it encrypted with "
                f"`pulumi config set --secret {key.name} <value>`"
            )
        return config.require_secret(short)

    @staticmethod
    def _parse_str(key: Key, text: str) -> str:
        if key.enum and text not in key.enum:
            raise ValueError(f"is not allowed; use one of {', '.join(key.enum)}")
        return text

    @staticmethod
    def _parse_int(key: Key, text: str) -> int:
        if not re.fullmatch(r"-?\d+", text.strip()):
            raise ValueError("is not an integer; write a whole number such as 3")
        return int(text)

    @staticmethod
    def _parse_float(key: Key, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("is not a number; write a decimal such as 0.5") from None

    @staticmethod
    def _parse_bool(key: Key, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError("is not a boolean; use true or false")
        return lowered == "true"

    @staticmethod
    def _parse_object(key: Key, text: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("is not an object; write a YAML mapping in the stack file") from None
        if not isinstance(value, dict):
            raise ValueError("is not an object; write a YAML mapping in the stack file")
        if key.fields:
            unknown = sorted(set(value) - set(key.fields))
            if unknown:
                raise ValueError(f"has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(key.fields)}")
        elif not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError("must map strings to strings (quote numbers and booleans)")
        return value


def _resources(reader: _Reader, name: str) -> Resources:
    value = {**KEYS_BY_NAME[name].default, **reader.get(name)}
    for part in _RES:
        text = value.get(part)
        if not isinstance(text, str) or not _QUANTITY.match(text):
            reader.error(f'{name}.{part}={text!r} is not a Kubernetes quantity; write e.g. "500m" or "1Gi"')
    return Resources(cpu=str(value.get("cpu")), memory=str(value.get("memory")))


def _image(reader: _Reader, name: str) -> Image:
    value = {**KEYS_BY_NAME[name].default, **reader.get(name)}
    repository, tag, digest = ("" if value.get(part) is None else str(value[part]) for part in _IMAGE)
    if not repository or ":" in repository.rsplit("/", 1)[-1] or "@" in repository:
        reader.error(f"{name}.repository={repository!r} must be an image name without tag or digest")
    if digest:
        if not _DIGEST.match(digest):
            reader.error(f"{name}.digest={digest!r} is not a digest; write sha256:<64 hex characters>")
    elif not tag or tag == "latest" or not _IMAGE_TAG.match(tag):
        reader.error(f"{name}.tag={tag!r} is not a fixed tag; pin a version such as 0.1.0 (never latest) or a digest")
    return Image(repository=repository, tag="" if digest else tag, digest=digest)


def _topic(reader: _Reader, role: str, default_name: str, partitions: int, retention: int) -> Topic:
    overrides = reader.get("kafka:topics").get(role)
    if overrides is None:
        overrides = {}
    where = f"kafka:topics.{role}"
    if not isinstance(overrides, dict):
        reader.error(f"{where}={overrides!r} is not an object; allowed fields: {', '.join(_TOPIC)}")
        overrides = {}
    for unknown in sorted(set(overrides) - set(_TOPIC)):
        reader.error(f"{where}.{unknown} is not a known field; allowed: {', '.join(_TOPIC)}")
    name = overrides.get("name", default_name)
    if not isinstance(name, str) or not _KAFKA_TOPIC.match(name) or name in (".", ".."):
        reader.error(f"{where}.name={name!r} is not a valid Kafka topic name (letters, digits, '.', '_', '-')")
    topic_partitions = overrides.get("partitions", partitions)
    if not isinstance(topic_partitions, int) or topic_partitions < 1:
        reader.error(f"{where}.partitions={topic_partitions!r} must be a whole number >= 1")
    topic_retention = overrides.get("retentionHours", retention)
    if not isinstance(topic_retention, int) or topic_retention < 1:
        reader.error(f"{where}.retentionHours={topic_retention!r} must be a whole number >= 1")
    return Topic(name=str(name), partitions=int(topic_partitions), retention_hours=int(topic_retention))


def _at_least(reader: _Reader, name: str, value: int, minimum: int) -> None:
    if value < minimum:
        reader.error(f"{name}={value} must be at least {minimum}")


def _dns_label(reader: _Reader, name: str, value: str, max_len: int = 63) -> None:
    if not _DNS_LABEL.match(value) or len(value) > max_len:
        reader.error(f"{name}={value!r} is not a DNS label (lower-case letters, digits, '-', at most {max_len})")


def _version(reader: _Reader, name: str, value: str) -> tuple[int, int, int]:
    parsed = _version_tuple(value)
    if parsed is None:
        reader.error(f"{name}={value!r} is not a version; write MAJOR.MINOR.PATCH such as 1.17.1")
        return (0, 0, 0)
    return parsed


def _check_pins_and_names(reader: _Reader) -> None:
    """Pins that must be exact versions, namespaces that must be DNS labels, sizes that must be quantities."""
    get = reader.get
    for name in ("search:operatorChartVersion", "objectstore:chartVersion", "workflows:chartVersion"):
        _version(reader, name, get(name))
    if not _ARGO_TAG.match(get("workflows:imageTag")):
        reader.error(f"workflows:imageTag={get('workflows:imageTag')!r} is not a release tag; write e.g. v3.7.11")
    for name in ("objectstore:imageTag", "objectstore:mcImageTag"):
        if not _MINIO_TAG.match(get(name)):
            reader.error(f"{name}={get(name)!r} is not a MinIO release tag; write e.g. RELEASE.2024-12-18T13-15-44Z")
    for name in (
        "kafka:operatorNamespace",
        "search:operatorNamespace",
        "objectstore:namespace",
        "workflows:namespace",
        "seldon:namespace",
    ):
        _dns_label(reader, name, get(name))
    for name in ("search:storage", "objectstore:storage"):
        if not _QUANTITY.match(get(name)):
            reader.error(f'{name}={get(name)!r} is not a Kubernetes quantity; write e.g. "10Gi"')
    _at_least(reader, "search:kibanaReplicas", get("search:kibanaReplicas"), 1)
    if get("kafka:operatorNamespace") == get("platform:appNamespace"):
        reader.error(
            f"kafka:operatorNamespace={get('kafka:operatorNamespace')} equals platform:appNamespace: the Strimzi chart "
            f"watches the application namespace and would create its RoleBindings twice; use a separate namespace"
        )


def _fmt(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


def load(stack: str | None = None) -> StackConfig:
    """Reads and validates the whole stack config; raises ConfigError listing every problem."""
    reader = _Reader(_raw_config())
    reader.check_unknown()
    get = reader.get

    # platform
    app_namespace = get("platform:appNamespace")
    _dns_label(reader, "platform:appNamespace", app_namespace)
    labels = get("platform:labels")
    pdb = get("platform:podDisruptionBudgets")
    platform = PlatformSettings(
        stack=stack or pulumi.get_stack(),
        app_namespace=app_namespace,
        labels=labels,
        protect=get("platform:protect"),
        pod_disruption_budgets=pdb,
        default_requests=_resources(reader, "platform:defaultRequests"),
    )

    # kafka
    brokers, controllers = get("kafka:brokers"), get("kafka:controllers")
    replication, min_isr = get("kafka:replicationFactor"), get("kafka:minInsyncReplicas")
    partitions, retention = get("kafka:partitions"), get("kafka:retentionHours")
    _at_least(reader, "kafka:brokers", brokers, 1)
    _at_least(reader, "kafka:replicationFactor", replication, 1)
    _at_least(reader, "kafka:minInsyncReplicas", min_isr, 1)
    _at_least(reader, "kafka:partitions", partitions, 1)
    _at_least(reader, "kafka:retentionHours", retention, 1)
    if controllers not in (1, 3, 5):
        reader.error(f"kafka:controllers={controllers} must be 1, 3 or 5 (a KRaft quorum needs an odd size)")
    if replication > brokers:
        reader.error(
            f"kafka:replicationFactor={replication} exceeds kafka:brokers={brokers}; "
            f"lower the replication factor or add brokers"
        )
    if min_isr > replication:
        reader.error(
            f"kafka:minInsyncReplicas={min_isr} exceeds kafka:replicationFactor={replication}; "
            f"producers with acks=all could never write"
        )
    for name in ("kafka:operatorChartVersion", "kafka:version"):
        _version(reader, name, get(name))
    cluster_name = get("kafka:clusterName")
    _dns_label(reader, "kafka:clusterName", cluster_name, 40)
    for name in ("kafka:brokerStorage", "kafka:controllerStorage"):
        if not _QUANTITY.match(get(name)):
            reader.error(f'{name}={get(name)!r} is not a Kubernetes quantity; write e.g. "10Gi"')
    tls = get("kafka:tls")
    scram = get("kafka:authentication") == "scram-sha-512"
    if scram and not tls:
        reader.error(
            "kafka:authentication=scram-sha-512 needs kafka:tls=true: the Seldon executor speaks SASL only over TLS "
            "(KAFKA_SECURITY_PROTOCOL=sasl_ssl); set kafka:tls to true"
        )
    why = "when kafka:authentication=scram-sha-512"
    passwords = {
        role: reader.secret(f"kafka:{role}Password", required=scram, why=why) for role in ("feedback", "executor")
    }
    topics = {
        "modelInput": _topic(reader, "modelInput", "model_input", partitions, retention),
        "modelOutput": _topic(reader, "modelOutput", "model_output", partitions, retention),
        "capture": _topic(reader, "capture", "seldon-capture", partitions, retention),
        "deadLetter": _topic(reader, "deadLetter", "seldon-capture-dlq", partitions, retention),
    }
    names = [topic.name for topic in topics.values()]
    if len(set(names)) != len(names):
        reader.error(f"kafka:topics gives two roles the same topic name ({', '.join(names)}); use distinct names")
    kafka = KafkaSettings(
        operator_namespace=get("kafka:operatorNamespace"),
        operator_chart_version=get("kafka:operatorChartVersion"),
        version=get("kafka:version"),
        cluster_name=cluster_name,
        brokers=brokers,
        controllers=controllers,
        broker_storage=get("kafka:brokerStorage"),
        controller_storage=get("kafka:controllerStorage"),
        storage_class=get("kafka:storageClass"),
        broker_resources=_resources(reader, "kafka:brokerResources"),
        controller_resources=_resources(reader, "kafka:controllerResources"),
        replication_factor=replication,
        min_insync_replicas=min_isr,
        model_input=topics["modelInput"],
        model_output=topics["modelOutput"],
        capture=topics["capture"],
        dead_letter=topics["deadLetter"],
        tls=tls,
        scram=scram,
        passwords={role: value for role, value in passwords.items() if scram and value is not None},
    )

    # search
    search_version = _version(reader, "search:version", get("search:version"))
    if search_version[0] != 8:
        reader.error(
            f"search:version={get('search:version')} is not an 8.x release; the indexer uses the elasticsearch 8 "
            f"client, which supports Elasticsearch 8 only"
        )
    _version(reader, "search:operatorChartVersion", get("search:operatorChartVersion"))
    nodes = get("search:nodes")
    _at_least(reader, "search:nodes", nodes, 1)
    _dns_label(reader, "search:clusterName", get("search:clusterName"), 36)
    search = SearchSettings(
        operator_namespace=get("search:operatorNamespace"),
        operator_chart_version=get("search:operatorChartVersion"),
        version=get("search:version"),
        cluster_name=get("search:clusterName"),
        nodes=nodes,
        storage=get("search:storage"),
        storage_class=get("search:storageClass"),
        resources=_resources(reader, "search:resources"),
        tls=get("search:tls"),
        kibana=get("search:kibana"),
        kibana_replicas=get("search:kibanaReplicas"),
    )

    # object store
    mode, minio_replicas = get("objectstore:mode"), get("objectstore:replicas")
    if mode == "standalone" and minio_replicas != 1:
        reader.error(
            f"objectstore:replicas={minio_replicas} needs objectstore:mode=distributed (standalone runs one pod)"
        )
    if mode == "distributed" and minio_replicas < 4:
        reader.error(f"objectstore:replicas={minio_replicas} is too few for objectstore:mode=distributed (at least 4)")
    bucket = get("objectstore:bucket")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        reader.error(f"objectstore:bucket={bucket!r} is not a valid S3 bucket name (3-63 lower-case letters, digits)")
    root_password = reader.secret("objectstore:rootPassword", required=True, why="(MinIO root credentials)")
    objectstore = ObjectStoreSettings(
        namespace=get("objectstore:namespace"),
        chart_version=get("objectstore:chartVersion"),
        image_tag=get("objectstore:imageTag"),
        mc_image_tag=get("objectstore:mcImageTag"),
        mode=mode,
        replicas=minio_replicas,
        storage=get("objectstore:storage"),
        resources=_resources(reader, "objectstore:resources"),
        bucket=bucket,
        root_user=get("objectstore:rootUser"),
        root_password=root_password if root_password is not None else pulumi.Output.secret(""),
    )

    # workflows
    workflows = WorkflowsSettings(
        namespace=get("workflows:namespace"),
        chart_version=get("workflows:chartVersion"),
        image_tag=get("workflows:imageTag"),
        server=get("workflows:server"),
    )

    # seldon
    seldon_version_text = get("seldon:version")
    seldon_version = _version(reader, "seldon:version", seldon_version_text)
    accept_bsl = get("seldon:acceptBsl")
    if seldon_version != (0, 0, 0) and seldon_version < MIN_SELDON:
        reader.error(
            f"seldon:version={seldon_version_text} is older than {_fmt(MIN_SELDON)}: the streaming classifier needs "
            f"the executor's Kafka server type (serverType: kafka), first released in Seldon Core 1.3.0; "
            f"use 1.17.1 (the last Apache-2.0 release)"
        )
    if seldon_version >= BSL_FROM and not accept_bsl:
        reader.error(
            f"seldon:version={seldon_version_text} is licensed under the Business Source License 1.1 (Seldon Core "
            f">= 1.18.0; production use needs a licence from Seldon); set seldon:acceptBsl to true to accept it, "
            f"or use 1.17.1 (the last Apache-2.0 release)"
        )
    minimums = [
        (tls, (1, 13, 0), "kafka:tls=true", "TLS to Kafka (KAFKA_SECURITY_PROTOCOL=ssl)"),
        (scram, (1, 15, 0), "kafka:authentication=scram-sha-512", "SASL to Kafka"),
    ]
    capture_sink = get("classifier:captureSink")
    minimums.append((capture_sink == "kafka", (1, 11, 0), "classifier:captureSink=kafka", "direct Kafka logging"))
    for active, minimum, setting, feature in minimums:
        if active and seldon_version != (0, 0, 0) and seldon_version < minimum:
            reader.error(
                f"{setting} needs seldon:version >= {_fmt(minimum)} ({feature} arrived in the executor then); "
                f"seldon:version={seldon_version_text}"
            )
    seldon = SeldonSettings(
        namespace=get("seldon:namespace"),
        version=seldon_version_text,
        accept_bsl=accept_bsl,
        cert_manager=get("seldon:certManager"),
        logger_work_queue_size=get("seldon:loggerWorkQueueSize"),
        logger_write_timeout_ms=get("seldon:loggerWriteTimeoutMs"),
    )
    _at_least(reader, "seldon:loggerWorkQueueSize", seldon.logger_work_queue_size, 1)
    _at_least(reader, "seldon:loggerWriteTimeoutMs", seldon.logger_write_timeout_ms, 0)

    # classifier
    classifier = ClassifierSettings(
        image=_image(reader, "classifier:image"),
        replicas=get("classifier:replicas"),
        streaming=get("classifier:streaming"),
        streaming_replicas=get("classifier:streamingReplicas"),
        streaming_workers=get("classifier:streamingWorkers"),
        logger_mode=get("classifier:loggerMode"),
        capture_sink=capture_sink,
        resources=_resources(reader, "classifier:resources"),
    )
    _at_least(reader, "classifier:replicas", classifier.replicas, 1)
    _at_least(reader, "classifier:streamingReplicas", classifier.streaming_replicas, 1)
    _at_least(reader, "classifier:streamingWorkers", classifier.streaming_workers, 0)

    # feedback
    feedback = FeedbackSettings(
        image=_image(reader, "feedback:image"),
        collector_replicas=get("feedback:collectorReplicas"),
        indexer_replicas=get("feedback:indexerReplicas"),
        index=get("feedback:index"),
        sampling_rate=get("feedback:samplingRate"),
    )
    _at_least(reader, "feedback:collectorReplicas", feedback.collector_replicas, 1)
    _at_least(reader, "feedback:indexerReplicas", feedback.indexer_replicas, 1)
    if not 0.0 <= feedback.sampling_rate <= 1.0:
        reader.error(f"feedback:samplingRate={feedback.sampling_rate} must be between 0 and 1")
    if feedback.indexer_replicas > kafka.capture.partitions:
        reader.error(
            f"feedback:indexerReplicas={feedback.indexer_replicas} exceeds the capture topic's partitions "
            f"({kafka.capture.partitions}); extra indexers would sit idle: raise kafka:partitions or lower the replicas"
        )
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", feedback.index) or len(feedback.index) > 200:
        reader.error(f"feedback:index={feedback.index!r} is not a valid index name (lower-case, no spaces or * ? /)")

    # pod disruption budgets only make sense with room to evict one pod
    if pdb:
        for name, replicas in (
            ("feedback:collectorReplicas", feedback.collector_replicas),
            ("feedback:indexerReplicas", feedback.indexer_replicas),
            ("classifier:replicas", classifier.replicas),
            ("kafka:brokers", brokers),
            ("search:nodes", nodes),
        ):
            if replicas < 2:
                reader.error(
                    f"platform:podDisruptionBudgets=true needs {name} >= 2 (with {replicas} a budget would block "
                    f"every node drain); raise {name} or turn budgets off"
                )

    _check_pins_and_names(reader)

    batch = BatchSettings(workers=get("batch:workers"), retries=get("batch:retries"))
    _at_least(reader, "batch:workers", batch.workers, 1)
    _at_least(reader, "batch:retries", batch.retries, 0)

    if reader.errors:
        raise ConfigError(
            f"stack configuration has {len(reader.errors)} problem(s):\n" + "\n".join(f"  - {e}" for e in reader.errors)
        )
    return StackConfig(
        platform=platform,
        kafka=kafka,
        search=search,
        objectstore=objectstore,
        workflows=workflows,
        seldon=seldon,
        classifier=classifier,
        feedback=feedback,
        batch=batch,
    )


# ----------------------------------------------------------------------------------------------------------------
# Schema and docs generated from KEYS


_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "object": "object"}


def json_schema() -> dict[str, Any]:
    """The JSON schema of `stacks/Pulumi.<env>.yaml` (draft-07), generated from KEYS."""
    properties: dict[str, Any] = {}
    for key in KEYS:
        if key.kind == "secret":
            prop: dict[str, Any] = {
                "type": "object",
                "required": ["secure"],
                "properties": {"secure": {"type": "string"}},
                "additionalProperties": False,
            }
        else:
            prop = {"type": _JSON_TYPES[key.kind]}
            if key.default is not None:
                prop["default"] = key.default
            if key.enum:
                prop["enum"] = list(key.enum)
            if key.kind == "object" and key.fields:
                prop["propertyNames"] = {"enum": list(key.fields)}
        prop["description"] = key.doc
        properties[key.name] = prop
    namespaces = "|".join(NAMESPACES)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "seldon-feedback stack file",
        "description": "Generated by `python -m infra.config schema` from infra/config.py KEYS; do not edit by hand.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "propertyNames": {"anyOf": [{"enum": list(properties)}, {"not": {"pattern": f"^({namespaces}):"}}]},
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "required": ["config"],
    }


def markdown_table() -> str:
    """A Markdown table of every key: name, type, default, description."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key in KEYS:
        default = "(required when used)" if key.kind == "secret" else json.dumps(key.default)
        kind = key.kind + (f" ({'/'.join(key.enum)})" if key.enum else "")
        lines.append(f"| `{key.name}` | {kind} | `{default}` | {key.doc} |")
    return "\n".join(lines)


def regenerate(repo_root: Path) -> None:
    """Rewrites stacks/config.schema.json and the table between the config-table markers of docs/deploy.md."""
    (repo_root / "stacks" / "config.schema.json").write_text(json.dumps(json_schema(), indent=2) + "\n")
    docs = repo_root / "docs" / "deploy.md"
    text = docs.read_text()
    start, end = "<!-- config-table:start -->\n", "<!-- config-table:end -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    docs.write_text(head + start + markdown_table() + "\n" + end + tail)


if __name__ == "__main__":  # pragma: no cover - developer tool
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "schema":
        sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
    elif command == "table":
        sys.stdout.write(markdown_table() + "\n")
    elif command == "regenerate":
        regenerate(Path(__file__).resolve().parent.parent)
    else:
        sys.stderr.write("usage: python -m infra.config schema|table|regenerate\n")
        raise SystemExit(2)
