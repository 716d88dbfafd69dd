"""Monitor settings, read once from environment variables and validated at start (see images/feedback/README.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from feedback.config import (
    LOG_LEVELS,
    KafkaSettings,
    SettingsError,
    env_choice,
    env_float,
    env_int,
    env_optional,
    env_str,
    env_topic,
    kafka_settings,
)
from feedback.flowback.store import StoreSettings
from feedback.indexer.settings import SearchSettings, search_settings

MULTIPLE_TESTING = ("bh", "bonferroni")
INDEX_CHARS = ' "*\\<|,>/?#:'


@dataclass(frozen=True)
class Thresholds:
    """When a window's statistic is a breach, and when breaches become an alarm (stack config `monitor:thresholds`)."""

    fdr: float = 0.01  # the level of the multiple-testing control over a window's p-value tests
    multiple_testing: str = "bh"  # "bh" (Benjamini-Hochberg) or "bonferroni"
    consecutive_windows: int = 2  # breaches in this many consecutive windows (of the same group) make an alarm
    psi: float = 0.2  # population stability index above which a PSI metric is a breach
    domain_auc: float = 0.65  # the domain classifier's AUC must exceed this and its permutation threshold
    domain_permutations: int = 30  # label permutations behind the domain classifier's threshold
    accuracy_drop: float = 0.05  # a breach when the accuracy's upper bound is this far below the held-out accuracy
    min_samples: int = 50  # fewer documents with the metric's field in a window: no test, status too_few_samples
    min_labelled: int = 30  # the same for quality (documents with ground truth)
    confidence_level: float = 0.95  # of the quality intervals


@dataclass(frozen=True)
class DeadLetterSettings:
    """Optional: the monitor counts dead letters per window and the indexer's consumer lag from Kafka offsets."""

    kafka: KafkaSettings
    capture_topic: str
    dead_letter_topic: str
    indexer_group: str


@dataclass(frozen=True)
class RegistrySettings:
    """Optional: the flow back's registry, where the profiles of registered versions (a canary's) are looked up."""

    store: StoreSettings
    model_name: str = "text-classifier"
    retry_s: float = 300.0  # a version not found (or a failed lookup) is asked again after this long


@dataclass(frozen=True)
class MonitorSettings:
    search: SearchSettings
    profiles_dir: Path
    capture_index: str = "seldon-feedback"
    index: str = "seldon-monitor"
    index_shards: int = 1
    index_replicas: int = 1
    window_s: int = 900
    settle_s: float = 120.0  # a window is computed this long after it ended (late responses, indexer lag)
    backfill_windows: int = 96  # on a first start, at most this many past windows are computed
    late_feedback_lookback_s: float = 7 * 86_400.0  # quality is recomputed for windows this recent
    interval_s: float = 10.0  # how often the monitor looks for finished windows and late feedback
    max_documents: int = 5000  # documents read per window and group for the statistics (counts stay exact)
    thresholds: Thresholds = field(default_factory=Thresholds)
    dead_letters: DeadLetterSettings | None = None
    registry: RegistrySettings | None = None
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9091
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MonitorSettings:
        env = os.environ if env is None else env
        capture_index = env_index(env, "MONITOR_CAPTURE_INDEX", "seldon-feedback")
        index = env_index(env, "MONITOR_INDEX", "seldon-monitor")
        if index == capture_index or index.startswith(f"{capture_index}-"):
            raise SettingsError(
                f"MONITOR_INDEX={index!r} must not be {capture_index!r} or start with '{capture_index}-': the "
                f"indexer's template for '{capture_index}-*' would map it; use another name such as seldon-monitor"
            )
        profiles = env_str(env, "MONITOR_PROFILES_DIR", required=True)
        if not os.path.isdir(profiles):
            raise SettingsError(
                f"MONITOR_PROFILES_DIR={profiles!r} is not a folder; point it at the folder holding the models' "
                "profile.json files (the chart's init containers copy them from the model images)"
            )
        window = env_int(env, "MONITOR_WINDOW_S", 900, minimum=10, maximum=86_400)
        retry_initial = env_float(env, "MONITOR_RETRY_INITIAL_S", 0.5, minimum=0.01, maximum=60.0)
        retry_max = env_float(env, "MONITOR_RETRY_MAX_S", 30.0, minimum=0.01, maximum=600.0)
        if retry_max < retry_initial:
            raise SettingsError(
                f"MONITOR_RETRY_MAX_S={retry_max:g} must be at least MONITOR_RETRY_INITIAL_S={retry_initial:g}"
            )
        return cls(
            search=search_settings(env, prefix="MONITOR"),
            profiles_dir=Path(profiles),
            capture_index=capture_index,
            index=index,
            index_shards=env_int(env, "MONITOR_INDEX_SHARDS", 1, minimum=1, maximum=64),
            index_replicas=env_int(env, "MONITOR_INDEX_REPLICAS", 1, minimum=0, maximum=8),
            window_s=window,
            settle_s=env_float(env, "MONITOR_SETTLE_S", 120.0, minimum=0.0, maximum=86_400.0),
            backfill_windows=env_int(env, "MONITOR_BACKFILL_WINDOWS", 96, minimum=1, maximum=10_000),
            late_feedback_lookback_s=env_float(
                env, "MONITOR_LATE_FEEDBACK_LOOKBACK_S", 7 * 86_400.0, minimum=0.0, maximum=90 * 86_400.0
            ),
            interval_s=env_float(env, "MONITOR_INTERVAL_S", 10.0, minimum=0.1, maximum=3600.0),
            max_documents=env_int(env, "MONITOR_MAX_DOCUMENTS", 5000, minimum=100, maximum=10_000),
            thresholds=thresholds(env),
            dead_letters=dead_letter_settings(env),
            registry=registry_settings(env),
            retry_initial_s=retry_initial,
            retry_max_s=retry_max,
            metrics_host=env_str(env, "MONITOR_METRICS_HOST", "0.0.0.0"),
            metrics_port=env_int(env, "MONITOR_METRICS_PORT", 9091, minimum=1, maximum=65535),
            log_level=env_choice(env, "LOG_LEVEL", "info", LOG_LEVELS),
        )


