"""Indexer settings, read once from environment variables and validated at start (see images/feedback/README.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from feedback.config import (
    LOG_LEVELS,
    KafkaSettings,
    SettingsError,
    env_bool,
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
SEARCH_ENGINES = ("elasticsearch", "opensearch")
REFRESH_INTERVAL = re.compile(r"^(-1|\d+(ms|s|m))$")
OFFSET_RESETS = ("earliest", "latest")
SELDON_DEPLOYMENT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a Kubernetes object name (DNS-1123)


@dataclass(frozen=True)
class SearchSettings:
    engine: str
    urls: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout_s: float = 30.0


@dataclass(frozen=True)
class IndexerSettings:
    kafka: KafkaSettings
    search: SearchSettings
    topic: str = DEFAULT_TOPIC
    group_id: str = "seldon-feedback-indexer"
    dead_letter_topic: str = DEFAULT_TOPIC + "-dead-letter"
    index: str = "seldon-feedback"
    index_shards: int = 1
    index_replicas: int = 1
    index_refresh_interval: str = "1s"
    retention_days: int = 0
    batch_size: int = 1000
    batch_wait_s: float = 0.05
    join_wait_s: float = 2.0
    join_max_documents: int = 20_000
    buffer_max_bytes: int = 64 * 1024 * 1024
    recent_documents_bytes: int = 32 * 1024 * 1024
    bulk_max_bytes: int = 8 * 1024 * 1024
    max_instances: int = 1000
    max_message_bytes: int = 2 * 1024 * 1024
    item_max_attempts: int = 5
    dead_letter_max_bytes: int = 1_000_000
    offset_reset: str = "earliest"
    max_future_event_s: float = 3600.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    streaming_deployments: tuple[str, ...] = ()
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9090
    redactor: Redactor = field(default_factory=Redactor)
    log_level: str = "info"
    no_response_after_s: float = 120.0
    feedback_join_delay_s: float = 60.0
    feedback_join_window_s: float = 3600.0
    sweep_interval_s: float = 10.0
    session_timeout_s: float = 30.0
    consumer_stall_s: float = 90.0
    protos: SeldonProtos | None = None  # Seldon's protobuf messages (gRPC payloads); from_env always loads them

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IndexerSettings:
        env = os.environ if env is None else env
        topic = env_topic(env, "CAPTURE_TOPIC", DEFAULT_TOPIC)
        dead_letter = env_topic(env, "INDEXER_DEAD_LETTER_TOPIC", f"{topic}-dead-letter")
        if dead_letter == topic:
            raise SettingsError(f"INDEXER_DEAD_LETTER_TOPIC={dead_letter!r} must differ from CAPTURE_TOPIC")
        index = index_name(env)
        retry_initial = env_float(env, "INDEXER_RETRY_INITIAL_S", 0.5, minimum=0.01, maximum=60.0)
        retry_max = env_float(env, "INDEXER_RETRY_MAX_S", 30.0, minimum=0.01, maximum=600.0)
        if retry_max < retry_initial:
            raise SettingsError(
                f"INDEXER_RETRY_MAX_S={retry_max:g} must be at least INDEXER_RETRY_INITIAL_S={retry_initial:g}"
            )
        redactor = redactor_from_env(env, "INDEXER")
        session_timeout, consumer_stall = consumer_timeouts(env)
        return cls(
            kafka=kafka_settings(env),
            search=search_settings(env),
            topic=topic,
            group_id=env_str(env, "INDEXER_GROUP_ID", "seldon-feedback-indexer"),
            dead_letter_topic=dead_letter,
            index=index,
            index_shards=env_int(env, "INDEXER_INDEX_SHARDS", 1, minimum=1, maximum=64),
            index_replicas=env_int(env, "INDEXER_INDEX_REPLICAS", 1, minimum=0, maximum=8),
            index_refresh_interval=refresh_interval(env),
            retention_days=env_int(env, "INDEXER_RETENTION_DAYS", 0, minimum=0, maximum=36_500),
            batch_size=env_int(env, "INDEXER_BATCH_SIZE", 1000, minimum=1, maximum=10_000),
            batch_wait_s=env_float(env, "INDEXER_BATCH_WAIT_S", 0.05, minimum=0.001, maximum=30.0),
            join_wait_s=env_float(env, "INDEXER_JOIN_WAIT_S", 2.0, minimum=0.0, maximum=30.0),
            join_max_documents=env_int(env, "INDEXER_JOIN_MAX_DOCUMENTS", 20_000, minimum=1, maximum=1_000_000),
            buffer_max_bytes=env_int(
                env, "INDEXER_BUFFER_MAX_BYTES", 64 * 1024 * 1024, minimum=1024 * 1024, maximum=4 * 1024**3
            ),
            recent_documents_bytes=env_int(
                env, "INDEXER_RECENT_DOCUMENTS_BYTES", 32 * 1024 * 1024, minimum=0, maximum=4 * 1024**3
            ),
            bulk_max_bytes=env_int(
                env, "INDEXER_BULK_MAX_BYTES", 8 * 1024 * 1024, minimum=64 * 1024, maximum=512 * 1024 * 1024
            ),
            max_instances=env_int(env, "INDEXER_MAX_INSTANCES", 1000, minimum=1, maximum=1_000_000),
            max_message_bytes=env_int(
                env, "INDEXER_MAX_MESSAGE_BYTES", 2 * 1024 * 1024, minimum=1024, maximum=256 * 1024 * 1024
            ),
            item_max_attempts=env_int(env, "INDEXER_ITEM_MAX_ATTEMPTS", 5, minimum=1, maximum=1000),
            dead_letter_max_bytes=env_int(
                env, "INDEXER_DEAD_LETTER_MAX_BYTES", 1_000_000, minimum=10_000, maximum=100 * 1024 * 1024
            ),
            offset_reset=env_choice(env, "INDEXER_OFFSET_RESET", "earliest", OFFSET_RESETS),
            max_future_event_s=env_float(env, "INDEXER_MAX_FUTURE_EVENT_S", 3600.0, minimum=1.0, maximum=10 * 86_400.0),
            retry_initial_s=retry_initial,
            retry_max_s=retry_max,
            streaming_deployments=streaming_deployments(env),
            metrics_host=env_str(env, "INDEXER_METRICS_HOST", "0.0.0.0"),
            metrics_port=env_int(env, "INDEXER_METRICS_PORT", 9090, minimum=1, maximum=65535),
            redactor=redactor,
            log_level=env_choice(env, "LOG_LEVEL", "info", LOG_LEVELS),
            no_response_after_s=env_float(env, "INDEXER_NO_RESPONSE_AFTER_S", 120.0, minimum=1.0, maximum=86_400.0),
            feedback_join_delay_s=env_float(env, "INDEXER_FEEDBACK_JOIN_DELAY_S", 60.0, minimum=1.0, maximum=86_400.0),
            feedback_join_window_s=env_float(
                env, "INDEXER_FEEDBACK_JOIN_WINDOW_S", 3600.0, minimum=1.0, maximum=30 * 86_400.0
            ),
            sweep_interval_s=env_float(env, "INDEXER_SWEEP_INTERVAL_S", 10.0, minimum=0.1, maximum=3600.0),
            session_timeout_s=session_timeout,
            consumer_stall_s=consumer_stall,
            protos=load_from_env(env),
        )


@dataclass(frozen=True)
class SetupSettings:
    """What `python -m feedback.indexer setup` needs: the search engine (with credentials allowed to manage index
    templates, stored scripts and the capture index's mapping), the index and its template settings."""

    search: SearchSettings
    index: str = "seldon-feedback"
    index_shards: int = 1
    index_replicas: int = 1
    index_refresh_interval: str = "1s"
    timeout_s: float = 300.0
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SetupSettings:
        env = os.environ if env is None else env
        return cls(
            search=search_settings(env),
            index=index_name(env),
            index_shards=env_int(env, "INDEXER_INDEX_SHARDS", 1, minimum=1, maximum=64),
            index_replicas=env_int(env, "INDEXER_INDEX_REPLICAS", 1, minimum=0, maximum=8),
            index_refresh_interval=refresh_interval(env),
            timeout_s=env_float(env, "INDEXER_SETUP_TIMEOUT_S", 300.0, minimum=1.0, maximum=3600.0),
            log_level=env_choice(env, "LOG_LEVEL", "info", LOG_LEVELS),
        )


STALL_SESSION_TIMEOUTS = 3  # the default watchdog bound, in session timeouts
MIN_STALL_SESSION_TIMEOUTS = 2  # a shorter bound would recreate consumers that rejoin by themselves


def consumer_timeouts(env: Mapping[str, str]) -> tuple[float, float]:
    """INDEXER_SESSION_TIMEOUT_S (the consumer's session.timeout.ms, in seconds) and INDEXER_CONSUMER_STALL_S (how
    long the consumer may stay out of its group, or stuck behind a backlog, before the watchdog recreates it;
    default 3 session timeouts, at least 2)."""
    session = env_float(env, "INDEXER_SESSION_TIMEOUT_S", 30.0, minimum=6.0, maximum=300.0)
    least = MIN_STALL_SESSION_TIMEOUTS * session
    stall = env_float(env, "INDEXER_CONSUMER_STALL_S", STALL_SESSION_TIMEOUTS * session, minimum=1.0, maximum=3600.0)
    if stall < least:
        raise SettingsError(
            f"INDEXER_CONSUMER_STALL_S={stall:g} must be at least {MIN_STALL_SESSION_TIMEOUTS} session timeouts "
            f"({least:g} s with INDEXER_SESSION_TIMEOUT_S={session:g}): a consumer rejoins its group by itself within "
            f"about one; raise it, lower INDEXER_SESSION_TIMEOUT_S, or leave it unset ({STALL_SESSION_TIMEOUTS} "
            "session timeouts)"
        )
    return session, stall


def index_name(env: Mapping[str, str]) -> str:
    """INDEXER_INDEX: the capture index (a valid index name, not a pattern)."""
    index = env_str(env, "INDEXER_INDEX", "seldon-feedback")
    bad_chars = any(char in index for char in ' "*\\<|,>/?#:')
    if index != index.lower() or bad_chars or index.startswith(("-", "_", "+")):
        raise SettingsError(
            f"INDEXER_INDEX={index!r} is not a valid index name: use lower case letters, digits, '-', '_' or '.',"
            " not starting with '-', '_' or '+'"
        )
    return index


def refresh_interval(env: Mapping[str, str]) -> str:
    """INDEXER_INDEX_REFRESH_INTERVAL: how soon an acknowledged write becomes searchable (index.refresh_interval)."""
    value = env_str(env, "INDEXER_INDEX_REFRESH_INTERVAL", "1s")
    if not REFRESH_INTERVAL.match(value):
        raise SettingsError(
            f"INDEXER_INDEX_REFRESH_INTERVAL={value!r} is not a time value; use e.g. 500ms, 1s, 30s or -1 (never)"
        )
    return value


def streaming_deployments(env: Mapping[str, str]) -> tuple[str, ...]:
    """INDEXER_STREAMING_DEPLOYMENTS: the exact names of the SeldonDeployments whose events are mode=streaming,
    as the deployer lists them (no patterns: a name the deployer did not list is never taken for streaming)."""
    names = env_list(env, "INDEXER_STREAMING_DEPLOYMENTS")
    for name in names:
        if not SELDON_DEPLOYMENT_NAME.fullmatch(name):
            raise SettingsError(
                f"INDEXER_STREAMING_DEPLOYMENTS: {name!r} is not a SeldonDeployment name; list the exact names of the "
                f"streaming deployments, comma-separated (patterns such as '*-streaming' are not accepted), "
                f"for example INDEXER_STREAMING_DEPLOYMENTS=text-classifier-streaming"
            )
    return names


def search_settings(env: Mapping[str, str], prefix: str = "INDEXER") -> SearchSettings:
    """`<prefix>_SEARCH_*`: how the indexer (and, with prefix MONITOR, the monitor) reaches the search engine."""
    engine = env_choice(env, f"{prefix}_SEARCH_ENGINE", "elasticsearch", SEARCH_ENGINES)
    urls = env_list(env, f"{prefix}_SEARCH_URL")
    if not urls:
        raise SettingsError(
            f"{prefix}_SEARCH_URL is required but not set; set it to the search cluster's URL, "
            f"for example {prefix}_SEARCH_URL=https://feedback-es-http:9200"
        )
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SettingsError(f"{prefix}_SEARCH_URL: {url!r} is not an http(s) URL such as https://search:9200")
    username = env_optional(env, f"{prefix}_SEARCH_USERNAME")
    password = env_optional(env, f"{prefix}_SEARCH_PASSWORD")
    if (username is None) != (password is None):
        raise SettingsError(f"{prefix}_SEARCH_USERNAME and {prefix}_SEARCH_PASSWORD must be set together")
    api_key = env_optional(env, f"{prefix}_SEARCH_API_KEY")
    if api_key and engine != "elasticsearch":
        raise SettingsError(f"{prefix}_SEARCH_API_KEY works only with {prefix}_SEARCH_ENGINE=elasticsearch")
    if api_key and username:
        raise SettingsError(f"set either {prefix}_SEARCH_API_KEY or {prefix}_SEARCH_USERNAME/PASSWORD, not both")
    ca_certs = env_optional(env, f"{prefix}_SEARCH_CA_CERTS")
    if ca_certs and not os.path.isfile(ca_certs):
        raise SettingsError(f"{prefix}_SEARCH_CA_CERTS={ca_certs!r} is not a readable file")
    return SearchSettings(
        engine=engine,
        urls=urls,
        username=username,
        password=password,
        api_key=api_key,
        ca_certs=ca_certs,
        verify_certs=env_bool(env, f"{prefix}_SEARCH_VERIFY_CERTS", True),
        request_timeout_s=env_float(env, f"{prefix}_SEARCH_TIMEOUT_S", 30.0, minimum=1.0, maximum=300.0),
    )
