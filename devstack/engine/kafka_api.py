"""The Kafka server type (executor/api/kafka): consume the input topic, predict, produce the answer.

What each rule follows (README "Kafka server mode", seldon-core-v1.md section 5, kafka/*.json):
- consumer group `<predictor>.<sdep>.<namespace>`, `auto.offset.reset=earliest`, `session.timeout.ms=6000`,
  `broker.address.family=v4`, auto-commit as `--kafka_auto_commit` (default true); it subscribes only once the
  model is ready;
- each message's Kafka headers become request metadata (passed to the model as HTTP headers); its
  `Seldon-Puid` header (exact case) is the puid, else a new UUID v4; the content type is its `Content-Type` header,
  else application/json;
- the answer goes to the output topic with the input's key and no headers, value = the model's bytes, no puid
  added (kafka/output-1.json, kafka-mode-all-outputs.json: 100 of 100 keys kept, 0 outputs with headers;
  kafka/with-seldon-puid-header-outputs.json);
- a failed prediction produces nothing: it is logged (as upstream) and counted by reason (ours);
- logging is the same as over REST (the predictor's rules), with the message's puid.
`--kafka_workers` (default 4) messages are predicted at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devstack.engine.logger import loggable_puid
from devstack.engine.metrics import EngineMetrics
from devstack.engine.predictor import (
    PUID_HEADER,
    ModelRefused,
    ModelRestClient,
    ModelUnavailable,
    Payload,
    Predictor,
    forwarded_headers,
    model_ready,
    skips_logging,
)

log = logging.getLogger(__name__)

READY_POLL_S = 1.0


@dataclass(frozen=True)
class KafkaServerConfig:
    broker: str
    input_topic: str
    output_topic: str
    group_id: str  # <predictor>.<sdep>.<namespace>
    workers: int
    auto_commit: bool
    client_config: Mapping[str, Any]  # security settings shared with the log producer


def group_id(predictor: str, deployment: str, namespace: str) -> str:
    return f"{predictor}.{deployment}.{namespace}"


def message_metadata(headers: list[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Kafka headers as request metadata: first value per name, bytes decoded as UTF-8."""
    metadata: dict[str, str] = {}
    for name, value in headers or []:
        if name not in metadata:
            metadata[name] = (value or b"").decode("utf-8", "replace")
    return metadata


class KafkaServer:
    """Consumes in a thread (confluent-kafka blocks), predicts on the event loop, produces the answers."""

    def __init__(
        self, config: KafkaServerConfig, predictor: Predictor, model: ModelRestClient, metrics: EngineMetrics
    ) -> None:
        self.config = config
        self.predictor = predictor
        self.model = model
        self.metrics = metrics
        self.consumer: Any = None
        self.producer: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(1, config.workers) * 2)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        from confluent_kafka import Consumer, Producer

        base = {"bootstrap.servers": self.config.broker, "broker.address.family": "v4", **self.config.client_config}
        self.producer = Producer({**base, "linger.ms": 5})
        self.consumer = Consumer(
            {
                **base,
                "group.id": self.config.group_id,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                "enable.auto.commit": self.config.auto_commit,
            }
        )
        loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._work(), name=f"kafka-worker-{i}") for i in range(self.config.workers)]
        self._tasks.append(asyncio.create_task(self._serve_deliveries(), name="kafka-deliveries"))
        self._thread = threading.Thread(target=self._consume, args=(loop,), name="kafka-consumer", daemon=True)
        self._tasks.append(asyncio.create_task(self._subscribe_when_ready(), name="kafka-subscribe"))

    async def _subscribe_when_ready(self) -> None:
        endpoint = self.predictor.node.endpoint
        while not self._stop.is_set():
            reason = await model_ready(endpoint)
            if reason is None:
                break
            log.info("kafka server waits for the model before consuming: %s", reason)
            await asyncio.sleep(READY_POLL_S)
        self.consumer.subscribe([self.config.input_topic])
        log.info(
            "consuming %s as group %s, answers to %s",
            self.config.input_topic,
            self.config.group_id,
            self.config.output_topic,
        )
        assert self._thread is not None
        self._thread.start()

    def _consume(self, loop: asyncio.AbstractEventLoop) -> None:
        while not self._stop.is_set():
            message = self.consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                log.error("kafka consumer error: %s", message.error())
                continue
            future = asyncio.run_coroutine_threadsafe(self._queue.put(message), loop)
            while not self._stop.is_set():
                try:
                    future.result(timeout=0.5)  # blocks while every worker is busy: back-pressure, no pile-up
                    break
                except TimeoutError:
                    continue

    async def _serve_deliveries(self) -> None:
        while True:
            await asyncio.to_thread(self.producer.poll, 0.5)

    async def _work(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self.process(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one message stop a worker
                log.exception("kafka message at offset %s failed", message.offset())
                self.metrics.kafka_failures.labels("internal").inc()
            finally:
                self._queue.task_done()

    async def process(self, message: Any) -> None:
        metadata = message_metadata(message.headers())
        puid = metadata.get(PUID_HEADER) or str(uuid.uuid4())
        payload = Payload(message.value() or b"", metadata.get("Content-Type") or "application/json")
        incoming = [(k, v) for k, v in metadata.items() if k != PUID_HEADER]
        headers = forwarded_headers([*incoming, (PUID_HEADER, puid)], payload.content_type)

        async def call(p: Payload):  # type: ignore[no-untyped-def]
            return await self.model.post("/predict", p, headers)

        try:
            answer = await self.predictor.predict(
                payload, puid, skips_logging(metadata, self.predictor.behaviour), call
            )
        except ModelRefused as refused:
            self._failed(message, puid, f"model_{refused.answer.status}", refused.summary())
            return
        except ModelUnavailable as exc:
            self._failed(message, puid, "model_unavailable", exc.reason)
            return
        self.producer.produce(
            self.config.output_topic, key=message.key(), value=answer.body, on_delivery=self._delivered(puid)
        )
        self.metrics.kafka_messages.labels("answered").inc()
        if not self.config.auto_commit:
            self.consumer.commit(message=message, asynchronous=True)

    def _failed(self, message: Any, puid: str, reason: str, detail: str) -> None:
        log.error(
            "Failed prediction of %s (partition %s offset %s): %s",
            loggable_puid(puid),
            message.partition(),
            message.offset(),
            detail,
        )
        self.metrics.kafka_messages.labels("failed").inc()
        self.metrics.kafka_failures.labels(reason).inc()
        if not self.config.auto_commit:
            self.consumer.commit(message=message, asynchronous=True)

    def _delivered(self, puid: str) -> Any:
        def callback(err: Any, _msg: Any) -> None:
            if err is not None:
                self.metrics.kafka_failures.labels("produce").inc()
                log.error(
                    "Failed to produce response of %s to %s: %s", loggable_puid(puid), self.config.output_topic, err
                )

        return callback

    async def stop(self, drain_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_s)
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 5.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.producer is not None:
            left = await asyncio.to_thread(self.producer.flush, 10.0)
            if left:
                log.error("%d answers not delivered to %s at shutdown", left, self.config.output_topic)
        if self.consumer is not None:
            await asyncio.to_thread(self.consumer.close)
