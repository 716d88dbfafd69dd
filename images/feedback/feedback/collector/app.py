"""The collector's HTTP app: CloudEvents in (any path), Kafka out, Prometheus metrics, health and readiness.

`create_app(settings, producer)` builds the app; with `producer=None` the real Kafka producer is created and
flushed in the app's cleanup context, so a failed start still tears down what was created.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from feedback.collector.core import Rejection, build_record, sampled_in
from feedback.collector.kafka_io import CaptureProducer, DeliveryFailed, KafkaCaptureProducer
from feedback.collector.metrics import CollectorMetrics
from feedback.collector.settings import CollectorSettings
from feedback.redaction import Redactor
from feedback.seldon import EVENT_TYPES

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", CollectorSettings)
METRICS = web.AppKey("metrics", CollectorMetrics)
PRODUCER = web.AppKey("producer", CaptureProducer)
DRAINING = web.AppKey("draining", asyncio.Event)

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
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    producer = request.app[PRODUCER]
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
        metrics.failed.labels(exc.reason).inc()
        log.warning("event not acknowledged by Kafka (%s) request_id=%s: %s", exc.reason, record.request_id, exc)
        return web.json_response(
            {"status": "failed", "reason": exc.reason, "error": f"Kafka did not acknowledge the event: {exc}"},
            status=503,
        )
    finally:
        metrics.in_flight.dec()
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
        request.app[METRICS].failed.labels("internal_error").inc()
        redactor = request.app[SETTINGS].redactor
        request_id = redactor.redact_request_id(request.headers.get("Ce-Requestid", "-"))
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
    problem = request.app[PRODUCER].health_problem()
    if problem is not None:
        return web.json_response({"status": "unhealthy", "error": problem}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    if request.app[DRAINING].is_set():
        return web.json_response(
            {"status": "not ready", "error": "shutting down: finishing the events in flight"}, status=503
        )
    if producer.is_ready():
        return web.json_response({"status": "ready"})
    detail = getattr(producer, "last_error", "Kafka unreachable")
    return web.json_response({"status": "not ready", "error": f"Kafka is not reachable: {detail}"}, status=503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    producer = request.app[PRODUCER]
    metrics.queue_depth.set(producer.queue_depth())
    metrics.kafka_ready.set(1 if producer.is_ready() else 0)
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: CollectorSettings, producer: CaptureProducer | None = None) -> web.Application:
    # Accept one byte more than the limit so that an oversized body reaches our own 413 with a reason.
    app = web.Application(client_max_size=settings.max_body_bytes + 1, middlewares=[count_unexpected_errors])
    app[SETTINGS] = settings
    app[METRICS] = CollectorMetrics()
    app[DRAINING] = asyncio.Event()

    async def producer_context(app: web.Application) -> AsyncIterator[None]:
        created = producer if producer is not None else KafkaCaptureProducer(settings)
        app[PRODUCER] = created
        await created.start()
        yield
        await created.close(FLUSH_TIMEOUT_S)

    app.cleanup_ctx.append(producer_context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_post("/{path:.*}", receive_event)
    return app
