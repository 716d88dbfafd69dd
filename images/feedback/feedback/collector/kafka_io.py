"""The collector's Kafka producer: idempotent, acks=all, delivery awaited from asyncio, readiness from the broker.

librdkafka calls delivery callbacks from `poll()`; a daemon thread polls continuously and hands the results of
each poll to the event loop in one call (one wake-up per batch, not per event), so a request handler can `await`
the broker's acknowledgement before answering 2xx. The local buffer is bounded in bytes (librdkafka's default is
1 GiB, above any pod's memory limit): when full, the event is answered 503 at once.

A success report without an offset is not an acknowledgement. librdkafka infers ("implicitly acks") that a batch
which failed was written when a later batch of the same partition succeeds, trusting the broker to refuse a gap in
the sequence numbers. The broker does not refuse it for a producer it holds no state for on that partition (a new
producer id, a new partition): after a leader change the first batch was refused (`NOT_LEADER_OR_FOLLOWER`, not
written), the next one in flight was taken, and the first was reported delivered without ever being in the log.
Such an event is produced again (at most `UNCONFIRMED_RESENDS` times, within the delivery deadline), so a 200
always carries the offset the broker gave it; the rare duplicate this makes is harmless downstream (one document
per request id).

A fatal producer error (the idempotent producer can no longer guarantee order or no duplicates) is sticky: the
producer never becomes ready again and `/healthz` fails, so Kubernetes restarts the pod. A watchdog notices a
delivery thread that died or stalled; requests are then answered 503 at once instead of hanging until their
timeout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from feedback.collector.settings import CollectorSettings

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The broker did not acknowledge the record; `reason` is a short metric label, `resends` how often the record
    was produced again after a success report without an offset."""

    def __init__(self, reason: str, detail: str, resends: int = 0) -> None:
        super().__init__(detail)
        self.reason = reason
        self.resends = resends


@dataclass(frozen=True)
class Delivered:
    """Where the broker wrote the record; `resends` as in `DeliveryFailed`."""

    partition: int
    offset: int
    resends: int = 0


UNCONFIRMED = "unconfirmed"
UNCONFIRMED_RESENDS = 3  # a resend meets the same broker state only while leadership is still moving


def delivery_outcome(error: KafkaError | None, partition: int | None, offset: int | None) -> Delivered | DeliveryFailed:
    """What one librdkafka delivery report proves: an offset the broker assigned, or a failure with a metric label.
    A report without error but without offset is librdkafka's inference, not the broker's answer (see above)."""
    if error is not None:
        return DeliveryFailed(_reason(error), error.str())
    if offset is None or offset < 0 or partition is None or partition < 0:
        return DeliveryFailed(
            UNCONFIRMED,
            f"librdkafka reported the record delivered without an offset (partition {partition}, offset {offset}): "
            "inferred from a later batch, not acknowledged by the broker",
        )
    return Delivered(partition, offset)