@dataclass(frozen=True)
class MonitorSetupSettings:
    """What `python -m feedback.monitor setup` needs: the search engine (credentials allowed to manage index
    templates and the monitor index) and the monitor index with its template settings."""

    search: SearchSettings
    index: str = "seldon-monitor"
    index_shards: int = 1
    index_replicas: int = 1
    timeout_s: float = 300.0
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MonitorSetupSettings:
        env = os.environ if env is None else env
        return cls(
            search=search_settings(env, prefix="MONITOR"),
            index=env_index(env, "MONITOR_INDEX", "seldon-monitor"),
            index_shards=env_int(env, "MONITOR_INDEX_SHARDS", 1, minimum=1, maximum=64),
            index_replicas=env_int(env, "MONITOR_INDEX_REPLICAS", 1, minimum=0, maximum=8),
            timeout_s=env_float(env, "MONITOR_SETUP_TIMEOUT_S", 300.0, minimum=1.0, maximum=3600.0),
            log_level=env_choice(env, "LOG_LEVEL", "info", LOG_LEVELS),
        )


def env_index(env: Mapping[str, str], variable: str, default: str) -> str:
    index = env_str(env, variable, default)
    if index != index.lower() or any(char in index for char in INDEX_CHARS) or index.startswith(("-", "_", "+")):
        raise SettingsError(
            f"{variable}={index!r} is not a valid index name: use lower case letters, digits, '-', '_' or '.', "
            "not starting with '-', '_' or '+'"
        )
    return index


def thresholds(env: Mapping[str, str]) -> Thresholds:
    return Thresholds(
        fdr=env_float(env, "MONITOR_FDR", 0.01, minimum=1e-6, maximum=0.5),
        multiple_testing=env_choice(env, "MONITOR_MULTIPLE_TESTING", "bh", MULTIPLE_TESTING),
        consecutive_windows=env_int(env, "MONITOR_CONSECUTIVE_WINDOWS", 2, minimum=1, maximum=100),
        psi=env_float(env, "MONITOR_PSI_THRESHOLD", 0.2, minimum=0.001, maximum=10.0),
        domain_auc=env_float(env, "MONITOR_DOMAIN_AUC", 0.65, minimum=0.5, maximum=1.0),
        domain_permutations=env_int(env, "MONITOR_DOMAIN_PERMUTATIONS", 30, minimum=5, maximum=1000),
        accuracy_drop=env_float(env, "MONITOR_ACCURACY_DROP", 0.05, minimum=0.0, maximum=1.0),
        min_samples=env_int(env, "MONITOR_MIN_SAMPLES", 50, minimum=5, maximum=100_000),
        min_labelled=env_int(env, "MONITOR_MIN_LABELLED", 30, minimum=5, maximum=100_000),
        confidence_level=env_float(env, "MONITOR_CONFIDENCE_LEVEL", 0.95, minimum=0.5, maximum=0.999),
    )


def registry_settings(env: Mapping[str, str]) -> RegistrySettings | None:
    """Only when MONITOR_REGISTRY_BUCKET is set: the bucket of the flow back's registry (FLOWBACK_BUCKET)."""
    bucket = env_optional(env, "MONITOR_REGISTRY_BUCKET")
    if bucket is None:
        return None
    endpoint = env_optional(env, "MONITOR_REGISTRY_S3_ENDPOINT")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(
            f"MONITOR_REGISTRY_S3_ENDPOINT={endpoint!r} must be an http(s) URL such as http://minio.minio:9000 "
            "(unset: AWS S3 of AWS_REGION)"
        )
    access_key = env_optional(env, "AWS_ACCESS_KEY_ID")
    secret_key = env_optional(env, "AWS_SECRET_ACCESS_KEY")
    if (access_key is None) != (secret_key is None):
        raise SettingsError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (registry credentials)")
    model = env_str(env, "MONITOR_REGISTRY_MODEL", "text-classifier")
    from feedback.flowback.registry import is_name

    if not is_name(model):
        raise SettingsError(
            f"MONITOR_REGISTRY_MODEL={model!r} must be 1-128 letters, digits, '.', '_', '+' or '-' (the registry's "
            "model name, FLOWBACK_MODEL_NAME)"
        )
    return RegistrySettings(
        store=StoreSettings(
            endpoint=endpoint,
            bucket=bucket,
            access_key=access_key,
            secret_key=secret_key,
            region=env_str(env, "AWS_REGION", "us-east-1"),
        ),
        model_name=model,
        retry_s=env_float(env, "MONITOR_REGISTRY_RETRY_S", 300.0, minimum=1.0, maximum=86_400.0),
    )


def dead_letter_settings(env: Mapping[str, str]) -> DeadLetterSettings | None:
    """Only when KAFKA_BOOTSTRAP_SERVERS is set: without Kafka the monitor reads the index alone."""
    if env_optional(env, "KAFKA_BOOTSTRAP_SERVERS") is None:
        return None
    capture = env_topic(env, "CAPTURE_TOPIC", "seldon-capture")
    return DeadLetterSettings(
        kafka=kafka_settings(env),
        capture_topic=capture,
        dead_letter_topic=env_topic(env, "MONITOR_DEAD_LETTER_TOPIC", f"{capture}-dead-letter"),
        indexer_group=env_str(env, "MONITOR_INDEXER_GROUP", "seldon-feedback-indexer"),
    )
