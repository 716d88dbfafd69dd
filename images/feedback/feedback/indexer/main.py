"""The indexer's loop: consume, decode, join the events of each document in memory, write each document once,
dead-letter what can never be indexed, and commit, per partition, up to the lowest offset still buffered.

One bulk request is in flight at a time, on a writer thread, while the main thread consumes and decodes the next
messages; the main thread alone applies answers, so the join buffer, the offset tracker and the recent copies need
no locks. The search client never retries by itself: this loop retries (with backoff, per item) while it keeps
polling Kafka, so a slow or refusing cluster never pushes the consumer past `max.poll.interval.ms`.

`python -m feedback.indexer` runs `main()`.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, KafkaException, Message, TopicPartition

from feedback.config import SettingsError
from feedback.indexer.bulk import (
    BulkOp,
    ItemAnswer,
    ItemOutcome,
    body,
    chunks,
    classify_item,
    create_op,
    error_reason,
    index_op,
    parse_bulk_answer,
    update_op,
)
from feedback.indexer.core import (
    MERGE_SCRIPT_ID,
    CaptureEvent,
    PoisonMessage,
    decode_message,
    document_parts,
)
from feedback.indexer.join import JoinBuffer, MessageRef, PendingDocument, RecentDocuments, Written, merged
from feedback.indexer.kafka_io import (
    DeadLetterProducer,
    DeadLetterRecord,
    RebalanceTracker,
    caught_up,
    commit_stored,
    consumer_stats,
    create_consumer,
)
from feedback.indexer.metrics import IndexerMetrics, serve_http
from feedback.indexer.offsets import OffsetTracker
from feedback.indexer.search_io import (
    RequestRefused,
    RequestTooLarge,
    SearchAuthFailed,
    SearchBackend,
    SearchTimeout,
    SearchUnavailable,
    create_backend,
)
from feedback.indexer.settings import IndexerSettings
from feedback.indexer.setup import SETUP_HINT, setup_problem
from feedback.indexer.sweeper import Sweeper
from feedback.indexer.watchdog import ConsumerWatchdog, Observation

log = logging.getLogger("feedback.indexer")

DEAD_LETTER_TIMEOUT_S = 30.0
SHUTDOWN_FLUSH_S = 15.0  # how long a stop keeps trying to write what is buffered (then it is replayed)
STATS_FRESH_S = 15.0  # librdkafka statistics older than this (3 intervals) say nothing about the group
BROKER_PROBE_TIMEOUT_S = 5.0
CANARY_ID = "seldon-feedback-indexer-canary:canary:0"


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


def _ref(message: Message) -> MessageRef:
    return (message.topic() or "", message.partition() or 0, message.offset() or 0)


def _source_text(ref: MessageRef) -> str:
    return f"{ref[0]}[{ref[1]}]@{ref[2]}"


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
        self.rebalance.listeners.append(self._on_partitions_gone)
        self._generation = 0  # which consumer the statistics come from (the watchdog recreates it)
        self.consumer = create_consumer(settings, self._stats_callback(self._generation))
        self.watchdog: ConsumerWatchdog | None = None  # from the first subscribe on
        self._group_steady = False  # from the current consumer's latest statistics
        self._backlog = 0
        self._group_state = "unknown"
        self._stats_at = float("-inf")
        self.dead_letters = DeadLetterProducer(settings)
        self.sweeper = Sweeper(settings, backend, metrics)
        self.buffer = JoinBuffer()
        self.tracker = OffsetTracker()
        self.recent = RecentDocuments(settings.recent_documents_bytes)
        self.messages: dict[MessageRef, Message] = {}  # consumed and not yet safe (for dead letters, freshness)
        self.retry: list[BulkOp] = []
        self.carry: list[Message] = []  # messages that arrived while paused, consumed next round
        self.chunk_bytes = settings.bulk_max_bytes  # halved after a 413, grows back to the settings
        self.chunk_items = settings.batch_size
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-writer")
        self._in_flight: Future[list[tuple[list[BulkOp], Any]]] | None = None
        self._paused = False
        self._held_bytes = 0  # bytes of the messages consumed and not yet safe
        self._dead: set[MessageRef] = set()  # dead-lettered, not yet committed (not counted as indexed)
        self._newest_ms = 0
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s, stop)
        self._refresh_s = _seconds(settings.index_refresh_interval)

    # ---------------------------------------------------------------------------------------- lifecycle

    def _stats_callback(self, generation: int) -> Callable[[str], None]:
        return lambda stats_json: self._on_stats(stats_json, generation)

    def _on_stats(self, stats_json: str, generation: int = 0) -> None:
        if generation != self._generation:
            return  # a replaced consumer closing on another thread
        try:
            stats = consumer_stats(stats_json, self.settings.topic)
        except (ValueError, KeyError, TypeError):
            log.debug("could not read consumer lag from statistics")
            return
        for partition, lag in stats.lags.items():
            self.metrics.consumer_lag.labels(str(partition)).set(lag)
        self._group_steady, self._backlog = stats.group_steady, stats.backlog
        self._group_state = stats.group_state
        self._stats_at = time.monotonic()

    def _until_ok(self, what: str, attempt: Callable[[], str | None]) -> bool:
        """Run `attempt` (None = done, else the problem) with backoff until it succeeds or the indexer stops."""
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s, self.stop)
        while not self.stop.is_set():
            try:
                problem = attempt()
            except SearchAuthFailed as exc:
                self.metrics.search_auth_failures.inc()
                problem = str(exc)
            except SearchUnavailable as exc:
                self.metrics.retries.labels("search_unavailable").inc()
                problem = f"search cluster unavailable: {exc}"
            self.metrics.set_problem(what, problem)
            if problem is None:
                return True
            log.warning("%s: %s (retrying in %.1f s)", what, problem, backoff.delay)
            backoff.wait(self.metrics.beat)
        return False

    def _check_setup(self) -> str | None:
        """The setup (`python -m feedback.indexer setup`, a separate privileged step) must have prepared the index
        for this version: the indexer installs nothing itself and needs no right to."""
        return setup_problem(self.settings.index, self.backend)

    def _canary(self) -> str | None:
        """Prove the engine accepts our three kinds of writes before consuming: a create of a complete document, a
        scripted merge into it (stored scripts allowed), and a delete. A cluster that refuses any of them would
        otherwise dead-letter every message while looking healthy."""
        index = self.settings.index
        fields = {
            "request_id": "seldon-feedback-indexer-canary",
            "node": "canary",
            "instance": 0,
            "request_raw": {},
            "response_raw": {},
        }
        document = merged({}, [fields], "realtime")
        ops = [
            create_op(CANARY_ID, index, document, [], [fields], "realtime"),
            update_op(CANARY_ID, index, MERGE_SCRIPT_ID, [], [{"reward": 1.0}], "realtime"),
        ]
        delete = b'{"delete":{"_index":"' + index.encode() + b'","_id":"' + CANARY_ID.encode() + b'"}}\n'
        answer = parse_bulk_answer(self.backend.bulk_ndjson(body(ops) + delete))
        for item, what in zip(answer.items, ("create", "scripted merge", "delete"), strict=False):
            if not (200 <= item.status < 300 or (what == "create" and item.status == 409)):
                self.metrics.search_refusals.labels("canary_failed").inc()
                if classify_item(item.status, item.error) is ItemOutcome.SCRIPT_MISSING:
                    return f"the stored merge script {MERGE_SCRIPT_ID} is missing: {SETUP_HINT}"
                if classify_item(item.status, item.error) is ItemOutcome.FORBIDDEN:
                    return (
                        f"the indexer's search user may not {what} documents in {index} ({item.status}: "
                        f"{error_reason(item.error)}); give it the indexer role (docs/search-privileges.md)"
                    )
                return (
                    f"the search cluster refused the indexer's {what} of a test document ({item.status}: "
                    f"{error_reason(item.error)}); allow stored painless scripts in the update context and "
                    f"writes to {index}"
                )
        if len(answer.items) != 3:
            return f"the search cluster answered {len(answer.items)} of 3 test writes"
        return None

    def run(self) -> None:
        if not self._until_ok("setup", self._check_setup):
            return
        if not self._until_ok("canary", self._canary):
            return
        if not self._until_ok("dead_letter_topic", lambda: self.dead_letters.topic_problem()):
            return
        self._subscribe()
        self.watchdog = ConsumerWatchdog(
            self.settings.consumer_stall_s, time.monotonic(), probe_every_s=self.settings.session_timeout_s
        )
        self.metrics.set_problem("starting", None)
        log.info("consuming %s as group %s", self.settings.topic, self.settings.group_id)
        try:
            while not self.stop.is_set():
                self.round()
        finally:
            self.metrics.set_problem("stopping", "the indexer is stopping")
            try:
                self._shutdown_flush()
            finally:
                commit_stored(self.consumer)
                self.consumer.close()
                self._writer.shutdown(wait=True)
                self.dead_letters.close()
                self.backend.close()

    def round(self) -> None:
        """One turn of the loop: consume and decode (while the previous bulk is in flight), settle its answers,
        write what is due, commit what is safe, sweep when idle."""
        self.metrics.beat()
        consumed = self._consume()
        self._watch_consumer(consumed)
        self._settle()
        due = self.buffer.take_due(time.monotonic(), self.settings.join_wait_s, self.settings.join_max_documents)
        self._submit(self._plan(due))
        self._commit()
        self._update_gauges()
        owner = (self.settings.topic, 0) in self.rebalance.owned
        if consumed < self.settings.batch_size and self.sweeper.is_due(owner):
            self._write_everything()  # the sweeps must see every consumed event in the index
            if not self.buffer and not self.retry:
                self.sweeper.maybe_run(owner=owner, caught_up=lambda: caught_up(self.consumer))

    def _write_everything(self, attempts: int = 3) -> None:
        """Write what is buffered now, complete or not, and wait for the answers (and their 409 merges)."""
        self._settle()
        self._submit(self._plan(self.buffer.take_all()))
        for _ in range(attempts):
            self._settle()
            if not any(op.not_before <= time.monotonic() for op in self.retry):
                break
            self._submit([])
        self._settle()
        self._commit()

    # ---------------------------------------------------------------------------------------- consuming

    def _consume(self) -> int:
        held, limit = self._held_bytes, self.settings.buffer_max_bytes
        if not self._paused and (held > limit or self.tracker.total() > 4 * self.settings.join_max_documents):
            self._pause()  # search slow or down: keep the group membership, stop reading, memory stays bounded
            log.warning(
                "%d messages (%d bytes) wait for the search cluster: consuming paused", self.tracker.total(), held
            )
        elif self._paused and held < limit // 2 and self.tracker.total() < 2 * self.settings.join_max_documents:
            self._resume()
        if self._paused:
            self._keep_alive(min(0.1, self.settings.batch_wait_s))
            return 0
        messages = self.carry or self.consumer.consume(self.settings.batch_size, self.settings.batch_wait_s)
        self.carry = []
        records: list[Message] = []
        owned = self.rebalance.owned
        for message in messages:
            error = message.error()
            if error is None:
                if (message.topic(), message.partition()) in owned:
                    records.append(message)  # else fetched before a revoke: its new owner replays it
            elif error.code() == KafkaError._AUTO_OFFSET_RESET:
                self._offset_reset(message, error)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error.str())
        poisoned: list[Poisoned] = []
        now = time.monotonic()
        for message in records:
            ref = _ref(message)
            self.messages[ref] = message
            self._held_bytes += len(message.value() or b"")
            try:
                parts = self._decode(message)
            except PoisonMessage as exc:
                self.metrics.consumed.labels("invalid", "unknown").inc()
                poisoned.append(Poisoned(message, exc.reason, exc.detail))
                self.tracker.add(message, 1)  # safe once the dead-letter topic acknowledged it
                continue
            # pure decoding failed on an input nobody foresaw: dead-letter it rather than crash-loop on it
            except Exception as exc:
                # the exception's text may quote the payload: logged redacted, the traceback at debug level only
                log.error("cannot decode %s: %s", _source_text(ref), type(exc).__name__)
                log.debug("traceback of the decoding failure", exc_info=True)
                self.metrics.consumed.labels("invalid", "unknown").inc()
                poisoned.append(Poisoned(message, "decode_error", f"{type(exc).__name__}: {exc}"[:500]))
                self.tracker.add(message, 1)
                continue
            self.tracker.add(message, len(parts))
            for part in parts:
                self.buffer.add(ref, part.kind, part.doc_id, part.fields, part.mode_hint, now)  # type: ignore[arg-type]
        if poisoned:
            self._dead_letter(poisoned)
        return len(records)

    def _decode(self, message: Message) -> list[Any]:
        value = message.value()
        if value is not None and len(value) > self.settings.max_message_bytes:
            raise PoisonMessage(
                "message_too_large",
                f"the value has {len(value)} bytes, more than INDEXER_MAX_MESSAGE_BYTES="
                f"{self.settings.max_message_bytes}; raise the limit (and the indexer's memory) to index it",
            )
        timestamp_type, timestamp = message.timestamp()
        broker_ms = timestamp if timestamp_type else None
        event = decode_message(message.headers(), value, broker_ms, self.settings.redactor, self.settings.protos)
        event = self._bound_event_time(event, broker_ms)
        parts = document_parts(event, self.settings.streaming_deployments, self.settings.max_instances)
        self.metrics.consumed.labels(event.capture_format, event.kind.value).inc()
        return parts

    def _bound_event_time(self, event: CaptureEvent, broker_ms: int | None) -> CaptureEvent:
        """A Ce-Time far ahead of the broker's timestamp (a wrong clock; year 2999 was seen) is replaced by the
        broker's timestamp, so the document's times, retention and the freshness figures stay meaningful."""
        if broker_ms is None or broker_ms <= 0:
            return event
        limit_us = (broker_ms + int(self.settings.max_future_event_s * 1000)) * 1000
        if event.event_time_us > limit_us:
            self.metrics.event_time_adjusted.inc()
            return replace(event, event_time_us=broker_ms * 1000)
        return event

    def _offset_reset(self, message: Message, error: KafkaError) -> None:
        """The committed offset is gone (retention passed it): the messages in between were never indexed. Count
        it, say it loudly, and go on from INDEXER_OFFSET_RESET (earliest: what is left; latest: only new)."""
        partition = message.partition()
        self.metrics.offset_resets.labels(str(partition)).inc()
        target = OFFSET_BEGINNING if self.settings.offset_reset == "earliest" else OFFSET_END
        log.error(
            "partition %s of %s: the committed offset is no longer in the topic (%s): messages deleted by retention "
            "before they were indexed are lost; continuing from the %s offset (INDEXER_OFFSET_RESET). Keep the "
            "topic's retention longer than the longest search outage.",
            partition,
            message.topic(),
            error.str(),
            self.settings.offset_reset,
        )
        topic = message.topic() or self.settings.topic
        try:  # a partition in this error state takes an absolute offset only, so resolve the logical one first
            low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition or 0), timeout=10)
            start = TopicPartition(topic, partition or 0, low if target == OFFSET_BEGINNING else high)
            try:
                self.consumer.seek(start)
            except KafkaException:
                self.consumer.incremental_unassign([TopicPartition(topic, partition or 0)])
                self.consumer.incremental_assign([start])
        except KafkaException as exc:
            log.warning("resuming after the offset reset failed (retried on the next error): %s", exc)

    # ---------------------------------------------------------------------------------------- planning

    def _plan(self, due: list[PendingDocument]) -> list[BulkOp]:
        """Each due document becomes one write: an exact overwrite of this process's recent copy (late event), or
        a create of the joined document; fallbacks to the scripted merge happen when the engine says 409."""
        ops = []
        for pending in due:
            fields = pending.fields()
            sources = pending.sources
            recent = self.recent.get(pending.doc_id)
            if recent is not None:
                document = merged(recent.source, fields, pending.mode_hint)
                ops.append(
                    index_op(
                        pending.doc_id,
                        recent.index,
                        document,
                        recent.seq_no,
                        recent.primary_term,
                        sources,
                        fields,
                        pending.mode_hint,
                    )
                )
            else:
                document = merged({}, fields, pending.mode_hint)
                ops.append(create_op(pending.doc_id, self.settings.index, document, sources, fields, pending.mode_hint))
        return ops

    # ---------------------------------------------------------------------------------------- writing

    def _submit(self, ops: list[BulkOp]) -> None:
        """Send the new writes plus the retries that are due, as one or more bulk requests on the writer thread."""
        if self._in_flight is not None:
            self._settle()  # one request in flight at a time: its answers first
        now = time.monotonic()
        ready = [op for op in self.retry if op.not_before <= now]
        self.retry = [op for op in self.retry if op.not_before > now]
        todo = ready + ops
        if not todo:
            return
        groups = list(chunks(todo, self.chunk_bytes, self.chunk_items))
        self._in_flight = self._writer.submit(self._send, groups)

    def _send(self, groups: list[list[BulkOp]]) -> list[tuple[list[BulkOp], Any]]:
        """(writer thread) One bulk request per group; returns each group with its answer or the exception."""
        results: list[tuple[list[BulkOp], Any]] = []
        for group in groups:
            if results and isinstance(results[-1][1], SearchUnavailable):
                results.append((group, results[-1][1]))  # the cluster is down or slow: do not wait for it again
                continue
            started = time.perf_counter()
            try:
                answer: Any = parse_bulk_answer(self.backend.bulk_ndjson(body(group)))
            except (SearchUnavailable, RequestTooLarge, RequestRefused) as exc:
                answer = exc
            self.metrics.bulk_seconds.observe(time.perf_counter() - started)
            results.append((group, answer))
        return results

    def _settle(self) -> None:
        """Apply the answers of the bulk requests in flight (wait for them)."""
        if self._in_flight is None:
            return
        results = self._in_flight.result()
        self._in_flight = None
        fallback: list[BulkOp] = []
        for group, answer in results:
            if isinstance(answer, Exception):
                self._whole_request_failed(group, answer)
                continue
            self.metrics.set_problem("search_auth", None)
            # an accepted request lets the size grow back towards the settings after a 413
            self.chunk_items = min(self.settings.batch_size, self.chunk_items * 2)
            self.chunk_bytes = min(self.settings.bulk_max_bytes, self.chunk_bytes * 2)
            by_id = {item.doc_id: item for item in answer.items}
            for op in group:
                item = by_id.get(op.doc_id)
                if item is None:
                    self._later(op, "item_rejected")
                    continue
                fallback.extend(self._item_done(op, item))
        if fallback:  # 409s become scripted merges at once (they wait for nothing)
            self.retry[:0] = fallback

    def _item_done(self, op: BulkOp, item: ItemAnswer) -> list[BulkOp]:
        outcome = classify_item(item.status, item.error, op.op)
        if outcome is ItemOutcome.OK:
            self.metrics.documents.labels(op.op.value).inc()
            self._backoff.reset()
            if op.document is not None and item.seq_no is not None and item.primary_term is not None:
                written = Written(item.index or op.index, item.seq_no, item.primary_term, op.document, op.size)
                self.recent.put(op.doc_id, written)
            else:
                self.recent.forget(op.doc_id)
            self._acknowledge(op.sources)
            return []
        if outcome is ItemOutcome.EXISTS:
            self.recent.forget(op.doc_id)
            index = item.index or op.index
            return [update_op(op.doc_id, index, MERGE_SCRIPT_ID, op.sources, op.parts, op.mode_hint)]
        if outcome is ItemOutcome.SCRIPT_MISSING:
            self.metrics.search_refusals.labels("script_missing").inc()
            problem = f"the stored merge script {MERGE_SCRIPT_ID} is missing from the cluster: {SETUP_HINT}"
            self.metrics.set_problem("search_refuses", problem)
            log.error("%s (document %s retried)", problem, op.doc_id)
            self._later(op, "script_missing")
            return []
        if outcome is ItemOutcome.FORBIDDEN:
            self.metrics.search_refusals.labels("forbidden").inc()
            detail = error_reason(item.error)
            problem = f"the indexer's search user may not write {op.index}: {detail} (check its role)"
            self.metrics.set_problem("search_refuses", problem)
            log.error("document %s refused (%s; retried, never dead-lettered)", op.doc_id, problem)
            self._later(op, "item_rejected")
            return []
        if outcome is ItemOutcome.REFUSED:
            self.metrics.search_refusals.labels("scripts_refused").inc()
            detail = error_reason(item.error)
            self.metrics.set_problem("search_refuses", f"the search cluster refuses the indexer's writes: {detail}")
            log.error("document %s refused by the cluster (not the document's fault, retried): %s", op.doc_id, detail)
            self._later(op, "item_rejected")
            return []
        if outcome is ItemOutcome.RETRY:
            self._later(op, "item_rejected")
            return []
        if outcome is ItemOutcome.UNKNOWN and op.attempts + 1 < self.settings.item_max_attempts:
            log.warning(
                "document %s refused (%s), attempt %d: %s",
                op.doc_id,
                item.status,
                op.attempts + 1,
                error_reason(item.error),
            )
            self._later(op, "item_rejected")
            return []
        return self._refused_for_good(op, error_reason(item.error), "rejected_by_search")

    def _refused_for_good(self, op: BulkOp, detail: str, reason: str) -> list[BulkOp]:
        """A document the engine will never take: when several messages made it, write each alone (one try) so
        only the bad one is dead-lettered; a single message is dead-lettered with the reason."""
        self.recent.forget(op.doc_id)
        if len(set(op.sources)) > 1:
            return self._one_per_message(op)
        log.error("document %s rejected permanently: %s", op.doc_id, detail)
        refs = set(op.sources)
        self._dead_letter([Poisoned(self.messages[ref], reason, detail) for ref in refs if ref in self.messages])
        return []

    def _one_per_message(self, op: BulkOp) -> list[BulkOp]:
        grouped: dict[MessageRef, list[dict[str, Any]]] = {}
        for ref, fields in zip(op.sources, op.parts, strict=True):
            grouped.setdefault(ref, []).append(fields)
        alone = []
        for ref, parts in grouped.items():
            single = update_op(op.doc_id, op.index, MERGE_SCRIPT_ID, [ref] * len(parts), parts, op.mode_hint)
            single.attempts = self.settings.item_max_attempts - 1  # one try each: the merged one had its tries
            alone.append(single)
        return alone

    def _later(self, op: BulkOp, reason: str) -> None:
        """Retry this item after its own backoff (429, 5xx, a refused item: each try counts)."""
        self.metrics.retries.labels(reason).inc()
        op.attempts += 1
        delay = min(self.settings.retry_max_s, self.settings.retry_initial_s * 2 ** min(op.attempts - 1, 16))
        op.not_before = time.monotonic() + delay
        self.retry.append(op)

    def _whole_request_failed(self, group: list[BulkOp], exc: Exception) -> None:
        if isinstance(exc, RequestTooLarge):
            self.metrics.retries.labels("too_large").inc()
            if len(group) == 1:
                self._dead_letter_op(group[0], "too_large_for_search", str(exc))
                return
            self.chunk_bytes = max(1024, min(self.chunk_bytes, sum(op.size for op in group)) // 2)
            self.chunk_items = max(1, len(group) // 2)
            log.warning(
                "bulk request refused as too large (413): the next requests carry at most %d items and %d bytes",
                self.chunk_items,
                self.chunk_bytes,
            )
            self.retry[:0] = group  # resent at once, in smaller requests
            return
        if isinstance(exc, RequestRefused):
            self.metrics.retries.labels("item_rejected").inc()
            if len(group) == 1:
                op = group[0]
                if op.attempts + 1 >= self.settings.item_max_attempts:
                    self._dead_letter_op(op, "rejected_by_search", str(exc))
                else:
                    self._later(op, "item_rejected")
                return
            log.warning(
                "bulk request of %d items refused (%s): sending each alone to find the bad one", len(group), exc
            )
            for op in group:
                op.alone = True
            self.retry[:0] = group
            return
        if isinstance(exc, SearchTimeout) and len(group) > 1:
            # a slow cluster: smaller requests answer within the timeout (the engine may still apply this one:
            # resending is idempotent, a create then gets 409 and merges)
            self.chunk_items = max(1, min(self.chunk_items, len(group)) // 2)
            log.warning(
                "bulk request of %d items timed out: the next requests carry at most %d", len(group), self.chunk_items
            )
        if isinstance(exc, SearchAuthFailed):
            self.metrics.search_auth_failures.inc()
            self.metrics.set_problem("search_auth", str(exc))
            reason = "search_auth"
        else:
            reason = "search_unavailable"
        self.metrics.retries.labels(reason).inc()
        log.warning(
            "bulk write of %d documents failed (%s), retry in %.1f s: %s", len(group), reason, self._backoff.delay, exc
        )
        not_before = time.monotonic() + self._backoff.delay
        self._backoff.delay = min(self._backoff.delay * 2, self._backoff.maximum)
        for op in group:  # whole-request failures do not use up an item's attempts
            op.not_before = not_before
        self.retry.extend(group)

    def _dead_letter_op(self, op: BulkOp, reason: str, detail: str) -> None:
        if len(set(op.sources)) > 1:
            for single in self._one_per_message(op):
                single.alone = True
                self.retry.append(single)
            return
        refs = set(op.sources)
        self._dead_letter([Poisoned(self.messages[ref], reason, detail) for ref in refs if ref in self.messages])

    def _acknowledge(self, sources: list[MessageRef]) -> None:
        for ref in dict.fromkeys(sources):
            self.tracker.acknowledge(*ref)

    # ---------------------------------------------------------------------------------------- dead letters

    def _dead_letter(self, poisoned: list[Poisoned]) -> None:
        records = []
        redactor = self.settings.redactor
        for item in poisoned:
            message = item.message
            # redacted before it leaves the process: the payload (JSON as a document, anything else as text), every
            # header and the key (a request id), and the reason, which may quote the payload
            headers = redactor.redact_kafka_headers(message.headers() or [], every=True)
            value = message.value()
            if value:
                value = redactor.redact_bytes(value)
            key = message.key()
            if key and redactor.text_active:
                key = redactor.redact_request_id(key.decode("utf-8", "surrogateescape")).encode(
                    "utf-8", "surrogateescape"
                )
            item.detail = redactor.redact_text(item.detail)
            headers += [
                ("dlq-reason", item.reason.encode()),
                ("dlq-detail", item.detail.encode("utf-8", "replace")[:1000]),
                ("dlq-topic", (message.topic() or "").encode()),
                ("dlq-partition", str(message.partition()).encode()),
                ("dlq-offset", str(message.offset()).encode()),
            ]
            records.append(DeadLetterRecord(key, value, headers, _source_text(_ref(message))))
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s, self.stop)
        pending = records
        stubs_before = self.dead_letters.stubs
        while pending and not self.stop.is_set():
            pending = self.dead_letters.send(pending, DEAD_LETTER_TIMEOUT_S)
            if pending:
                self.metrics.retries.labels("dead_letter_unavailable").inc(len(pending))
                self.metrics.set_problem("dead_letter", f"{len(pending)} dead letters not acknowledged by Kafka yet")
                paused = self._paused
                self._pause()
                backoff.wait(self._keep_alive)
                if not paused:
                    self._resume()
        self.metrics.dead_letter_stubs.inc(self.dead_letters.stubs - stubs_before)
        self.metrics.set_problem("dead_letter", None)
        if pending:
            return  # stopped: these messages stay unacknowledged and are replayed after the restart
        for item in poisoned:
            self.metrics.dead_lettered.labels(item.reason).inc()
            ref = _ref(item.message)
            log.warning("dead-lettered %s (%s): %s", _source_text(ref), item.reason, item.detail)
            self.tracker.acknowledge(*ref, count=1 << 30)  # safe now, whatever its other documents do
            self._dead.add(ref)

    # ---------------------------------------------------------------------------------------- committing

    def _commit(self) -> None:
        safe, released = self.tracker.committable()
        if not safe:
            return
        for partition, last in safe.items():
            if partition not in self.rebalance.owned:
                continue  # revoked or lost meanwhile: the new owner replays it (idempotent)
            try:
                self.consumer.store_offsets(message=last)
            except KafkaException as exc:
                log.debug("cannot store offset of %s: %s", partition, exc)
        now_ms = time.time() * 1000
        newest = 0
        dead = 0
        for message in released:
            ref = _ref(message)
            self._held_bytes -= len(message.value() or b"")
            self.messages.pop(ref, None)
            if ref in self._dead:
                self._dead.discard(ref)
                dead += 1
                continue
            timestamp_type, timestamp = message.timestamp()
            if timestamp_type and timestamp > 0:
                age_s = (now_ms - timestamp) / 1000
                if age_s < -1:
                    self.metrics.clock_skew.inc()
                self.metrics.freshness_seconds.observe(max(0.0, age_s) + self._refresh_s)
                newest = max(newest, min(timestamp, int(now_ms)))
        self.metrics.indexed.inc(len(released) - dead)
        if newest:
            self._newest_ms = max(self._newest_ms, newest)
            self.metrics.last_event_time.set(self._newest_ms / 1000)
        try:
            self.consumer.commit(asynchronous=True)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not (isinstance(error, KafkaError) and error.code() == KafkaError._NO_OFFSET):
                self.metrics.commit_failures.inc()
                log.warning("offset commit failed (retried with the next batch): %s", exc)

    def _update_gauges(self) -> None:
        self.metrics.join_buffer.set(len(self.buffer))
        now_ms = time.time() * 1000
        for topic, partition in self.rebalance.owned:
            oldest = self.tracker.oldest_pending_timestamp_ms((topic, partition))
            self.metrics.lag_seconds.labels(str(partition)).set(max(0.0, (now_ms - oldest) / 1000) if oldest else 0.0)

    # ---------------------------------------------------------------------------------------- the watchdog

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            [self.settings.topic],
            on_assign=self.rebalance.on_assign,
            on_revoke=self.rebalance.on_revoke,
            on_lost=self.rebalance.on_lost,
        )

    def _observation(self, consumed: int, now: float) -> Observation:
        fresh = now - self._stats_at < STATS_FRESH_S
        member = bool(self.rebalance.owned) or (fresh and self._group_steady)
        backlog = fresh and self._backlog > 0 and not self._paused and bool(self.rebalance.owned)
        return Observation(member=member, backlog=backlog, consumed=consumed > 0)

    def _watch_consumer(self, consumed: int) -> None:
        """Feed the watchdog; when a stall is due and the broker answers, recreate the consumer."""
        watchdog = self.watchdog
        if watchdog is None:
            return
        now = time.monotonic()
        watchdog.observe(self._observation(consumed, now), now)
        reason = watchdog.due(now)
        if reason is not None or watchdog.probe_due(now):
            problem = self.dead_letters.broker_problem(self.settings.topic, BROKER_PROBE_TIMEOUT_S)
            if problem is not None:
                if reason is not None:
                    log.info("consumer stalled (%s) while the broker does not answer (%s): waiting", reason, problem)
                watchdog.broker_unreachable(time.monotonic())
            elif reason is not None:
                self._recreate_consumer(reason, watchdog.stalled_for(now))
            else:
                watchdog.broker_answered(time.monotonic())
        problem = watchdog.liveness_problem()
        if problem is None:
            self.metrics.not_alive.pop("consumer", None)
        else:
            if "consumer" not in self.metrics.not_alive:
                log.error("%s: /healthz now fails so that the pod is restarted", problem)
            self.metrics.not_alive["consumer"] = problem

    def _recreate_consumer(self, reason: str, stalled_s: float) -> None:
        """Close the stalled consumer and subscribe a new one. What was written is committed (as at a revoke);
        everything else of its partitions is dropped and replayed by the new consumer from the committed offsets
        (idempotent writes): nothing is lost, nothing duplicated."""
        assert self.watchdog is not None
        self.metrics.consumer_recreated.labels(reason).inc()
        log.warning(
            "Kafka consumer %s for %.0f s (group state %s, INDEXER_CONSUMER_STALL_S=%g) while the broker answers: "
            "closing and recreating it; what is not committed is replayed",
            "out of its group" if reason == "no_assignment" else "made no progress behind a backlog",
            stalled_s,
            self._group_state,
            self.settings.consumer_stall_s,
        )
        error = None
        try:
            consumer = create_consumer(self.settings, self._stats_callback(self._generation + 1))
        except (KafkaException, ValueError, RuntimeError) as exc:
            error = f"a new consumer could not be created: {exc}"
        else:
            self._settle()  # answers in flight first: what they acknowledge is stored and committed below
            self._commit()
            gone = set(self.rebalance.owned) | {(ref[0], ref[1]) for ref in self.messages}  # all it consumed
            self._on_partitions_gone(gone, revoked=False)
            self.retry = [op for op in self.retry if not all((ref[0], ref[1]) in gone for ref in op.sources)]
            old, old_rebalance = self.consumer, self.rebalance
            old_rebalance.listeners.clear()  # its callbacks, on the closing thread, must not touch this state
            self._close_in_background(old)
            self._generation += 1
            self._group_steady, self._backlog, self._stats_at = False, 0, float("-inf")
            self._group_state = "unknown"
            self.rebalance = RebalanceTracker()
            self.rebalance.listeners.append(self._on_partitions_gone)
            self.consumer = consumer
            self.carry = []
            self._paused = False
            try:
                self._subscribe()
            except (KafkaException, RuntimeError) as exc:
                error = f"the new consumer could not subscribe to {self.settings.topic}: {exc}"
        if error is not None:
            log.error("recreating the Kafka consumer failed (tried again after INDEXER_CONSUMER_STALL_S): %s", error)
        failures = self.watchdog.failures
        self.watchdog.recreated(time.monotonic(), error)  # counts this failure, and the previous recreation's
        self.metrics.consumer_recreate_failures.inc(max(0, self.watchdog.failures - failures))

    def _close_in_background(self, consumer: Any) -> None:
        """Close a replaced consumer, waiting at most a session timeout (a stuck one may not leave its group in
        time; it is then left to finish on its thread, and its session expires on the broker)."""
        done = threading.Event()

        def close() -> None:
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.debug("closing the replaced consumer: %s", exc)
            finally:
                done.set()

        threading.Thread(target=close, name="close-replaced-consumer", daemon=True).start()
        deadline = time.monotonic() + self.settings.session_timeout_s
        while not done.wait(0.2) and time.monotonic() < deadline:
            self.metrics.beat()
        if not done.is_set():
            log.warning(
                "the replaced consumer did not close within %g s; left to finish in the background",
                self.settings.session_timeout_s,
            )

    # ---------------------------------------------------------------------------------------- rebalancing

    def _on_partitions_gone(self, partitions: set[tuple[str, int]], revoked: bool) -> None:
        """(inside consume) Before partitions are handed over, settle what is in flight and store what is safe, so
        the new owner replays as little as possible; then forget their buffered parts and offsets."""
        if revoked:
            self._settle()
            self._commit()
        self.buffer.drop_partitions(partitions)
        self.tracker.drop(partitions)
        for ref in [ref for ref in self.messages if (ref[0], ref[1]) in partitions]:
            self._held_bytes -= len(self.messages.pop(ref).value() or b"")
            self._dead.discard(ref)

    def _shutdown_flush(self) -> None:
        """On stop: write everything buffered (complete or not) for a while, then commit what became safe."""
        deadline = time.monotonic() + SHUTDOWN_FLUSH_S
        self._settle()
        ops = self._plan(self.buffer.take_all())
        stopping = self.stop
        self.stop = threading.Event()  # dead letters and retries may still run until the deadline
        try:
            self._submit(ops)
            while (self._in_flight is not None or self.retry) and time.monotonic() < deadline:
                self._settle()
                if self.retry and self._in_flight is None:
                    wait = min(op.not_before for op in self.retry) - time.monotonic()
                    if wait > 0:
                        time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                    self._submit([])
            self._settle()
            self._commit()
        finally:
            self.stop = stopping

    # ------------------------------------------------------------- keep the group membership while waiting

    def _pause(self) -> None:
        try:
            self.consumer.pause(self.consumer.assignment())
            self._paused = True
        except KafkaException as exc:
            log.debug("pause failed: %s", exc)

    def _keep_alive(self, timeout: float = 0.0) -> None:
        """Serve rebalance callbacks and the poll deadline while paused; keep anything that still arrives."""
        self.metrics.beat()
        message = self.consumer.poll(timeout)
        if message is not None and message.error() is None:
            self.carry.append(message)

    def _resume(self) -> None:
        try:
            self.consumer.resume(self.consumer.assignment())
        except KafkaException as exc:
            log.debug("resume failed: %s", exc)
        self._paused = False


def _seconds(interval: str) -> float:
    if interval == "-1":
        return 0.0
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if interval.endswith(suffix):
            return float(interval[: -len(suffix)]) * factor
    return 1.0


def configure_logging(level: str) -> None:
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)
    if level != "debug":  # the clients log every request at INFO
        for name in ("opensearch", "elasticsearch", "elastic_transport"):
            logging.getLogger(name).setLevel(logging.WARNING)


def stop_on_signals(then: str, logger: logging.Logger = log) -> threading.Event:
    """An event SIGTERM and SIGINT set (logging `then`, what the service does next, on the service's `logger`);
    the main loop watches it. Shared by the indexer and the monitor."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("signal %d: %s", signum, then)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def main() -> int:
    try:
        settings = IndexerSettings.from_env()
    except SettingsError as exc:
        configure_logging("error")
        log.error("invalid configuration: %s", exc)
        return 2
    configure_logging(settings.log_level)
    stop = stop_on_signals("writing what is buffered, committing, then stopping")
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
