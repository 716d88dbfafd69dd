"""The smoke suite reads the puid where the real executor puts it: checked with the suite's own code on what the
real v1.17.1 executor answered (../shared/reference/seldon-executor-1.17.1/)."""

from __future__ import annotations

import base64
import json

import pytest

from smoke_tests import seldon_grpc
from smoke_tests.traffic import PUID_HEADER, Prediction, answered_puid, check_prediction
from tests.conformance.recorded import grpc_logged_events, load


def recorded_prediction(label: str) -> tuple[dict, Prediction]:
    exchange = next(e for e in load("rest/client-exchanges-receiver.json") if e["label"] == label)
    sent = exchange["sent_headers"].get(PUID_HEADER)
    answered = answered_puid(exchange["response_headers"])
    body = json.loads(exchange["response_body"])
    return exchange, Prediction(puid=sent or str(answered), text="", request={}, response=body, answered_puid=answered)


def test_a_recorded_rest_answer_passes_the_suites_check_with_the_header_puid() -> None:
    exchange, prediction = recorded_prediction("predict-3-with-puid-header")
    assert prediction.answered_puid == "golden-chosen-puid-0001" == exchange["sent_headers"][PUID_HEADER]
    assert "puid" not in prediction.response.get("meta", {}), "the real executor writes no meta.puid"
    check_prediction(prediction, through_executor=True)


def test_the_suite_fails_an_answer_that_carries_another_puid() -> None:
    _exchange, prediction = recorded_prediction("predict-3-with-puid-header")
    wrong = Prediction(prediction.puid, "", {}, prediction.response, answered_puid="someone-else")
    with pytest.raises(AssertionError, match="answered with puid 'someone-else'"):
        check_prediction(wrong, through_executor=True)


def test_a_recorded_grpc_reply_gives_the_puid_from_its_metadata_and_parses() -> None:
    call = next(c for c in load("grpc/client-calls.json") if c["kind"] == "predict_ndarray")
    metadata = list(call["response_initial_metadata"].items())
    assert seldon_grpc.answered_puid(metadata) == call["response_initial_metadata"]["seldon-puid"]
    assert seldon_grpc.request_bytes("This is an input") == base64.b64decode(call["request_proto_b64"]), (
        "the suite's SeldonMessage subset puts the same bytes on the wire as SeldonClient"
    )
    reply = next(e for e in grpc_logged_events() if e.kind == "response")
    parsed = seldon_grpc.parse_answer(reply.body)
    recorded = call["response_json"]["data"]
    assert parsed["data"]["names"] == recorded["names"]
    assert parsed["data"]["ndarray"][0] == pytest.approx(recorded["ndarray"][0])
    assert "puid" not in parsed.get("meta", {}), "no body carries the puid over gRPC either"


def test_streaming_answers_are_matched_by_key_as_recorded_outputs_carry_no_puid() -> None:
    for name in ("kafka/output-1.json", "kafka/output-2.json", "kafka/output-3.json"):
        output = load(name)
        assert output["headers"] == [] and "puid" not in json.loads(output["value"]).get("meta", {})
        assert output["key"].startswith("golden-key-")
    assert all(not item["has_puid_in_value"] for item in load("kafka/with-seldon-puid-header-outputs.json"))
