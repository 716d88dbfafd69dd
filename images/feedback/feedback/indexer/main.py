"""The indexer's loop: poll a batch, build idempotent bulk actions, write, dead-letter what can never be indexed,
and only then store and commit offsets. Failures back off and retry; nothing is skipped.

`python -m feedback.indexer` runs `main()`.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from feedback.config import SettingsError
from feedback.indexer.core import (
    MERGE_SCRIPT_ID,
    DocumentPart,
    ItemOutcome,
    PoisonMessage,
    bulk_action,
    classify_item,
    coalesce,
    decode_message,
    document_parts,
    error_reason,
    index_template,
    mapping_properties,
    stored_script,
)
from feedback.indexer.kafka_io import (
    DeadLetterProducer,
    RebalanceTracker,
    caught_up,
    commit_stored,
    create_consumer,
    lag_from_stats,
)
from feedback.indexer.metrics import IndexerMetrics, serve_http
from feedback.indexer.search_io import SearchBackend, SearchUnavailable, create_backend
from feedback.indexer.settings import IndexerSettings
from feedback.indexer.sweeper import Sweeper

log = logging.getLogger("feedback.indexer")

DEAD_LETTER_TIMEOUT_S = 30.0


@dataclass
class Poisoned:
    message: Message
    reason: str
    detail: str


class Backoff:
    """Exponential backoff from `initial` to `maximum` seconds; waits are interruptible by `stop`."""

    def __init__(self, initial: float, maximum: float, stop: threading.Event) -> None:
        self.initial, self.maximum, self.stop = initial, maximum, stop
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    def wait(self, keep_alive: Callable[[], None]) -> None:
        deadline = time.monotonic() + self.delay
        while not self.stop.is_set() and time.monotonic() < deadline:
            keep_alive()
            self.stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        self.delay = min(self.delay * 2, self.maximum)


class Indexer:
    def __init__(
        self,
        settings: IndexerSettings,
        backend: SearchBackend,
        metrics: IndexerMetrics,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics
        self.stop = stop
        self.rebalance = RebalanceTracker()
        self.consumer = create_consumer(settings, self._on_stats)
        self.dead_letters = DeadLetterProducer(settings)
        self.carry: list[Message] = []
        self.sweeper = Sweeper(settings, backend, metrics)
        self._interrupted = False  # a stop cut a write or dead-letter retry short: do not commit that batch

    # ---------------------------------------------------------------------------------------- lifecycle

    def _on_stats(self, stats_json: str) -> None:
        try:
            for partition, lag in lag_from_stats(stats_json, self.settings.topic).items():
                self.metrics.consumer_lag.labels(str(partition)).set(lag)
        except (ValueError, KeyError, TypeError):
            log.debug("could not read consumer lag from statistics")

    def install_template(self) -> None:
        """Install the index template and the merge script, retrying until the cluster accepts them."""
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s, self.stop)
        template = index_template(self.settings.index, self.settings.index_shards, self.settings.index_replicas)
        while not self.stop.is_set():
            try:
                self.backend.put_index_template(f"{self.settings.index}-template", template)
                self.backend.put_mapping(self.settings.index, mapping_properties())
                self.backend.put_script(MERGE_SCRIPT_ID, stored_script())
                log.info(
                    "index template %s-template and script %s installed (%s)",
                    self.settings.index,
                    MERGE_SCRIPT_ID,
                    self.backend.engine,
                )
                return
            except SearchUnavailable as exc:
                self.metrics.retries.labels("search_unavailable").inc()
                log.warning("search cluster unavailable, retrying in %.1f s: %s", backoff.delay, exc)
                backoff.wait(self.metrics.beat)

    def run(self) -> None:
        self.install_template()
        if self.stop.is_set():
            return
        self.consumer.subscribe(
            [self.settings.topic],
            on_assign=self.rebalance.on_assign,
            on_revoke=self.rebalance.on_revoke,
            on_lost=self.rebalance.on_lost,
        )
        self.metrics.ready.set(1)
        log.info("consuming %s as group %s", self.settings.topic, self.settings.group_id)
        try:
            while not self.stop.is_set():
                self.metrics.beat()
                messages = self.carry or self.consumer.consume(self.settings.batch_size, self.settings.batch_wait_s)
                self.carry = []
                if messages:
                    self.process(messages)
                if len(messages) < self.settings.batch_size:  # no backlog in sight: sweep when due
                    self.sweeper.maybe_run(
                        owner=(self.settings.topic, 0) in self.rebalance.owned,
                        caught_up=lambda: caught_up(self.consumer),
                    )
        finally:
            self.metrics.ready.set(0)
            commit_stored(self.consumer)
            self.consumer.close()
            self.dead_letters.close()
            self.backend.close()

    # -------------------------------------------------------------------------------------- one batch

    def process(self, messages: list[Message]) -> None:
        records: list[Message] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error.str())
        if not records:
            return
        self._interrupted = False
        poisoned: list[Poisoned] = []
        parts: list[tuple[int, DocumentPart]] = []
        event_times: list[int] = []
        for position, message in enumerate(records):
            timestamp_type, timestamp = message.timestamp()
            try:
                kafka_time = timestamp if timestamp_type else None
                event = decode_message(
                    message.headers(), message.value(), kafka_time, self.settings.redactor, self.settings.protos
                )
                event_parts = document_parts(event, self.settings.streaming_deployments)
            except PoisonMessage as exc:
                self.metrics.consumed.labels("invalid", "unknown").inc()
                poisoned.append(Poisoned(message, exc.reason, exc.detail))
                continue
            # pure decoding failed on an input nobody foresaw: dead-letter it rather than crash-loop on it
            except Exception as exc:
                log.exception("cannot decode %s[%s]@%s", message.topic(), message.partition(), message.offset())
                self.metrics.consumed.labels("invalid", "unknown").inc()
                poisoned.append(Poisoned(message, "decode_error", f"{type(exc).__name__}: {exc}"[:500]))
                continue
            self.metrics.consumed.labels(event.capture_format, event.kind.value).inc()
            event_times.append(event.event_time_us)
            parts.extend((position, part) for part in event_parts)
        rejected = self._write(coalesce(parts))
        shared = {position for part, _ in rejected if len(part.sources) > 1 for position in part.sources}
        refused: dict[int, str] = {}  # message position -> why; one dead letter per message, however many parts
        for part, detail in rejected:
            if len(part.sources) == 1:
                refused.setdefault(part.sources[0], detail)
        for position in sorted(shared - refused.keys()):
            # A merged document was refused: write each contributing message alone, so only the bad one is
            # dead-lettered and the good ones still reach the index.
            alone = coalesce((pos, part) for pos, part in parts if pos == position)
            for _, detail in self._write(alone):
                refused.setdefault(position, detail)
                break
        poisoned.extend(Poisoned(records[pos], "rejected_by_search", detail) for pos, detail in sorted(refused.items()))
        self._dead_letter(poisoned)
        if self._interrupted:
            return  # stopped while retrying: do not commit, the batch is replayed after restart
        self._commit(records)
        now_us = time.time() * 1_000_000
        self.metrics.indexed.inc(len(records) - len(poisoned))
        for event_us in event_times:
            if event_us > 0:
                self.metrics.freshness_seconds.observe(max(0.0, (now_us - event_us) / 1_000_000))
        if event_times:
            self.metrics.last_event_time.set(max(event_times) / 1_000_000)

    def _write(self, documents: list[DocumentPart]) -> list[tuple[DocumentPart, str]]:
        """Write every document until each is acknowledged or permanently rejected; returns the rejected ones."""
        pending = {part.doc_id: part for part in documents}
        rejected: list[tuple[DocumentPart, str]] = []
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s, self.stop)
        paused = False
        try:
            while pending:  # one attempt even when stopping; retries only while running
                actions = [bulk_action(part, self.settings.index) for part in pending.values()]
                started = time.perf_counter()
                try:
                    results = self.backend.bulk(actions)
                except SearchUnavailable as exc:
                    self.metrics.bulk_seconds.observe(time.perf_counter() - started)
                    self.metrics.retries.labels("search_unavailable").inc()
                    log.warning(
                        "search cluster unavailable; %d documents wait, retry in %.1f s: %s",
                        len(pending),
                        backoff.delay,
                        exc,
                    )
                    if self.stop.is_set():
                        break
                    paused = paused or self._pause()
                    backoff.wait(self._keep_alive)
                    continue
                self.metrics.bulk_seconds.observe(time.perf_counter() - started)
                retry: dict[str, DocumentPart] = {}
                for result in results:
                    part = pending.get(result.doc_id)
                    if part is None:
                        continue
                    outcome = classify_item(result.status, result.error)
                    if outcome is ItemOutcome.OK:
                        self.metrics.documents.inc()
                    elif outcome is ItemOutcome.PERMANENT:
                        detail = error_reason(result.error)
                        log.error("document %s rejected permanently: %s", part.doc_id, detail)
                        rejected.append((part, detail))
                    else:
                        retry[part.doc_id] = part
                answered = {result.doc_id for result in results}
                retry.update({doc_id: part for doc_id, part in pending.items() if doc_id not in answered})
                pending = retry
                if pending:
                    self.metrics.retries.labels("item_rejected").inc(len(pending))
                    if self.stop.is_set():
                        break
                    log.warning("%d documents not accepted yet (429/5xx); retry in %.1f s", len(pending), backoff.delay)
                    paused = paused or self._pause()
                    backoff.wait(self._keep_alive)
                else:
                    backoff.reset()
        finally:
            if paused:
                self._resume()
        if pending:
            self._interrupted = True
        return rejected

    def _dead_letter(self, poisoned: list[Poisoned]) -> None:
        if not poisoned:
            return
        records = []
        for item in poisoned:
            message = item.message
            headers = [(name, value or b"") for name, value in (message.headers() or [])]
            headers += [
                ("dlq-reason", item.reason.encode()),
                ("dlq-detail", item.detail.encode("utf-8", "replace")[:1000]),
                ("dlq-topic", (message.topic() or "").encode()),
                ("dlq-partition", str(message.partition()).encode()),
                ("dlq-offset", str(message.offset()).encode()),
            ]
            records.append((message.key(), message.value(), headers))
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s, self.stop)
        while not self.stop.is_set():
            failures = self.dead_letters.send_all(records, DEAD_LETTER_TIMEOUT_S)
            if failures == 0:
                for item in poisoned:
                    self.metrics.dead_lettered.labels(item.reason).inc()
                    log.warning(
                        "dead-lettered %s[%s]@%s (%s): %s",
                        item.message.topic(),
                        item.message.partition(),
                        item.message.offset(),
                        item.reason,
                        item.detail,
                    )
                return
            self.metrics.retries.labels("dead_letter_unavailable").inc()
            backoff.wait(self.metrics.beat)
        self._interrupted = True

    def _commit(self, records: list[Message]) -> None:
        for message in records:
            if (message.topic(), message.partition()) not in self.rebalance.owned:
                continue  # revoked or lost meanwhile: the new owner replays it (idempotent)
            try:
                self.consumer.store_offsets(message=message)
            except KafkaException as exc:
                log.debug("cannot store offset of %s[%s]: %s", message.topic(), message.partition(), exc)
        if not commit_stored(self.consumer):
            self.metrics.commit_failures.inc()

    # ------------------------------------------------------------- keep the group membership while waiting

    def _pause(self) -> bool:
        try:
            self.consumer.pause(self.consumer.assignment())
        except KafkaException as exc:
            log.debug("pause failed: %s", exc)
        return True

    def _resume(self) -> None:
        try:
            self.consumer.resume(self.consumer.assignment())
        except KafkaException as exc:
            log.debug("resume failed: %s", exc)

    def _keep_alive(self) -> None:
        """Serve rebalance callbacks and the poll deadline while paused; keep anything that still arrives."""
        self.metrics.beat()
        message = self.consumer.poll(0)
        if message is not None and message.error() is None:
            self.carry.append(message)


def configure_logging(level: str) -> None:
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)
    if level != "debug":  # the clients log every request at INFO
        for name in ("opensearch", "elasticsearch", "elastic_transport"):
            logging.getLogger(name).setLevel(logging.WARNING)


def main() -> int:
    try:
        settings = IndexerSettings.from_env()
    except SettingsError as exc:
        configure_logging("error")
        log.error("invalid configuration: %s", exc)
        return 2
    configure_logging(settings.log_level)
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the current batch, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    metrics = IndexerMetrics()
    server = serve_http(metrics, settings.metrics_host, settings.metrics_port)
    log.info(
        "indexer: topic %s -> %s index %s at %s; metrics on %s:%d",
        settings.topic,
        settings.search.engine,
        settings.index,
        ",".join(settings.search.urls),
        settings.metrics_host,
        settings.metrics_port,
    )
    try:
        Indexer(settings, create_backend(settings.search), metrics, stop).run()
    finally:
        server.shutdown()
    return 0
