"""The smoke suite's target description: files, SMOKE_* variables, and the errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from smoke_tests import target as target_module
from smoke_tests.target import TargetError

MINIMAL = {
    "name": "dev",
    "kind": "cluster",
    "realtime": {"rest_url": "http://127.0.0.1:9000"},
    "kafka": {"bootstrap": "127.0.0.1:9092", "capture_topic": "seldon-capture"},
    "search": {"url": "http://127.0.0.1:9200", "index": "seldon-capture"},
    "object_store": {"endpoint": "http://127.0.0.1:9100", "bucket": "batch", "access_key": "a", "secret_key": "s"},
}


def test_file_round_trip_keeps_every_value(tmp_path: Path) -> None:
    raw = {
        **MINIMAL,
        "streaming": {"input_topic": "in", "output_topic": "out"},
        "batch": {"runner": "local", "rest_host": "127.0.0.1:9000", "workers": 3},
        "limits": {"realtime_count": 7, "index_timeout_s": 9.5},
        "local": {"listeners": {"kafka": 9092}, "processes": {"kafka": 123}},
        "cluster": {"components": {"collector": {"namespace": "f", "selector": "a=b"}}},
    }
    first = target_module.parse(raw)
    path = target_module.write(first, tmp_path / "target.yaml")
    again = target_module.load({"SMOKE_TARGET": str(path)})
    assert again == first
    assert again.limits.realtime_count == 7 and again.limits.index_timeout_s == 9.5
    assert again.batch is not None and again.batch.workers == 3
    assert path.stat().st_mode & 0o777 == 0o600


def test_environment_alone_describes_a_target() -> None:
    env = {
        "SMOKE_REST_URL": "http://127.0.0.1:1",
        "SMOKE_KAFKA_BOOTSTRAP": "127.0.0.1:2",
        "SMOKE_CAPTURE_TOPIC": "cap",
        "SMOKE_SEARCH_URL": "http://127.0.0.1:3",
        "SMOKE_SEARCH_INDEX": "idx",
        "SMOKE_S3_ENDPOINT": "http://127.0.0.1:4",
        "SMOKE_S3_BUCKET": "b",
        "SMOKE_S3_ACCESS_KEY": "k",
        "SMOKE_S3_SECRET_KEY": "s",
        "SMOKE_REALTIME_COUNT": "5",
        "SMOKE_KAFKA_CONFIG": '{"security.protocol": "SSL"}',
    }
    loaded = target_module.load(env)
    assert loaded is not None
    assert loaded.realtime.rest_url == "http://127.0.0.1:1"
    assert loaded.limits.realtime_count == 5
    assert loaded.kafka.client_config()["security.protocol"] == "SSL"
    assert loaded.streaming is None and loaded.batch is None


def test_variables_override_the_file(tmp_path: Path) -> None:
    path = target_module.write(target_module.parse(MINIMAL), tmp_path / "t.yaml")
    loaded = target_module.load({"SMOKE_TARGET": str(path), "SMOKE_SEARCH_INDEX": "other", "SMOKE_BATCH_COUNT": "3"})
    assert loaded is not None and loaded.search.index == "other" and loaded.limits.batch_count == 3


def test_nothing_set_means_no_target() -> None:
    assert target_module.load({"SMOKE_REALTIME_COUNT": "3"}) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "laptop"}, "target.kind='laptop' is not one of"),
        ({"realtime": {}}, "realtime.rest_url is required"),
        ({"realtime": {"rest_url": "127.0.0.1:9000"}}, "must start with http:// or https://"),
        ({"limits": {"realtime_count": "many"}}, "limits.realtime_count='many' is not a whole number"),
        ({"limits": {"index_timeout_s": 0}}, "limits.index_timeout_s=0.0 must be more than 0 seconds"),
        ({"limits": {"typo_count": 1}}, "limits: unknown key(s) ['typo_count']"),
        ({"surprise": 1}, "target: unknown key(s) ['surprise']"),
        ({"batch": {"runner": "local"}}, "batch.rest_host is required for batch.runner=local"),
        ({"batch": {"runner": "argo"}}, "batch.workflow_template and batch.workflow_namespace are required"),
        ({"batch": {"runner": "spark", "rest_host": "x"}}, "batch.runner='spark' is not one of"),
    ],
)
def test_bad_descriptions_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(TargetError) as caught:
        target_module.parse({**MINIMAL, **change})
    assert message in str(caught.value)


def test_missing_section_says_how_to_give_a_target() -> None:
    raw = {key: value for key, value in MINIMAL.items() if key != "search"}
    with pytest.raises(TargetError, match=r"target.search is missing; give a target file \(SMOKE_TARGET=path\)"):
        target_module.parse(raw)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="cannot read it"):
        target_module.load({"SMOKE_TARGET": str(tmp_path / "absent.yaml")})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(TargetError, match="expected a mapping at the top level"):
        target_module.load({"SMOKE_TARGET": str(bad)})
