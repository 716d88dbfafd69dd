"""Kafka: the Kafka server type and direct Kafka logging, on the real broker, against kafka/,
kafka-mode-all-outputs.json and kafka-log/all-direct-log-messages.json.

What: an executor (local engine; a real binary when configured) in front of the real model: with `--server_type
kafka` between two fresh topics, 100 keyed messages as recorded (golden-key-000..099), then three with a
`Seldon-Puid` header; with `--log_kafka_broker` the recorded direct-logging traffic (puids golden-direct-*).
Wait: for the outputs / log messages on their topics (bounded).
Assert: 100 outputs, one per input key, no null key, no headers, each the model's answer with no puid in it
(kafka-mode-all-outputs.json summary and output-1..3 field by field); the Seldon-Puid header is the puid logged;
every direct log message as recorded: no key, the same headers in the same order with the same values, request
bytes exact, response and feedback bodies equal as JSON (timing masked).
Cleanup: the engines fixture stops the executors; the topics stay on the test run's broker (own names).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from devstack.servers.kafka import KafkaServer
from devstack.servers.model import ModelServer
from tests.conformance.compare import UUID4, json_problems
from tests.conformance.conftest import Executor
from tests.conformance.recorded import load
from tests.fixtures.engine import RecordingReceiver, predictor_for

pytestmark = pytest.mark.integration

INPUT = b'{"data": {"ndarray": ["This is an input"]}}'


def produce(bootstrap: str, topic: str, messages: list[tuple[str, list[tuple[str, bytes]]]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, headers in messages:
        producer.produce(topic, key=key.encode(), value=INPUT, headers=headers)
    assert producer.flush(30) == 0


def read(bootstrap: str, topic: str, count: int, timeout: float = 120.0) -> list[Any]:
    """The first `count` messages of `topic` (fewer when `timeout` passes first), then a second more to catch extras."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"conformance-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < count:
            found += [m for m in consumer.consume(100, timeout=0.5) if m.error() is None]
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            found += [m for m in consumer.consume(100, timeout=0.2) if m.error() is None]
    finally:
        consumer.close()
    return found


def kafka_engine(
    executor: Executor, model_server: ModelServer, kafka: KafkaServer, receiver: RecordingReceiver
) -> tuple[str, str]:
    token = uuid.uuid4().hex[:6]
    topics = (f"conformance-{token}-in", f"conformance-{token}-out")
    kafka.create_topics(list(topics))
    executor.start(
        predictor_for(model_server.http_port, model_server.grpc_port, receiver.url),
        deployment=f"streaming-{token}",  # its own consumer group: <predictor>.<sdep>.<namespace>
        server_type="kafka",
        env={"KAFKA_BROKER": kafka.bootstrap, "KAFKA_INPUT_TOPIC": topics[0], "KAFKA_OUTPUT_TOPIC": topics[1]},
    )
    return topics


def test_the_kafka_server_type_answers_each_keyed_message_once_as_recorded(
    executor: Executor, model_server: ModelServer, kafka: KafkaServer, recording_receiver: RecordingReceiver
) -> None:
    in_topic, out_topic = kafka_engine(executor, model_server, kafka, recording_receiver)
    keys = [f"golden-key-{i:03d}" for i in range(100)]
    produce(kafka.bootstrap, in_topic, [(key, [("Content-Type", b"application/json")]) for key in keys])
    outputs = read(kafka.bootstrap, out_topic, len(keys))

    recorded = load("kafka-mode-all-outputs.json")
    got_keys = [(m.key() or b"").decode() for m in outputs]
    summary = {
        "produced": len(keys),
        "outputs": len(outputs),
        "distinct_output_keys": len(set(got_keys)),
        "keys_matching_inputs": len(set(got_keys) & set(keys)),
        "missing_keys": sorted(set(keys) - set(got_keys)),
        "null_keys": sum(1 for m in outputs if m.key() is None),
        "outputs_with_headers": sum(1 for m in outputs if m.headers()),
    }
    assert summary == {k: v for k, v in recorded["summary"].items() if k in summary}
    by_key = {(m.key() or b"").decode(): m for m in outputs}
    problems = []
    for name in ("kafka/output-1.json", "kafka/output-2.json", "kafka/output-3.json"):
        want = load(name)
        got = by_key[want["key"]]
        if list(got.headers() or []) != want["headers"]:
            problems.append(f"{name}: headers {got.headers()} != recorded {want['headers']}")
        problems += json_problems(got.value(), want["value"].encode(), name)
        if b'"puid"' in got.value():
            problems.append(f"{name}: the answer carries a puid")
    assert problems == [], "\n".join(problems)
    events = recording_receiver.wait_for(2 * len(keys))
    assert all(UUID4.match(str(e.header("Ce-Requestid"))) for e in events), "no Seldon-Puid header: fresh puids"


