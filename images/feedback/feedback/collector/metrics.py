"""The collector's Prometheus metrics (one registry per app so that tests can build several apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "feedback_collector_events_received_total",
            "HTTP events received, by event kind (request, response, feedback, other)",
            ["kind"],
            registry=self.registry,
        )
        self.produced = Counter(
            "feedback_collector_events_produced_total",
            "Events acknowledged by Kafka (acks=all), by event kind",
            ["kind"],
            registry=self.registry,
        )
        self.sampled_out = Counter(
            "feedback_collector_events_sampled_out_total",
            "Valid events not forwarded because their request id fell outside the sampling rate",
            ["kind"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "feedback_collector_events_rejected_total",
            "Events refused with a 4xx answer, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.failed = Counter(
            "feedback_collector_events_failed_total",
            "Valid events not produced: Kafka did not acknowledge (503) or an unforeseen error (500, internal_error)",
            ["reason"],
            registry=self.registry,
        )
        self.resent = Counter(
            "feedback_collector_events_resent_total",
            "Events produced again because librdkafka reported them delivered without an offset (inferred from a "
            "later batch, not acknowledged by the broker)",
            registry=self.registry,
        )
        self.auth_refused = Counter(
            "feedback_collector_auth_refused_total",
            "Requests to the producer listener refused with 401 before their body was read, by reason "
            "(missing_token, malformed_authorization, invalid_token)",
            ["reason"],
            registry=self.registry,
        )
        self.redacted = Counter(
            "feedback_collector_events_redacted_total",
            "Events whose payload was changed by redaction before leaving the process",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "feedback_collector_events_in_flight",
            "Events received and waiting for Kafka's acknowledgement",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "feedback_collector_producer_queue_depth",
            "Records in the producer's local queue (not yet acknowledged)",
            registry=self.registry,
        )
        self.kafka_ready = Gauge(
            "feedback_collector_kafka_ready",
            "1 while the broker answers and the capture topic exists, else 0",
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "feedback_collector_produce_seconds",
            "Time from handing a record to the producer until Kafka acknowledged it",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
