"""The indexer's Kafka adapters: the consumer (manual offset store and commit, cooperative-sticky assignment, an
offset reset is an error the indexer counts) and the dead-letter producer (idempotent, each record waited for
until Kafka acknowledged it, oversized values replaced by a stub, failures resent per record)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from feedback.indexer.settings import IndexerSettings

log = logging.getLogger(__name__)


def consumer_config(settings: IndexerSettings, stats_cb: Callable[[str], None] | None) -> dict[str, Any]:
    """librdkafka settings (https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md).
    Offsets are stored by the indexer only after the search cluster acknowledged the documents, and committed
    synchronously right after: at-least-once delivery, made exactly-once in the index by deterministic ids."""
    config: dict[str, Any] = dict(settings.kafka.client_config())
    config.update(
        {
            "group.id": settings.group_id,
            "client.id": "seldon-feedback-indexer",
            # A committed offset the topic no longer has (retention passed it during an outage) is an error the
            # indexer counts and logs, then resolves by INDEXER_OFFSET_RESET; partitions without a committed offset
            # start at the beginning (RebalanceTracker.on_assign), which loses nothing.
            "auto.offset.reset": "error",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "partition.assignment.strategy": "cooperative-sticky",
            "max.poll.interval.ms": 300_000,
            "session.timeout.ms": int(settings.session_timeout_s * 1000),
            "statistics.interval.ms": 5_000,
        }
    )
    if stats_cb is not None:
        config["stats_cb"] = stats_cb
    return config


class RebalanceTracker:
    """Keeps the set of partitions this consumer owns, commits stored offsets before giving partitions away, and
    drops in-flight work for partitions it lost (another consumer replays them; writes are idempotent)."""

    def __init__(self) -> None:
        self.owned: set[tuple[str, int]] = set()
        self.generation = 0
        # called with (partitions, revoked): True when they are handed over (commit what is safe first), False
        # when lost (drop without committing)
        self.listeners: list[Callable[[set[tuple[str, int]], bool], None]] = []

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions this group never committed start at their beginning (a new group loses nothing); the others
        resume at their committed offset."""
        try:
            committed = consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            log.warning("cannot read committed offsets, resuming from what the broker has: %s", exc)
            committed = partitions
        start = [
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in committed
        ]
        consumer.incremental_assign(start)
        self.owned.update((tp.topic, tp.partition) for tp in partitions)
        self.generation += 1
        log.info("assigned %s", sorted(p for _, p in self.owned))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for listener in self.listeners:
            listener(gone, True)
        commit_stored(consumer)
        self.owned.difference_update(gone)
        self.generation += 1
        log.info("revoked %s", sorted(tp.partition for tp in partitions))

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for listener in self.listeners:
            listener(gone, False)
        self.owned.difference_update(gone)
        self.generation += 1
        lost = [tp.partition for tp in partitions]
        log.warning("lost %s without committing; their in-flight messages will be replayed", lost)


