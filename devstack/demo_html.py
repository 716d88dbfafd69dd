"""The demo's closing part: the drift scenario's lines for the terminal, and `report.html` (with its screenshot)
in the run folder, built from what the demo sent and what the index and the monitor hold."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from devstack.browser import open_page
from devstack.demo_report import MODES, FreshnessWatch, Sent, _buckets
from devstack.report_html import ReportData, gather_windows, render
from devstack.runtime.errors import DevstackError

if TYPE_CHECKING:
    from devstack.demo import DemoSizes
    from devstack.demo_drift import DriftResult
    from devstack.loop import LoopStack

REPORT_FILE = "report.html"
SCREENSHOT_FILE = "report.png"


def _clock(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%H:%M:%S UTC")


def report_data(
    loop: LoopStack, sent: Sent, counts: dict[str, Any], watch: FreshnessWatch, drift: DriftResult | None, window_s: int
) -> ReportData:
    indexed = _buckets(counts.get("aggregations", {}).get("mode", {}))
    rows = [(mode, sent.requests.get(mode, 0), indexed.get(mode, 0)) for mode in MODES if sent.requests.get(mode)]
    if drift is not None:
        rows.append(("drift phase", drift.sent, drift.sent))  # counted in the realtime row of the index
    freshness = [watch.seen[rid] - sent.sent_at[rid] for rid in watch.seen if rid in sent.sent_at]
    if drift is not None:
        windows, summary = drift.windows, drift.lines(_clock)
    else:
        since = time.time() - 3600
        windows = gather_windows(
            loop.search.url, loop.names.index, loop.names.monitor_index, window_s, "text-classifier", since
        )
        summary = ["no drift scenario in this run"]
    return ReportData(
        title="Feedback loop demo",
        counts=rows,
        freshness_s=freshness,
        windows=windows,
        window_s=window_s,
        shift_start=drift.shift_start if drift is not None else None,
        first_alarm=drift.first_alarm[0] if drift is not None and drift.first_alarm else None,
        summary=summary,
        generated_at=time.time(),
    )


def write_report(
    loop: LoopStack,
    sent: Sent,
    counts: dict[str, Any],
    watch: FreshnessWatch,
    drift: DriftResult | None,
    sizes: DemoSizes,
) -> str:
    """Write report.html (and report.png when Chromium is there) into the run folder; the terminal's lines."""
    window_s = sizes.drift.window_s if sizes.drift is not None else loop.monitor.window_s
    data = report_data(loop, sent, counts, watch, drift, window_s)
    path = loop.run_dir / REPORT_FILE
    path.write_text(render(data), encoding="utf-8")
    lines = ["", *(data.summary if drift is not None else [])]
    lines.append(f"report to look at (self-contained, opens offline): {path}")
    try:
        page = open_page(path, screenshot=loop.run_dir / SCREENSHOT_FILE)
        problems = f"; console errors: {page.console_errors}" if page.console_errors else ""
        lines.append(f"  its screenshot: {page.screenshot}{problems}")
    except DevstackError as exc:
        lines.append(f"  no screenshot: {exc}")
    return "\n".join(lines)
