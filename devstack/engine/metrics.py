"""The engine's Prometheus metrics, served on --prometheus_path (default /metrics) of the REST port.

Requests by route and status code, the log queue's depth, events dropped (buffer full past the write timeout),
events sent and send errors per sink, and Kafka-mode messages that produced no answer, by reason: what the real
executor only writes into its log (README "What is logged and when", "Kafka server mode").
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "seldon_engine"


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests_total", "Requests answered, by route and HTTP status (gRPC: status name)",
            ["route", "code"], registry=r,
        )  # fmt: skip
        self.request_seconds = Histogram(
            f"{PREFIX}_request_seconds", "Time from request to answer, by route", ["route"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )  # fmt: skip
        self.log_queue_depth = Gauge(f"{PREFIX}_logger_queue_depth", "Log events waiting for a worker", registry=r)
        self.log_dropped = Counter(
            f"{PREFIX}_logger_dropped_total", "Log events dropped: the buffer stayed full for the write timeout",
            ["kind"], registry=r,
        )  # fmt: skip
        self.log_sent = Counter(f"{PREFIX}_logger_sent_total", "Log events sent", ["sink", "kind"], registry=r)
        self.log_send_errors = Counter(
            f"{PREFIX}_logger_send_errors_total", "Log events whose send failed (not retried, as upstream)",
            ["sink", "kind"], registry=r,
        )  # fmt: skip
        self.kafka_messages = Counter(
            f"{PREFIX}_kafka_messages_total", "Kafka-mode input messages, by outcome (answered, failed)",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.kafka_failures = Counter(
            f"{PREFIX}_kafka_failures_total", "Kafka-mode messages that produced no output, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
