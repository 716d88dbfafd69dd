"""The access table (infra/kafka_access.py) on a real broker with SASL/SCRAM and the StandardAuthorizer: each
client can do what it needs, counted exactly, and each denial the table implies is the broker's own answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from devstack.servers.kafka import KafkaServer
from infra.kafka_access import (
    COLLECTOR_USER,
    EXECUTOR_USER,
    INDEXER_USER,
    MONITOR_USER,
    SMOKE_GROUP_PREFIX,
    SMOKE_USER,
    KafkaNames,
)

pytestmark = pytest.mark.integration

COUNT = 200
TIMEOUT_S = 60.0
DENIED = (
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,  # an idempotent producer of a user who may write no topic at all
)


@pytest.fixture(scope="module")
def names(secure_kafka: KafkaServer) -> Iterator[KafkaNames]:
    token = f"acl-{uuid.uuid4().hex[:6]}"
    names = KafkaNames(
        capture_topic=f"{token}-capture",
        dead_letter_topic=f"{token}-capture-dead-letter",
        input_topic=f"{token}-model_input",
        output_topic=f"{token}-model_output",
        indexer_group=f"{token}-indexer",
        executor_groups=(f"default.{token}-streaming.seldon",),
    )
    secure_kafka.create_topics(
        [names.capture_topic, names.dead_letter_topic, names.input_topic, names.output_topic], partitions=2
    )
    assert secure_kafka.grant(names) > 0
    yield names


def produce(kafka: KafkaServer, user: str, topic: str, count: int) -> list[KafkaError]:
    """Produce `count` records as `user`; returns the delivery errors (empty: all acknowledged)."""
    producer = Producer({**kafka.client_config(user), "enable.idempotence": True, "acks": "all"})
    errors: list[KafkaError] = []
    delivered: list[int] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append(1)

    for i in range(count):
        producer.produce(topic, key=f"k-{i}".encode(), value=f'{{"n": {i}}}'.encode(), on_delivery=on_delivery)
        producer.poll(0)
    try:
        producer.flush(TIMEOUT_S)
    except KafkaException as exc:  # a fatal error: e.g. no producer id for a user allowed to write nowhere
        return [exc.args[0]]
    if not errors:
        assert len(delivered) == count, f"{user}: {len(delivered)} of {count} delivered to {topic}"
    return errors


def read(kafka: KafkaServer, user: str, topic: str, group: str, *, commit: bool = False) -> tuple[int, list[Any]]:
    """Read `topic` from its start to the end offsets seen now as `user` in `group` (assigned partitions; with
    `commit`, commit what was read). Returns (records read, errors the broker answered)."""
    consumer = Consumer(
        {**kafka.client_config(user), "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    )
    errors: list[Any] = []
    try:
        partitions = consumer.list_topics(topic, timeout=TIMEOUT_S).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        count, done = 0, {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + TIMEOUT_S
        while len(done) < len(ends) and time.monotonic() < deadline and not errors:
            for message in consumer.consume(500, 1.0):
                if message.error() is not None:
                    errors.append(message.error())
                    continue
                count += 1
                if message.offset() + 1 >= ends[message.partition()]:
                    done.add(message.partition())
        if not errors:
            assert len(done) == len(ends), f"{user} could not read {topic} to its end within {TIMEOUT_S:.0f} s"
            if commit:
                try:
                    results = consumer.commit(
                        offsets=[TopicPartition(topic, p, end) for p, end in ends.items() if end], asynchronous=False
                    )
                except KafkaException as exc:  # the whole request refused
                    errors.append(exc.args[0])
                else:  # per-partition answers
                    errors.extend(tp.error for tp in results or [] if tp.error is not None)
        return count, errors
    finally:
        consumer.close()


def committed(kafka: KafkaServer, user: str, topic: str, group: str) -> dict[int, int]:
    """The committed offsets of `group` on `topic`, read as `user` without joining the group (as the monitor)."""
    consumer = Consumer({**kafka.client_config(user), "group.id": group, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=TIMEOUT_S).topics[topic].partitions
        offsets = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=TIMEOUT_S)
        return {tp.partition: tp.offset for tp in offsets}
    finally:
        consumer.close()


def denied(errors: list[Any]) -> bool:
    return bool(errors) and all(error.code() in DENIED for error in errors)


def test_collector_writes_the_capture_topic_and_reads_nothing(secure_kafka: KafkaServer, names: KafkaNames) -> None:
    before, _ = read(secure_kafka, "admin", names.capture_topic, f"admin-{uuid.uuid4()}")
    assert produce(secure_kafka, COLLECTOR_USER, names.capture_topic, COUNT) == []
    after, _ = read(secure_kafka, "admin", names.capture_topic, f"admin-{uuid.uuid4()}")
    assert after - before == COUNT  # sent = stored, no duplicates (idempotent producer, no cluster grant needed)

    count, errors = read(secure_kafka, COLLECTOR_USER, names.capture_topic, f"collector-{uuid.uuid4()}")
    assert count == 0 and denied(errors), f"the collector read {count} records ({errors})"
    assert denied(produce(secure_kafka, COLLECTOR_USER, names.dead_letter_topic, 1))
    assert denied(produce(secure_kafka, COLLECTOR_USER, names.output_topic, 1))


def test_indexer_reads_the_capture_topic_in_its_group_and_cannot_write_it(
    secure_kafka: KafkaServer, names: KafkaNames
) -> None:
    assert produce(secure_kafka, COLLECTOR_USER, names.capture_topic, COUNT) == []
    total, _ = read(secure_kafka, "admin", names.capture_topic, f"admin-{uuid.uuid4()}")
    count, errors = read(secure_kafka, INDEXER_USER, names.capture_topic, names.indexer_group, commit=True)
    assert errors == [] and count == total
    offsets = committed(secure_kafka, INDEXER_USER, names.capture_topic, names.indexer_group)
    assert sum(offsets.values()) == total  # its commits landed in its group

    assert produce(secure_kafka, INDEXER_USER, names.dead_letter_topic, 3) == []  # dead letters
    assert denied(produce(secure_kafka, INDEXER_USER, names.capture_topic, 1))
    # another group (e.g. a second consumer of captured data under a guessed name) is refused
    _count, errors = read(secure_kafka, INDEXER_USER, names.capture_topic, f"other-{uuid.uuid4()}", commit=True)
    assert errors and all(error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for error in errors), errors


def test_monitor_reads_offsets_only(secure_kafka: KafkaServer, names: KafkaNames) -> None:
    assert produce(secure_kafka, COLLECTOR_USER, names.capture_topic, 10) == []
    read(secure_kafka, INDEXER_USER, names.capture_topic, names.indexer_group, commit=True)
    expected = committed(secure_kafka, "admin", names.capture_topic, names.indexer_group)
    assert committed(secure_kafka, MONITOR_USER, names.capture_topic, names.indexer_group) == expected

    consumer = Consumer({**secure_kafka.client_config(MONITOR_USER), "group.id": "seldon-feedback-monitor-offsets"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(names.dead_letter_topic, 0), timeout=TIMEOUT_S)
        assert 0 <= low <= high
        times = consumer.offsets_for_times([TopicPartition(names.dead_letter_topic, 0, 0)], timeout=TIMEOUT_S)
        assert times[0].error is None
    finally:
        consumer.close()

    assert denied(produce(secure_kafka, MONITOR_USER, names.capture_topic, 1))
    assert denied(produce(secure_kafka, MONITOR_USER, names.dead_letter_topic, 1))
    count, errors = read(secure_kafka, MONITOR_USER, names.capture_topic, f"monitor-{uuid.uuid4()}")
    assert count == 0 and denied(errors)


def test_executor_streams_input_to_output_and_logs_to_capture(secure_kafka: KafkaServer, names: KafkaNames) -> None:
    assert produce(secure_kafka, SMOKE_USER, names.input_topic, COUNT) == []
    count, errors = read(secure_kafka, EXECUTOR_USER, names.input_topic, names.executor_groups[0], commit=True)
    assert errors == [] and count == COUNT
    assert produce(secure_kafka, EXECUTOR_USER, names.output_topic, COUNT) == []
    assert produce(secure_kafka, EXECUTOR_USER, names.capture_topic, 2) == []  # direct Kafka logging

    count, errors = read(secure_kafka, EXECUTOR_USER, names.capture_topic, f"{names.executor_groups[0]}")
    assert count == 0 and denied(errors)
    assert denied(produce(secure_kafka, EXECUTOR_USER, names.input_topic, 1))


def test_smoke_suite_reads_what_it_checks(secure_kafka: KafkaServer, names: KafkaNames) -> None:
    assert produce(secure_kafka, EXECUTOR_USER, names.output_topic, 5) == []
    assert produce(secure_kafka, COLLECTOR_USER, names.capture_topic, 5) == []
    total, _ = read(secure_kafka, "admin", names.output_topic, f"admin-{uuid.uuid4()}")
    count, errors = read(secure_kafka, SMOKE_USER, names.output_topic, f"{SMOKE_GROUP_PREFIX}{uuid.uuid4()}")
    assert errors == [] and count == total >= 5
    capture_total, _ = read(secure_kafka, "admin", names.capture_topic, f"admin-{uuid.uuid4()}")
    count, errors = read(secure_kafka, SMOKE_USER, names.capture_topic, f"{SMOKE_GROUP_PREFIX}{uuid.uuid4()}")
    assert errors == [] and count == capture_total >= 5
    assert denied(produce(secure_kafka, SMOKE_USER, names.capture_topic, 1))  # no forged capture events


@pytest.mark.parametrize("user,password", [("nobody", "guess"), (COLLECTOR_USER, "wrong-password")])
def test_unknown_user_or_wrong_password_gets_nothing(
    secure_kafka: KafkaServer, names: KafkaNames, user: str, password: str
) -> None:
    config = {**secure_kafka.client_config(COLLECTOR_USER), "sasl.username": user, "sasl.password": password}
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append, "message.timeout.ms": 10000})
    delivery: list[Any] = []
    producer.produce(names.capture_topic, b"forged", on_delivery=lambda err, _msg: delivery.append(err))
    producer.flush(30)
    assert delivery and delivery[0] is not None, "a record was accepted without a valid login"
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors
    with pytest.raises(KafkaException):
        Consumer({**config, "group.id": f"x-{uuid.uuid4()}"}).list_topics(names.capture_topic, timeout=10)
