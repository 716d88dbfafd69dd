"""The hourly retention of the sweeping indexer, against a scripted search backend (pure scheduling logic).

What: `Sweeper.run` with INDEXER_RETENTION_DAYS set, the backend answering each delete_by_query with (deleted,
version conflicts). The integration test of the same path (real OpenSearch) is
test_documents_older_than_the_retention_are_deleted_and_newer_ones_kept.
Assert: the deletion runs before the sweeps update documents; a deletion that met version conflicts is tried again
at the next sweep, a complete one only after the hour.
"""

from __future__ import annotations

from typing import Any

from feedback.indexer.metrics import IndexerMetrics
from feedback.indexer.settings import IndexerSettings
from feedback.indexer.sweeper import Sweeper

NOW_US = 1_714_564_800_000_000


class RetentionBackend:
    """Answers delete_by_query from a script; searches find nothing; records the order of the calls."""

    def __init__(self, answers: list[tuple[int, int]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def delete_older_than(self, index: str, field: str, before: str) -> tuple[int, int]:
        self.calls.append("delete")
        return self.answers.pop(0)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("search")
        return {"hits": {"hits": []}}


def sweeper(backend: RetentionBackend) -> tuple[Sweeper, IndexerMetrics]:
    settings = IndexerSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "INDEXER_SEARCH_URL": "http://127.0.0.1:9",
            "INDEXER_RETENTION_DAYS": "2",
        }
    )
    metrics = IndexerMetrics()
    return Sweeper(settings, backend, metrics), metrics  # type: ignore[arg-type]


def test_retention_runs_before_the_sweeps_can_change_the_documents_it_deletes() -> None:
    backend = RetentionBackend([(1, 0)])
    sweep, _ = sweeper(backend)
    sweep.run(NOW_US)
    assert backend.calls[0] == "delete" and "search" in backend.calls[1:]


def test_a_deletion_that_met_version_conflicts_is_tried_again_at_the_next_sweep_not_in_an_hour() -> None:
    backend = RetentionBackend([(0, 1), (1, 0)])
    sweep, metrics = sweeper(backend)
    sweep.run(NOW_US)
    sweep.run(NOW_US)
    assert backend.calls.count("delete") == 2
    assert metrics.retention_deleted._value.get() == 1
    sweep.run(NOW_US)  # complete: the next deletion waits for the hour
    assert backend.calls.count("delete") == 2
