"""Request logging as the executor does it (executor/logger/{collector,dispatcher,worker}.go): a bounded queue,
a pool of workers, and one sender: CloudEvents over HTTP (binary mode) or records straight to Kafka.

    log_queue = LogQueue(HttpSink(identity, metrics), metrics, buffer_size=10000, write_timeout_ms=2000, workers=10)
    await log_queue.start()
    log_queue.offer(LogEvent("request", body, "application/json", puid, "classifier", url))   # never blocks
    await log_queue.stop(drain_s=5)

What each rule follows:
- HTTP CloudEvent headers, their order and values: rest/01-predict-1-request.json (Host, User-Agent
  `Go-http-client/1.1`, Content-Length, then Ce-*, Content-Type and Traceparent sorted by name as Go writes a
  header map, then `Accept-Encoding: gzip`); `Ce-Source` `http://<hostname>:<http_port>/` (an empty host without
  --hostname and POD_NAME: versions/ README note); `Ce-Time` RFC 3339 in UTC with nanoseconds, trailing zeros cut
  (rest/12-batch-3-response.json `...14.23361695Z`); `Ce-Traceparent` and `Traceparent` share one trace id with
  two span ids (every recorded event); no `Ce-Protocol` before 1.14 (versions/v1.13.1/01-*).
- Body: the payload's bytes exactly (rest/01-*: the client's spacing kept; grpc/logged-events-decoded.json: the
  protobuf bytes, `Content-Type: application/protobuf`), gzip payloads decompressed first (README).
- Direct Kafka logging: value = payload, no key, headers `type`, `content-type`, `modelid`, `requestid`,
  `inferenceservicename`, `namespace`, `endpoint`, `protocol` in that order (kafka-log/01-request.json); no id,
  source or time header.
- The queue: 10,000 events, 10 workers, 2,000 ms write timeout by default (seldon-core-v1.md 3.4, PR #3734);
  when the buffer stays full for the timeout the event is dropped and counted (upstream only logs it); before
  1.12 (`bounded=False`) nothing is dropped. One send per event, no retry, errors counted (upstream: logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from devstack.engine.metrics import EngineMetrics

log = logging.getLogger(__name__)

EVENT_TYPES = {
    "request": "io.seldon.serving.inference.request",
    "response": "io.seldon.serving.inference.response",
    "feedback": "io.seldon.serving.feedback",
}
GO_USER_AGENT = "Go-http-client/1.1"
HTTP_TIMEOUT_S = 60.0  # upstream's CloudEvents client timeout


ANSWER_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _answer_reason(text: str) -> str:
    """The `reason` label of a collector's JSON answer (`invalid_json`, `unknown_type`), never its free text."""
    try:
        reason = json.loads(text).get("reason")
    except (ValueError, AttributeError):
        return "no reason given"
    return reason if isinstance(reason, str) and ANSWER_REASON.fullmatch(reason) else "no reason given"


