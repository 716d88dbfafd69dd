"""The monitor's settings: the defaults, and a clear error naming the variable for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from feedback.config import SettingsError
from feedback.monitor.settings import MonitorSettings


@pytest.fixture
def base(tmp_path: Path) -> dict[str, str]:
    return {"MONITOR_SEARCH_URL": "http://127.0.0.1:9200", "MONITOR_PROFILES_DIR": str(tmp_path)}


def test_defaults(base: dict[str, str]) -> None:
    settings = MonitorSettings.from_env(base)
    assert (settings.capture_index, settings.index, settings.window_s, settings.settle_s) == (
        "seldon-feedback", "seldon-monitor", 900, 120.0,
    )  # fmt: skip
    assert settings.dead_letters is None, "without KAFKA_BOOTSTRAP_SERVERS the monitor reads the index only"
    assert (settings.thresholds.fdr, settings.thresholds.consecutive_windows) == (0.01, 2)
    assert settings.search.engine == "elasticsearch" and settings.metrics_port == 9091


def test_kafka_offsets_take_the_capture_topic_and_the_indexer_group(base: dict[str, str]) -> None:
    env = {**base, "KAFKA_BOOTSTRAP_SERVERS": "k:9092", "CAPTURE_TOPIC": "cap", "MONITOR_INDEXER_GROUP": "g"}
    dead = MonitorSettings.from_env(env).dead_letters
    assert dead is not None and (dead.capture_topic, dead.dead_letter_topic, dead.indexer_group) == (
        "cap", "cap-dead-letter", "g",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MONITOR_PROFILES_DIR": None}, "MONITOR_PROFILES_DIR is required but not set"),
        ({"MONITOR_PROFILES_DIR": "/no/such/folder"}, "MONITOR_PROFILES_DIR='/no/such/folder' is not a folder"),
        ({"MONITOR_INDEX": "seldon-feedback-monitor"}, "MONITOR_INDEX='seldon-feedback-monitor' must not be"),
        ({"MONITOR_INDEX": "Monitor"}, "MONITOR_INDEX='Monitor' is not a valid index name"),
        ({"MONITOR_WINDOW_S": "5"}, "MONITOR_WINDOW_S='5' must be a whole number from 10 to 86400"),
        ({"MONITOR_FDR": "0.9"}, "MONITOR_FDR='0.9' must be a number from 1e-06 to 0.5"),
        ({"MONITOR_MULTIPLE_TESTING": "holm"}, "MONITOR_MULTIPLE_TESTING='holm' is not allowed; use one of: bh"),
        ({"MONITOR_RETRY_INITIAL_S": "10", "MONITOR_RETRY_MAX_S": "1"}, "MONITOR_RETRY_MAX_S=1 must be at least"),
        ({"MONITOR_SEARCH_URL": None}, "MONITOR_SEARCH_URL is required but not set"),
        ({"MONITOR_SEARCH_URL": "search:9200"}, "MONITOR_SEARCH_URL: 'search:9200' is not an http(s) URL"),
        (
            {"MONITOR_REGISTRY_BUCKET": "flowback", "MONITOR_REGISTRY_S3_ENDPOINT": "minio:9000"},
            "MONITOR_REGISTRY_S3_ENDPOINT='minio:9000' must be an http(s) URL",
        ),
        (
            {"MONITOR_REGISTRY_BUCKET": "flowback", "AWS_ACCESS_KEY_ID": "a"},
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (registry credentials)",
        ),
        (
            {"MONITOR_REGISTRY_BUCKET": "flowback", "MONITOR_REGISTRY_MODEL": "text classifier"},
            "MONITOR_REGISTRY_MODEL='text classifier' must be 1-128 letters",
        ),
        (
            {"MONITOR_REGISTRY_BUCKET": "flowback", "MONITOR_REGISTRY_RETRY_S": "0"},
            "MONITOR_REGISTRY_RETRY_S='0' must be a number from 1 to 86400",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_variable(base: dict[str, str], change: dict, message: str) -> None:
    env = {**base, **change}
    env = {k: v for k, v in env.items() if v is not None}
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        MonitorSettings.from_env(env)


def test_the_registry_is_a_second_source_of_profiles_only_when_its_bucket_is_set(base: dict[str, str]) -> None:
    assert MonitorSettings.from_env(base).registry is None
    env = {
        **base,
        "MONITOR_REGISTRY_BUCKET": "flowback",
        "MONITOR_REGISTRY_S3_ENDPOINT": "http://minio.minio:9000",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    registry = MonitorSettings.from_env(env).registry
    assert registry is not None
    assert (registry.store.bucket, registry.store.endpoint, registry.model_name, registry.retry_s) == (
        "flowback", "http://minio.minio:9000", "text-classifier", 300.0,
    )  # fmt: skip
