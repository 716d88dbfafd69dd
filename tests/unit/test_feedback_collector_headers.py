"""The collector maps HTTP `Ce-*` headers to Kafka `ce_*` headers itself (no CloudEvents SDK parse and re-encode
per event, about ten times cheaper): the records must be byte for byte what the SDK's bindings made, for every
recorded executor event and for the odd headers the SDK accepts or refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.v1.event import CloudEvent
from feedback.cloudevents_format import RawDataFormat
from feedback.collector.core import CaptureRecord, Rejection, build_record
from feedback.redaction import Redactor

from tests.recordings import sources

NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
BASE = {
    "Ce-Type": "io.seldon.serving.inference.request",
    "Ce-Id": "id-1",
    "Ce-Source": "http://pod:8000/",
    "Ce-Specversion": "1.0",
    "Ce-Requestid": "puid-1",
    "Ce-Modelid": "classifier",
    "Content-Type": "application/json",
}
BODY = b'{"data": {"ndarray": ["x"]}}'


def sdk_headers(headers: dict[str, str], body: bytes) -> list[tuple[str, bytes]] | None:
    """The Kafka headers the SDK made from the same request (the collector's former code path)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        event = ce_http.from_binary(ce_http.HTTPMessage(headers=lowered, body=body), RawDataFormat(), CloudEvent)
    except (BaseCloudEventException, ValueError, TypeError):
        return None
    attributes: dict[str, Any] = dict(event.get_attributes())
    attributes.setdefault("datacontenttype", "application/json")
    attributes["transport"] = "rest"
    attributes.setdefault("time", NOW)
    message = ce_kafka.to_binary(CloudEvent(attributes, body), RawDataFormat(), key_mapper=lambda _: "k")
    return sorted(message.headers.items())


def ours(headers: dict[str, str], body: bytes) -> CaptureRecord | Rejection:
    return build_record(headers, body, max_body_bytes=1 << 22, redactor=Redactor(), now=NOW)


VARIANTS = [
    {},
    {"Ce-Time": "2024-05-01T12:00:00.100Z"},
    {"Ce-Time": "2024-05-01T12:00:00Z"},
    {"Ce-Time": "2024-05-01T14:00:00.123456+02:00"},
    {"Ce-Time": "2024-05-01T12:00:00.1234567Z"},
    {"Ce-Extra": "a%20b"},
    {"Ce-Inferenceservicename": "text-classifier", "Ce-Namespace": "seldon", "Ce-Endpoint": "default"},
    {"Ce-Abc": "x"},
]


@pytest.mark.parametrize("extra", VARIANTS)
def test_headers_are_those_the_sdk_made(extra: dict[str, str]) -> None:
    headers = {**BASE, **extra}
    record = ours(headers, BODY)
    assert isinstance(record, CaptureRecord), record
    expected = sdk_headers(headers, BODY)
    assert expected is not None
    if "Ce-Time" not in headers:  # the SDK stamped its own "now"; the collector stamps its clock's
        expected = [(name, value) for name, value in expected if name != "ce_time"]
        expected = sorted([*expected, ("ce_time", b"2024-05-01T12:00:00.123456Z")])
    assert record.headers == expected
    assert record.key == b"puid-1" and record.value == BODY


@pytest.mark.parametrize(
    "extra",
    [
        {"Ce-Some-Thing": "x"},  # extension names are lower-case letters and digits
        {"Ce-Subject": ""},
        {"Ce-Id": ""},
        {"Ce-Specversion": "0.3"},
        {"Ce-Source": ""},
    ],
)
def test_what_the_sdk_refused_is_refused_with_a_reason(extra: dict[str, str]) -> None:
    headers = {key: value for key, value in {**BASE, **extra}.items()}
    if extra.get("Ce-Source") == "":
        headers.pop("Ce-Source")
    assert sdk_headers(headers, BODY) is None
    rejection = ours(headers, BODY)
    assert isinstance(rejection, Rejection) and rejection.reason == "invalid_cloudevent", rejection
    assert len(rejection.message) > 30


def test_every_recorded_rest_event_gives_the_sdk_headers() -> None:
    events = [event for name, group in sources().items() if name != "kafka-log" for event in group]
    http = [event for event in events if event.route == "collector" and not event.grpc]
    assert len(http) > 20
    for event in http:
        headers = dict(event.headers)
        record = ours(headers, event.body)
        if isinstance(record, Rejection):  # e.g. the recorded invalid JSON: refused either way
            assert record.reason in ("invalid_json", "empty_body"), (event.id, record)
            continue
        expected = sdk_headers(headers, event.body)
        assert expected is not None, event.id
        if "Ce-Time" not in headers:
            expected = sorted(
                [*(h for h in expected if h[0] != "ce_time"), ("ce_time", b"2024-05-01T12:00:00.123456Z")]
            )
        assert record.headers == expected, event.id
