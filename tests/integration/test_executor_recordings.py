"""Every event the real Seldon executor logged (../shared/reference/seldon-executor-1.17.1), replayed into the
pipeline on the real local Kafka and OpenSearch, gives exactly the documents it should.

What: each source of the recordings (`rest`, `grpc`, `grpc-direct`, `kafka-log`, `versions/<v>` for executors
1.3.0 to 1.17.1; see tests/recordings.py) into its own capture topic and index: HTTP events POSTed to a real
collector in recorded order, direct-logged messages produced to the topic with their recorded headers and
timestamps; then an indexer. A second replay per source holds only its first prediction and its feedback that
came without the prediction's puid (Seldon's own client sends none), so that exactly one prediction matches.
Wait: until the indexer committed every offset, the sweep decided every feedback without a known puid, and the
index holds the expected number of documents.
Assert: per source, exactly the documents derived from the recordings (sent = indexed, duplicates = 0, every
field), the collector's rejections and the dead letters with their reasons, and the join outcomes in the indexer's
metrics; per recorded event, the documents it contributes to. A new recording is a new case.
Cleanup: own topics and index per replay; all services stopped at the end of the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.feedback import FeedbackPipeline, WireRecord, mismatches
from tests.recordings import Expected, RecordedEvent, all_events, expected_documents, sources

pytestmark = pytest.mark.integration

SWEEP = {"no_response_after_s": "2", "feedback_join_delay_s": "1", "sweep_interval_s": "0.5"}


@dataclass
class Replay:
    events: list[RecordedEvent]
    expected: Expected
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # event id -> collector answer
    documents: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    dead_letters: list[Any] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    collector_metrics: dict[str, float] = field(default_factory=dict)


def join_subset(events: list[RecordedEvent]) -> list[RecordedEvent] | None:
    """The first prediction and the feedback logged under a fresh puid, or None when the source has no such one."""
    predictions = [event.request_id for event in events if event.kind == "request" and event.payload is not None]
    orphans = [e for e in events if e.kind == "feedback" and e.request_id not in predictions]
    if not predictions or not orphans:
        return None
    return [e for e in events if e.request_id == predictions[0] and e.kind != "feedback"] + orphans[:1]


def replay(pipeline: FeedbackPipeline, events: list[RecordedEvent]) -> Replay:
    result = Replay(events, expected_documents(events))
    http = [event for event in events if event.route == "collector"]
    collector = pipeline.collector() if http else None
    for event in http:  # in recorded order, each answered only after Kafka acknowledged it
        answer = requests.post(collector.url, headers=dict(event.headers), data=event.body, timeout=30)  # type: ignore[union-attr]
        result.answers[event.id] = (answer.status_code, answer.json())
    direct = [
        WireRecord(e.request_id, e.kind, None, e.body, [(k, v.encode()) for k, v in e.headers], e.timestamp_ms)
        for e in events
        if e.route == "topic"
    ]
    if direct:
        pipeline.produce(direct)
    indexer = pipeline.indexer(**SWEEP)  # started after everything is in the topic: the sweep sees all of it
    pipeline.wait_for(pipeline.committed_to_end, 120, "every recorded event indexed")
    decided = sum(result.expected.joins.values())
    pipeline.wait_for(
        lambda: (
            indexer.metric("feedback_indexer_feedback_joins_total") >= decided
            and pipeline.count() == len(result.expected.documents)
        ),
        60,
        f"{decided} feedbacks decided by the sweep and {len(result.expected.documents)} documents",
    )
    result.documents = pipeline.by_key()
    result.dead_letters = pipeline.read_topic(pipeline.dead_letter_topic)
    result.metrics = {
        "consumed": indexer.metric("feedback_indexer_messages_consumed_total"),
        "no_response": indexer.metric("feedback_indexer_no_response_total"),
        **{
            f"joins:{outcome}": indexer.metric("feedback_indexer_feedback_joins_total", outcome=outcome)
            for outcome in ("joined", "duplicate", "no_match", "ambiguous", "no_fingerprint")
        },
    }
    if collector is not None:
        result.collector_metrics = {"rejected": collector.metric("feedback_collector_events_rejected_total")}
    pipeline.stop_all()
    return result


REPLAYS = [*sources()]
JOIN_REPLAYS = [name for name, events in sources().items() if join_subset(events) is not None]


@pytest.fixture(scope="module")
def replays(kafka: Any, search: Any, run_dir: Path) -> Iterator[dict[str, Replay]]:
    done: dict[str, Replay] = {}
    pipelines: list[FeedbackPipeline] = []
    try:
        for name, events in sources().items():
            pipelines.append(pipeline := FeedbackPipeline(kafka, search, run_dir, partitions=2))
            done[name] = replay(pipeline, events)
        for name in JOIN_REPLAYS:
            pipelines.append(pipeline := FeedbackPipeline(kafka, search, run_dir, partitions=2))
            done[f"{name}+join"] = replay(pipeline, join_subset(sources()[name]))  # type: ignore[arg-type]
        yield done
    finally:
        for pipeline in pipelines:
            pipeline.stop_all()


def assert_documents(replay: Replay, keys: list[tuple[str, int]]) -> None:
    for key in keys:
        assert key in replay.documents, f"no document {key}"
        wrong = mismatches(replay.expected.documents[key], replay.documents[key])
        assert not wrong, f"{key}: {wrong}"


@pytest.mark.parametrize("source", REPLAYS)
def test_every_source_gives_exactly_its_documents(replays: dict[str, Replay], source: str) -> None:
    replay = replays[source]
    expected = replay.expected
    assert set(replay.documents) == set(expected.documents), "missing or unexpected documents"
    assert_documents(replay, list(expected.documents))
    http_rejected = [event for event in expected.rejected if event.route == "collector"]
    topic_rejected = [event for event in expected.rejected if event.route == "topic"]
    accepted = [event for event in replay.events if event not in http_rejected]
    assert replay.metrics["consumed"] == len(accepted)  # every event the collector took reached the indexer
    assert replay.collector_metrics.get("rejected", 0) == len(http_rejected)
    assert sorted(dict(m.headers())["dlq-reason"].decode() for m in replay.dead_letters) == ["invalid_json"] * len(
        topic_rejected
    )
    joins = {key.split(":", 1)[1]: value for key, value in replay.metrics.items() if key.startswith("joins:") and value}
    assert joins == expected.joins
    assert replay.metrics["no_response"] == sum(d.get("outcome") == "no_response" for d in expected.documents.values())


@pytest.mark.parametrize("source", JOIN_REPLAYS)
def test_feedback_without_the_predictions_puid_joins_its_only_match(replays: dict[str, Replay], source: str) -> None:
    replay = replays[f"{source}+join"]
    assert replay.expected.joins == {"joined": 1}
    assert set(replay.documents) == set(replay.expected.documents)  # the placeholder is gone, no orphan left
    assert_documents(replay, list(replay.expected.documents))
    [document] = replay.documents.values()
    assert document["feedback_join"] == "fingerprint" and document["truth_label"] == document["class_names"][1]
    assert replay.metrics["joins:joined"] == 1


@pytest.mark.parametrize("event", all_events(), ids=lambda event: event.id)
def test_every_recorded_event_gives_its_document(replays: dict[str, Replay], event: RecordedEvent) -> None:
    replay = replays[event.source]
    if event.payload is None:  # not JSON: refused with the reason, never half-indexed
        if event.route == "collector":
            status, answer = replay.answers[event.id]
            assert (status, answer["reason"]) == (400, "invalid_json"), answer
        else:
            [dead] = [m for m in replay.dead_letters if m.value() == event.body]
            assert dict(dead.headers())["dlq-reason"] == b"invalid_json"
        assert not [key for key in replay.documents if key[0] == event.request_id]
        return
    if event.route == "collector":
        status, answer = replay.answers[event.id]
        assert (status, answer["status"]) == (200, "produced"), answer
    if event.kind == "feedback":
        keys = replay.expected.feedback_targets[event.id]
    else:
        keys = [key for key in replay.expected.documents if key[0] == event.request_id]
    assert keys, "the recording must lead to at least one document"
    assert_documents(replay, keys)
    if event.kind != "feedback" and len(keys) == 1:  # the payload is kept, as JSON (gRPC decoded), unchanged
        assert replay.documents[keys[0]][f"{event.kind}_raw"] == event.payload
