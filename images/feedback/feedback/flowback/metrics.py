"""Counters of a flow-back run, written in the Prometheus text format to FLOWBACK_METRICS_FILE when it is set (for
node-exporter's textfile collector or a sidecar that pushes it): a batch step has no endpoint to scrape, and a
refused run or a skipped document must still be counted somewhere a dashboard sees."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, write_to_textfile

METRICS_FILE_ENV = "FLOWBACK_METRICS_FILE"


class RunMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter(
            "flowback_runs_total", "Flow-back commands run, by command and outcome", ["command", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.exported = Counter("flowback_export_rows_total", "Rows written to datasets", registry=self.registry)
        self.skipped = Counter(
            "flowback_export_skipped_total", "Documents with ground truth not exported, by reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip

    def record(self, command: str, error: str | None, result: dict[str, Any] | None) -> None:
        """Count one run: its outcome (`ok` or the error's class), and an export's rows and skipped documents."""
        self.runs.labels(command, "ok" if error is None else error).inc()
        if command == "export" and result is not None and result.get("written", True):
            counts = result["counts"]
            self.exported.inc(counts["rows"])
            for reason, count in counts["skipped"].items():
                self.skipped.labels(reason).inc(count)

    def write(self, env: dict[str, str] | None = None) -> str | None:
        path = (os.environ if env is None else env).get(METRICS_FILE_ENV, "").strip()
        if path:
            write_to_textfile(path, self.registry)
        return path or None