def commit_stored(consumer: Consumer) -> bool:
    """Commit the stored offsets synchronously; False when the commit failed (the offsets stay stored)."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError._NO_OFFSET:
            return True
        log.warning("offset commit failed (will be retried with the next batch): %s", exc)
        return False
    return True


def caught_up(consumer: Consumer) -> bool:
    """True when every assigned partition has been consumed up to the end offset the broker reports now (the
    sweeps wait for that, so a backlog is indexed before anything is declared missing). Partitions nothing was
    consumed from yet count with their committed offset."""
    try:
        assignment = consumer.assignment()
        if not assignment:
            return False
        positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(assignment)}
        unknown = [tp for tp in assignment if positions.get((tp.topic, tp.partition), -1) < 0]
        for tp in consumer.committed(unknown, timeout=5) if unknown else []:
            positions[(tp.topic, tp.partition)] = tp.offset
        for tp in assignment:
            low, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            position = positions.get((tp.topic, tp.partition), -1)
            if high > low and (position < 0 or position < high):
                return False
    except KafkaException as exc:
        log.debug("cannot tell whether the consumer is caught up: %s", exc)
        return False
    return True


def create_consumer(settings: IndexerSettings, stats_cb: Callable[[str], None] | None) -> Consumer:
    return Consumer(consumer_config(settings, stats_cb), logger=log)


GROUP_STEADY = ("up", "steady")  # librdkafka's cgrp state and join_state of a settled member


@dataclass(frozen=True)
class ConsumerStats:
    """What the watchdog and the lag gauge read from one librdkafka statistics report."""

    lags: dict[int, int]  # messages behind the end, per partition with a known lag
    group_steady: bool  # a settled member of its group (with or without partitions)
    group_state: str  # "<state>/<join_state>", for logs
    backlog: int  # messages behind the fetch position of the assigned partitions (0 when unknown)


def consumer_stats(stats_json: str, topic: str) -> ConsumerStats:
    """Parse a statistics report (https://github.com/confluentinc/librdkafka/blob/master/STATISTICS.md)."""
    stats = json.loads(stats_json)
    group = stats.get("cgrp") or {}
    state, join_state = str(group.get("state", "")), str(group.get("join_state", ""))
    backlog = 0
    lags: dict[int, int] = {}
    partitions = stats.get("topics", {}).get(topic, {}).get("partitions", {})
    for key, info in partitions.items():
        partition = int(key)
        if partition < 0 or info.get("fetch_state") in (None, "none", "stopped"):
            continue
        lag = int(info.get("consumer_lag", -1))
        if lag >= 0:
            lags[partition] = lag
        high, position = int(info.get("hi_offset", -1)), int(info.get("app_offset", -1))
        if high >= 0 and position >= 0:
            backlog += max(0, high - position)
        elif high >= 0 and lag > 0:  # nothing consumed yet: behind the committed offset
            backlog += lag
    return ConsumerStats(
        lags=lags,
        group_steady=(state, join_state) == GROUP_STEADY,
        group_state=f"{state or '?'}/{join_state or '?'}",
        backlog=backlog,
    )


def broker_problem(client: Producer | Consumer, topic: str, timeout: float = 5.0) -> str | None:
    """None when a broker answers a metadata request for `topic` through `client`; else what went wrong."""
    try:
        metadata = client.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        return f"no broker answered a metadata request within {timeout:g} s: {exc}"
    if not metadata.brokers:
        return "the metadata answer names no broker"
    return None


@dataclass
class DeadLetterRecord:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    source: str  # "<topic>[<partition>]@<offset>" of the original message, for logs


def record_size(record: DeadLetterRecord) -> int:
    return len(record.value or b"") + len(record.key or b"") + sum(len(n) + len(v) for n, v in record.headers)


def stub(record: DeadLetterRecord, limit: int, reason: str) -> DeadLetterRecord:
    """The record without its value (and without original headers if they alone are too large): the dlq-* headers
    keep topic, partition and offset, so the original can still be read from the capture topic until retention."""
    size = len(record.value or b"")
    headers = [(name, value) for name, value in record.headers if name.startswith("dlq-")]
    original = [(name, value) for name, value in record.headers if not name.startswith("dlq-")]
    if sum(len(n) + len(v) for n, v in original) < limit // 4:
        headers = original + headers
    headers.append(("dlq-stub", f"value of {size} bytes not copied ({reason}); read it at the dlq-offset".encode()))
    return DeadLetterRecord(record.key, b"", headers, record.source)


class DeadLetterProducer:
    """Sends messages that can never be indexed to the dead-letter topic and waits for Kafka's acknowledgement.

    Each record is resent alone until acknowledged with an offset (never the whole list again, which duplicated the
    ones already safe; a success report without an offset is librdkafka's inference, not the broker's answer); a
    value above `max_bytes`, or one the broker refuses as too large, is replaced by a stub that keeps the original's
    topic, partition and offset in its headers, so one record can neither crash nor block the indexer."""

    def __init__(self, settings: IndexerSettings) -> None:
        config: dict[str, Any] = dict(settings.kafka.client_config())
        self.max_bytes = settings.dead_letter_max_bytes
        config.update(
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 60_000,
                "message.max.bytes": self.max_bytes + 64 * 1024,  # room for the stub's headers
                "client.id": "seldon-feedback-indexer-dlq",
            }
        )
        self.topic = settings.dead_letter_topic
        self._producer = Producer(config, logger=log)
        self._lock = threading.Lock()
        self.stubs = 0

    def broker_problem(self, topic: str, timeout: float = 5.0) -> str | None:
        """None when a broker answers this (separate) client: the consumer's watchdog asks before recreating."""
        return broker_problem(self._producer, topic, timeout)

    def topic_problem(self, timeout: float = 10.0) -> str | None:
        """None when the dead-letter topic exists and has partitions; else what is wrong (checked at start)."""
        try:
            metadata = self._producer.list_topics(self.topic, timeout=timeout)
        except KafkaException as exc:
            return f"cannot read metadata of dead-letter topic {self.topic}: {exc}"
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            error = topic.error.str() if topic is not None and topic.error is not None else "no partitions"
            return (
                f"dead-letter topic {self.topic} is missing ({error}); create it (kafka:topics deadLetter) or set "
                "INDEXER_DEAD_LETTER_TOPIC to an existing topic"
            )
        return None

    def send(self, records: list[DeadLetterRecord], timeout: float) -> list[DeadLetterRecord]:
        """Produce every record and wait; returns those NOT acknowledged (resend only those). Oversized values are
        sent as stubs (counted in `stubs`)."""
        failed: list[DeadLetterRecord] = []
        retry_as_stub: list[DeadLetterRecord] = []

        def delivery(record: DeadLetterRecord) -> Callable[[KafkaError | None, Message], None]:
            def on_delivery(error: KafkaError | None, message: Message) -> None:
                if error is None:
                    offset = message.offset()
                    if offset is not None and offset >= 0:
                        return
                    # librdkafka inferred the write from a later batch; the broker may never have taken it
                    # (the collector's module docstring says when): resend, the topic is at-least-once
                    failed.append(record)
                    log.warning(
                        "dead-letter record for %s reported delivered without an offset: resending", record.source
                    )
                    return
                if error.code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE):
                    retry_as_stub.append(record)
                else:
                    failed.append(record)
                log.warning("dead-letter record for %s not acknowledged: %s", record.source, error.str())

            return on_delivery

        def produce(record: DeadLetterRecord) -> None:
            if record_size(record) > self.max_bytes:
                record = stub(record, self.max_bytes, f"larger than INDEXER_DEAD_LETTER_MAX_BYTES={self.max_bytes}")
                self.stubs += 1
            while True:
                try:
                    self._producer.produce(
                        self.topic, record.value, record.key, headers=record.headers, on_delivery=delivery(record)
                    )
                    return
                except BufferError:
                    self._producer.poll(0.5)
                except KafkaException as exc:
                    error = exc.args[0] if exc.args else None
                    if isinstance(error, KafkaError) and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                        record = stub(record, self.max_bytes, "too large for the producer")
                        self.stubs += 1
                        continue
                    log.warning("dead-letter record for %s not produced: %s", record.source, exc)
                    failed.append(record)
                    return

        with self._lock:
            for record in records:
                produce(record)
            remaining = self._producer.flush(timeout)
            too_large, retry_as_stub[:] = list(retry_as_stub), []
            for record in too_large:  # the broker's limit (topic max.message.bytes) is below ours
                self.stubs += 1
                produce(stub(record, self.max_bytes, "refused by the broker as too large"))
            if too_large:
                remaining = self._producer.flush(timeout)
                failed.extend(retry_as_stub)  # even the stub refused: keep retrying it (visible in the metrics)
        if remaining:
            return list(records)  # unknown which: resending is safe (the dead-letter topic is at-least-once)
        return failed

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
