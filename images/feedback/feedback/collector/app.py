"""The collector's HTTP apps, one per listener, sharing one producer and one metrics registry:

- events (COLLECTOR_PORT): Seldon's CloudEvents on any path, no token; the network (NetworkPolicy, mesh
  AuthorizationPolicy) decides who reaches it, because the executor's logger cannot send credentials.
- ops (COLLECTOR_METRICS_PORT): /metrics, /healthz, /readyz and nothing else, so the scraper and the probes never
  need the event port and a Seldon pod never needs the metrics port.
- producers (COLLECTOR_PRODUCER_PORT, optional): CloudEvents from other producers (a labelling tool), each with
  "Authorization: Bearer <token>"; only the event kinds of COLLECTOR_PRODUCER_EVENT_TYPES (default feedback).

`create_apps(settings, producer)` builds them; with `producer=None` the real Kafka producer is created and flushed
in the ops app's cleanup context (start ops first, clean it up last), so a failed start still tears down what was
created.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from feedback.collector.auth import challenge, check_bearer
from feedback.collector.core import Rejection, build_record, sampled_in
from feedback.collector.kafka_io import CaptureProducer, DeliveryFailed, KafkaCaptureProducer
from feedback.collector.metrics import CollectorMetrics
from feedback.collector.settings import CollectorSettings
from feedback.redaction import Redactor
from feedback.seldon import EVENT_TYPES

log = logging.getLogger(__name__)


@dataclass
class CollectorState:
    """What the listeners share; `producer` is set when the ops app starts."""

    settings: CollectorSettings
    metrics: CollectorMetrics = field(default_factory=CollectorMetrics)
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    producer: CaptureProducer | None = None

    def live_producer(self) -> CaptureProducer:
        if self.producer is None:
            raise RuntimeError("the ops app (which starts the producer) must be started before the event listeners")
        return self.producer


STATE = web.AppKey("state", CollectorState)


@dataclass(frozen=True)
class CollectorApps:
    """The listeners' apps: serve `ops` on settings.metrics_port, `events` on settings.port and, when configured,
    `producers` on settings.producer.port."""

    state: CollectorState
    ops: web.Application
    events: web.Application
    producers: web.Application | None


FLUSH_TIMEOUT_S = 10.0


def _reject(
    metrics: CollectorMetrics, rejection: Rejection, request_id: str | None, redactor: Redactor
) -> web.Response:
    """Answer the sender with the whole reason; the log line gets it (and the request id) redacted, since a
    reason may quote what was sent."""
    metrics.rejected.labels(rejection.reason).inc()
    logged_id = redactor.redact_request_id(request_id) if request_id else "-"
    message = redactor.redact_text(rejection.message)
    log.info("rejected event (%s) request_id=%s: %s", rejection.reason, logged_id, message)
    return web.json_response(
        {"status": "rejected", "reason": rejection.reason, "error": rejection.message}, status=rejection.status
    )


async def receive_event(request: web.Request) -> web.Response:
    state = request.app[STATE]
    settings, metrics, producer = state.settings, state.metrics, state.live_producer()
    kind_label = EVENT_TYPES.get(request.headers.get("Ce-Type", ""), "other")
    metrics.received.labels(str(kind_label)).inc()
    request_id = request.headers.get("Ce-Requestid")

    declared = request.content_length
    if declared is not None and declared > settings.max_body_bytes:
        return _reject(
            metrics,
            Rejection(
                413,
                "body_too_large",
                f"the body has {declared} bytes, more than COLLECTOR_MAX_BODY_BYTES={settings.max_body_bytes}",
            ),
            request_id,
            settings.redactor,
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _reject(
            metrics,
            Rejection(
                413, "body_too_large", f"the body is larger than COLLECTOR_MAX_BODY_BYTES={settings.max_body_bytes}"
            ),
            request_id,
            settings.redactor,
        )

    outcome = build_record(
        request.headers,
        body,
        max_body_bytes=settings.max_body_bytes,
        redactor=settings.redactor,
        protos=settings.protos,
    )
    if isinstance(outcome, Rejection):
        return _reject(metrics, outcome, request_id, settings.redactor)
    record = outcome
    if record.redacted:
        metrics.redacted.inc()
    if not sampled_in(record.request_id, settings.sampling_rate):
        metrics.sampled_out.labels(record.kind.value).inc()
        return web.json_response({"status": "sampled_out", "request_id": record.request_id})

    metrics.in_flight.inc()
    started = time.perf_counter()
    try:
        delivered = await producer.send(record.key, record.value, record.headers)
    except DeliveryFailed as exc:
        metrics.resent.inc(exc.resends)
        metrics.failed.labels(exc.reason).inc()
        log.warning("event not acknowledged by Kafka (%s) request_id=%s: %s", exc.reason, record.request_id, exc)
        return web.json_response(
            {"status": "failed", "reason": exc.reason, "error": f"Kafka did not acknowledge the event: {exc}"},
            status=503,
        )
    finally:
        metrics.in_flight.dec()
    metrics.resent.inc(delivered.resends)
    metrics.produce_seconds.observe(time.perf_counter() - started)
    metrics.produced.labels(record.kind.value).inc()
    return web.json_response(
        {
            "status": "produced",
            "request_id": record.request_id,
            "partition": delivered.partition,
            "offset": delivered.offset,
        }
    )


@web.middleware
async def count_unexpected_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An error no branch foresaw still answers with a reason and is counted (failed{reason="internal_error"})."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        state = request.app[STATE]
        state.metrics.failed.labels("internal_error").inc()
        request_id = state.settings.redactor.redact_request_id(request.headers.get("Ce-Requestid", "-"))
        # the exception's text may quote the event: the traceback only at debug level (LOG_LEVEL=debug)
        log.error("unexpected error request_id=%s path=%s: %s", request_id, request.path, type(exc).__name__)
        log.debug("traceback of the unexpected error", exc_info=True)
        return web.json_response(
            {
                "status": "failed",
                "reason": "internal_error",
                "error": f"the collector failed on this event ({type(exc).__name__}); it was not produced, send it "
                "again, and report the collector log line with this request id",
            },
            status=500,
        )


async def healthz(request: web.Request) -> web.Response:
    """Liveness: 503 once the producer can never deliver again (sticky fatal error, dead delivery thread), so
    Kubernetes restarts the pod instead of leaving it Ready and answering nothing."""
    problem = request.app[STATE].live_producer().health_problem()
    if problem is not None:
        return web.json_response({"status": "unhealthy", "error": problem}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    producer = state.live_producer()
    if state.draining.is_set():
        return web.json_response(
            {"status": "not ready", "error": "shutting down: finishing the events in flight"}, status=503
        )
    if producer.is_ready():
        return web.json_response({"status": "ready"})
    detail = getattr(producer, "last_error", "Kafka unreachable")
    return web.json_response({"status": "not ready", "error": f"Kafka is not reachable: {detail}"}, status=503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    metrics, producer = request.app[STATE].metrics, request.app[STATE].live_producer()
    metrics.queue_depth.set(producer.queue_depth())
    metrics.kafka_ready.set(1 if producer.is_ready() else 0)
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def require_producer_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The producer listener: 401 (before the body is read) without "Authorization: Bearer <token>" matching the
    token file; 403 for an event kind producers may not send. Refusals are counted by reason; the token given is
    never logged or echoed."""
    state = request.app[STATE]
    listener = state.settings.producer
    assert listener is not None  # the producers app exists only with a producer listener
    refusal = check_bearer(request.headers.get("Authorization"), listener.tokens)
    if refusal is not None:
        state.metrics.auth_refused.labels(refusal.reason).inc()
        log.warning(
            "refused a producer request (%s) from %s request_id=%s",
            refusal.reason,
            request.remote or "-",
            state.settings.redactor.redact_request_id(request.headers.get("Ce-Requestid", "-")),
        )
        return web.json_response(
            {"status": "unauthorized", "reason": refusal.reason, "error": refusal.message},
            status=401,
            headers={"WWW-Authenticate": challenge(refusal)},
        )
    kind = EVENT_TYPES.get(request.headers.get("Ce-Type", ""))
    if request.method == "POST" and kind is not None and kind.value not in listener.event_kinds:
        allowed = ", ".join(listener.event_kinds)
        return _reject(
            state.metrics,
            Rejection(
                403,
                "type_not_allowed",
                f"producers may send {allowed} events here, not {kind.value}; requests and responses come from "
                "Seldon's executors (COLLECTOR_PRODUCER_EVENT_TYPES lists what producers may send)",
            ),
            request.headers.get("Ce-Requestid"),
            state.settings.redactor,
        )
    return await handler(request)


def create_apps(settings: CollectorSettings, producer: CaptureProducer | None = None) -> CollectorApps:
    state = CollectorState(settings)

    async def producer_context(app: web.Application) -> AsyncIterator[None]:
        created = producer if producer is not None else KafkaCaptureProducer(settings)
        state.producer = created
        await created.start()
        yield
        await created.close(FLUSH_TIMEOUT_S)

    ops = web.Application()
    ops[STATE] = state
    ops.cleanup_ctx.append(producer_context)
    ops.router.add_get("/healthz", healthz)
    ops.router.add_get("/readyz", readyz)
    ops.router.add_get("/metrics", metrics_endpoint)

    def event_app(*extra: Middleware) -> web.Application:
        # Accept one byte more than the limit so that an oversized body reaches our own 413 with a reason.
        app = web.Application(
            client_max_size=settings.max_body_bytes + 1, middlewares=[count_unexpected_errors, *extra]
        )
        app[STATE] = state
        app.router.add_post("/{path:.*}", receive_event)
        return app

    producers = event_app(require_producer_token) if settings.producer is not None else None
    return CollectorApps(state=state, ops=ops, events=event_app(), producers=producers)
