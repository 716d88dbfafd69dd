"""The one builder of executor CloudEvents (smoke_tests/executor_events.py) against recordings of the real Seldon
v1.17.1 executor (../shared/reference/seldon-executor-1.17.1/rest/*.json): the same headers, the same constant
values, a fresh Ce-Id per event, and the local batch runner keeps the object store's keys out of argv."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smoke_tests.batch_runner import BatchRequest, local_command
from smoke_tests.executor_events import EVENT_TYPES, Deployment, ce_time, executor_event
from smoke_tests.target import parse
from tools.helm import upstream_dir

# what the executor's HTTP client and its tracing add; nothing downstream reads them
TRANSPORT = {"Host", "User-Agent", "Content-Length", "Accept-Encoding", "Traceparent", "Ce-Traceparent"}


def recordings() -> dict[str, dict]:
    folder = upstream_dir().parent / "reference" / "seldon-executor-1.17.1" / "rest"
    found = {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
    events = {name: record for name, record in found.items() if isinstance(record, dict) and "headers" in record}
    assert events, f"no recorded logger POSTs in {folder}"
    return events


def test_headers_are_the_ones_the_real_executor_sends() -> None:
    kinds = {value: key for key, value in EVENT_TYPES.items()}
    for name, recorded in recordings().items():
        sent = dict(recorded["headers"])
        ours = executor_event(kinds[sent["Ce-Type"]], sent["Ce-Requestid"], {}).headers
        assert set(ours) == set(sent) - TRANSPORT, f"{name}: headers differ"
        for header in ("Ce-Type", "Ce-Specversion", "Ce-Protocol", "Content-Type", "Ce-Requestid"):
            assert ours[header] == sent[header], f"{name}: {header} {ours[header]!r} != recorded {sent[header]!r}"


def test_every_event_gets_its_own_id_and_a_utc_time() -> None:
    first = executor_event("response", "p1", {}, Deployment(name="d", namespace="n", predictor="p", node="m"))
    second = executor_event("response", "p1", {})
    assert first.headers["Ce-Id"] != second.headers["Ce-Id"]
    assert [first.headers[h] for h in ("Ce-Inferenceservicename", "Ce-Namespace", "Ce-Endpoint", "Ce-Modelid")] == [
        "d",
        "n",
        "p",
        "m",
    ]
    assert ce_time(datetime(2024, 5, 1, 12, 0, 0, 100000, tzinfo=UTC)) == "2024-05-01T12:00:00.100000Z"
    assert ce_time(datetime(2024, 5, 1, 12, tzinfo=UTC)) == "2024-05-01T12:00:00.000000Z"


def test_an_unknown_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown event kind 'answer'; use one of \['feedback', 'request'"):
        executor_event("answer", "p1", {})


def test_the_local_batch_command_carries_no_credentials(tmp_path: Path) -> None:
    target = parse(
        {
            "realtime": {"rest_url": "http://127.0.0.1:1"},
            "kafka": {"bootstrap": "127.0.0.1:2", "capture_topic": "c"},
            "search": {"url": "http://127.0.0.1:3", "index": "i"},
            "object_store": {"endpoint": "http://127.0.0.1:4", "bucket": "b", "access_key": "AK", "secret_key": "SK"},
            "batch": {"runner": "local", "rest_host": "127.0.0.1:5", "python": "/venv/bin/python"},
        }
    )
    argv = local_command(target, BatchRequest("in.jsonl", "out.jsonl", "b1", workers=2, timeout_s=60))
    assert argv[:5] == ["/venv/bin/python", "-m", "devstack", "batch", "run"]
    assert "AK" not in argv and "SK" not in argv
    assert argv[argv.index("--host") + 1] == "127.0.0.1:5" and argv[argv.index("--workers") + 1] == "2"
