"""gRPC capture in pure logic: the collector turns the executor's recorded protobuf CloudEvents into JSON records
marked `transport=grpc`; the indexer builds from them, and from the same bytes logged directly to Kafka, the
documents a REST call with the same payload gives (text, probabilities, label, tags), with `transport: grpc`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from feedback.collector.core import CaptureRecord, Rejection, build_record
from feedback.indexer.core import CaptureEvent, PoisonMessage, decode_message, document_parts
from feedback.redaction import Redactor, build_redactor
from feedback.seldon import EventKind
from feedback.seldon_protos import SeldonProtos

from tests.recordings import RecordedEvent, as_direct_logging, sources

NO_REDACTION = Redactor()
GRPC = sources()["grpc"]
STREAMING = ("x-streaming",)  # the exact streaming deployment names the deployer lists


def collect(event: RecordedEvent, protos: SeldonProtos | None, redactor: Redactor = NO_REDACTION) -> Any:
    return build_record(dict(event.headers), event.body, max_body_bytes=1 << 20, redactor=redactor, protos=protos)


def direct(event: RecordedEvent, protos: SeldonProtos) -> CaptureEvent:
    logged = as_direct_logging(event)
    headers = [(name, value.encode()) for name, value in logged.headers]
    return decode_message(headers, logged.body, logged.timestamp_ms, None, protos)


@pytest.mark.parametrize("event", GRPC, ids=lambda event: event.id)
def test_recorded_grpc_event_becomes_a_json_record_marked_grpc(
    seldon_protos: SeldonProtos, event: RecordedEvent
) -> None:
    record = collect(event, seldon_protos)
    assert isinstance(record, CaptureRecord), record
    assert record.key == event.request_id.encode()
    assert json.loads(record.value) == event.payload  # the recording's own decoding of the bytes
    headers = dict(record.headers)
    assert headers["content-type"] == b"application/json"
    assert headers["ce_transport"] == b"grpc"
    assert headers["ce_requestid"] == event.request_id.encode()


@pytest.mark.parametrize("event", GRPC, ids=lambda event: event.id)
def test_collector_and_direct_logging_give_the_documents_of_the_same_payload_over_rest(
    seldon_protos: SeldonProtos, event: RecordedEvent
) -> None:
    record = collect(event, seldon_protos)
    assert isinstance(record, CaptureRecord)
    via_collector = decode_message(record.headers, record.value, None, None, seldon_protos)
    via_direct = direct(event, seldon_protos)
    for decoded in (via_collector, via_direct):
        assert decoded.transport == "grpc" and decoded.payload == event.payload
        as_rest = dataclasses.replace(decoded, transport="rest")  # the same payload had it come over REST
        parts = [part.fields for part in document_parts(decoded, STREAMING)]
        rest = [part.fields for part in document_parts(as_rest, STREAMING)]
        assert [{**fields, "transport": "rest"} for fields in parts] == rest
        assert all(fields["transport"] == "grpc" for fields in parts)
    fields = document_parts(via_direct, STREAMING)[0].fields
    if event.kind == "request":
        assert fields["input_text"] == "This is an input"
    else:
        assert fields["class_names"] == ["t:0", "t:1"] and fields["predicted_label"] == "t:0"
        assert fields["probabilities"] == [0.5465233474325003, 0.4534766525674997]


def test_grpc_payloads_are_redacted_like_json(seldon_protos: SeldonProtos) -> None:
    message = seldon_protos.message_class(EventKind.REQUEST)()
    message.strData = "call me at +44 20 7946 0958 or mail jo@example.com"
    event = RecordedEvent(
        "grpc/personal", "grpc", "collector", "request", GRPC[0].headers, message.SerializeToString(), None, None
    )
    redactor = build_redactor([], ["email", "phone"], [], patterns_variable="COLLECTOR_REDACT_PATTERNS")
    record = collect(event, seldon_protos, redactor)
    assert isinstance(record, CaptureRecord) and record.redacted
    assert json.loads(record.value) == {"strData": "call me at [REDACTED:phone] or mail [REDACTED:email]"}


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b'{"data": {"ndarray": ["json sent as protobuf"]}}', 400, "invalid_protobuf"),
        (b"\x1a\x05abc", 400, "invalid_protobuf"),
        (b"", 400, "empty_body"),
    ],
)
def test_malformed_protobuf_events_are_refused(
    seldon_protos: SeldonProtos, body: bytes, status: int, reason: str
) -> None:
    event = RecordedEvent("grpc/bad", "grpc", "collector", "request", GRPC[0].headers, body, None, None)
    rejection = collect(event, seldon_protos)
    assert isinstance(rejection, Rejection)
    assert (rejection.status, rejection.reason) == (status, reason)
    assert len(rejection.message) > 40


def test_without_definitions_protobuf_is_refused_not_guessed() -> None:
    rejection = collect(GRPC[0], None)
    assert isinstance(rejection, Rejection)
    assert (rejection.status, rejection.reason) == (415, "unsupported_content_type")
    assert "SELDON_PROTO_VERSION" in rejection.message


def test_decoded_json_larger_than_the_limit_is_refused(seldon_protos: SeldonProtos) -> None:
    response = next(event for event in GRPC if event.kind == "response")
    limit = len(response.body)  # the protobuf fits, its JSON does not
    rejection = build_record(
        dict(response.headers), response.body, max_body_bytes=limit, redactor=NO_REDACTION, protos=seldon_protos
    )
    assert isinstance(rejection, Rejection) and rejection.reason == "body_too_large"
    assert "decodes to" in rejection.message


def test_rest_events_are_marked_rest(seldon_protos: SeldonProtos) -> None:
    event = sources()["rest"][0]
    record = collect(event, seldon_protos)
    assert isinstance(record, CaptureRecord)
    assert dict(record.headers)["ce_transport"] == b"rest"
    assert record.value == event.body  # REST bodies are still forwarded byte for byte
    assert decode_message(record.headers, record.value, None, None, seldon_protos).transport == "rest"


def test_a_collector_record_without_transport_is_read_from_its_content_type(seldon_protos: SeldonProtos) -> None:
    record = collect(sources()["rest"][0], seldon_protos)
    assert isinstance(record, CaptureRecord)
    older = [(name, value) for name, value in record.headers if name != "ce_transport"]  # an older collector's
    assert decode_message(older, record.value, None, None, seldon_protos).transport == "rest"


def test_direct_protobuf_garbage_is_poison_with_a_reason(seldon_protos: SeldonProtos) -> None:
    logged = as_direct_logging(GRPC[0])
    headers = [(name, value.encode()) for name, value in logged.headers]
    with pytest.raises(PoisonMessage) as caught:
        decode_message(headers, b"\xff\xff\xff", 1, None, seldon_protos)
    assert caught.value.reason == "invalid_protobuf"
