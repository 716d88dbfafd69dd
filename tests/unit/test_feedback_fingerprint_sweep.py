"""The fingerprint of a Seldon message and the sweeps' decisions, as pure logic.

The fingerprint must be equal for the logged prediction and the request/response a client echoes back in its
feedback (recorded: `SeldonClient`-style feedback re-serialises the JSON with other spacing and key order, gRPC
doubles print `1.0` where REST clients wrote `1`), and differ as soon as the data differs.
"""

from __future__ import annotations

from typing import Any

import pytest
from feedback.indexer.core import CaptureEvent, document_parts, response_error
from feedback.indexer.fingerprint import canonical_json, data_part, fingerprint
from feedback.indexer.sweep import (
    JoinOutcome,
    candidates_query,
    overdue_part,
    overdue_query,
    placeholder,
    placeholder_query,
    resolve,
)
from feedback.seldon import EventKind

from tests.recordings import sources

STREAMING = ("x-streaming",)  # the exact streaming deployment names the deployer lists


def event(kind: EventKind, payload: Any, request_id: str = "puid-1") -> CaptureEvent:
    return CaptureEvent(
        kind, request_id, "classifier", "text-classifier", "seldon", "default", "seldon", 1, payload, "x"
    )


def fields(kind: EventKind, payload: Any) -> dict[str, Any]:
    return document_parts(event(kind, payload), STREAMING)[0].fields


def test_recorded_feedback_echo_has_the_fingerprint_of_the_logged_prediction() -> None:
    rest = {e.id: e for e in sources()["rest"]}
    request, response = rest["rest/01-predict-1-request"], rest["rest/02-predict-1-response"]
    feedback = rest["rest/16-feedback-1-no-puid-header-feedback"]
    assert request.body != b"" and feedback.payload["request"] == request.payload
    stored = fields(EventKind.REQUEST, request.payload)["request_data_hash"]
    stored_response = fields(EventKind.RESPONSE, response.payload)["response_data_hash"]
    echo = fields(EventKind.FEEDBACK, feedback.payload)
    assert echo["feedback_request_hash"] == stored
    assert echo["feedback_response_hash"] == stored_response  # meta (timings) differs, the data does not


def test_a_grpc_prediction_and_its_rest_twin_share_fingerprints() -> None:
    grpc = sources()["grpc"]
    rest = sources()["rest"]
    assert fingerprint(grpc[0].payload) == fingerprint(rest[0].payload)  # same text over both transports
    assert fingerprint(grpc[1].payload) == fingerprint(rest[1].payload)  # same probabilities


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ({"data": {"ndarray": [[1, 2]]}}, {"data": {"ndarray": [[1.0, 2.0]]}}, True),
        ({"data": {"names": ["a"], "ndarray": [1]}}, {"data": {"ndarray": [1], "names": ["a"]}}, True),
        ({"data": {"ndarray": [1]}, "meta": {"puid": "x", "tags": {"t": 1}}}, {"data": {"ndarray": [1]}}, True),
        ({"strData": "x", "status": {"code": 200}}, {"strData": "x"}, True),
        ({"data": {"ndarray": [0.1]}}, {"data": {"ndarray": [0.10000001]}}, False),
        ({"data": {"ndarray": ["a"]}}, {"data": {"ndarray": ["A"]}}, False),
        ({"strData": "1"}, {"strData": 1}, False),
        ({"jsonData": {"k": True}}, {"jsonData": {"k": 1}}, False),
    ],
)
def test_fingerprint_equality(a: Any, b: Any, same: bool) -> None:
    assert (fingerprint(a) == fingerprint(b)) is same


def test_canonical_json_is_sorted_compact_and_unescaped() -> None:
    assert canonical_json({"b": [1.0, 2.5], "a": "é"}) == '{"a":"é","b":[1,2.5]}'
    assert data_part({"meta": {}, "status": {}, "data": 1}) == {"data": 1}
    assert fingerprint({"meta": {"tags": {}}}) is None and fingerprint(None) is None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"status": {"code": 400, "info": "bad data", "reason": "MICROSERVICE_BAD_DATA", "status": "FAILURE"}}, True),
        ({"status": {"status": 1, "info": "boom"}}, True),
        ({"status": {"code": 200, "status": "SUCCESS"}, "data": {"ndarray": [[1]]}}, False),
        ({"data": {"ndarray": [[1]]}}, False),
    ],
)
def test_a_failure_status_in_a_response_is_its_error(message: dict[str, Any], error: bool) -> None:
    found = response_error(message)
    assert (found is not None) is error
    if message.get("status", {}).get("reason") == "MICROSERVICE_BAD_DATA":
        assert found == "MICROSERVICE_BAD_DATA (400): bad data"
        assert fields(EventKind.RESPONSE, message)["error"] == found


