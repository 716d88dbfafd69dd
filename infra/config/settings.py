"""The typed, validated settings `load()` returns: plain frozen values, one class per component (components add
the Outputs they are wired to)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True, kw_only=True)
class FeedbackSettings:
    image: Image
    collector_replicas: int
    indexer_replicas: int
    index: str
    sampling_rate: float | None  # None: not passed on, the collector's default applies
    monitor: bool = True
    monitor_index: str = "seldon-monitor"
    monitor_window_seconds: int | None = None  # None: not passed on, the monitor's default applies
    monitor_settle_seconds: int | None = None
    monitor_thresholds: dict[str, float | int | str] = field(default_factory=dict)  # only the fields set
    alerts: bool = False


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
