"""The indexer's Prometheus metrics and its small HTTP endpoint (/metrics, /healthz, /readyz)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LIVENESS_TIMEOUT_S = 120.0


class IndexerMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.consumed = Counter(
            "feedback_indexer_messages_consumed_total",
            "Capture messages read from Kafka, by format (cloudevent, direct, invalid) and event kind",
            ["format", "kind"],
            registry=registry,
        )
        self.indexed = Counter(
            "feedback_indexer_messages_indexed_total",
            "Capture messages whose documents the search cluster acknowledged",
            registry=registry,
        )
        self.documents = Counter(
            "feedback_indexer_document_writes_total",
            "Document updates acknowledged by the search cluster (several messages of one batch may share one)",
            registry=registry,
        )
        self.retries = Counter(
            "feedback_indexer_retries_total",
            "Write attempts to be retried, by reason (search_unavailable, item_rejected, dead_letter_unavailable)",
            ["reason"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "feedback_indexer_dead_lettered_total",
            "Messages sent to the dead-letter topic, by reason",
            ["reason"],
            registry=registry,
        )
        self.commit_failures = Counter(
            "feedback_indexer_commit_failures_total",
            "Offset commits that failed (the batch is indexed; offsets are committed with the next batch)",
            registry=registry,
        )
        self.no_response = Counter(
            "feedback_indexer_no_response_total",
            "Requests marked outcome=no_response by the sweep (no response after INDEXER_NO_RESPONSE_AFTER_S)",
            registry=registry,
        )
        self.feedback_joins = Counter(
            "feedback_indexer_feedback_joins_total",
            "Feedbacks whose request id matched no document, by what the fingerprint sweep decided "
            "(joined, duplicate, no_match, ambiguous, no_fingerprint)",
            ["outcome"],
            registry=registry,
        )
        self.sweep_failures = Counter(
            "feedback_indexer_sweep_failures_total",
            "Sweeps, or single sweep writes, that the search cluster did not accept (repeated next interval)",
            registry=registry,
        )
        self.bulk_seconds = Histogram(
            "feedback_indexer_bulk_seconds",
            "Duration of one bulk write to the search cluster (successful or not)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.freshness_seconds = Histogram(
            "feedback_indexer_freshness_seconds",
            "Event time (Ce-Time or Kafka timestamp) to acknowledgement by the search cluster",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "feedback_indexer_consumer_lag",
            "Messages behind the end of each assigned partition (from librdkafka statistics)",
            ["partition"],
            registry=registry,
        )
        self.last_event_time = Gauge(
            "feedback_indexer_last_indexed_event_timestamp_seconds",
            "Event time of the newest message acknowledged by the search cluster",
            registry=registry,
        )
        self.ready = Gauge(
            "feedback_indexer_ready",
            "1 once the index template is installed and the consumer is subscribed",
            registry=registry,
        )
        self.heartbeat = time.monotonic()

    def beat(self) -> None:
        self.heartbeat = time.monotonic()


class Endpoint(Protocol):
    """What the endpoint serves: the registry, the main loop's last heartbeat and the ready gauge (the indexer's
    and the monitor's metrics both have them)."""

    registry: CollectorRegistry
    heartbeat: float
    ready: Gauge


def serve_http(metrics: Endpoint, host: str, port: int) -> ThreadingHTTPServer:
    """Start the endpoint in a daemon thread: /metrics, /healthz (main loop alive), /readyz (template installed)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                alive = time.monotonic() - metrics.heartbeat < LIVENESS_TIMEOUT_S
                self._send(200 if alive else 503, b"ok\n" if alive else b"main loop stalled\n")
            elif path == "/readyz":
                ready = metrics.ready._value.get() == 1  # prometheus_client has no public getter
                self._send(200 if ready else 503, b"ready\n" if ready else b"not ready\n")
            else:
                self._send(404, b"not found: use /metrics, /healthz or /readyz\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
