"""A delivery report that says success but carries no offset is not an acknowledgement (issue 15's lost events).

librdkafka "implicitly acks" a failed batch when a later batch of the partition succeeds; the broker takes that
later batch with a gap in the sequence numbers when it holds no state for the producer on the partition, so the
first batch was reported delivered (offset unknown) without ever being written. The real race needs a broker
leader change between two in-flight batches (tests/integration/test_feedback_collector_faults.py meets it now
and then); here the librdkafka producer is replaced by one that reports what librdkafka reported, so the
collector's answer to such a report is checked every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError
from feedback.collector.kafka_io import (
    UNCONFIRMED,
    UNCONFIRMED_RESENDS,
    Delivered,
    DeliveryFailed,
    KafkaCaptureProducer,
    delivery_outcome,
)
from feedback.collector.settings import CollectorSettings

# 127.0.0.1:9 (discard) never answers: the real Producer is built, then replaced before anything is sent.
ENV = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "CAPTURE_TOPIC": "capture", "COLLECTOR_DELIVERY_TIMEOUT_S": "5"}


def test_a_report_with_an_offset_is_delivered_even_at_offset_zero() -> None:
    assert delivery_outcome(None, 2, 0) == Delivered(2, 0)


@pytest.mark.parametrize("offset", [None, -1, -1001])
def test_a_success_report_without_an_offset_is_unconfirmed(offset: int | None) -> None:
    outcome = delivery_outcome(None, 2, offset)
    assert isinstance(outcome, DeliveryFailed) and outcome.reason == UNCONFIRMED
    assert "without an offset" in str(outcome)


def test_an_error_report_keeps_its_reason() -> None:
    outcome = delivery_outcome(KafkaError(KafkaError._MSG_TIMED_OUT), 1, None)
    assert isinstance(outcome, DeliveryFailed) and outcome.reason == "timeout"


class ReportingProducer:
    """Stands in for librdkafka's Producer: each produce() is reported at the next poll() with the offset that
    `offsets` gives for that attempt (None: success without an offset, as an implicit ack)."""

    def __init__(self, offsets: Callable[[int], int | None]) -> None:
        self.offsets = offsets
        self.produced: list[bytes] = []
        self._pending: list[tuple[Callable[[KafkaError | None, Any], None], Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any, on_delivery: Any) -> None:
        attempt = len(self.produced)
        self.produced.append(value)
        self._pending.append((on_delivery, _Message(2, self.offsets(attempt))))

    def poll(self, timeout: float) -> int:
        pending, self._pending = self._pending, []
        for callback, message in pending:
            callback(None, message)
        return len(pending)

    def list_topics(self, topic: str, timeout: float) -> Any:
        raise KeyError("not used")

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0

    def __len__(self) -> int:
        return len(self._pending)


class _Message:
    def __init__(self, partition: int, offset: int | None) -> None:
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int | None:
        return self._offset


async def send_with(offsets: Callable[[int], int | None]) -> tuple[Delivered | DeliveryFailed, ReportingProducer]:
    producer = KafkaCaptureProducer(CollectorSettings.from_env(ENV))
    fake = ReportingProducer(offsets)
    producer._producer = fake  # type: ignore[assignment]
    producer._check_broker = lambda: None  # type: ignore[method-assign]
    await producer.start()
    try:
        return await producer.send(b"key", b"value", []), fake
    except DeliveryFailed as exc:
        return exc, fake
    finally:
        await producer.close(1.0)


async def test_an_unconfirmed_delivery_is_produced_again_and_answered_with_the_brokers_offset() -> None:
    outcome, fake = await send_with(lambda attempt: None if attempt == 0 else 7)
    assert outcome == Delivered(2, 7, resends=1)
    assert fake.produced == [b"value", b"value"]


async def test_a_delivery_that_stays_unconfirmed_fails_after_the_bounded_resends() -> None:
    outcome, fake = await send_with(lambda attempt: None)
    assert isinstance(outcome, DeliveryFailed) and outcome.reason == UNCONFIRMED
    assert outcome.resends == UNCONFIRMED_RESENDS
    assert len(fake.produced) == UNCONFIRMED_RESENDS + 1


async def test_a_confirmed_delivery_is_produced_once() -> None:
    outcome, fake = await send_with(lambda attempt: 0)
    assert outcome == Delivered(2, 0)
    assert len(fake.produced) == 1
