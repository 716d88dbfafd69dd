"""Collector pure logic: CloudEvent validation, deterministic sampling, redaction, the Kafka record."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent
from feedback.collector.core import CaptureRecord, Rejection, build_record, sampled_in
from feedback.redaction import Redactor, build_redactor

NO_REDACTION = Redactor()
EMAIL_PHONE = build_redactor([], ["email", "phone"], [], patterns_variable="COLLECTOR_REDACT_PATTERNS")


def seldon_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "Ce-Type": "io.seldon.serving.inference.request",
        "Ce-Id": "5a0f3c1e-0000-4000-8000-000000000001",
        "Ce-Source": "http://text-classifier-default-0:8000/",
        "Ce-Specversion": "1.0",
        "Ce-Requestid": "puid-1",
        "Ce-Modelid": "classifier",
        "Ce-Inferenceservicename": "text-classifier",
        "Ce-Namespace": "seldon",
        "Ce-Endpoint": "default",
        "Ce-Time": "2024-05-01T12:00:00.250Z",
        "Content-Type": "application/json",
    }
    headers.update(overrides)
    return {name: value for name, value in headers.items() if value != "<drop>"}


BODY = b'{"data":{"ndarray":["great product"]}}'


def build(headers: dict[str, str], body: bytes = BODY, redactor: Redactor = NO_REDACTION) -> CaptureRecord | Rejection:
    return build_record(headers, body, max_body_bytes=1024, redactor=redactor)


def test_valid_event_becomes_binary_mode_record_keyed_by_request_id() -> None:
    record = build(seldon_headers())
    assert isinstance(record, CaptureRecord)
    assert record.key == b"puid-1"
    assert record.value == BODY  # forwarded byte for byte when nothing is redacted
    headers = dict(record.headers)
    assert headers["ce_type"] == b"io.seldon.serving.inference.request"
    assert headers["ce_requestid"] == b"puid-1"
    assert headers["ce_id"] == b"5a0f3c1e-0000-4000-8000-000000000001"
    assert headers["ce_inferenceservicename"] == b"text-classifier"
    assert headers["ce_endpoint"] == b"default"
    assert headers["ce_modelid"] == b"classifier"
    assert headers["ce_time"] == b"2024-05-01T12:00:00.250000Z"
    assert headers["content-type"] == b"application/json"


def test_sdk_encoded_event_is_accepted() -> None:
    event = CloudEvent(
        {
            "type": "io.seldon.serving.feedback",
            "source": "http://pod:8000/",
            "requestid": "puid-9",
            "datacontenttype": "application/json",
        },
        {"reward": 1.0, "truth": {"data": {"ndarray": [1]}}},
    )
    message = ce_http.to_binary_event(event)
    record = build(message.headers, message.body)
    assert isinstance(record, CaptureRecord)
    assert record.kind.value == "feedback"
    assert json.loads(record.value) == {"reward": 1.0, "truth": {"data": {"ndarray": [1]}}}


def test_structured_mode_event_is_accepted() -> None:
    event = CloudEvent(
        {"type": "io.seldon.serving.inference.response", "source": "/x", "requestid": "puid-3"},
        {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.1, 0.9]]}},
    )
    message = ce_http.to_structured_event(event)
    record = build(message.headers, message.body)
    assert isinstance(record, CaptureRecord)
    assert record.key == b"puid-3"
    assert json.loads(record.value)["data"]["ndarray"] == [[0.1, 0.9]]


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        (seldon_headers(**{"Ce-Type": "<drop>"}), BODY, 400, "missing_type"),
        (seldon_headers(**{"Ce-Requestid": "<drop>"}), BODY, 400, "missing_request_id"),
        (seldon_headers(**{"Ce-Requestid": "  "}), BODY, 400, "missing_request_id"),
        (seldon_headers(**{"Ce-Type": "io.seldon.serving.inference.outlier"}), BODY, 400, "unknown_type"),
        (seldon_headers(**{"Ce-Source": "<drop>"}), BODY, 400, "invalid_cloudevent"),
        (seldon_headers(**{"Ce-Time": "yesterday"}), BODY, 400, "invalid_time"),
        (seldon_headers(**{"Content-Type": "application/protobuf"}), BODY, 415, "unsupported_content_type"),
        (seldon_headers(**{"Content-Type": "text/plain"}), BODY, 415, "unsupported_content_type"),
        (seldon_headers(), b"", 400, "empty_body"),
        (seldon_headers(), b'{"data": ', 400, "invalid_json"),
        (seldon_headers(), b'{"data": {"ndarray": [[NaN, 0.5]]}}', 400, "invalid_json"),
        (seldon_headers(), b'{"data": {"ndarray": ["\\ud800"]}}', 400, "invalid_json"),
        (seldon_headers(), b"[" * 500 + b"]" * 500, 400, "invalid_json"),
        (seldon_headers(), b"[" + b"1" * 500 + b"]", 400, "invalid_json"),
        (seldon_headers(), b"\xff\xfe{}", 400, "not_utf8"),
        (seldon_headers(), b"x" * 1025, 413, "body_too_large"),
    ],
)
def test_invalid_events_are_rejected_with_reason(
    headers: dict[str, str], body: bytes, status: int, reason: str
) -> None:
    rejection = build(headers, body)
    assert isinstance(rejection, Rejection)
    assert (rejection.status, rejection.reason) == (status, reason)
    assert len(rejection.message) > 20  # says what is wrong and how to fix it


def test_missing_type_message_says_how_to_fix() -> None:
    rejection = build(seldon_headers(**{"Ce-Type": "<drop>"}))
    assert isinstance(rejection, Rejection)
    assert "Ce-Type" in rejection.message and "binary mode" in rejection.message


def test_json_content_type_with_charset_is_accepted() -> None:
    assert isinstance(build(seldon_headers(**{"Content-Type": "application/json; charset=utf-8"})), CaptureRecord)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_sampling_keeps_the_configured_fraction(rate: float) -> None:
    ids = [f"3f2a{i:08x}-puid" for i in range(20_000)]
    kept = sum(sampled_in(request_id, rate) for request_id in ids)
    assert abs(kept / len(ids) - rate) < 0.015


def test_sampling_is_deterministic_per_request_id() -> None:
    decisions = {f"id-{i}": sampled_in(f"id-{i}", 0.25) for i in range(1000)}
    assert all(sampled_in(request_id, 0.25) == kept for request_id, kept in decisions.items())


def test_sampling_is_monotonic_in_the_rate() -> None:
    """Raising the rate only adds ids: an id kept at 0.1 is kept at 0.25."""
    ids = [f"id-{i}" for i in range(5000)]
    assert all(sampled_in(i, 0.25) for i in ids if sampled_in(i, 0.1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+shop@example.co.uk today", "write to [REDACTED:email] today"),
        ("call +1 (415) 555-0123 now", "call [REDACTED:phone] now"),
        ("call 0044 20 7946 0958", "call [REDACTED:phone]"),
        ("my number is 555-0123-456", "my number is [REDACTED:phone]"),
        ("order 12345 shipped", "order 12345 shipped"),
        ("score 0.987654 is high", "score 0.987654 is high"),
        ("no personal data here", "no personal data here"),
        ("shipped on 2024-05-01 or 01/05/2024", "shipped on 2024-05-01 or 01/05/2024"),
    ],
)
def test_builtin_patterns(text: str, expected: str) -> None:
    assert EMAIL_PHONE.redact_text(text) == expected


def test_redaction_of_fields_patterns_and_regexes_everywhere_in_the_payload() -> None:
    import re

    redactor = Redactor(fields=frozenset({"customer"}), builtins=("email",), regexes=(re.compile(r"ACC-\d+"),))
    payload = {
        "data": {"ndarray": [["mail a@b.io about ACC-991"], ["fine"]]},
        "meta": {"tags": {"Customer": {"name": "Jane"}, "note": "x@y.org"}},
    }
    assert redactor.redact(payload) == {
        "data": {"ndarray": [["mail [REDACTED:email] about [REDACTED]"], ["fine"]]},
        "meta": {"tags": {"Customer": "[REDACTED]", "note": "[REDACTED:email]"}},
    }


def test_redaction_happens_before_the_record_is_built() -> None:
    body = json.dumps({"data": {"ndarray": ["contact bob@example.com or +44 20 7946 0958"]}}).encode()
    record = build_record(seldon_headers(), body, max_body_bytes=4096, redactor=EMAIL_PHONE)
    assert isinstance(record, CaptureRecord)
    assert record.redacted
    assert b"bob@example.com" not in record.value and b"7946" not in record.value
    assert json.loads(record.value) == {"data": {"ndarray": ["contact [REDACTED:email] or [REDACTED:phone]"]}}