UUID_PUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def loggable_puid(puid: str | None) -> str:
    """The puid as the engine's own log lines show it: a UUID (what the engine generates) as it is; anything a
    client chose (its Seldon-Puid header may be a user id or an e-mail address) as a stable digest, so a log line
    can still be matched to its events (sha256 of the puid) without holding the value."""
    if puid is None:
        return "-"
    if UUID_PUID.fullmatch(puid):
        return puid
    return "puid-sha256:" + hashlib.sha256(puid.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(frozen=True)
class Identity:
    """Who logs: the CloudEvent attributes every event of this engine carries."""

    deployment: str  # Ce-Inferenceservicename (--sdep)
    namespace: str  # Ce-Namespace (--namespace)
    predictor: str  # Ce-Endpoint (--predictor)
    source: str  # Ce-Source: http://<hostname>:<http_port>/
    protocol: str | None  # Ce-Protocol (--protocol); None before 1.14, where the header does not exist


@dataclass(frozen=True)
class LogEvent:
    kind: str  # request | response | feedback
    body: bytes
    content_type: str
    request_id: str  # the puid: Ce-Requestid, the join key
    model_id: str  # the graph node: Ce-Modelid
    url: str  # the node's logger URL (unused by the Kafka sink)
    gzipped: bool = False  # the payload came with Content-Encoding: gzip


def ce_time(ns: int | None = None) -> str:
    """Go's RFC3339Nano in UTC: nanoseconds with trailing zeros removed, e.g. 2026-12-01T21:59:14.23361695Z."""
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction:09d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def traceparents() -> tuple[str, str]:
    """(Ce-Traceparent, Traceparent): W3C trace context, one trace id, two span ids, not sampled."""
    trace = secrets.token_hex(16)
    return f"00-{trace}-{secrets.token_hex(8)}-00", f"00-{trace}-{secrets.token_hex(8)}-00"


def payload_bytes(event: LogEvent) -> bytes:
    if not event.gzipped:
        return event.body
    try:
        return gzip.decompress(event.body)
    except (OSError, EOFError):
        return event.body  # not really gzip: log what came


def cloudevent_headers(event: LogEvent, identity: Identity, body_length: int) -> list[tuple[str, str]]:
    """The headers of one CloudEvent POST after Host, in the order the real executor sends them."""
    ce_trace, trace = traceparents()
    sorted_part = {
        "Ce-Endpoint": identity.predictor,
        "Ce-Id": str(uuid.uuid4()),
        "Ce-Inferenceservicename": identity.deployment,
        "Ce-Modelid": event.model_id,
        "Ce-Namespace": identity.namespace,
        "Ce-Requestid": event.request_id,
        "Ce-Source": identity.source,
        "Ce-Specversion": "1.0",
        "Ce-Time": ce_time(),
        "Ce-Traceparent": ce_trace,
        "Ce-Type": EVENT_TYPES[event.kind],
        "Traceparent": trace,
    }
    if identity.protocol is not None:
        sorted_part["Ce-Protocol"] = identity.protocol
    if event.content_type:  # omitted when empty (README "HTTP CloudEvent")
        sorted_part["Content-Type"] = event.content_type
    return [
        ("User-Agent", GO_USER_AGENT),
        ("Content-Length", str(body_length)),
        *sorted(sorted_part.items()),
        ("Accept-Encoding", "gzip"),
    ]


def kafka_headers(event: LogEvent, identity: Identity) -> list[tuple[str, bytes]]:
    """The Kafka headers of one directly logged event (kafka-log/01-request.json), in that order."""
    headers = [
        ("type", EVENT_TYPES[event.kind]),
        ("content-type", event.content_type),
        ("modelid", event.model_id),
        ("requestid", event.request_id),
        ("inferenceservicename", identity.deployment),
        ("namespace", identity.namespace),
        ("endpoint", identity.predictor),
    ]
    if identity.protocol is not None:
        headers.append(("protocol", identity.protocol))
    return [(name, value.encode()) for name, value in headers]


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...

    async def send(self, event: LogEvent) -> None: ...

    async def close(self) -> None: ...


class HttpSink:
    """POSTs each event to its logger URL as a binary-mode CloudEvent; one pooled session (upstream builds a new
    client per event: the wire format is the same, the connection reuse is ours)."""

    name = "http"

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            connector=aiohttp.TCPConnector(limit=0),
        )

    async def send(self, event: LogEvent) -> None:
        assert self.session is not None, "HttpSink.start() first"
        body = payload_bytes(event)
        headers = cloudevent_headers(event, self.identity, len(body))
        async with self.session.post(event.url, data=body, headers=headers) as answer:
            await answer.read()
            if answer.status >= 300:
                # the collector's answer names what it refused, which may quote the event: only its reason label
                raise SendError(f"{event.url} answered {answer.status} ({_answer_reason(await answer.text())})")

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


