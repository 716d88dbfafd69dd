"""No personal data where it should not be (issue 18), on the real local servers.

What: one pipeline (its own capture and dead-letter topics and index on the shared Kafka and OpenSearch) with a
real collector and indexer at their default redaction settings. Through the collector: three requests with their
responses and one feedback, with an e-mail address and a phone number in payload values, in a JSON key, in the
request id (the client's Seldon-Puid) and in Ce-Subject, plus one poison request (more rows than
INDEXER_MAX_INSTANCES). Straight to Kafka, as the executor's direct logging writes them: two requests with their
responses carrying another e-mail address and phone number the same ways, and two poison messages (not JSON;
an event type holding the e-mail address).
Waits: until the indexer committed the capture topic to its end and the index holds the five documents.
Asserts: exact counts (5 documents, one per request id, each joined with its response; 3 dead letters with their
reasons); then the raw bytes of every message of the capture and dead-letter topics, every document of the index
and every file of the run directory (server data, translogs, every log) hold neither person's data. The only
allowed place is the capture topic (and its partition files) for the direct-logged person: the executor writes it
there, before any of our code runs, and finding it there also proves the byte search finds what it looks for.
Cleanup: the pipeline's processes are stopped by the fixture; topics and index are unique to this test.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import requests
from confluent_kafka import Producer
from feedback.redaction import redactor_from_env

from devstack.runtime.process import wait_until
from devstack.servers.model import ModelServer
from tests.fixtures.engine import Engines, predictor_for
from tests.fixtures.feedback import T0_US, FeedbackPipeline, WireRecord, direct_record, http_event

DEFAULTS = redactor_from_env({}, "COLLECTOR")  # what both services run with here (no REDACT_* variable set)
RESPONSE = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.2, 0.8]]}, "meta": {}}
INDEXED_TIMEOUT_S = 180.0


def person(token: str, name: str, domain: str, phone_prefix: str) -> dict[str, str]:
    email = f"{name}.{token}@{domain}"
    phone = f"{phone_prefix}{int(token[:4], 16) % 10_000:04d}"
    return {"email": email, "phone": phone}


def needles(pii: dict[str, str]) -> list[bytes]:
    """What must not appear: the address, its local part, the number and its last digits as typed."""
    return [
        pii["email"].encode(),
        pii["email"].split("@")[0].encode(),
        pii["phone"].encode(),
        pii["phone"][-9:].encode(),
    ]


def found(data: bytes, pii: dict[str, str]) -> list[bytes]:
    return [needle for needle in needles(pii) if needle in data]


def message_bytes(message: Any) -> bytes:
    headers = b"".join(name.encode() + (value or b"") for name, value in message.headers() or [])
    return (message.key() or b"") + (message.value() or b"") + headers


def collector_events(pii: dict[str, str]) -> tuple[list[Any], list[str]]:
    email, phone = pii["email"], pii["phone"]
    events, ids = [], []
    for i in range(3):
        request_id = f"order-{i}:{email}"
        ids.append(request_id)
        request = {
            "data": {"names": ["text"], "ndarray": [f"please call {phone} or write to {email}"]},
            "meta": {"tags": {email: phone, "channel": "web"}},
        }
        events.append(http_event("request", request_id, request, T0_US + i * 1000))
        events.append(http_event("response", request_id, RESPONSE, T0_US + i * 1000 + 500))
        if i == 0:
            feedback = {"request": request, "response": RESPONSE, "truth": {"data": {"ndarray": [[0, 1]]}}, "reward": 1}
            events.append(http_event("feedback", request_id, feedback, T0_US + 5000))
    rows = [[f"row {n}: {email} {phone}"] for n in range(3)]  # three instances, INDEXER_MAX_INSTANCES=2: poison
    events.append(http_event("request", f"big:{email}", {"data": {"ndarray": rows}}, T0_US + 9000))
    for event in events:
        event.headers["Ce-Subject"] = f"customer {phone}"
    return events, ids


def direct_records(pii: dict[str, str]) -> tuple[list[WireRecord], list[str]]:
    email, phone = pii["email"], pii["phone"]
    records, ids = [], []
    t0_ms = T0_US // 1000
    for i in range(2):
        request_id = f"stream-{i}:{email}"
        ids.append(request_id)
        request = {"data": {"ndarray": [f"text me at {phone}, {email}"]}, "meta": {"tags": {phone: email}}}
        records.append(direct_record("request", request_id, request, t0_ms + i))
        records.append(direct_record("response", request_id, RESPONSE, t0_ms + i + 1))
    not_json = direct_record("request", f"broken:{email}", {}, t0_ms + 10)
    records.append(not_json.with_value(f'{{"data": {{"ndarray": ["{email} {phone}"'.encode()))
    odd_type = direct_record("request", "odd-type-1", {"data": {"ndarray": [phone]}}, t0_ms + 11)
    records.append(odd_type.with_header("type", f"io.seldon.serving.{email}".encode()))
    return records, ids


def run_files(run_dir: Path) -> list[Path]:
    return sorted(path for path in run_dir.rglob("*") if path.is_file())


def test_pii_in_values_keys_headers_and_poison_messages_reaches_no_topic_index_or_log(
    feedback_pipeline: FeedbackPipeline, run_dir: Path
) -> None:
    pipeline = feedback_pipeline
    token = uuid.uuid4().hex[:8]
    via_collector = person(token, "alice", "example.com", "+44 20 7946 ")
    via_kafka = person(token[::-1], "bob", "example.org", "+1 415 555 ")

    collector = pipeline.collector()
    indexer = pipeline.indexer(max_instances="2")
    events, collector_ids = collector_events(via_collector)
    session = requests.Session()
    for event in events:
        answer = session.post(collector.url, data=event.body, headers=event.headers, timeout=30)
        assert answer.status_code == 200, f"{event.kind}: {answer.status_code} {answer.text[:300]}"
        assert via_collector["email"] not in answer.text, "the collector answers with the redacted request id"
    records, direct_ids = direct_records(via_kafka)
    pipeline.produce(records)

    pipeline.wait_for(
        lambda: pipeline.committed_to_end() and pipeline.count() == 5, INDEXED_TIMEOUT_S, "5 documents, all committed"
    )

    # exact counts: one document per request id, joined; exactly the three poison messages dead-lettered
    documents = pipeline.by_key()
    expected_ids = {DEFAULTS.redact_request_id(request_id) for request_id in collector_ids + direct_ids}
    assert set(documents) == {(request_id, 0) for request_id in expected_ids}
    assert len(expected_ids) == 5, "distinct people's ids stay distinct after redaction"
    for key, document in documents.items():
        assert document.get("predicted_label") == "t:1" and document.get("input_text"), f"{key} not joined"
    assert documents[(DEFAULTS.redact_request_id(collector_ids[0]), 0)].get("truth_label") == "t:1"
    dead = pipeline.read_topic(pipeline.dead_letter_topic)
    reasons = sorted(dict(message.headers())["dlq-reason"].decode() for message in dead)
    assert reasons == ["invalid_json", "too_many_instances", "unknown_type"]
    assert indexer.metric("feedback_indexer_dead_lettered_total") == 3
    assert collector.metric("feedback_collector_events_redacted_total") == len(events)

    # topics: the capture topic holds the direct-logged person only (written by the executor), the dead letters none
    capture = pipeline.read_topic(pipeline.topic)
    assert len(capture) == len(events) + len(records)
    for message in capture:
        assert not found(message_bytes(message), via_collector), "collector-path PII in the capture topic"
    assert any(found(message_bytes(m), via_kafka) for m in capture), "control: the byte search finds direct PII"
    for message in dead:
        data = message_bytes(message)
        assert not found(data, via_collector) and not found(data, via_kafka), f"PII in a dead letter: {data[:300]!r}"

    # the index: every stored document, raw as the engine returns it
    requests.post(f"{pipeline.search.url}/{pipeline.index}/_refresh", timeout=30).raise_for_status()
    search = requests.post(f"{pipeline.search.url}/{pipeline.index}/_search", json={"size": 100}, timeout=30)
    search.raise_for_status()
    assert json.loads(search.content)["hits"]["total"]["value"] == 5
    assert not found(search.content, via_collector) and not found(search.content, via_kafka), "PII in the index"

    # every file of the run: logs of the collector, indexer, Kafka and OpenSearch, their data and translogs
    pipeline.stop_all()  # flush and close the services' logs before reading them
    capture_partitions = {f"{pipeline.topic}-{partition}" for partition in range(pipeline.partitions)}
    files = run_files(run_dir)
    logs = [path for path in files if path.suffix == ".log" or "log" in path.name]
    assert collector.log_path in files and indexer.log_path in files
    assert indexer.log_path.read_text().count("dead-lettered") == 3, "the log lines that quote reasons were written"
    leaks = []
    for path in files:
        try:
            data = path.read_bytes()
        except (FileNotFoundError, PermissionError):
            continue  # a server's temporary file that went away while the tree was listed
        if found(data, via_collector):
            leaks.append(f"{path} (collector-path PII)")
        if found(data, via_kafka) and path.parent.name not in capture_partitions:
            leaks.append(f"{path} (direct-logged PII)")
    assert not leaks, f"PII found in {len(leaks)} file(s) of the run: {leaks[:10]}"
    in_partitions = [
        path for path in files if path.parent.name in capture_partitions and found(path.read_bytes(), via_kafka)
    ]
    assert in_partitions, "control: the file search finds the direct-logged PII in the capture topic's own files"
    assert len(logs) >= 4, f"expected the logs of collector, indexer, Kafka and OpenSearch, found {logs}"


def index_bytes(search_url: str, index: str) -> bytes:
    requests.post(f"{search_url}/{index}/_refresh", timeout=30)
    answer = requests.post(f"{search_url}/{index}/_search", json={"size": 1000}, timeout=30)
    return b"" if answer.status_code == 404 else answer.content


def test_pii_sent_through_the_engine_reaches_no_topic_index_or_log_we_write(
    feedback_pipeline: FeedbackPipeline, engines: Engines, model_server: ModelServer, run_dir: Path
) -> None:
    """Through the executor-compatible engine and the real model (seldon-core-microservice), logging to the
    collector: a REST prediction and its feedback with PII in the text and the Seldon-Puid, a streaming input
    message (Kafka server type) with PII in its value and Seldon-Puid header, and a body that is not JSON on both
    servers (the engine logs it, the model answers 400, the collector refuses it, the streaming engine logs the
    failure). Waits for the two documents, the REST one with its feedback; then the capture, dead-letter and output
    topics, the index and every file of the run hold no PII. Only the input topic (and its files) may: the client
    wrote it there."""
    pipeline = feedback_pipeline
    token = uuid.uuid4().hex[:8]
    pii = person(token, "carol", "example.net", "+49 30 1234 ")
    email, phone = pii["email"], pii["phone"]
    rest_id, stream_id = f"web-{token}:{email}", f"stream-{token}:{email}"
    in_topic, out_topic = f"{pipeline.name}-in", f"{pipeline.name}-out"
    pipeline.kafka.create_topics([in_topic, out_topic])
    collector = pipeline.collector()
    pipeline.indexer()
    predictor = predictor_for(model_server.http_port, model_server.grpc_port, collector.url)
    engine = engines.start(predictor)
    streaming = engines.start(
        predictor,
        deployment=f"streaming-{token}",
        server_type="kafka",
        env={"KAFKA_BROKER": pipeline.kafka.bootstrap, "KAFKA_INPUT_TOPIC": in_topic, "KAFKA_OUTPUT_TOPIC": out_topic},
    )

    text = {"data": {"ndarray": [f"great product, mail {email} or call {phone}"]}}
    answer = requests.post(
        f"{engine.url}/api/v1.0/predictions", json=text, headers={"Seldon-Puid": rest_id}, timeout=60
    )
    assert answer.status_code == 200, answer.text[:300]
    feedback = {"request": text, "response": answer.json(), "truth": {"data": {"ndarray": [[0, 1]]}}, "reward": 1}
    answer = requests.post(
        f"{engine.url}/api/v1.0/feedback", json=feedback, headers={"Seldon-Puid": rest_id}, timeout=60
    )
    assert answer.status_code == 200, answer.text[:300]
    broken = f'{{"data": {{"ndarray": ["{email} {phone}"'.encode()
    answer = requests.post(
        f"{engine.url}/api/v1.0/predictions",
        data=broken,
        headers={"Seldon-Puid": f"broken-{token}:{email}", "Content-Type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 400, "the model refuses a body that is not JSON"
    producer = Producer({"bootstrap.servers": pipeline.kafka.bootstrap})
    # the executor copies the input's key to its answer (its contract), so the key carries no PII here
    producer.produce(in_topic, json.dumps(text).encode(), b"k-good", headers=[("Seldon-Puid", stream_id.encode())])
    producer.produce(in_topic, broken, b"broken", headers=[("Seldon-Puid", f"sbroken-{token}:{email}".encode())])
    assert producer.flush(30) == 0

    ids = {DEFAULTS.redact_request_id(rest_id), DEFAULTS.redact_request_id(stream_id)}

    def landed() -> bool:
        if not pipeline.committed_to_end() or pipeline.count() != 2:
            return False
        documents = {source["request_id"]: source for source in (hit["_source"] for hit in pipeline.documents())}
        return set(documents) == ids and "truth_label" in documents[DEFAULTS.redact_request_id(rest_id)]

    wait_until(landed, INDEXED_TIMEOUT_S, "the REST and the streaming document, the REST one with its feedback")
    assert collector.metric("feedback_collector_events_rejected_total", reason="invalid_json") == 2
    assert streaming.metric("seldon_engine_kafka_failures_total", reason="model_400") == 1
    assert len(pipeline.read_topic(pipeline.dead_letter_topic)) == 0

    for topic in (pipeline.topic, pipeline.dead_letter_topic, out_topic):
        for message in pipeline.read_topic(topic):
            assert not found(message_bytes(message), pii), f"PII in topic {topic}"
    assert len(pipeline.read_topic(out_topic)) == 1, "the streaming answer of the good message only"
    assert any(found(message_bytes(m), pii) for m in pipeline.read_topic(in_topic)), "control: the client's input"
    assert not found(index_bytes(pipeline.search.url, pipeline.index), pii), "PII in the index"

    pipeline.stop_all()
    engines.stop_all()
    allowed = {f"{in_topic}-{partition}" for partition in range(64)}
    leaks = []
    for path in run_files(run_dir):
        try:
            data = path.read_bytes()
        except (FileNotFoundError, PermissionError):
            continue
        if found(data, pii) and path.parent.name not in allowed:
            leaks.append(str(path))
    assert not leaks, f"PII found in {len(leaks)} file(s) of the run: {leaks[:10]}"
    assert streaming.process is not None
    assert "Failed prediction" in streaming.process.log_path.read_text(), "the engine failure line was written"
