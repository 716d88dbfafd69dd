"""The collector's Kafka producer: idempotent, acks=all, delivery awaited from asyncio, readiness from the broker.

librdkafka calls delivery callbacks from `poll()`; a daemon thread polls continuously and hands each result to
the event loop, so a request handler can `await` the broker's acknowledgement before answering 2xx.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from feedback.collector.settings import CollectorSettings

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The broker did not acknowledge the record; `reason` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Delivered:
    partition: int
    offset: int


class CaptureProducer(Protocol):
    """What the HTTP app needs from a producer (a real one below; tests may pass a fake)."""

    async def start(self) -> None: ...

    async def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivered: ...

    def is_ready(self) -> bool: ...

    def queue_depth(self) -> int: ...

    async def close(self, timeout: float) -> None: ...


def producer_config(settings: CollectorSettings) -> dict[str, object]:
    """librdkafka settings (https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md)."""
    config: dict[str, object] = dict(settings.kafka.client_config())
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": settings.linger_ms,
            "compression.type": "lz4",
            "queue.buffering.max.messages": settings.producer_queue_max_messages,
            # Give up on a record only after the HTTP caller has stopped waiting for it.
            "message.timeout.ms": int(settings.delivery_timeout_s * 1000),
            "client.id": "seldon-feedback-collector",
        }
    )
    return config


class KafkaCaptureProducer:
    """Produces capture records to one topic and reports broker reachability."""

    def __init__(self, settings: CollectorSettings) -> None:
        self._settings = settings
        self._topic = settings.topic
        self._producer = Producer(producer_config(settings), error_cb=self._on_error, logger=log)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ready = False
        self._last_error = "not checked yet"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._poll_forever, name="kafka-delivery", daemon=True),
            threading.Thread(target=self._check_broker_forever, name="kafka-readiness", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            if error.code() == KafkaError._ALL_BROKERS_DOWN:
                self._ready = False
            self._last_error = error.str()
        if error.fatal():
            self._ready = False
            log.error("fatal Kafka producer error: %s", error.str())
        else:
            log.warning("Kafka producer: %s", error.str())

    def _poll_forever(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _check_broker_forever(self) -> None:
        while not self._stop.is_set():
            self._check_broker()
            self._stop.wait(self._settings.readiness_interval_s)

    def _check_broker(self) -> None:
        try:
            metadata = self._producer.list_topics(self._topic, timeout=max(1.0, self._settings.readiness_interval_s))
            topic = metadata.topics.get(self._topic)
            if topic is None or topic.error is not None:
                raise KafkaException(topic.error if topic is not None else "topic missing from metadata")
            if not metadata.brokers:
                raise KafkaException("no brokers in metadata")
        except KafkaException as exc:
            if self._ready:
                log.warning("Kafka is unreachable or topic %s is unavailable: %s", self._topic, exc)
            self._ready = False
            self._last_error = str(exc)
            return
        if not self._ready:
            log.info("Kafka reachable, topic %s available", self._topic)
        self._ready = True

    def is_ready(self) -> bool:
        return self._ready

    @property
    def last_error(self) -> str:
        return self._last_error

    def queue_depth(self) -> int:
        return len(self._producer)

    async def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivered:
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Delivered] = loop.create_future()

        def settle(result: Delivered | DeliveryFailed) -> None:
            if future.done():
                return
            if isinstance(result, DeliveryFailed):
                future.set_exception(result)
            else:
                future.set_result(result)

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            outcome: Delivered | DeliveryFailed
            if error is not None:
                outcome = DeliveryFailed(_reason(error), error.str())
            else:
                outcome = Delivered(message.partition() or 0, message.offset() or 0)
            loop.call_soon_threadsafe(settle, outcome)

        try:
            self._producer.produce(self._topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
        except BufferError:
            raise DeliveryFailed("queue_full", "the producer's local queue is full (Kafka slow or down)") from None
        except KafkaException as exc:
            raise DeliveryFailed("produce_error", str(exc)) from None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=self._settings.delivery_timeout_s + 5)
        except TimeoutError:
            raise DeliveryFailed("timeout", "no acknowledgement from Kafka in time") from None

    async def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        remaining = await asyncio.to_thread(self._producer.flush, timeout)
        if remaining:
            log.error("%d capture records were not acknowledged by Kafka at shutdown", remaining)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))


def _reason(error: KafkaError) -> str:
    if error.code() == KafkaError._MSG_TIMED_OUT:
        return "timeout"
    if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        return "too_large"
    return "broker_error"
