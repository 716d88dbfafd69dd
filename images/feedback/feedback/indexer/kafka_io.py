"""The indexer's Kafka adapters: the consumer (manual offset store and commit, cooperative-sticky assignment)
and the dead-letter producer (idempotent, each record waited for until Kafka acknowledged it)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from feedback.indexer.settings import IndexerSettings

log = logging.getLogger(__name__)

DeadLetter = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]  # key, value, headers


def consumer_config(settings: IndexerSettings, stats_cb: Callable[[str], None] | None) -> dict[str, Any]:
    """librdkafka settings (https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md).
    Offsets are stored by the indexer only after the search cluster acknowledged the documents, and committed
    synchronously right after: at-least-once delivery, made exactly-once in the index by deterministic ids."""
    config: dict[str, Any] = dict(settings.kafka.client_config())
    config.update(
        {
            "group.id": settings.group_id,
            "client.id": "seldon-feedback-indexer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "partition.assignment.strategy": "cooperative-sticky",
            "max.poll.interval.ms": 300_000,
            "session.timeout.ms": 30_000,
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

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.owned.update((tp.topic, tp.partition) for tp in partitions)
        self.generation += 1
        log.info("assigned %s", sorted(p for _, p in self.owned))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        commit_stored(consumer)
        self.owned.difference_update((tp.topic, tp.partition) for tp in partitions)
        self.generation += 1
        log.info("revoked %s", sorted(tp.partition for tp in partitions))

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.owned.difference_update((tp.topic, tp.partition) for tp in partitions)
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


def lag_from_stats(stats_json: str, topic: str) -> dict[int, int]:
    """Consumer lag per partition from librdkafka's statistics (only partitions with a known lag)."""
    stats = json.loads(stats_json)
    partitions = stats.get("topics", {}).get(topic, {}).get("partitions", {})
    lags: dict[int, int] = {}
    for key, info in partitions.items():
        partition = int(key)
        lag = info.get("consumer_lag", -1)
        if partition >= 0 and lag is not None and lag >= 0 and info.get("fetch_state") not in (None, "none", "stopped"):
            lags[partition] = int(lag)
    return lags


class DeadLetterProducer:
    """Sends messages that can never be indexed to the dead-letter topic and waits for Kafka's acknowledgement."""

    def __init__(self, settings: IndexerSettings) -> None:
        config: dict[str, Any] = dict(settings.kafka.client_config())
        config.update(
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 60_000,
                "client.id": "seldon-feedback-indexer-dlq",
            }
        )
        self.topic = settings.dead_letter_topic
        self._producer = Producer(config, logger=log)
        self._lock = threading.Lock()

    def send_all(self, records: list[DeadLetter], timeout: float) -> int:
        """Produce every record and wait; returns how many were NOT acknowledged (0 = all safe in Kafka)."""
        failures = 0

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            nonlocal failures
            if error is not None:
                failures += 1
                log.warning("dead-letter record not acknowledged: %s", error.str())

        with self._lock:
            for key, value, headers in records:
                while True:
                    try:
                        self._producer.produce(self.topic, value, key, headers=headers, on_delivery=on_delivery)
                        break
                    except BufferError:
                        self._producer.poll(0.5)
            remaining = self._producer.flush(timeout)
        return failures + remaining

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
