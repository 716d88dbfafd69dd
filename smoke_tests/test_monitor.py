"""Monitor: traffic sent now is counted in the monitor's windows.

What: K REST predictions (puids `<run>-mon-<i>`) through the real-time deployment, timed.
Wait: until the monitor finished every window that overlaps the sending (one `metric: window` document per window
start), at most `monitor.wait_s` (two windows, the settle time and two minutes).
Assert: each of those windows has exactly one window document (none doubled), they are contiguous, and the
deployment's `volume` documents of those windows count at least K (other traffic may share the windows); every
window document of that span is `ok` (not `empty`).
Cleanup: none; the documents stay as evidence.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from smoke_tests.sinks import MonitorFields, SearchReader
from smoke_tests.skips import needs_capture
from smoke_tests.target import MonitorTarget, Target
from smoke_tests.traffic import RestClient, new_run_id, texts
from smoke_tests.waiting import poll


def _start(doc: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(doc[MonitorFields.window_start]).replace("Z", "+00:00")).timestamp()


def window_documents(reader: SearchReader, since: float, until: float) -> list[dict[str, Any]]:
    span = {"gte": int(since * 1000), "lt": int(until * 1000), "format": "epoch_millis"}
    filters = [{"term": {MonitorFields.metric: "window"}}, {"range": {MonitorFields.window_start: span}}]
    query = {"bool": {"filter": filters}}
    return reader.search(query, size=1000)


def test_windows_appear_for_the_traffic(target: Target) -> None:
    needs_capture(target)
    if target.monitor is None:
        pytest.skip(f"target {target.name} describes no monitor (monitor: index, window_s in the target)")
    monitor: MonitorTarget = target.monitor
    reader = SearchReader(dataclasses.replace(target.search, index=monitor.index), target.limits.request_timeout_s)
    run_id = new_run_id()
    client = RestClient(target.realtime.rest_url, target.limits.request_timeout_s)
    count = max(10, target.limits.feedback_count)
    sent_from = time.time()
    for i, text in enumerate(texts(run_id, count)):
        client.predict(text, f"{run_id}-mon-{i}")
    sent_until = time.time()
    first = int(sent_from // monitor.window_s) * monitor.window_s
    last = int(sent_until // monitor.window_s) * monitor.window_s
    starts = list(range(first, last + 1, monitor.window_s))

    docs = poll(
        lambda: window_documents(reader, first, last + monitor.window_s),
        lambda found: {_start(d) for d in found} >= set(map(float, starts)),
        monitor.wait_s,
        f"monitor windows {starts} in {monitor.index}",
        first_sleep=2.0,
        max_sleep=10.0,
    )
    per_window = Counter(_start(d) for d in docs)
    assert sorted(per_window) == [float(s) for s in starts], f"windows computed: {sorted(per_window)}"
    assert set(per_window.values()) == {1}, f"a window was written twice: {per_window}"
    assert {d[MonitorFields.status] for d in docs} == {"ok"}, "a window with our traffic cannot be empty"
    volume = reader.search(
        {
            "bool": {
                "filter": [
                    {"term": {MonitorFields.metric: "volume"}},
                    {"term": {MonitorFields.deployment: target.realtime.deployment}},
                    {"terms": {MonitorFields.window_start: [int(s * 1000) for s in starts]}},
                ]
            }
        },
        size=1000,
    )
    assert sum(int(d[MonitorFields.value]) for d in volume) >= count, f"the monitor counted fewer than the {count} sent"
