"""Streaming: messages on model_input become predictions on model_output and documents with mode streaming.

What: N messages on the streaming deployment's input topic, key = puid = `<run>-st-<i>`, header Seldon-Puid.
Wait: for N answers on the output topic (at most `limits.streaming_timeout_s`), then for the documents (at most
`limits.index_timeout_s`).
Assert: exactly N answers, one per key (the executor keeps the input's key and adds no puid to the answer:
kafka/output-1.json), none for other keys of this run, each a prediction; exactly N documents whose request ids
are the Seldon-Puid headers we sent, mode streaming, input text as sent; one request and one response event per
puid on the capture topic.
Cleanup: Kafka readers closed in `finally`; the records stay under this run's ids.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import pytest

from smoke_tests.capture import collect_events
from smoke_tests.sinks import Fields, SearchReader, TopicReader, answered, field, joined
from smoke_tests.target import Target
from smoke_tests.traffic import CLASS_NAMES, new_run_id, produce_streaming, texts
from smoke_tests.waiting import poll


@dataclass
class StreamingRun:
    sent: dict[str, str]  # puid -> text
    answers: list[tuple[str, dict]] = dataclass_field(default_factory=list)
    capture: TopicReader | None = None


@pytest.fixture(scope="module")
def streaming_run(target: Target) -> Iterator[StreamingRun]:
    if target.streaming is None:
        pytest.skip(f"target {target.name} has no streaming deployment (streaming: section)")
    run_id = new_run_id()
    sent = {f"{run_id}-st-{i}": text for i, text in enumerate(texts(run_id, target.limits.streaming_count))}
    output = TopicReader(target.kafka, target.streaming.output_topic)
    capture = TopicReader(target.kafka, target.kafka.capture_topic)
    try:
        produce_streaming(
            target.kafka, target.streaming.input_topic, list(sent.items()), target.limits.request_timeout_s
        )
        run = StreamingRun(sent=sent, capture=capture)
        deadline = time.monotonic() + target.limits.streaming_timeout_s
        settle_until: float | None = None
        prefix = f"{run_id}-st-"
        while time.monotonic() < deadline:
            for message in output.read(1.0):
                key = (message.key() or b"").decode("utf-8", "replace")
                if key.startswith(prefix):
                    run.answers.append((key, json.loads(message.value())))
            if len({key for key, _ in run.answers}) >= len(sent):
                settle_until = settle_until or time.monotonic() + 2.0  # catch duplicates arriving late
                if time.monotonic() >= settle_until:
                    break
        yield run
    finally:
        output.close()
        capture.close()


def test_each_message_gets_exactly_one_prediction(streaming_run: StreamingRun, target: Target) -> None:
    keys = Counter(key for key, _ in streaming_run.answers)
    missing = sorted(set(streaming_run.sent) - set(keys))
    assert missing == [], f"{len(missing)} of {len(streaming_run.sent)} messages got no answer, e.g. {missing[:5]}"
    assert {k: n for k, n in keys.items() if n > 1} == {}, "duplicate answers on the output topic"
    assert set(keys) == set(streaming_run.sent)
    for key, answer in streaming_run.answers:
        assert answer.get("data", {}).get("names") == CLASS_NAMES, f"{key}: {answer}"
        rows = answer.get("data", {}).get("ndarray")
        assert isinstance(rows, list) and len(rows) == 1 and len(rows[0]) == 2, f"{key}: {answer}"


def test_each_message_is_one_streaming_document(
    streaming_run: StreamingRun, target: Target, search_reader: SearchReader
) -> None:
    puids = list(streaming_run.sent)
    docs = poll(
        lambda: search_reader.by_request_ids(puids),
        lambda found: sum(1 for d in found if answered(d)) >= len(puids),
        target.limits.index_timeout_s,
        "streaming documents",
    )
    per_id = Counter(field(d, Fields.request_id) for d in docs)
    assert set(per_id) == set(puids), f"missing {sorted(set(puids) - set(per_id))[:10]}"
    assert len(docs) == len(puids), "duplicate documents"
    for doc in docs:
        rid = field(doc, Fields.request_id)
        assert field(doc, Fields.mode) == "streaming", f"{rid}: mode {field(doc, Fields.mode)}"
        assert field(doc, Fields.input_text) == streaming_run.sent[rid]
        assert joined(doc), f"{rid} not joined"


def test_capture_topic_holds_streaming_events(streaming_run: StreamingRun, target: Target) -> None:
    assert streaming_run.capture is not None
    puids = set(streaming_run.sent)
    events = collect_events(streaming_run.capture, puids, {"request", "response"}, target)
    counts = Counter((e.request_id, e.event_type) for e in events)
    missing = [(p, t) for p in sorted(puids) for t in ("request", "response") if counts[(p, t)] == 0]
    assert missing == [], f"events missing on {target.kafka.capture_topic}: {missing[:10]}"
    assert {k: n for k, n in counts.items() if n > 1} == {}, "duplicate capture events"
