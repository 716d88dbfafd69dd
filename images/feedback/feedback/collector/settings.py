"""Collector settings, read once from environment variables and validated at start (see images/feedback/README.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from feedback.collector.auth import TokenFileError, load_tokens
from feedback.config import (
    LOG_LEVELS,
    KafkaSettings,
    SettingsError,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_optional,
    env_str,
    env_topic,
    kafka_settings,
)
from feedback.redaction import Redactor, redactor_from_env
from feedback.seldon_protos import SeldonProtos, load_from_env

DEFAULT_TOPIC = "seldon-capture"
DEFAULT_METRICS_PORT = 9090
PRODUCER_EVENT_KINDS = ("request", "response", "feedback")


@dataclass(frozen=True)
class ProducerListener:
    """The token-authenticated listener for producers other than Seldon (COLLECTOR_PRODUCER_*)."""

    port: int
    tokens: tuple[bytes, ...] = field(repr=False)  # never printed: repr hides them
    event_kinds: tuple[str, ...] = ("feedback",)


@dataclass(frozen=True)
class CollectorSettings:
    kafka: KafkaSettings
    topic: str = DEFAULT_TOPIC
    host: str = "0.0.0.0"
    port: int = 8080  # the event listener (Seldon's executors; no token, the network decides who reaches it)
    metrics_port: int = DEFAULT_METRICS_PORT  # /metrics, /healthz, /readyz only
    producer: ProducerListener | None = None  # None: no producer listener
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
        port = env_int(env, "COLLECTOR_PORT", 8080, minimum=1, maximum=65535)
        metrics_port = env_int(env, "COLLECTOR_METRICS_PORT", DEFAULT_METRICS_PORT, minimum=1, maximum=65535)
        producer = producer_listener(env)
        ports = {"COLLECTOR_PORT": port, "COLLECTOR_METRICS_PORT": metrics_port}
        if producer is not None:
            ports["COLLECTOR_PRODUCER_PORT"] = producer.port
        if len(set(ports.values())) != len(ports):
            listed = ", ".join(f"{name}={value}" for name, value in ports.items())
            raise SettingsError(f"the collector's ports must differ ({listed}); give each listener its own port")
        return cls(
            kafka=kafka_settings(env),
            topic=env_topic(env, "CAPTURE_TOPIC", DEFAULT_TOPIC),
            host=env_str(env, "COLLECTOR_HOST", "0.0.0.0"),
            port=port,
            metrics_port=metrics_port,
            producer=producer,
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


def producer_listener(env: Mapping[str, str]) -> ProducerListener | None:
    """COLLECTOR_PRODUCER_PORT (0 or unset: off), COLLECTOR_PRODUCER_TOKEN_FILE (required with a port),
    COLLECTOR_PRODUCER_EVENT_TYPES (the event kinds producers may send; default feedback only)."""
    port = env_int(env, "COLLECTOR_PRODUCER_PORT", 0, minimum=0, maximum=65535)
    token_file = env_optional(env, "COLLECTOR_PRODUCER_TOKEN_FILE")
    if port == 0:
        if token_file:
            raise SettingsError(
                "COLLECTOR_PRODUCER_TOKEN_FILE is set but COLLECTOR_PRODUCER_PORT is not; set the port to open the "
                "token-authenticated producer listener, or drop the token file"
            )
        return None
    if not token_file:
        raise SettingsError(
            f"COLLECTOR_PRODUCER_PORT={port} needs COLLECTOR_PRODUCER_TOKEN_FILE, the path of a file holding the "
            "producer token (a mounted Secret)"
        )
    kinds = env_list(env, "COLLECTOR_PRODUCER_EVENT_TYPES", ("feedback",))
    unknown = [kind for kind in kinds if kind not in PRODUCER_EVENT_KINDS]
    if unknown or not kinds:
        raise SettingsError(
            f"COLLECTOR_PRODUCER_EVENT_TYPES={','.join(kinds)!r} must list some of {', '.join(PRODUCER_EVENT_KINDS)} "
            "(comma-separated), e.g. feedback"
        )
    try:
        tokens = load_tokens(Path(token_file))
    except TokenFileError as exc:
        raise SettingsError(str(exc)) from None
    return ProducerListener(port=port, tokens=tokens, event_kinds=kinds)
