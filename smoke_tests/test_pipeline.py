"""Capture pipeline: executor-format CloudEvents posted to the collector become Kafka records and joined documents.

What: for P request ids (`<run>-pl-<i>`) the request, response and (for every third id) feedback CloudEvents, in
the exact format Seldon's executor sends (smoke_tests/executor_events.py), posted to the target's collector;
the response events are sent before the request events for half of the ids, to prove order does not matter.
Wait: until the index holds the joined documents, at most `limits.index_timeout_s`.
Assert: the collector accepted every event (2xx); the capture topic holds exactly one record per event, keyed by
its request id; exactly P documents with those ids, each with input text, predicted label, latency, mode realtime,
and truth for the ids that got feedback.
Cleanup: Kafka reader closed in `finally`; the records stay under this run's ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from smoke_tests.capture import collect_events
from smoke_tests.executor_events import CollectorClient, Deployment
from smoke_tests.sinks import Fields, SearchReader, TopicReader, field, joined
from smoke_tests.target import Target
from smoke_tests.traffic import CLASS_NAMES, new_run_id, seldon_message, texts
from smoke_tests.waiting import poll


@dataclass
class PipelineRun:
    texts: dict[str, str]  # puid -> text
    predicted: dict[str, str]  # puid -> label in the response event
    truths: dict[str, str]  # puid -> truth label (feedback sent)
    capture: TopicReader


@pytest.fixture(scope="module")
def pipeline_run(target: Target) -> Iterator[PipelineRun]:
    if target.collector is None:
        pytest.skip(f"target {target.name} gives no collector URL (collector.url)")
    run_id = new_run_id()
    deployment = Deployment(
        name=target.realtime.deployment, namespace=target.realtime.namespace, predictor=target.realtime.predictor
    )
    capture = TopicReader(target.kafka, target.kafka.capture_topic)
    try:
        client = CollectorClient(target.collector.url, target.limits.request_timeout_s)
        run = PipelineRun({}, {}, {}, capture)
        for i, text in enumerate(texts(run_id, target.limits.pipeline_count)):
            puid = f"{run_id}-pl-{i}"
            probability = (i % 10) / 10 + 0.05
            request = seldon_message(text)
            response = {
                "data": {"names": CLASS_NAMES, "ndarray": [[1 - probability, probability]]},
                "meta": {"puid": puid},
            }
            events = [("request", request), ("response", response)]
            for kind, body in events if i % 2 == 0 else reversed(events):
                client.send(kind, puid, body, deployment)
            run.texts[puid] = text
            run.predicted[puid] = CLASS_NAMES[1] if probability > 0.5 else CLASS_NAMES[0]
            if i % 3 == 0:
                truth = i % 2
                feedback = {
                    "request": request,
                    "response": response,
                    "truth": {"data": {"ndarray": [[1.0 - truth, float(truth)]]}},
                    "reward": 1.0,
                }
                client.send("feedback", puid, feedback, deployment)
                run.truths[puid] = CLASS_NAMES[truth]
        yield run
    finally:
        capture.close()


def test_capture_topic_holds_one_record_per_event(pipeline_run: PipelineRun, target: Target) -> None:
    ids = set(pipeline_run.texts)
    events = collect_events(pipeline_run.capture, ids, {"request", "response"}, target)
    counts = Counter((e.request_id, e.event_type) for e in events)
    expected = Counter({(p, k): 1 for p in ids for k in ("request", "response")})
    expected.update({(p, "feedback"): 1 for p in pipeline_run.truths})
    assert counts == expected, f"differences: {dict((counts - expected) + (expected - counts))}"


def test_each_request_id_is_one_joined_document(
    pipeline_run: PipelineRun, target: Target, search_reader: SearchReader
) -> None:
    ids = list(pipeline_run.texts)

    def complete(docs: list[dict]) -> bool:
        done = [d for d in docs if joined(d)]
        with_truth = [d for d in docs if field(d, Fields.truth) is not None]
        return len(done) >= len(ids) and len(with_truth) >= len(pipeline_run.truths)

    docs = poll(
        lambda: search_reader.by_request_ids(ids), complete, target.limits.index_timeout_s, "pipeline documents"
    )
    per_id = Counter(field(d, Fields.request_id) for d in docs)
    assert set(per_id) == set(ids), f"missing {sorted(set(ids) - set(per_id))[:10]}"
    assert len(docs) == len(ids), "duplicate documents"
    for doc in docs:
        rid = field(doc, Fields.request_id)
        assert joined(doc), f"{rid} not joined"
        assert field(doc, Fields.input_text) == pipeline_run.texts[rid]
        assert field(doc, Fields.predicted_label) == pipeline_run.predicted[rid]
        assert field(doc, Fields.mode) == "realtime"
        assert field(doc, Fields.latency_ms) is not None
        assert field(doc, Fields.truth) == pipeline_run.truths.get(rid), f"{rid}: truth {field(doc, Fields.truth)}"