class CaptureProducer(Protocol):
    """What the HTTP app needs from a producer (a real one below; tests may pass a fake)."""

    async def start(self) -> None: ...

    async def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivered: ...

    def is_ready(self) -> bool: ...

    def health_problem(self) -> str | None: ...

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
            "queue.buffering.max.kbytes": max(1, settings.producer_buffer_max_bytes // 1024),
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
        self._fatal: str | None = None  # sticky: set once, never cleared
        self._poll_beat = time.monotonic()
        self._delivered: list[tuple[asyncio.Future[Delivered], Delivered | DeliveryFailed]] = []

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
            self._fatal = f"fatal Kafka producer error: {error.str()}"
            log.error("%s; the collector stops accepting events and fails /healthz until restarted", self._fatal)
        else:
            log.warning("Kafka producer: %s", error.str())

    def _poll_forever(self) -> None:
        try:
            while not self._stop.is_set():
                self._poll_beat = time.monotonic()
                self._producer.poll(0.05)
                if self._delivered and self._loop is not None:
                    batch, self._delivered = self._delivered, []
                    self._loop.call_soon_threadsafe(_settle_all, batch)
        except BaseException as exc:  # the watchdog reports it; requests no longer wait for this thread
            self._fatal = f"the Kafka delivery thread died: {type(exc).__name__}: {exc}"
            log.exception("the Kafka delivery thread died")
            raise

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
        if not self._ready and self._fatal is None:
            log.info("Kafka reachable, topic %s available", self._topic)
        self._ready = self._fatal is None  # a fatal error is sticky: a later metadata answer does not undo it

    def is_ready(self) -> bool:
        return self._ready and self.health_problem() is None

    def health_problem(self) -> str | None:
        """Why this producer cannot deliver any more (sticky fatal error, delivery thread dead or stalled)."""
        if self._fatal is not None:
            return self._fatal
        if self._threads and not self._threads[0].is_alive() and not self._stop.is_set():
            return "the Kafka delivery thread is not running"
        stalled = time.monotonic() - self._poll_beat
        if self._threads and stalled > WATCHDOG_STALL_S:
            return f"the Kafka delivery thread has not polled for {stalled:.0f} s"
        return None

    @property
    def last_error(self) -> str:
        return self._last_error

    def queue_depth(self) -> int:
        return len(self._producer)

    async def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivered:
        """Produce one record and wait for the broker's offset; a success report without one is produced again."""
        deadline = time.monotonic() + self._settings.delivery_timeout_s + 5
        resends = 0
        while True:
            try:
                delivered = await self._send_once(key, value, headers, deadline)
            except DeliveryFailed as exc:
                exc.resends = resends
                if exc.reason != UNCONFIRMED or resends >= UNCONFIRMED_RESENDS or time.monotonic() >= deadline:
                    raise
                resends += 1
                log.warning("producing the record again (attempt %d): %s", resends + 1, exc)
                continue
            return replace(delivered, resends=resends) if resends else delivered

    async def _send_once(
        self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], deadline: float
    ) -> Delivered:
        problem = self.health_problem()
        if problem is not None:
            raise DeliveryFailed("producer_unhealthy", problem)
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Delivered] = loop.create_future()

        def on_delivery(error: KafkaError | None, message: Message) -> None:  # (delivery thread, inside poll)
            self._delivered.append((future, delivery_outcome(error, message.partition(), message.offset())))

        try:
            self._producer.produce(self._topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
        except BufferError:
            raise DeliveryFailed("queue_full", "the producer's local queue is full (Kafka slow or down)") from None
        except KafkaException as exc:
            raise DeliveryFailed("produce_error", str(exc)) from None
        while True:  # wake up now and then: a delivery thread that died must not keep the caller waiting
            try:
                return await asyncio.wait_for(
                    asyncio.shield(future), timeout=min(1.0, max(0.01, deadline - time.monotonic()))
                )
            except TimeoutError:
                problem = self.health_problem()
                if problem is not None:
                    raise DeliveryFailed("producer_unhealthy", problem) from None
                if time.monotonic() >= deadline:
                    raise DeliveryFailed("timeout", "no acknowledgement from Kafka in time") from None

    async def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        remaining = await asyncio.to_thread(self._producer.flush, timeout)
        if remaining:
            log.error("%d capture records were not acknowledged by Kafka at shutdown", remaining)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        batch, self._delivered = self._delivered, []
        _settle_all(batch)


WATCHDOG_STALL_S = 10.0


def _settle_all(batch: list[tuple[asyncio.Future[Delivered], Delivered | DeliveryFailed]]) -> None:
    """(event loop) Settle the futures of one poll's deliveries."""
    for future, outcome in batch:
        if future.done():
            continue
        if isinstance(outcome, DeliveryFailed):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _reason(error: KafkaError) -> str:
    if error.code() == KafkaError._MSG_TIMED_OUT:
        return "timeout"
    if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        return "too_large"
    return "broker_error"
