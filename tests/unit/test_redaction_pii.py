"""Redaction beyond values (issue 18): JSON keys by pattern and key regex, selected CloudEvent/Kafka headers, the
request id's keyed pseudonym, raw payloads of poison messages, the settings' errors; the collector's record and
the indexer's decoding with PII in keys and headers; search and engine error reasons without field values."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from feedback.collector.core import CaptureRecord, build_record
from feedback.config import SettingsError
from feedback.indexer.bulk import error_reason, search_error_detail
from feedback.indexer.core import decode_message
from feedback.redaction import DEFAULT_HEADERS, REDACTED_KEY, Redactor, redactor_from_env

from devstack.engine.predictor import ModelAnswer, ModelRefused, seldon_error_code

EMAIL, PHONE = "alice.smith@example.com", "+44 20 7946 0958"
DEFAULT = redactor_from_env({}, "COLLECTOR")


def redactor(**env: str) -> Redactor:
    return redactor_from_env({f"COLLECTOR_{name}": value for name, value in env.items()}, "COLLECTOR")


# ------------------------------------------------------------------------------------------------ JSON keys


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({EMAIL: 1}, {"[REDACTED:email]": 1}),
        ({"data": {PHONE: "x"}}, {"data": {"[REDACTED:phone]": "x"}}),
        ({"mail of " + EMAIL: [EMAIL]}, {"mail of [REDACTED:email]": ["[REDACTED:email]"]}),
        ({"ndarray": [[0.5, 1]], "names": ["t:0"]}, {"ndarray": [[0.5, 1]], "names": ["t:0"]}),
    ],
)
def test_a_key_that_is_or_holds_an_email_or_phone_is_replaced_and_the_structure_kept(
    document: dict, expected: dict
) -> None:
    assert DEFAULT.redact(document) == expected


def test_keys_that_become_equal_are_numbered_so_no_value_is_lost() -> None:
    document = {"a@example.com": 1, "b@example.org": 2, "c@example.net": 3}
    assert DEFAULT.redact(document) == {"[REDACTED:email]": 1, "[REDACTED:email]#2": 2, "[REDACTED:email]#3": 3}


def test_a_key_matching_a_key_regex_is_replaced_whole_and_its_value_still_redacted() -> None:
    custom = redactor(REDACT_KEY_REGEXES=json.dumps(["^user-[0-9]+$", "customer"]))
    document = {"user-4711": {"note": EMAIL}, "my_customer_id": 5, "user-x": 1}
    assert custom.redact(document) == {REDACTED_KEY: {"note": "[REDACTED:email]"}, f"{REDACTED_KEY}#2": 5, "user-x": 1}


def test_field_names_still_match_the_original_key() -> None:
    custom = redactor(REDACT_FIELDS="token")
    assert custom.redact({"Token": "s3cret", "x": "y"}) == {"Token": "[REDACTED]", "x": "y"}


# ------------------------------------------------------------------------------------------------ headers


def test_default_headers_are_the_ones_a_caller_can_choose() -> None:
    assert DEFAULT.headers == frozenset(DEFAULT_HEADERS)
    for name in ("Ce-Requestid", "ce_requestid", "requestid", "Ce-Traceparent", "tracestate", "ce-subject"):
        assert DEFAULT.redacts_header(name), name
    for name in ("Ce-Modelid", "inferenceservicename", "ce_source", "Ce-Type", "ce_time", "content-type"):
        assert not DEFAULT.redacts_header(name), name


def test_star_selects_every_header_but_the_structural_ones() -> None:
    every = redactor(REDACT_HEADERS="*")
    assert every.redacts_header("Ce-Userid") and every.redacts_header("modelid")
    assert not any(every.redacts_header(name) for name in ("ce_type", "ce_id", "ce_time", "content-type"))
    assert not redactor(REDACT_HEADERS="none").redacts_header("requestid")


def test_a_request_id_with_pii_gets_a_stable_keyed_pseudonym_and_distinct_ids_stay_distinct() -> None:
    first = DEFAULT.redact_request_id(f"order-1:{EMAIL}")
    assert first.startswith("order-1:[REDACTED:email]~") and EMAIL not in first
    assert DEFAULT.redact_request_id(f"order-1:{EMAIL}") == first, "request, response and feedback must still join"
    alice, bob = DEFAULT.redact_request_id("alice@example.com"), DEFAULT.redact_request_id("bob@example.com")
    assert alice != bob, "two people's ids must not merge into one document"
    assert redactor(REDACT_HASH_KEY="k1").redact_request_id(EMAIL) != redactor(REDACT_HASH_KEY="k2").redact_request_id(
        EMAIL
    ), "the pseudonym is keyed"
    assert DEFAULT.redact_request_id("bbc89d3a-8a32-4691-8643-a5e161811a67") == "bbc89d3a-8a32-4691-8643-a5e161811a67"
    assert DEFAULT.redact_request_id(first) == first, "redacting twice (collector, then indexer) changes nothing"


def test_kafka_headers_are_redacted_even_when_not_utf8() -> None:
    headers = [("requestid", EMAIL.encode() + b"\xff"), ("modelid", b"classifier"), ("ce_subject", PHONE.encode())]
    redacted = dict(DEFAULT.redact_kafka_headers(headers))
    assert b"alice" not in redacted["requestid"] and redacted["requestid"].startswith(b"[REDACTED:email]\xff~")
    assert redacted["modelid"] == b"classifier"
    assert redacted["ce_subject"] == b"[REDACTED:phone]"


# ------------------------------------------------------------------------------------------ whole payloads


@pytest.mark.parametrize(
    ("value", "absent"),
    [
        (json.dumps({"data": {"ndarray": [f"call {PHONE}"]}, EMAIL: 1}).encode(), [PHONE, EMAIL]),
        (f'{{"data": {{"ndarray": ["{EMAIL}"'.encode(), [EMAIL]),  # not JSON: redacted as text
        (b"\x00\xff binary " + EMAIL.encode() + b" \xfe", [EMAIL]),  # not UTF-8: bytes around kept
    ],
)
def test_a_poison_payload_is_redacted_whatever_its_shape(value: bytes, absent: list[str]) -> None:
    redacted = DEFAULT.redact_bytes(value)
    assert all(text.encode() not in redacted for text in absent)
    assert b"[REDACTED:" in redacted


def test_a_payload_without_pii_is_kept_byte_for_byte() -> None:
    value = b'{"data": {"ndarray": ["fine"]}}'
    assert DEFAULT.redact_bytes(value) is value


# ---------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDACT_HEADERS": "requestid,ce_type"}, "COLLECTOR_REDACT_HEADERS: 'ce_type' cannot be redacted"),
        ({"REDACT_HEADERS": "request id"}, "COLLECTOR_REDACT_HEADERS: 'request id' is not a header name"),
        ({"REDACT_HEADERS": "requestid,none"}, "COLLECTOR_REDACT_HEADERS: 'none' is not a header name"),
        ({"REDACT_KEY_REGEXES": "user-.*"}, "COLLECTOR_REDACT_KEY_REGEXES must be a JSON array"),
        ({"REDACT_KEY_REGEXES": '["(x"]'}, "COLLECTOR_REDACT_KEY_REGEXES: '(x' is not a valid regular expression"),
        ({"REDACT_PATTERNS": "email,ssn"}, "COLLECTOR_REDACT_PATTERNS: unknown pattern(s) ssn"),
    ],
)
def test_bad_redaction_settings_name_the_variable_and_the_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        redactor(**env)


def test_patterns_none_turns_the_builtin_patterns_off() -> None:
    assert redactor(REDACT_PATTERNS="none").builtins == ()
    assert not redactor(REDACT_PATTERNS="none").text_active


# ------------------------------------------------------------------------------ collector and indexer use


def test_the_collector_record_carries_no_pii_in_key_headers_or_body() -> None:
    headers = {
        "Ce-Type": "io.seldon.serving.inference.request",
        "Ce-Id": "5a0f3c1e-0000-4000-8000-000000000001",
        "Ce-Source": "http://text-classifier-default-0:8000/",
        "Ce-Specversion": "1.0",
        "Ce-Requestid": EMAIL,
        "Ce-Subject": f"call {PHONE}",
        "Content-Type": "application/json",
    }
    body = json.dumps({"data": {"ndarray": [f"write to {EMAIL}"]}, "meta": {"tags": {PHONE: "mobile"}}}).encode()
    record = build_record(headers, body, max_body_bytes=1 << 20, redactor=DEFAULT)
    assert isinstance(record, CaptureRecord) and record.redacted
    wire = record.key + record.value + b"".join(name.encode() + value for name, value in record.headers)
    assert EMAIL.encode() not in wire and PHONE.encode() not in wire
    assert record.key == dict(record.headers)["ce_requestid"] == record.request_id.encode()
    assert record.request_id.startswith("[REDACTED:email]~")


def test_the_indexer_redacts_a_direct_logged_request_id_and_payload() -> None:
    indexer_redactor = redactor_from_env({}, "INDEXER")
    headers = [
        ("type", b"io.seldon.serving.inference.request"),
        ("content-type", b"application/json"),
        ("modelid", b"classifier"),
        ("requestid", EMAIL.encode()),
    ]
    value = json.dumps({"data": {"ndarray": [f"ring {PHONE}"]}, EMAIL: True}).encode()
    event = decode_message(headers, value, 1_714_564_800_000, indexer_redactor)
    assert event.request_id == DEFAULT.redact_request_id(EMAIL), "the collector and the indexer agree on the id"
    assert event.payload == {"data": {"ndarray": ["ring [REDACTED:phone]"]}, "[REDACTED:email]": True}


# ------------------------------------------------------------------------------------ error reasons


OPENSEARCH_MAPPING_ERROR = {
    "type": "mapper_parsing_exception",
    "reason": f"failed to parse field [batch_index] of type [long] in document with id 'x'. Preview of field's "
    f"value: '{EMAIL}'",
    "caused_by": {"type": "illegal_argument_exception", "reason": f'For input string: "{EMAIL}"'},
}


def test_a_search_error_is_described_by_type_and_field_never_by_value() -> None:
    reason = error_reason(OPENSEARCH_MAPPING_ERROR)
    assert reason == "mapper_parsing_exception (field batch_index) caused by illegal_argument_exception"
    detail = search_error_detail(400, {"error": OPENSEARCH_MAPPING_ERROR, "status": 400}, "TransportError")
    assert detail.startswith("TransportError 400: mapper_parsing_exception") and EMAIL not in detail
    assert error_reason(f"odd text with {EMAIL}") == "error" and error_reason(None) == "NoneType"


def test_the_engine_logs_a_model_refusal_by_status_and_seldon_code_only() -> None:
    body = json.dumps(
        {"status": {"code": -1, "info": f"Invalid JSON near {EMAIL}", "reason": "MICROSERVICE_BAD_DATA", "status": 1}}
    ).encode()
    summary = ModelRefused(ModelAnswer(400, body, "application/json")).summary()
    assert summary == f"the model answered 400 (MICROSERVICE_BAD_DATA, {len(body)} bytes)"
    assert seldon_error_code(b"<html>oops " + EMAIL.encode()) is None
    assert seldon_error_code(json.dumps({"status": {"reason": f"free text {EMAIL}"}}).encode()) is None


def test_identifiers_are_not_taken_for_phone_numbers_but_a_phone_beside_one_is() -> None:
    uuid_id, traceparent = (
        "bbc89d3a-8a32-4691-8643-a5e161811a67",
        "00-4172f54a01fe4d35f737e73c3bb27e03-d4c2eef1a9a12a49-00",
    )
    assert DEFAULT.redact_text(f"{uuid_id} {traceparent}") == f"{uuid_id} {traceparent}"
    assert DEFAULT.redact_text(f"{uuid_id} called {PHONE}") == f"{uuid_id} called [REDACTED:phone]"


# ------------------------------------------------------------------------------ the indexer's dead letters


def test_a_poison_message_reaches_the_dead_letter_topic_redacted() -> None:
    from tests.unit.test_feedback_indexer_loop import FakeMessage, ScriptedBackend, feed, make_indexer

    indexer, consumer, dead_letters = make_indexer(ScriptedBackend())
    headers = [("type", b"io.seldon.serving.inference.request"), ("requestid", EMAIL.encode())]
    not_json = FakeMessage(0, headers, f'{{"data": {{"ndarray": ["call {PHONE}"'.encode())
    unknown_type = FakeMessage(1, [("type", f"mail {EMAIL}".encode()), ("requestid", b"r-2")], b'{"a": 1}')
    feed(indexer, consumer, not_json, unknown_type, rounds=2)
    assert [dict(record.headers)["dlq-reason"] for record in dead_letters.records] == [b"invalid_json", b"unknown_type"]
    for record in dead_letters.records:
        wire = (record.value or b"") + b"".join(name.encode() + value for name, value in record.headers)
        assert EMAIL.encode() not in wire and PHONE.encode() not in wire, wire
    first = dict(dead_letters.records[0].headers)
    assert first["requestid"] == DEFAULT.redact_request_id(EMAIL).encode()
    assert b"[REDACTED:phone]" in dead_letters.records[0].value
    assert b"[REDACTED:email]" in dict(dead_letters.records[1].headers)["dlq-detail"]
    assert consumer.stored[-1] == 1, "both are safe once dead-lettered"


def test_a_document_the_search_engine_refuses_is_dead_lettered_with_the_field_not_the_value() -> None:
    from tests.unit.test_feedback_indexer_loop import FakeMessage, ScriptedBackend, direct, feed, make_indexer

    marker = "VALUE-THE-ENGINE-QUOTES"
    error = {**OPENSEARCH_MAPPING_ERROR, "reason": f"failed to parse field [input_text]: '{marker}'"}
    backend = ScriptedBackend(*[lambda op, info, source: (400, error)] * 3)
    indexer, consumer, dead_letters = make_indexer(backend)
    feed(indexer, consumer, FakeMessage(0, *direct("request", "r-1", {"data": {"ndarray": ["x"]}})), rounds=1)
    indexer._write_everything()
    [record] = dead_letters.records
    detail = dict(record.headers)["dlq-detail"]
    assert detail == b"mapper_parsing_exception (field input_text) caused by illegal_argument_exception"
    assert marker.encode() not in detail


# ------------------------------------------------------------------------------------ the collector's log


async def test_the_collector_logs_a_rejection_with_the_request_id_and_reason_redacted(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from feedback.collector.app import create_apps
    from feedback.collector.settings import CollectorSettings

    from tests.unit.test_feedback_collector_app import ENV, MemoryProducer

    producer = MemoryProducer()
    apps = create_apps(CollectorSettings.from_env(ENV), producer)
    await aiohttp_client(apps.ops)  # the ops app starts the producer
    client = await aiohttp_client(apps.events)
    headers = {
        "Ce-Type": f"io.seldon.{EMAIL}",  # unknown type: the reason quotes it
        "Ce-Id": "1",
        "Ce-Source": "http://x/",
        "Ce-Specversion": "1.0",
        "Ce-Requestid": f"order-7:{EMAIL}",
        "Content-Type": "application/json",
    }
    with caplog.at_level("INFO", logger="feedback.collector.app"):
        answer = await client.post("/", data=b'{"data": {"ndarray": ["x"]}}', headers=headers)
    assert answer.status == 400
    assert EMAIL in (await answer.json())["error"], "the sender gets the whole reason"
    [line] = [record.getMessage() for record in caplog.records if "rejected event" in record.getMessage()]
    assert EMAIL not in line and DEFAULT.redact_request_id(f"order-7:{EMAIL}") in line
    assert producer.records == []


def test_the_engine_logs_a_client_chosen_puid_as_a_digest_and_its_own_uuids_as_they_are() -> None:
    from devstack.engine.logger import loggable_puid

    assert loggable_puid("bbc89d3a-8a32-4691-8643-a5e161811a67") == "bbc89d3a-8a32-4691-8643-a5e161811a67"
    digest = loggable_puid(f"user:{EMAIL}")
    assert digest.startswith("puid-sha256:") and EMAIL not in digest and digest == loggable_puid(f"user:{EMAIL}")