def test_overdue_query_finds_pending_requests_older_than_the_delay() -> None:
    query = overdue_query(now_us=10_000_000, after_s=2, size=50)
    filters = query["query"]["bool"]["filter"]
    assert {"term": {"outcome": "pending"}} in filters
    assert {"range": {"request_time_us": {"lte": 8_000_000}}} in filters
    part = overdue_part({"_id": "p:classifier:0", "_source": {"deployment": "x-streaming"}}, STREAMING)
    assert (part.doc_id, part.fields, part.mode_hint) == ("p:classifier:0", {"response_overdue": True}, "streaming")


def test_placeholder_query_takes_only_feedback_only_documents_past_the_delay() -> None:
    query = placeholder_query(now_us=100_000_000, delay_s=60, size=10)["query"]["bool"]
    assert query["filter"] == [{"range": {"feedback_time_us": {"lte": 40_000_000}}}]
    assert {"exists": {"field": "request_time"}} in query["must_not"]
    assert {"exists": {"field": "response_time"}} in query["must_not"]
    assert {"exists": {"field": "orphan_reason"}} in query["must_not"]


SOURCE = {
    "request_id": "fresh-uuid",
    "node": "classifier",
    "instance": 0,
    "deployment": "text-classifier",
    "namespace": "seldon",
    "predictor": None,
    "truth": "1",
    "truth_index": 1,
    "reward": 1.0,
    "feedback_time": "2026-12-01T21:59:15.168626Z",
    "feedback_time_us": 1_000_000_000,
    "feedback_raw": {"truth": {}},
    "feedback_request_hash": "rq",
    "feedback_response_hash": "rs",
}
HIT = {"_id": "fresh-uuid:classifier:0", "_source": SOURCE}


def test_candidates_query_matches_fingerprint_place_and_window_but_not_itself() -> None:
    query = candidates_query(placeholder(HIT), window_s=10)
    assert query is not None
    filters, must_not = query["query"]["bool"]["filter"], query["query"]["bool"]["must_not"]
    assert {"term": {"request_data_hash": "rq"}} in filters and {"term": {"response_data_hash": "rs"}} in filters
    assert {"term": {"deployment": "text-classifier"}} in filters and {"term": {"instance": 0}} in filters
    assert {"range": {"request_time_us": {"gte": 990_000_000, "lte": 1_010_000_000}}} in filters
    assert {"term": {"request_id": "fresh-uuid"}} in must_not
    assert {"exists": {"field": "predictor"}} in must_not  # unknown predictor only matches unknown predictors
    assert query["collapse"] == {"field": "request_id"}
    no_echo = placeholder({"_id": "x", "_source": {**SOURCE, "feedback_request_hash": None}})
    assert candidates_query(no_echo, 10) is None


def answer(*request_ids: str, distinct: int | None = None, joined_from: str | None = None) -> dict[str, Any]:
    hits = [
        {"_id": f"{rid}:classifier:0", "_source": {"request_id": rid, "feedback_request_id": joined_from}}
        for rid in request_ids
    ]
    count = len(request_ids) if distinct is None else distinct
    return {"hits": {"hits": hits}, "aggregations": {"request_ids": {"value": count}}}


def test_exactly_one_match_merges_the_truth_and_deletes_the_placeholder() -> None:
    resolution = resolve(placeholder(HIT), answer("predicted"), STREAMING)
    assert resolution.outcome is JoinOutcome.JOINED
    assert resolution.delete == "fresh-uuid:classifier:0"
    [write] = resolution.writes
    assert write.doc_id == "predicted:classifier:0"
    assert write.fields["truth_index"] == 1 and write.fields["reward"] == 1.0
    assert write.fields["feedback_join"] == "fingerprint" and write.fields["feedback_request_id"] == "fresh-uuid"
    assert "request_id" not in write.fields and "instance" not in write.fields  # the prediction keeps its own


@pytest.mark.parametrize(
    ("candidates", "outcome", "fields"),
    [
        (answer(), JoinOutcome.NO_MATCH, {"orphan_reason": "no_match", "orphan_candidates": 0}),
        (answer("a", "b", distinct=5), JoinOutcome.AMBIGUOUS, {"orphan_reason": "ambiguous", "orphan_candidates": 5}),
        (None, JoinOutcome.NO_FINGERPRINT, {"orphan_reason": "no_fingerprint"}),
    ],
)
def test_none_or_several_matches_keep_an_orphan_with_the_reason(
    candidates: dict[str, Any] | None, outcome: JoinOutcome, fields: dict[str, Any]
) -> None:
    resolution = resolve(placeholder(HIT), candidates, STREAMING)
    assert resolution.outcome is outcome and resolution.delete is None
    [write] = resolution.writes
    assert (write.doc_id, write.fields) == ("fresh-uuid:classifier:0", fields)


def test_a_replayed_feedback_already_joined_is_a_duplicate_not_a_second_join() -> None:
    resolution = resolve(placeholder(HIT), answer("predicted", joined_from="fresh-uuid"), STREAMING)
    assert resolution.outcome is JoinOutcome.DUPLICATE
    assert resolution.writes == [] and resolution.delete == "fresh-uuid:classifier:0"
