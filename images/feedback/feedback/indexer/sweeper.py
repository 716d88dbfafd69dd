"""Runs the sweeps of `sweep.py` against the search cluster, from the indexer's main loop.

Runs every `INDEXER_SWEEP_INTERVAL_S`, only in the indexer replica that owns partition 0 of the capture topic (one
sweeper per consumer group; during a rebalance two may overlap, which is harmless: every write is an idempotent
merge, deletes of missing documents are no-ops, and a join already made is recognised as `duplicate`), and only
while the indexer is caught up (every assigned partition consumed to the end offset the broker reports, and the
index refreshed), so that a backlog being replayed is not declared `no_response` or orphaned before its own
events are indexed. A failed sweep is counted and simply
repeated next time: nothing is committed or lost by it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from feedback.indexer.core import DocumentPart, bulk_action, iso_time
from feedback.indexer.metrics import IndexerMetrics
from feedback.indexer.search_io import SearchBackend, SearchUnavailable
from feedback.indexer.settings import IndexerSettings
from feedback.indexer.sweep import (
    JoinOutcome,
    Resolution,
    candidates_query,
    overdue_part,
    overdue_query,
    placeholder,
    placeholder_query,
    resolve,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # documents per sweep and kind; a longer backlog is worked off over the following sweeps
RETENTION_INTERVAL_S = 3600.0  # how often documents older than INDEXER_RETENTION_DAYS are deleted
GONE = 404  # updated without upsert or deleted: the document no longer exists, nothing to do


class Sweeper:
    def __init__(self, settings: IndexerSettings, backend: SearchBackend, metrics: IndexerMetrics) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics
        self._next_run = time.monotonic() + settings.sweep_interval_s  # the first sweep after one interval
        self._next_retention = 0.0

    def is_due(self, owner: bool) -> bool:
        return owner and time.monotonic() >= self._next_run

    def maybe_run(self, *, owner: bool, caught_up: Callable[[], bool]) -> None:
        if not owner or time.monotonic() < self._next_run:
            return
        self._next_run = time.monotonic() + self.settings.sweep_interval_s
        if not caught_up():
            return
        try:
            self.backend.refresh(self.settings.index)  # what was just written must be searchable
            self.run(int(time.time() * 1_000_000))
        except SearchUnavailable as exc:
            self.metrics.sweep_failures.inc()
            log.warning("sweep skipped, the search cluster is unavailable (retried next interval): %s", exc)

    def run(self, now_us: int) -> None:
        """Hourly, delete what is older than the retention (first, so no sweep updates a document about to go and
        makes its deletion a version conflict); then both sweeps once: mark overdue requests, then decide the
        feedbacks waiting for a fingerprint join."""
        self._apply_retention(now_us)
        self._mark_overdue(now_us)
        self._resolve_feedback(now_us)

    def _apply_retention(self, now_us: int) -> None:
        if self.settings.retention_days <= 0 or time.monotonic() < self._next_retention:
            return
        before = iso_time(now_us - self.settings.retention_days * 86_400 * 1_000_000)
        deleted, conflicts = self.backend.delete_older_than(self.settings.index, "@timestamp", before)
        self.metrics.retention_deleted.inc(deleted)
        if deleted:
            log.info("retention: %d documents older than %s deleted", deleted, before)
        if conflicts:  # changed while being deleted (a late event): tried again at the next sweep, not in an hour
            log.info("retention: %d documents older than %s changed meanwhile, deleted next sweep", conflicts, before)
        else:
            self._next_retention = time.monotonic() + RETENTION_INTERVAL_S

    def _acknowledged(self, actions: list[dict[str, Any]], what: str) -> set[str]:
        """Run the bulk actions; returns the ids acknowledged or already gone (a failure is retried next sweep)."""
        if not actions:
            return set()
        done = set()
        for result in self.backend.bulk(actions):
            if 200 <= result.status < 300 or result.status == GONE:
                done.add(result.doc_id)
            else:
                self.metrics.sweep_failures.inc()
                log.warning("sweep %s of %s not accepted (%s): %s", what, result.doc_id, result.status, result.error)
        return done

    def _write(self, parts: list[DocumentPart]) -> set[str]:
        """Merge into existing documents, never creating one (a document deleted meanwhile stays deleted)."""
        return self._acknowledged([bulk_action(part, self.settings.index, create=False) for part in parts], "write")

    def _mark_overdue(self, now_us: int) -> None:
        answer = self.backend.search(
            self.settings.index, overdue_query(now_us, self.settings.no_response_after_s, PAGE_SIZE)
        )
        hits = answer.get("hits", {}).get("hits", [])
        parts = [overdue_part(hit, self.settings.streaming_deployments) for hit in hits]
        marked = len(self._write(parts))
        if marked:
            self.metrics.no_response.inc(marked)
            log.info(
                "%d requests without a response after %g s: outcome no_response",
                marked,
                self.settings.no_response_after_s,
            )

    def _resolve_feedback(self, now_us: int) -> None:
        answer = self.backend.search(
            self.settings.index, placeholder_query(now_us, self.settings.feedback_join_delay_s, PAGE_SIZE)
        )
        resolutions: list[Resolution] = []
        for hit in answer.get("hits", {}).get("hits", []):
            item = placeholder(hit)
            query = candidates_query(item, self.settings.feedback_join_window_s)
            candidates = self.backend.search(self.settings.index, query) if query is not None else None
            resolutions.append(resolve(item, candidates, self.settings.streaming_deployments))
        written = self._write([part for resolution in resolutions for part in resolution.writes])
        # delete a placeholder only once its truth is safe in the prediction's document
        ready = [r for r in resolutions if all(part.doc_id in written for part in r.writes)]
        deleted = self._delete([r.delete for r in ready if r.delete is not None])
        for resolution in ready:
            if resolution.delete is not None and resolution.delete not in deleted:
                continue
            self.metrics.feedback_joins.labels(resolution.outcome.value).inc()
            log.info(
                "feedback %s (request id %s): %s%s",
                resolution.placeholder.doc_id,
                resolution.placeholder.request_id,
                resolution.outcome.value,
                f" -> {resolution.writes[0].doc_id}" if resolution.outcome is JoinOutcome.JOINED else "",
            )

    def _delete(self, doc_ids: list[str]) -> set[str]:
        actions = [{"_op_type": "delete", "_index": self.settings.index, "_id": doc_id} for doc_id in doc_ids]
        return self._acknowledged(actions, "delete")
