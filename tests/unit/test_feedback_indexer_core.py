"""Indexer pure logic: both capture formats, documents per request id and instance, merge actions, bulk outcomes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from feedback.collector.core import CaptureRecord, build_record
from feedback.indexer.bulk import ItemOutcome, Op, classify_item
from feedback.indexer.core import (
    MERGE_SCRIPT,
    MERGE_SCRIPT_ID,
    CaptureEvent,
    PoisonMessage,
    bulk_action,
    coalesce,
    decode_message,
    document_id,
    document_parts,
    index_template,
    mapping_properties,
    mode_hint,
)
from feedback.redaction import Redactor, build_redactor
from feedback.seldon import EventKind

TYPES = {
    "request": "io.seldon.serving.inference.request",
    "response": "io.seldon.serving.inference.response",
    "feedback": "io.seldon.serving.feedback",
}


def collector_message(kind: str, payload: Any, request_id: str = "puid-1", **headers: str) -> CaptureRecord:
    base = {
        "Ce-Type": TYPES[kind],
        "Ce-Id": "id-1",
        "Ce-Source": "http://pod:8000/",
        "Ce-Specversion": "1.0",
        "Ce-Requestid": request_id,
        "Ce-Modelid": "classifier",
        "Ce-Inferenceservicename": "text-classifier",
        "Ce-Namespace": "seldon",
        "Ce-Endpoint": "default",
        "Ce-Time": "2024-05-01T12:00:00.100Z",
        "Content-Type": "application/json",
    }
    base.update(headers)
    record = build_record(base, json.dumps(payload).encode(), max_body_bytes=1 << 20, redactor=Redactor())
    assert isinstance(record, CaptureRecord)
    return record


def direct_headers(kind: str, request_id: str = "puid-1", **extra: str) -> list[tuple[str, bytes]]:
    headers = {
        "type": TYPES[kind],
        "requestid": request_id,
        "modelid": "classifier",
        "inferenceservicename": "text-classifier-streaming",
        "namespace": "seldon",
        "endpoint": "default",
        "protocol": "seldon",
        "content-type": "application/json",
    }
    headers.update(extra)
    return [(name, value.encode()) for name, value in headers.items()]


def decode_record(record: CaptureRecord) -> CaptureEvent:
    return decode_message(record.headers, record.value, 1714564800999)


def test_collector_format_is_decoded_with_cloudevent_time() -> None:
    event = decode_record(collector_message("request", {"data": {"ndarray": ["hello"]}}))
    assert event.capture_format == "cloudevent"
    assert event.kind is EventKind.REQUEST
    assert (event.request_id, event.node, event.deployment, event.namespace, event.predictor) == (
        "puid-1",
        "classifier",
        "text-classifier",
        "seldon",
        "default",
    )
    assert event.event_time_us == 1714564800100000


def test_direct_kafka_format_is_decoded_with_kafka_timestamp() -> None:
    event = decode_message(direct_headers("response"), b'{"data": {"ndarray": [[0.1, 0.9]]}}', 1714564800999)
    assert event.capture_format == "direct"
    assert event.kind is EventKind.RESPONSE
    assert event.deployment == "text-classifier-streaming"
    assert event.protocol == "seldon"
    assert event.event_time_us == 1714564800999000


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], b"{}", "missing_type"),
        (None, b"{}", "missing_type"),
        (direct_headers("request", **{"type": "io.seldon.serving.inference.drift"}), b"{}", "unknown_type"),
        ([(n, v) for n, v in direct_headers("request") if n != "requestid"], b"{}", "missing_request_id"),
        (direct_headers("request"), b"", "empty_payload"),
        (direct_headers("request"), None, "empty_payload"),
        (direct_headers("request"), b"{not json", "invalid_json"),
        # Python's json accepts NaN/Infinity; the search engine refuses the whole bulk request holding one
        (direct_headers("request"), b'{"data": {"ndarray": [[NaN, 1]]}}', "invalid_json"),
        (direct_headers("request"), b'{"data": {"ndarray": [[-Infinity]]}}', "invalid_json"),
        # a lone surrogate escape: the search client cannot encode it (UnicodeEncodeError would crash the indexer)
        (direct_headers("request"), b'{"data": {"ndarray": ["bad \\uD800 text"]}}', "invalid_json"),
        # nested too deep: RecursionError in json (a crash) or a whole bulk request refused by the search engine
        (direct_headers("request"), b"[" * 5000 + b"]" * 5000, "invalid_json"),
        # huge integers: ValueError above 4300 digits, OverflowError in float(); the engine refuses > 1000 chars
        (direct_headers("response"), b'{"data": {"ndarray": [[' + b"9" * 5000 + b"]]}}", "invalid_json"),
        (direct_headers("response"), b'{"data": {"ndarray": [[-' + b"9" * 400 + b", 1]]}}", "invalid_json"),
        (direct_headers("response"), b'{"data": {"ndarray": [[1e400, 1]]}}', "invalid_json"),  # float overflow
        (direct_headers("request"), b'{"a":' * 300 + b"1" + b"}" * 300, "invalid_json"),
        (direct_headers("request"), b"\xff\xfe\x00", "not_utf8"),
        (
            direct_headers("request", **{"content-type": "application/protobuf"}),
            b"\x08\x01",
            "unsupported_content_type",
        ),
        ([("type", b"\xff")], b"{}", "invalid_header"),
        ([("ce_type", TYPES["request"].encode()), ("ce_requestid", b"x")], b"{}", "invalid_cloudevent"),
    ],
)
def test_poison_messages_have_a_reason(headers: Any, value: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonMessage) as error:
        decode_message(headers, value, 0)
    assert error.value.reason == reason


def fields_of(kind: str, payload: Any, **headers: str) -> list[dict[str, Any]]:
    event = decode_record(collector_message(kind, payload, **headers))
    return [part.fields for part in document_parts(event, ("text-classifier-streaming",))]


def test_request_with_two_texts_gives_two_instances() -> None:
    docs = fields_of("request", {"data": {"ndarray": ["good", "bad"]}})
    assert [doc["input_text"] for doc in docs] == ["good", "bad"]
    assert [doc["instance"] for doc in docs] == [0, 1]
    assert all(doc["request_time"] == "2024-05-01T12:00:00.100000Z" for doc in docs)
    assert all(doc["request_time_us"] == 1714564800100000 for doc in docs)
    assert [doc["request_raw"] for doc in docs] == [{"data": {"ndarray": ["good"]}}, {"data": {"ndarray": ["bad"]}}]


def test_response_gives_class_names_probabilities_and_prediction() -> None:
    docs = fields_of("response", {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.2, 0.8], [0.7, 0.3]]}})
    assert docs[0]["class_names"] == ["t:0", "t:1"]
    assert docs[0]["probabilities"] == [0.2, 0.8]
    assert (docs[0]["predicted_label"], docs[0]["predicted_index"], docs[0]["predicted_score"]) == ("t:1", 1, 0.8)
    assert (docs[1]["predicted_label"], docs[1]["predicted_index"], docs[1]["predicted_score"]) == ("t:0", 0, 0.7)


def test_batch_tags_are_read_including_the_old_nested_form() -> None:
    tags = {"batch_id": "b-7", "batch_instance_id": "puid-1", "batch_index": 41.0}
    for meta in ({"tags": tags}, {"tags": {"tags": tags}}):
        docs = fields_of("request", {"data": {"ndarray": [["text"]]}, "meta": meta})
        assert (docs[0]["batch_id"], docs[0]["batch_instance_id"], docs[0]["batch_index"]) == ("b-7", "puid-1", 41)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"model_version": "1.0.0+fc1cf57485e7"}, "1.0.0+fc1cf57485e7"),  # as the recorded 1.17.1 response has it
        ({"model_version": " 2 "}, "2"),
        ({"model_version": 3}, "3"),
        ({"model_version": ""}, None),
        ({"model_version": True}, None),
        ({"model_version": ["1"]}, None),
        ({"other": "x"}, None),
    ],
)
def test_the_model_version_comes_from_the_response_tags(tags: dict, expected: str | None) -> None:
    """The monitor compares each model version with its own training profile, so the version must be indexed."""
    [doc] = fields_of("response", {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.2, 0.8]]}, "meta": {"tags": tags}})
    assert doc.get("model_version") == expected
    assert "model_version" in mapping_properties()


def test_feedback_gives_truth_per_instance_and_reward() -> None:
    docs = fields_of("feedback", {"truth": {"data": {"ndarray": [[1], [0]]}}, "reward": 1})
    assert [(doc["truth"], doc["truth_index"], doc["reward"]) for doc in docs] == [("1", 1, 1.0), ("0", 0, 1.0)]
    one_hot = fields_of("feedback", {"truth": {"data": {"ndarray": [[0, 1]]}}})
    assert (one_hot[0]["truth"], one_hot[0]["truth_index"]) == ("1", 1)
    labelled = fields_of("feedback", {"truth": {"data": {"ndarray": ["spam"]}}, "reward": 0})
    assert labelled[0]["truth"] == "spam" and "truth_index" not in labelled[0]


@pytest.mark.parametrize(
    ("payload", "texts"),
    [
        ({"strData": "one text"}, ["one text"]),
        ({"data": {"tensor": {"shape": [2, 1], "values": [1.0, 2.0]}}}, [None, None]),
        ({"data": {"tensor": {"shape": [10**12, 1], "values": [1.0]}}}, [None]),  # shape lies: rows from values
        ({"data": {"tensor": {"shape": 2, "values": [1.0, 2.0]}}}, [None, None]),  # not a list: no TypeError
        ({"inputs": [{"shape": 1.5, "data": ["x"]}]}, ["x"]),
        ({"instances": ["a", "b", "c"]}, ["a", "b", "c"]),
        ({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]}]}, ["x", "y"]),
        ({"jsonData": {"text": "inside json"}}, ["inside json"]),
        ({"meta": {}}, [None]),
    ],
)
def test_protocol_variants(payload: dict[str, Any], texts: list[str | None]) -> None:
    docs = fields_of("request", payload)
    assert [doc.get("input_text") for doc in docs] == texts


def test_mode_hint_from_the_listed_streaming_deployments() -> None:
    listed = ["text-classifier-streaming", "reddit-kafka"]
    assert mode_hint("text-classifier-streaming", listed) == "streaming"
    assert mode_hint("reddit-kafka", listed) == "streaming"
    assert mode_hint("text-classifier", listed) == "realtime"
    assert mode_hint(None, listed) == "realtime"
    # Only listed names: a name that merely looks like a streaming one is not taken for one.
    assert mode_hint("other-streaming", listed) == "realtime"
    assert mode_hint("text-classifier-streaming", []) == "realtime"


def test_document_ids_are_deterministic_and_bounded() -> None:
    assert document_id("puid-1", "classifier", 0) == "puid-1:classifier:0"  # ids without ':' or '%' are unchanged
    long_id = document_id("x" * 600, "classifier", 3)
    assert long_id.startswith("sha256-") and long_id == document_id("x" * 600, "classifier", 3)
    assert document_id("x" * 600, "classifier", 3) != document_id("x" * 600, "classifier", 4)


def test_document_ids_of_parts_containing_the_separator_do_not_collide() -> None:
    # request "a:b" on node "c" and request "a" on node "b:c" were both "a:b:c:0", one document for two requests
    assert document_id("a:b", "c", 0) != document_id("a", "b:c", 0)
    assert document_id("a:b", "c", 0) == "a%3Ab:c:0"
    assert document_id("a%3Ab", "c", 0) != document_id("a:b", "c", 0)  # the escape character is escaped too


def test_coalesced_parts_are_the_same_for_any_order_and_repetition() -> None:
    events = [
        decode_record(collector_message("request", {"data": {"ndarray": ["a", "b"]}})),
        decode_record(collector_message("response", {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.4, 0.6]] * 2}})),
        decode_record(collector_message("feedback", {"truth": {"data": {"ndarray": [1, 0]}}, "reward": 1})),
    ]
    parts = [part for event in events for part in document_parts(event, ())]
    expected = {part.doc_id: part.fields for part in coalesce(enumerate(parts))}
    rng = random.Random(7)
    for _ in range(20):
        shuffled = parts + rng.sample(parts, 3)
        rng.shuffle(shuffled)
        assert {part.doc_id: part.fields for part in coalesce(enumerate(shuffled))} == expected
    assert len(expected) == 2


def test_bulk_action_is_an_idempotent_scripted_upsert() -> None:
    event = decode_record(collector_message("request", {"data": {"ndarray": ["a"]}}))
    (part,) = coalesce((0, part) for part in document_parts(event, ()))
    action = bulk_action(part, "seldon-feedback")
    assert action["_op_type"] == "update" and action["_id"] == "puid-1:classifier:0"
    assert action["scripted_upsert"] is True and action["upsert"] == {}
    assert action["script"]["id"] == MERGE_SCRIPT_ID and "source" not in action["script"]
    assert action["script"]["params"]["doc"]["input_text"] == "a"
    assert action["script"]["params"]["mode_hint"] == "realtime"
    assert action["retry_on_conflict"] > 0
    assert "latency_ms" in MERGE_SCRIPT and "'batch'" in MERGE_SCRIPT


def test_indexer_redaction_for_direct_kafka_events() -> None:
    redactor = build_redactor([], ["email"], [], patterns_variable="INDEXER_REDACT_PATTERNS")
    event = decode_message(direct_headers("request"), b'{"data": {"ndarray": ["mail x@y.com"]}}', 1, redactor)
    (part,) = document_parts(event, ())
    assert part.fields["input_text"] == "mail [REDACTED:email]"
    assert "x@y.com" not in json.dumps(part.fields)


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (200, None, ItemOutcome.OK),
        (201, None, ItemOutcome.OK),
        (429, {"type": "es_rejected_execution_exception"}, ItemOutcome.RETRY),
        (503, {"type": "unavailable_shards_exception"}, ItemOutcome.RETRY),
        (409, {"type": "version_conflict_engine_exception"}, ItemOutcome.RETRY),
        (403, {"type": "cluster_block_exception", "reason": "index read-only / allow delete"}, ItemOutcome.RETRY),
        (400, {"type": "mapper_parsing_exception"}, ItemOutcome.PERMANENT),
        (400, {"type": "document_parsing_exception"}, ItemOutcome.PERMANENT),
        # the immense-term refusal the poison test provokes: the document's fault
        (
            400,
            {
                "type": "illegal_argument_exception",
                "reason": "Document contains at least one immense term in field=class_names",
                "caused_by": {"type": "max_bytes_length_exceeded_exception"},
            },
            ItemOutcome.PERMANENT,
        ),
        # an illegal argument whose cause is not the document: never dead-lettered at once
        (400, {"type": "illegal_argument_exception", "caused_by": {"type": "x"}}, ItemOutcome.UNKNOWN),
        # a cluster that forbids scripts in the update context: the cluster's fault, not the document's
        (
            400,
            {"type": "illegal_argument_exception", "reason": "cannot execute scripts using [update] context"},
            ItemOutcome.REFUSED,
        ),
        (
            404,
            {"type": "resource_not_found_exception", "reason": "unable to find script [seldon-feedback-merge-x]"},
            ItemOutcome.SCRIPT_MISSING,
        ),
        (400, {"type": "script_exception", "caused_by": {"type": "mapper_parsing_exception"}}, ItemOutcome.PERMANENT),
        (400, {"type": "script_exception", "caused_by": {"type": "null_pointer_exception"}}, ItemOutcome.UNKNOWN),
        (401, {"type": "security_exception"}, ItemOutcome.UNKNOWN),
    ],
)
def test_bulk_item_classification(status: int, error: Any, outcome: ItemOutcome) -> None:
    assert classify_item(status, error) is outcome


def test_a_conflict_on_create_means_the_document_exists_and_on_update_a_retry() -> None:
    assert classify_item(409, {"type": "version_conflict_engine_exception"}, Op.CREATE) is ItemOutcome.EXISTS
    assert classify_item(409, {"type": "version_conflict_engine_exception"}, Op.INDEX) is ItemOutcome.EXISTS
    assert classify_item(409, {"type": "version_conflict_engine_exception"}, Op.UPDATE) is ItemOutcome.RETRY


def test_index_template_maps_keywords_dates_and_keeps_raw_payloads_unindexed() -> None:
    template = index_template("seldon-feedback", 1, 0)
    assert template["index_patterns"] == ["seldon-feedback", "seldon-feedback-*"]
    mappings = template["template"]["mappings"]["properties"]
    for name in ("request_id", "deployment", "namespace", "predictor", "node", "mode", "batch_id", "predicted_label"):
        assert mappings[name]["type"] == "keyword", name
    for name in ("@timestamp", "request_time", "response_time", "feedback_time"):
        assert mappings[name]["type"] == "date", name
    for name in ("request_raw", "response_raw", "feedback_raw"):
        assert mappings[name] == {"type": "object", "enabled": False}
    assert template["template"]["settings"] == {
        "number_of_shards": 1,
        "number_of_replicas": 0,
        "refresh_interval": "1s",
    }


def test_raw_payload_of_a_multi_row_request_is_cut_to_its_instance() -> None:
    payload = {"data": {"names": ["text"], "ndarray": [["a"], ["b"], ["c"]]}, "meta": {"tags": {"batch_id": "b"}}}
    docs = fields_of("request", payload)
    assert [doc["request_raw"] for doc in docs] == [  # meta once, with instance 0
        {"data": {"names": ["text"], "ndarray": [["a"]]}, "meta": {"tags": {"batch_id": "b"}}},
        {"data": {"names": ["text"], "ndarray": [["b"]]}},
        {"data": {"names": ["text"], "ndarray": [["c"]]}},
    ]
    assert all(doc["batch_id"] == "b" for doc in docs)  # the tags themselves are fields of every instance
    tensor = {"data": {"names": ["t:0", "t:1"], "tensor": {"shape": [2, 2], "values": [0.1, 0.9, 0.8, 0.2]}}}
    docs = fields_of("response", tensor)
    assert docs[1]["response_raw"]["data"]["tensor"] == {"shape": [1, 2], "values": [0.8, 0.2]}
    assert (docs[1]["predicted_label"], docs[1]["predicted_score"]) == ("t:0", 0.8)
    single = {"data": {"ndarray": ["only"]}}
    assert fields_of("request", single)[0]["request_raw"] == single


def test_long_but_bounded_integers_are_valid_json() -> None:
    event = decode_message(direct_headers("request"), b'{"meta": {"tags": {"batch_index": ' + b"9" * 100 + b"}}}", 0)
    assert event.payload["meta"]["tags"]["batch_index"] == int("9" * 100)


def test_surrogate_pair_escapes_are_valid_json() -> None:
    event = decode_message(direct_headers("request"), b'{"data": {"ndarray": ["smile \\ud83d\\ude00"]}}', 0)
    assert event.payload == {"data": {"ndarray": ["smile \U0001f600"]}}


def test_v2_inputs_and_outputs_and_feedback_payloads_are_cut_per_row() -> None:
    v2 = {"inputs": [{"name": "text", "shape": [3, 1], "datatype": "BYTES", "data": ["a", "b", "c"]}]}
    docs = fields_of("request", v2)
    assert [doc["request_raw"]["inputs"][0]["data"] for doc in docs] == [["a"], ["b"], ["c"]]
    assert docs[2]["request_raw"]["inputs"][0]["shape"] == [1, 1]
    feedback = {
        "request": {"data": {"ndarray": ["x", "y"]}},
        "response": {"data": {"ndarray": [[0.1, 0.9], [0.8, 0.2]]}},
        "truth": {"data": {"ndarray": [[1], [0]]}},
        "reward": 1,
    }
    raws = [doc["feedback_raw"] for doc in fields_of("feedback", feedback)]
    assert [raw["truth"]["data"]["ndarray"] for raw in raws] == [[[1]], [[0]]]
    assert [raw["request"]["data"]["ndarray"] for raw in raws] == [["x"], ["y"]]
    assert all(raw["reward"] == 1 for raw in raws)


def test_a_payload_of_more_rows_than_the_limit_is_poison_instead_of_that_many_documents() -> None:
    # 391 KiB of tensor values once became 200,000 bulk items and a 471 MB peak: the pod was killed, no commit
    values = ",".join(["0"] * 200_000)
    payload = ('{"data": {"tensor": {"shape": [200000, 1], "values": [' + values + "]}}}").encode()
    assert len(payload) < 400 * 1024
    event = decode_message(direct_headers("request"), payload, 1)
    with pytest.raises(PoisonMessage) as error:
        document_parts(event, (), max_instances=1000)
    assert error.value.reason == "too_many_instances" and "INDEXER_MAX_INSTANCES=1000" in error.value.detail
    assert len(document_parts(event, (), max_instances=200_000)) == 200_000  # the limit is a setting
