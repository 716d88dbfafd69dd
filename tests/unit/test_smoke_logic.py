"""Pure logic of the smoke suite: decoding capture records, judging answers, polling."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from smoke_tests.executor_events import Deployment, headers
from smoke_tests.sinks import capture_event, field, joined, truth_label
from smoke_tests.traffic import Prediction, check_prediction, texts
from smoke_tests.waiting import poll


@dataclass
class Record:
    """The parts of a confluent_kafka Message the decoder reads."""

    _headers: list[tuple[str, bytes]]
    _key: bytes | None = None
    _value: bytes = b"{}"

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes:
        return self._value

    def offset(self) -> int:
        return 0

    def partition(self) -> int:
        return 0


@pytest.mark.parametrize(
    ("record", "request_id", "kind"),
    [
        (
            Record([("ce_type", b"io.seldon.serving.inference.request"), ("ce_requestid", b"p1")], b"p1"),
            "p1",
            "request",
        ),
        (Record([("type", b"io.seldon.serving.inference.response"), ("requestid", b"p2")]), "p2", "response"),
        (Record([("ce_type", b"io.seldon.serving.feedback")], b"p3"), "p3", "feedback"),
        (Record([("CE_TYPE", b"io.seldon.serving.inference.request"), ("Ce_RequestId", b"p4")]), "p4", "request"),
    ],
)
def test_both_capture_formats_decode_to_request_id_and_kind(record: Record, request_id: str, kind: str) -> None:
    event = capture_event(record)
    assert event is not None and (event.request_id, event.event_type) == (request_id, kind)


def test_a_record_without_request_id_is_not_ours() -> None:
    assert capture_event(Record([("ce_type", b"io.seldon.serving.inference.request")])) is None


def test_executor_headers_follow_the_documented_contract() -> None:
    first = headers("request", "puid-1", Deployment(name="d", namespace="n", predictor="p", node="m"))
    second = headers("request", "puid-1", Deployment())
    assert first["Ce-Requestid"] == "puid-1" and first["Ce-Type"] == "io.seldon.serving.inference.request"
    assert (first["Ce-Inferenceservicename"], first["Ce-Namespace"], first["Ce-Endpoint"], first["Ce-Modelid"]) == (
        "d",
        "n",
        "p",
        "m",
    )
    assert first["Ce-Id"] != second["Ce-Id"], "Ce-Id is a fresh UUID per event, never the join key"
    assert first["Ce-Specversion"] == "1.0" and first["Ce-Time"].endswith("Z")


def _prediction(response: dict, answered_puid: str | None = "p") -> Prediction:
    return Prediction(puid="p", text="t", request={}, response=response, answered_puid=answered_puid)


def test_a_good_answer_passes_and_bad_ones_say_what_is_wrong() -> None:
    good = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.25, 0.75]]}, "meta": {}}
    check_prediction(_prediction(good))
    with pytest.raises(AssertionError, match="names"):
        check_prediction(_prediction({**good, "data": {**good["data"], "names": ["a", "b"]}}))
    with pytest.raises(AssertionError, match="do not sum to 1"):
        check_prediction(_prediction({**good, "data": {**good["data"], "ndarray": [[0.5, 0.6]]}}))
    with pytest.raises(AssertionError, match="answered with puid 'other'"):
        check_prediction(_prediction(good, answered_puid="other"))
    # meta.puid in the body is not the contract: without the Seldon-Puid header the answer is refused
    with pytest.raises(AssertionError, match="answered with puid None"):
        check_prediction(_prediction({**good, "meta": {"puid": "p"}}, answered_puid=None))
    check_prediction(_prediction(good, answered_puid=None), through_executor=False)  # the bare model has no puid


@pytest.mark.parametrize(
    ("stored", "label"),
    [({"truth_label": "t:1"}, "t:1"), ({"truth_label": [[0.0, 1.0]]}, "t:1"), ({"truth_label": 0}, "t:0"), ({}, None)],
)
def test_truth_label_reads_each_stored_form(stored: dict, label: str | None) -> None:
    assert truth_label(stored) == label


def test_document_helpers() -> None:
    assert joined({"request_time": 1.0, "response_time": 2.0})
    assert not joined({"request_time": 1.0})
    assert field({"a": {"b": 3}}, "a.b") == 3 and field({"a.b": 4}, "a.b") == 4 and field({}, "a.b") is None


def test_texts_are_unique_per_run_and_carry_the_run_id() -> None:
    batch = texts("run1", 50)
    assert len(set(batch)) == 50 and all("[run1-" in text for text in batch)
    assert set(batch).isdisjoint(texts("run2", 50))
    assert json.loads(json.dumps(batch)) == batch


def test_poll_returns_the_last_value_at_the_deadline_and_retries_errors() -> None:
    calls = []

    def observe() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not up yet")
        return len(calls)

    assert poll(observe, lambda n: n >= 4, timeout=10, what="x", first_sleep=0.01) == 4
    began = time.monotonic()
    assert poll(lambda: 1, lambda n: n > 1, timeout=0.3, what="never", first_sleep=0.05) == 1
    assert time.monotonic() - began < 2
    with pytest.raises(AssertionError, match="nothing observed within"):
        poll(lambda: (_ for _ in ()).throw(OSError("down")), lambda n: True, timeout=0.2, what="dead")
