"""Feedback: ground truth posted for K predictions appears in exactly those K documents, with or without the puid.

What: K REST predictions (puids `<run>-fb-<i>`), then `POST /api/v1.0/feedback` for each with the prediction's puid
in its `Seldon-Puid` header (the executor logs a feedback under that header, or a fresh puid) and a truth label
(alternating 0/1), reward 1; and S more predictions (`<run>-sc-<i>`) whose feedback is sent as Seldon's own
`SeldonClient.feedback` sends it: without the header, so the executor logs it under a fresh puid.
Wait: until the documents carry the truth, at most `limits.index_timeout_s`.
Assert: the executor accepted every feedback; exactly K documents with the K ids, each still joined (request and
response), carrying the truth we sent for its own puid, joined by puid; one feedback event per puid on the capture
topic; the S puid-less feedbacks land in their S predictions' documents, joined by fingerprint (the request and
response they echo), and leave no orphan behind.
Cleanup: Kafka reader closed in `finally`; documents stay as evidence under this run's ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from smoke_tests.capture import collect_events
from smoke_tests.sinks import Fields, SearchReader, TopicReader, field, joined, truth_label
from smoke_tests.skips import needs_capture
from smoke_tests.target import Target
from smoke_tests.traffic import CLASS_NAMES, RestClient, new_run_id, texts
from smoke_tests.waiting import poll


@dataclass
class FeedbackRun:
    truths: dict[str, int]  # puid -> truth label index, feedback sent with the puid
    puidless: dict[str, int]  # puid -> truth label index, feedback sent without it (as SeldonClient does)
    capture: TopicReader


PUIDLESS_COUNT = 3


@pytest.fixture(scope="module")
def feedback_run(target: Target) -> Iterator[FeedbackRun]:
    run_id = new_run_id()
    capture = TopicReader(target.kafka, target.kafka.capture_topic)
    try:
        client = RestClient(target.realtime.rest_url, target.limits.request_timeout_s)
        truths: dict[str, int] = {}
        for i, text in enumerate(texts(run_id, target.limits.feedback_count)):
            prediction = client.predict(text, f"{run_id}-fb-{i}")
            truths[prediction.puid] = i % 2
            answer = client.feedback(prediction, truth=i % 2)
            assert answer.get("status", {}).get("status", 0) == 0, f"feedback {prediction.puid} refused: {answer}"
        puidless: dict[str, int] = {}
        for i, text in enumerate(texts(run_id + "s", PUIDLESS_COUNT)):
            prediction = client.predict(text, f"{run_id}-sc-{i}")
            puidless[prediction.puid] = (i + 1) % 2
            answer = client.feedback(prediction, truth=(i + 1) % 2, with_puid=False)
            assert answer.get("status", {}).get("status", 0) == 0, f"feedback for {prediction.puid} refused: {answer}"
        yield FeedbackRun(truths, puidless, capture)
    finally:
        capture.close()


def test_truth_lands_in_the_documents_of_those_puids(
    feedback_run: FeedbackRun, target: Target, search_reader: SearchReader
) -> None:
    needs_capture(target)
    puids = list(feedback_run.truths)
    docs = poll(
        lambda: search_reader.by_request_ids(puids),
        lambda found: sum(1 for d in found if field(d, Fields.truth) is not None) >= len(puids),
        target.limits.index_timeout_s,
        "documents with feedback",
    )
    per_id = Counter(field(d, Fields.request_id) for d in docs)
    assert set(per_id) == set(puids), f"missing {sorted(set(puids) - set(per_id))[:10]}"
    assert len(docs) == len(puids), "duplicate documents"
    for doc in docs:
        rid = field(doc, Fields.request_id)
        assert truth_label(doc) == CLASS_NAMES[feedback_run.truths[rid]], f"{rid}: truth {field(doc, Fields.truth)}"
        assert joined(doc), f"{rid} lost its request/response"
        assert field(doc, Fields.reward) == pytest.approx(1.0)
        assert field(doc, Fields.feedback_join) == "puid", f"{rid}: joined by {field(doc, Fields.feedback_join)}"


def test_feedback_without_the_puid_joins_its_prediction_by_fingerprint(
    feedback_run: FeedbackRun, target: Target, search_reader: SearchReader
) -> None:
    needs_capture(target)
    puids = list(feedback_run.puidless)
    docs = poll(
        lambda: search_reader.by_request_ids(puids),
        lambda found: sum(1 for d in found if field(d, Fields.truth) is not None) >= len(puids),
        target.limits.index_timeout_s,
        "predictions joined by fingerprint",
    )
    assert sorted(field(d, Fields.request_id) for d in docs) == sorted(puids), "one document per prediction"
    for doc in docs:
        rid = field(doc, Fields.request_id)
        assert truth_label(doc) == CLASS_NAMES[feedback_run.puidless[rid]], f"{rid}: truth {field(doc, Fields.truth)}"
        assert field(doc, Fields.feedback_join) == "fingerprint", f"{rid}: joined by {field(doc, Fields.feedback_join)}"
        assert joined(doc), f"{rid} lost its request/response"
    feedback_ids = [field(d, Fields.feedback_request_id) for d in docs]
    assert all(feedback_ids) and len(set(feedback_ids)) == len(puids), f"feedback ids {feedback_ids}"
    assert search_reader.by_request_ids(feedback_ids) == [], "the feedbacks' own placeholder documents are gone"


def test_capture_topic_holds_one_feedback_event_per_puid(feedback_run: FeedbackRun, target: Target) -> None:
    needs_capture(target)
    puids = set(feedback_run.truths)
    events = collect_events(feedback_run.capture, puids, {"request", "response", "feedback"}, target)
    feedback = Counter(e.request_id for e in events if e.event_type == "feedback")
    assert set(feedback) == puids, f"feedback events missing for {sorted(puids - set(feedback))[:10]}"
    assert {k: n for k, n in feedback.items() if n > 1} == {}, "duplicate feedback events"