def test_a_seldon_puid_header_is_the_messages_puid_and_stays_out_of_the_answer(
    executor: Executor, model_server: ModelServer, kafka: KafkaServer, recording_receiver: RecordingReceiver
) -> None:
    in_topic, out_topic = kafka_engine(executor, model_server, kafka, recording_receiver)
    recorded = load("kafka/with-seldon-puid-header-outputs.json")
    keys = sorted(item["key"] for item in recorded)
    produce(kafka.bootstrap, in_topic, [(key, [("Seldon-Puid", f"puid-of-{key}".encode())]) for key in keys])
    outputs = read(kafka.bootstrap, out_topic, len(keys))
    assert sorted((m.key() or b"").decode() for m in outputs) == keys
    for message in outputs:
        assert message.headers() is None, "recorded: headers null"
        assert b"puid" not in message.value(), "recorded: has_puid_in_value false"
        assert json.loads(message.value())["data"]["names"] == ["t:0", "t:1"]
    events = recording_receiver.wait_for(2 * len(keys))
    assert sorted({str(e.header("Ce-Requestid")) for e in events}) == [f"puid-of-{key}" for key in keys]


def test_direct_kafka_logging_writes_the_recorded_messages(
    executor: Executor, model_server: ModelServer, kafka: KafkaServer
) -> None:
    import requests

    topic = f"conformance-{uuid.uuid4().hex[:6]}-log"
    kafka.create_topics([topic])
    recorded = load("kafka-log/all-direct-log-messages.json")
    engine = executor.start(
        predictor_for(model_server.http_port, model_server.grpc_port, ""),  # a logger without URL
        deployment="text-classifier-directlog",
        extra_args=("--log_kafka_broker", kafka.bootstrap, "--log_kafka_topic", topic),
    )
    sent = {dict(m["headers"])["requestid"]: m for m in recorded if dict(m["headers"])["type"].endswith(".request")}
    for puid, message in sent.items():
        requests.post(
            f"{engine.url}/api/v1.0/predictions",
            data=message["value"].encode(),
            headers={"Content-Type": "application/json", "Seldon-Puid": puid},
            timeout=60,
        )
    feedback = next(m for m in recorded if dict(m["headers"])["type"].endswith("feedback"))
    answer = requests.post(
        f"{engine.url}/api/v1.0/feedback",
        data=feedback["value"].encode(),
        headers={"Content-Type": "application/json", "Seldon-Puid": dict(feedback["headers"])["requestid"]},
        timeout=60,
    )
    assert answer.status_code == 200
    messages = read(kafka.bootstrap, topic, len(recorded))
    assert len(messages) == len(recorded)
    got = {(dict(m.headers())["requestid"].decode(), dict(m.headers())["type"].decode()): m for m in messages}
    problems = []
    for want in recorded:
        headers = dict(want["headers"])
        where = f"kafka-log @{want['offset']} ({headers['type'].rsplit('.', 1)[-1]} {headers['requestid']})"
        message = got.get((headers["requestid"], headers["type"]))
        if message is None:
            problems.append(f"{where}: not logged")
            continue
        if message.key() is not None:
            problems.append(f"{where}: key {message.key()!r}, recorded none")
        as_text = [(k, v.decode()) for k, v in message.headers()]
        if as_text != [tuple(h) for h in want["headers"]]:
            problems.append(f"{where}: headers {as_text} != recorded {want['headers']}")
        if headers["type"].endswith(".response"):
            problems += json_problems(message.value(), want["value"].encode(), where)
        elif message.value() != want["value"].encode():
            problems.append(f"{where}: value {message.value()[:100]!r} != recorded")
    assert problems == [], "\n".join(problems)
