"""Decisions the indexer takes later, against the real local Kafka and OpenSearch: the fingerprint join of a
feedback without the prediction's puid, and the outcome of a request whose response never came.

What: recorded executor events (rest/: prediction 1, its puid-less feedback 16) with their times moved to now, sent
through a real collector in the worst order: the feedback first, the indexer stopped while the feedback waits,
the prediction sent while it is down, then a new indexer process; and a recorded request alone, its response later,
plus a response reporting a Seldon FAILURE status.
Wait: for the placeholder, the join, `outcome: no_response`, the repair to `ok` (polling the index).
Assert: the truth lands in the prediction's document exactly once (no orphan, joined counted once), the pending
request becomes `no_response` after the delay and `ok` when its response arrives, the failed one is `error` with
the reason; each counted in the indexer's metrics.
Cleanup: own topics and index per test; services stopped in `finally` by the pipeline fixture.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
import requests
from feedback.indexer.core import iso_time

from tests.fixtures.feedback import FeedbackPipeline
from tests.recordings import RecordedEvent, sources

pytestmark = pytest.mark.integration


def recorded(name: str) -> RecordedEvent:
    return next(event for event in sources()["rest"] if event.id == f"rest/{name}")


def at(event: RecordedEvent, time_us: int, **headers: str) -> RecordedEvent:
    """The recorded event with Ce-Time moved to `time_us` (and other headers replaced)."""
    replaced = {"Ce-Time": iso_time(time_us), **headers}
    return dataclasses.replace(event, headers=tuple((k, replaced.get(k, v)) for k, v in event.headers))


def post(url: str, event: RecordedEvent, body: bytes | None = None) -> None:
    answer = requests.post(url, headers=dict(event.headers), data=event.body if body is None else body, timeout=30)
    assert answer.status_code == 200, answer.text


def document(pipeline: FeedbackPipeline, request_id: str) -> dict[str, Any] | None:
    if pipeline.count() == 0:  # also when the index does not exist yet
        return None
    return pipeline.by_key().get((request_id, 0))


def test_feedback_first_and_an_indexer_restart_still_join_the_prediction(feedback_pipeline: FeedbackPipeline) -> None:
    pipeline = feedback_pipeline
    collector = pipeline.collector()
    indexer = pipeline.indexer(feedback_join_delay_s="8", sweep_interval_s="0.5")
    now = int(time.time() * 1_000_000)
    request, response = (
        at(recorded("01-predict-1-request"), now - 2_000_000),
        at(recorded("02-predict-1-response"), now - 1_990_000),
    )
    feedback = at(recorded("16-feedback-1-no-puid-header-feedback"), now)
    post(collector.url, feedback)
    pipeline.wait_for(lambda: document(pipeline, feedback.request_id) is not None, 60, "the feedback placeholder")
    assert "orphan_reason" not in document(pipeline, feedback.request_id)  # type: ignore[operator]
    indexer.stop()  # the pending decision must survive the process: it lives in the index, not in memory
    post(collector.url, request)
    post(collector.url, response)
    indexer.start()
    pipeline.wait_for(
        lambda: indexer.metric("feedback_indexer_feedback_joins_total", outcome="joined") == 1, 60, "the join"
    )
    pipeline.wait_for(lambda: pipeline.count() == 1, 30, "the placeholder deleted")
    [(key, joined)] = pipeline.by_key().items()
    assert key == (request.request_id, 0)
    assert joined["feedback_join"] == "fingerprint" and joined["feedback_request_id"] == feedback.request_id
    assert (joined["truth"], joined["truth_label"], joined["reward"]) == ("1", "t:1", 1.0)
    assert joined["correct"] is False  # the model said t:0 (0.5465), the truth is t:1
    assert joined["input_text"] == "This is an input" and joined["outcome"] == "ok"
    assert joined["feedback_time"] == iso_time(now)
    time.sleep(2)  # more sweeps: the join is not repeated, nothing else is decided
    assert indexer.metric("feedback_indexer_feedback_joins_total") == 1
    assert pipeline.count() == 1


def test_a_request_without_response_is_no_response_until_its_response_arrives(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    pipeline = feedback_pipeline
    collector = pipeline.collector()
    indexer = pipeline.indexer(no_response_after_s="3", sweep_interval_s="0.5")
    now = int(time.time() * 1_000_000)
    request = at(recorded("01-predict-1-request"), now)
    failed = at(recorded("03-predict-2-request"), now)
    post(collector.url, request)
    post(collector.url, failed)
    failure = b'{"status":{"code":400,"info":"Unknown data type","reason":"MICROSERVICE_BAD_DATA","status":"FAILURE"}}'
    post(collector.url, at(recorded("04-predict-2-response"), now + 10_000), failure)
    pipeline.wait_for(
        lambda: (document(pipeline, request.request_id) or {}).get("outcome") == "no_response", 60, "no_response"
    )
    assert indexer.metric("feedback_indexer_no_response_total") == 1
    failed_doc = document(pipeline, failed.request_id)
    assert failed_doc is not None and failed_doc["outcome"] == "error"
    assert failed_doc["error"] == "MICROSERVICE_BAD_DATA (400): Unknown data type"

    post(collector.url, at(recorded("02-predict-1-response"), now + 5_000_000))  # late, but it came
    pipeline.wait_for(lambda: (document(pipeline, request.request_id) or {}).get("outcome") == "ok", 60, "repaired")
    repaired = document(pipeline, request.request_id)
    assert repaired is not None and "response_overdue" not in repaired
    assert repaired["predicted_label"] == "t:0" and repaired["latency_ms"] == 5000.0
    assert indexer.metric("feedback_indexer_no_response_total") == 1  # counted once, not again after the repair
