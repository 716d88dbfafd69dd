"""Collector settings, read once from environment variables and validated at start (see images/feedback/README.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from feedback.config import (
    LOG_LEVELS,
    KafkaSettings,
    env_choice,
    env_float,
    env_int,
    env_str,
    env_topic,
    kafka_settings,
)
from feedback.redaction import Redactor, redactor_from_env
from feedback.seldon_protos import SeldonProtos, load_from_env

DEFAULT_TOPIC = "seldon-capture"


@dataclass(frozen=True)
class CollectorSettings:
    kafka: KafkaSettings
    topic: str = DEFAULT_TOPIC
    host: str = "0.0.0.0"
    port: int = 8080
    max_body_bytes: int = 512 * 1024
    sampling_rate: float = 1.0
    redactor: Redactor = field(default_factory=Redactor)
    delivery_timeout_s: float = 30.0
    readiness_interval_s: float = 5.0
    producer_queue_max_messages: int = 100_000
    producer_buffer_max_bytes: int = 128 * 1024 * 1024
    linger_ms: int = 2
    drain_s: float = 2.0
    shutdown_timeout_s: float = 20.0
    log_level: str = "info"
    protos: SeldonProtos | None = None  # Seldon's protobuf messages (gRPC payloads); from_env always loads them

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CollectorSettings:
        env = os.environ if env is None else env
        redactor = redactor_from_env(env, "COLLECTOR")
        return cls(
            kafka=kafka_settings(env),
            topic=env_topic(env, "CAPTURE_TOPIC", DEFAULT_TOPIC),
            host=env_str(env, "COLLECTOR_HOST", "0.0.0.0"),
            port=env_int(env, "COLLECTOR_PORT", 8080, minimum=1, maximum=65535),
            max_body_bytes=env_int(env, "COLLECTOR_MAX_BODY_BYTES", 512 * 1024, minimum=1024, maximum=64 * 1024 * 1024),
            sampling_rate=env_float(env, "COLLECTOR_SAMPLING_RATE", cls.sampling_rate, minimum=0.0, maximum=1.0),
            redactor=redactor,
            delivery_timeout_s=env_float(env, "COLLECTOR_DELIVERY_TIMEOUT_S", 30.0, minimum=1.0, maximum=600.0),
            readiness_interval_s=env_float(env, "COLLECTOR_READINESS_INTERVAL_S", 5.0, minimum=0.2, maximum=300.0),
            producer_queue_max_messages=env_int(
                env, "COLLECTOR_PRODUCER_QUEUE_MAX_MESSAGES", 100_000, minimum=100, maximum=10_000_000
            ),
            producer_buffer_max_bytes=env_int(
                env, "COLLECTOR_PRODUCER_BUFFER_MAX_BYTES", 128 * 1024 * 1024, minimum=1024 * 1024, maximum=2**31 - 1
            ),
            linger_ms=env_int(env, "COLLECTOR_LINGER_MS", 2, minimum=0, maximum=1000),
            drain_s=env_float(env, "COLLECTOR_DRAIN_S", 2.0, minimum=0.0, maximum=120.0),
            shutdown_timeout_s=env_float(env, "COLLECTOR_SHUTDOWN_TIMEOUT_S", 20.0, minimum=1.0, maximum=600.0),
            log_level=env_choice(env, "LOG_LEVEL", "info", LOG_LEVELS),
            protos=load_from_env(env),
        )