class KafkaSink:
    """Produces each event to the log topic (direct Kafka logging): fire and forget as upstream
    (`go.delivery.reports=false`), but delivery failures are counted."""

    name = "kafka"

    def __init__(self, identity: Identity, config: Mapping[str, Any], topic: str, metrics: EngineMetrics) -> None:
        self.identity = identity
        self.config = dict(config)
        self.topic = topic
        self.metrics = metrics
        self.producer: Any = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from confluent_kafka import Producer

        self.producer = Producer({**self.config, "linger.ms": 5})
        self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.to_thread(self.producer.poll, 0.5)

    def _delivered(self, kind: str) -> Any:
        def callback(err: Any, _msg: Any) -> None:
            if err is not None:
                self.metrics.log_send_errors.labels(self.name, kind).inc()
                log.error("failed to send kafka log to %s: %s", self.topic, err)

        return callback

    async def send(self, event: LogEvent) -> None:
        assert self.producer is not None, "KafkaSink.start() first"
        self.producer.produce(
            self.topic,
            value=payload_bytes(event),
            headers=kafka_headers(event, self.identity),
            on_delivery=self._delivered(event.kind),
        )

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.producer is not None:
            left = await asyncio.to_thread(self.producer.flush, 10.0)
            if left:
                log.error("%d kafka log events not delivered to %s at shutdown", left, self.topic)


class SendError(RuntimeError):
    pass


class LogQueue:
    """The buffered channel and its workers. `offer()` is what the request path calls: it never waits."""

    def __init__(
        self,
        sink: Sink,
        metrics: EngineMetrics,
        *,
        buffer_size: int,
        write_timeout_ms: int,
        workers: int,
        bounded: bool = True,
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.bounded = bounded
        self.write_timeout_s = write_timeout_ms / 1000
        self.queue: asyncio.Queue[LogEvent] = asyncio.Queue(maxsize=buffer_size if bounded else 0)
        self.workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._waiting: set[asyncio.Task[None]] = set()
        metrics.log_queue_depth.set_function(self.queue.qsize)

    async def start(self) -> None:
        await self.sink.start()
        self._tasks = [asyncio.create_task(self._work(), name=f"log-worker-{i}") for i in range(self.workers)]

    def offer(self, event: LogEvent) -> None:
        """Queue `event`; when the buffer is full, wait (in the background) up to the write timeout, then drop."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            if self.write_timeout_s <= 0:
                self._drop(event)
                return
            task = asyncio.get_running_loop().create_task(self._put_within_timeout(event))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)

    async def _put_within_timeout(self, event: LogEvent) -> None:
        try:
            await asyncio.wait_for(self.queue.put(event), self.write_timeout_s)
        except TimeoutError:
            self._drop(event)

    def _drop(self, event: LogEvent) -> None:
        self.metrics.log_dropped.labels(event.kind).inc()
        log.error(
            "timed out waiting to queue log request: buffer is full (dropped %s event of %s)",
            event.kind,
            loggable_puid(event.request_id),
        )

    async def _work(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.sink.send(event)
                self.metrics.log_sent.labels(self.sink.name, event.kind).inc()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one send, no retry (upstream): count and go on
                self.metrics.log_send_errors.labels(self.sink.name, event.kind).inc()
                log.error("failed to send %s log of %s: %s", event.kind, loggable_puid(event.request_id), exc)
            finally:
                self.queue.task_done()

    async def stop(self, drain_s: float) -> None:
        """Send what is queued (up to `drain_s`), then stop the workers and close the sink."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drain(), drain_s)
        left = self.queue.qsize()
        if left:
            log.error("%d log events still queued at shutdown were not sent", left)
        for task in [*self._tasks, *self._waiting]:
            task.cancel()
        for task in [*self._tasks, *self._waiting]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sink.close()

    async def _drain(self) -> None:
        while self._waiting:
            await asyncio.sleep(0.01)
        await self.queue.join()
