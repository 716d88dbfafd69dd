"""The typed, validated settings `load()` returns: plain frozen values, one class per component (components add
the Outputs they are wired to)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def version_tuple(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of "MAJOR.MINOR.PATCH", else None."""
    match = _VERSION.match(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


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
class ChartSource:
    """Where an upstream chart comes from: a Helm repository URL (https://), an OCI registry path (oci://, the chart
    is `<repository>/<chart>`), or a local chart archive (a .tgz path); exactly one of `repository` and `archive`."""

    repository: str = ""
    archive: str = ""

    @property
    def oci(self) -> bool:
        return self.repository.startswith("oci://")


@dataclass(frozen=True, kw_only=True)
class Mirrors:
    """Where charts and images come from (platform:chartRepository, platform:chartSources, platform:imageRegistry):
    for air-gapped clusters and mirrors; empty means the upstream repositories and registries."""

    chart_sources: Mapping[str, ChartSource] = field(default_factory=dict)  # by chart name
    image_registry: str = ""  # "" keeps each image's own registry

    def chart_source(self, chart: str, default_repository: str) -> ChartSource:
        """The source of upstream chart `chart`: its platform:chartSources entry, else `default_repository`."""
        source = self.chart_sources.get(chart)
        return ChartSource(repository=default_repository) if source is None else source

    def image(self, reference: str) -> str:
        """`reference` ("[registry/]path[:tag]") with its registry replaced by platform:imageRegistry, if set.

        The registry is the first path element when it looks like a host (has a "." or ":" or is localhost); an
        image without one is on Docker Hub ("seldonio/x" is "docker.io/seldonio/x")."""
        if not self.image_registry:
            return reference
        first, _, rest = reference.partition("/")
        has_registry = bool(rest) and ("." in first or ":" in first or first == "localhost")
        path = rest if has_registry else reference
        return f"{self.image_registry.rstrip('/')}/{path}"


@dataclass(frozen=True, kw_only=True)
class PlatformSettings:
    stack: str
    app_namespace: str
    labels: Mapping[str, str]
    protect: bool
    pod_disruption_budgets: bool
    default_requests: Resources
    mirrors: Mirrors = field(default_factory=Mirrors)
    mesh: str = "none"  # "none" or "istio" (platform:mesh)
    mesh_trust_domain: str = "cluster.local"


@dataclass(frozen=True, kw_only=True)
class ExistingKafka:
    """A Kafka cluster the platform uses but does not make (kafka:existing)."""

    bootstrap: str
    tls_secret: str = ""  # Secret with the cluster CA (key ca.crt); "" for a plain-text listener
    sasl_secret: str = ""  # Secret with keys username and password; "" without authentication
    sasl_mechanism: str = ""
    # a client's own Secret (keys username and password) by client role (collector, indexer, monitor, executor,
    # smoke); a role not listed uses sasl_secret
    client_secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ExistingSearch:
    """A search engine the platform uses but does not make (search:existing)."""

    url: str
    engine: str
    username: str  # the admin user of the setup Job (and the Kibana import)
    secret: str
    secret_key: str  # the password's key in every Secret below
    indexer_username: str
    indexer_secret: str
    monitor_username: str
    monitor_secret: str
    ca_secret: str = ""


@dataclass(frozen=True, kw_only=True)
class ExistingObjectStore:
    """An S3 endpoint the platform uses but does not make (objectstore:existing)."""

    endpoint: str
    secret: str  # Secret with keys accessKey and secretKey


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    operator: str  # "install" or "existing" (kafka:operator)
    existing: ExistingKafka | None
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
    scram: bool  # SASL/SCRAM-SHA-512 logins (kafka:authentication=scram-sha-512, or kafka:existing.saslSecret)
    tls_client_auth: bool = False  # client certificates (kafka:authentication=tls)

    @property
    def authorization(self) -> bool:
        """Strimzi simple authorization with one KafkaUser per client: whenever clients authenticate to a cluster
        the platform makes (without authentication every client is anonymous and could not be told apart)."""
        return self.existing is None and (self.scram or self.tls_client_auth)

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
    operator: str
    existing: ExistingSearch | None
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
    indexer_password: pulumi.Output[str] | None = None  # the file-realm users ECK creates (None with search:existing)
    monitor_password: pulumi.Output[str] | None = None


@dataclass(frozen=True, kw_only=True)
class ObjectStoreSettings:
    existing: ExistingObjectStore | None
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
    operator: str
    namespace: str
    chart_version: str
    image_tag: str
    server: bool


@dataclass(frozen=True, kw_only=True)
class SeldonSettings:
    operator: str
    namespace: str
    version: str
    accept_bsl: bool
    cert_manager: bool
    logger_work_queue_size: int
    logger_write_timeout_ms: int

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return version_tuple(self.version) or (0, 0, 0)


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
    canary_model_version: str | None = None  # None: no canary predictor
    canary_traffic: int = 10


@dataclass(frozen=True, kw_only=True)
class FeedbackSettings:
    image: Image
    collector_replicas: int
    indexer_replicas: int
    index: str
    sampling_rate: float | None  # None: not passed on, the collector's default applies
    index_shards: int | None = None  # None: not passed on, the chart's default applies
    retention_days: int | None = None  # None: not passed on (keep forever)
    # None: not passed on, the indexer's default applies (INDEXER_NO_RESPONSE_AFTER_S, ...)
    no_response_after_seconds: float | None = None
    feedback_join_delay_seconds: float | None = None
    feedback_join_window_seconds: float | None = None
    sweep_interval_seconds: float | None = None
    monitor: bool = True
    monitor_index: str = "seldon-monitor"
    monitor_window_seconds: int | None = None  # None: not passed on, the monitor's default applies
    monitor_settle_seconds: int | None = None
    monitor_thresholds: dict[str, float | int | str] = field(default_factory=dict)  # only the fields set
    alerts: bool = False
    # who may send events and read metrics (docs/feedback-pipeline.md, "Who may send events")
    seldon_service_accounts: tuple[str, ...] = ("default",)
    metrics_namespace: str = ""  # "": nothing may reach the metrics ports
    metrics_pod_labels: dict[str, str] = field(default_factory=dict)
    metrics_principals: tuple[str, ...] = ()
    producer_token: pulumi.Output[str] | None = None  # a secret; None: no producer port
    producer_namespaces: tuple[str, ...] = ()
    # feedback:redaction, only the fields set (the services own the defaults), as the chart's redact values
    redaction: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    workers: int
    retries: int


@dataclass(frozen=True, kw_only=True)
class FlowbackSettings:
    """flowback:* config: the WorkflowTemplate (on or off), its registry bucket, an optional schedule, the rule."""

    enabled: bool
    bucket: str
    schedule: str = ""  # empty: no CronWorkflow
    timezone: str = ""  # empty: UTC
    lookback: str = "24h"
    rule: dict[str, float | int | bool] = field(default_factory=dict)  # only the fields set


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
    flowback: FlowbackSettings
