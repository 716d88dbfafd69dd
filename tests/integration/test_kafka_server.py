"""The local Kafka broker is a real one: records with keys and headers go in and come out exactly once."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from devstack.servers.kafka import KafkaServer

pytestmark = pytest.mark.integration

COUNT = 1000


def consume_all(kafka: KafkaServer, topic: str, expected: int, timeout: float = 60.0) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=500, timeout=1.0)
            messages.extend(m for m in batch if m.error() is None)
            if len(messages) >= expected:
                # read a little longer: duplicates would show up here
                messages.extend(m for m in consumer.consume(num_messages=500, timeout=1.0) if m.error() is None)
                break
    finally:
        consumer.close()
    return messages


def produce(kafka: KafkaServer, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "acks": "all"})
    failures = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(err)

    for i in range(count):
        producer.produce(
            topic,
            key=f"key-{i}".encode(),
            value=f'{{"n": {i}}}'.encode(),
            headers=[("ce-requestid", f"req-{i}".encode()), ("n", str(i).encode())],
            on_delivery=on_delivery,
        )
        producer.poll(0)
    assert producer.flush(60) == 0, "producer could not deliver everything within 60 s"
    assert failures == []


def test_thousand_records_with_keys_and_headers_round_trip(kafka: KafkaServer) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=3)
    produce(kafka, topic, COUNT)

    messages = consume_all(kafka, topic, COUNT)

    assert len(messages) == COUNT
    keys = {m.key().decode() for m in messages}
    assert keys == {f"key-{i}" for i in range(COUNT)}  # every record once, no duplicates
    for message in messages:
        n = int(dict(message.headers())["n"])
        assert message.key() == f"key-{n}".encode()
        assert dict(message.headers())["ce-requestid"] == f"req-{n}".encode()
        assert message.value() == f'{{"n": {n}}}'.encode()
    assert {m.partition() for m in messages} == {0, 1, 2}


def test_records_survive_a_broker_restart_on_the_same_port(kafka: KafkaServer) -> None:
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=2)
    produce(kafka, topic, 100)
    port_before = kafka.port

    kafka.stop()
    kafka.start()

    assert kafka.port == port_before
    produce(kafka, topic, 100)
    messages = consume_all(kafka, topic, 200)
    assert len(messages) == 200
    assert len({(m.partition(), m.offset()) for m in messages}) == 200


def test_create_topics_is_idempotent_and_sets_partitions(kafka: KafkaServer) -> None:
    from confluent_kafka.admin import AdminClient

    topic = f"idem-{uuid.uuid4().hex[:8]}"
    kafka.create_topics([topic], partitions=4)
    kafka.create_topics([topic], partitions=4)  # already there: no error

    metadata = AdminClient({"bootstrap.servers": kafka.bootstrap}).list_topics(timeout=10)
    assert len(metadata.topics[topic].partitions) == 4


def test_a_new_server_on_old_data_comes_back_with_its_records_and_ports(tmp_path) -> None:
    first = KafkaServer(tmp_path)
    try:
        first.start()
        first.create_topics(["kept"], partitions=1)
        produce(first, "kept", 10)
    finally:
        first.stop()

    second = KafkaServer(tmp_path)  # e.g. `python -m devstack` run again on the same run dir
    try:
        second.start()
        assert (second.port, second.controller_port) == (first.port, first.controller_port)
        assert len(consume_all(second, "kept", 10, timeout=30)) == 10
    finally:
        second.stop()
