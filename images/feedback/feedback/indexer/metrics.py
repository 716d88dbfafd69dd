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
            "Document writes acknowledged by the search cluster, by operation: create (a joined document, written "
            "once), index (a late event merged with this process's copy) or update (the scripted merge)",
            ["op"],
            registry=registry,
        )
        self.search_auth_failures = Counter(
            "feedback_indexer_search_auth_failures_total",
            "Requests the search cluster refused with 401/403 (credentials or permissions; readiness is false)",
            registry=registry,
        )
        self.search_refusals = Counter(
            "feedback_indexer_search_refusals_total",
            "Writes refused for a reason that is the cluster's, not the document's (scripts_refused, "
            "script_missing, canary_failed): never dead-lettered, retried",
            ["reason"],
            registry=registry,
        )
        self.offset_resets = Counter(
            "feedback_indexer_offset_resets_total",
            "Committed offsets the capture topic no longer had (retention deleted unindexed messages: data loss), "
            "resolved by INDEXER_OFFSET_RESET",
            ["partition"],
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "feedback_indexer_lag_seconds",
            "Age (broker timestamp) of the oldest consumed message not yet safely indexed, per partition",
            ["partition"],
            registry=registry,
        )
        self.clock_skew = Counter(
            "feedback_indexer_clock_skew_total",
            "Messages whose broker timestamp is more than 1 s ahead of this process's clock (freshness then 0)",
            registry=registry,
        )
        self.event_time_adjusted = Counter(
            "feedback_indexer_event_time_adjusted_total",
            "Events whose Ce-Time was further ahead of the broker timestamp than INDEXER_MAX_FUTURE_EVENT_S "
            "(the broker timestamp was used instead)",
            registry=registry,
        )
        self.retention_deleted = Counter(
            "feedback_indexer_retention_deleted_total",
            "Documents deleted because they were older than INDEXER_RETENTION_DAYS",
            registry=registry,
        )
        self.dead_letter_stubs = Counter(
            "feedback_indexer_dead_letter_stubs_total",
            "Dead letters sent without their value (too large for the dead-letter topic); headers keep the offset",
            registry=registry,
        )
        self.join_buffer = Gauge(
            "feedback_indexer_join_buffer_documents",
            "Documents waiting in memory for their other events (request or response)",
            registry=registry,
        )
        self.retries = Counter(
            "feedback_indexer_retries_total",
            "Write attempts to be retried, by reason (search_unavailable, search_auth, item_rejected, too_large, "
            "dead_letter_unavailable)",
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
            "Broker timestamp of a message until its documents are searchable (acknowledged by the search cluster "
            "plus the index refresh interval)",
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
            "Broker timestamp of the newest message whose documents the search cluster acknowledged (never ahead "
            "of this process's clock)",
            registry=registry,
        )
        self.ready = Gauge(
            "feedback_indexer_ready",
            "1 while the indexer consumes and the search cluster accepts its writes (template installed, canary "
            "written, credentials accepted, dead-letter topic present); /readyz says why not",
            registry=registry,
        )
        self.consumer_recreated = Counter(
            "feedback_indexer_consumer_recreated_total",
            "Kafka consumers the watchdog closed and recreated while the broker answered, by reason: no_assignment "
            "(out of its group for INDEXER_CONSUMER_STALL_S), no_progress (messages waiting, none consumed)",
            ["reason"],
            registry=registry,
        )
        self.consumer_recreate_failures = Counter(
            "feedback_indexer_consumer_recreate_failures_total",
            "Consumer recreations that failed at once or did not bring the consumer back before it stalled again "
            "(3 in a row fail /healthz)",
            registry=registry,
        )
        self.heartbeat = time.monotonic()
        self.not_ready: dict[str, str] = {"starting": "the indexer is starting"}
        self.not_alive: dict[str, str] = {}  # reason name -> why /healthz fails (besides a stalled main loop)

    def set_problem(self, name: str, detail: str | None) -> None:
        """Record (detail) or clear (None) one reason not to be ready; ready is 1 only without any."""
        if detail is None:
            self.not_ready.pop(name, None)
        else:
            self.not_ready[name] = detail
        self.ready.set(0 if self.not_ready else 1)

    def beat(self) -> None:
        self.heartbeat = time.monotonic()


class Endpoint(Protocol):
    """What the endpoint serves: the registry, the main loop's last heartbeat, the ready gauge and the reasons it
    is 0 (the indexer's and the monitor's metrics both have them)."""

    registry: CollectorRegistry
    heartbeat: float
    ready: Gauge
    not_ready: dict[str, str]  # reason name -> why not ready; empty when ready (/readyz)
    not_alive: dict[str, str]  # reason name -> why the process must be restarted; empty when alive (/healthz)


def serve_http(metrics: Endpoint, host: str, port: int) -> ThreadingHTTPServer:
    """Start the endpoint in a daemon thread: /metrics, /healthz (main loop alive, nothing in `not_alive`),
    /readyz (nothing in `not_ready`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                if time.monotonic() - metrics.heartbeat >= LIVENESS_TIMEOUT_S:
                    self._send(503, b"main loop stalled\n")
                elif problems := dict(metrics.not_alive):
                    self._send(503, ("not alive: " + "; ".join(problems.values()) + "\n").encode("utf-8", "replace"))
                else:
                    self._send(200, b"ok\n")
            elif path == "/readyz":
                problems = dict(metrics.not_ready)
                if problems:
                    text = "not ready: " + "; ".join(problems.values()) + "\n"
                    self._send(503, text.encode("utf-8", "replace"))
                else:
                    self._send(200, b"ready\n")
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
