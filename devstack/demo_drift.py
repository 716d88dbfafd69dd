"""The demo's drift scenario: a stationary phase, then a shift, and what the monitor made of it.

1. wait for the start of a monitor window, then send `stationary` windows of held-out comments (the traffic the
   reference profile describes) and `shifted` windows of the crypto-spam wave (devstack/drift_traffic.py, a kind
   of comment the training data lacks), `per_window` predictions per window, paced over the window, with ground
   truth (the data set's label; spam is "removed") for a share of them;
2. wait until the monitor finished the last window;
3. report when the shift began, which window first alarmed and on which metrics, false alarms in the stationary
   phase, and accuracy before and after from ground truth; the HTML report charts the same windows.

Real traffic through the engine in front of the real model; the engine's request logger captures it, as the
executor does on a cluster.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import requests

from devstack.drift_traffic import spam_wave
from devstack.report_html import WindowRow, alarms, gather_windows
from devstack.runtime.errors import DevstackError
from smoke_tests.traffic import RestClient

if TYPE_CHECKING:
    from devstack.demo_report import Console
    from devstack.loop import LoopStack

SPAM_TRUTH = 1  # moderators remove crypto spam
SEED = 20261202


@dataclass(frozen=True)
class DriftSizes:
    window_s: int = 20
    stationary: int = 5  # windows
    shifted: int = 4  # windows
    per_window: int = 100  # predictions per window
    feedback_share: float = 0.4


@dataclass
class DriftResult:
    began: float = 0.0  # first stationary window's start
    shift_start: float = 0.0
    ended: float = 0.0
    sent: int = 0
    feedback: dict[str, int] = field(default_factory=dict)  # puid -> truth
    windows: list[WindowRow] = field(default_factory=list)
    first_alarm: tuple[float, list[str]] | None = None
    false_alarms: list[tuple[float, list[str]]] = field(default_factory=list)
    accuracy_before: tuple[int, int] = (0, 0)  # correct, labelled
    accuracy_after: tuple[int, int] = (0, 0)
    prometheus_alert: str | None = None
    window_length: int = 20

    def lines(self, clock: Callable[[float], str]) -> list[str]:
        out = [
            f"drift scenario: {self.sent} predictions, stationary from {clock(self.began)}, "
            f"shift (crypto-spam wave) began {clock(self.shift_start)}, last window ended {clock(self.ended)}",
        ]
        if self.first_alarm is None:
            out.append("  first alarm: none (the monitor did not alarm on the shift)")
        else:
            start, metrics = self.first_alarm
            after = round((start - self.shift_start) / max(self.window_length, 1)) + 1
            out.append(f"  first alarm: window {clock(start)} (shifted window {after}), on {', '.join(metrics)}")
        out.append(
            f"  false alarms in the stationary phase: {len(self.false_alarms)}"
            + (f" ({', '.join(clock(s) for s, _ in self.false_alarms)})" if self.false_alarms else "")
        )
        for name, (right, total) in (("before", self.accuracy_before), ("after", self.accuracy_after)):
            share = f"{100 * right / total:.1f}%" if total else "n/a"
            out.append(f"  accuracy {name} the shift (ground truth): {right}/{total} = {share}")
        if self.prometheus_alert:
            out.append(f"  Prometheus: {self.prometheus_alert}")
        return out


def _next_boundary(window_s: int, margin_s: float = 1.0) -> float:
    now = time.time()
    boundary = (int(now // window_s) + 1) * window_s
    return boundary if boundary - now >= margin_s else boundary + window_s


def send_phase(
    loop: LoopStack,
    texts: list[tuple[str, int]],
    start: float,
    window_s: int,
    windows: int,
    result: DriftResult,
    share: float,
    console: Console,
    label: str,
) -> None:
    """`texts` spread evenly over `windows` windows from `start`, each prediction at its slot."""
    rest = RestClient(loop.rest_url, timeout=30)
    run = uuid.uuid4().hex[:8]
    slot = windows * window_s / max(len(texts), 1)
    lock = threading.Lock()
    errors: list[str] = []

    def one(i: int, text: str, truth: int) -> None:
        delay = start + i * slot - time.time()
        if delay > 0:
            time.sleep(delay)
        puid = f"demo-{run}-{label}-{i}"
        prediction = rest.predict(text, puid)  # through the engine, which logs request and response
        if int((i + 1) * share) > int(i * share):
            rest.feedback(prediction, truth=truth)  # with the prediction's Seldon-Puid: the engine logs it
            with lock:
                result.feedback[puid] = truth
        with lock:
            result.sent += 1

    threads = []
    for worker in range(4):
        chunk = [(i, t, y) for i, (t, y) in enumerate(texts) if i % 4 == worker]

        def work(items: list[tuple[int, str, int]] = chunk) -> None:
            try:
                for i, text, truth in items:
                    one(i, text, truth)
            except (AssertionError, requests.RequestException, OSError) as exc:
                errors.append(str(exc).splitlines()[0])

        threads.append(threading.Thread(target=work, daemon=True))
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        console.progress("drift", f"drift: {label} phase, {result.sent} predictions sent")
        time.sleep(1.0)
    if errors:
        raise DevstackError(f"drift scenario: {len(errors)} {label} requests failed; first: {errors[0]}")


def _accuracy(search_url: str, index: str, since: float, until: float) -> tuple[int, int]:
    body = {
        "size": 0,
        "track_total_hits": True,
        "query": {
            "bool": {
                "filter": [
                    {"exists": {"field": "correct"}},
                    {
                        "range": {
                            "@timestamp": {"gte": int(since * 1000), "lt": int(until * 1000), "format": "epoch_millis"}
                        }
                    },
                ]
            }
        },
        "aggs": {"right": {"filter": {"term": {"correct": True}}}},
    }
    found = requests.post(f"{search_url}/{index}/_search", json=body, timeout=60).json()
    return int(found["aggregations"]["right"]["doc_count"]), int(found["hits"]["total"]["value"])


def wait_for_window(search_url: str, monitor_index: str, window_start: float, timeout_s: float) -> bool:
    since = {"gte": int(window_start * 1000), "format": "epoch_millis"}
    query = {"query": {"bool": {"filter": [{"term": {"metric": "window"}}, {"range": {"window_start": since}}]}}}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            requests.post(f"{search_url}/{monitor_index}/_refresh", timeout=30)
            found = requests.post(f"{search_url}/{monitor_index}/_count", json=query, timeout=30)
            if found.status_code == 200 and found.json().get("count", 0) > 0:
                return True
        except requests.RequestException:
            pass
        time.sleep(2.0)
    return False


def run_drift(loop: LoopStack, sizes: DriftSizes, held_out: list[tuple[str, int]], console: Console) -> DriftResult:
    result = DriftResult(window_length=sizes.window_s)
    per_phase = sizes.per_window
    stationary = [held_out[(i * 7919) % len(held_out)] for i in range(sizes.stationary * per_phase)]
    shifted = [(text, SPAM_TRUTH) for text in spam_wave(sizes.shifted * per_phase, SEED)]
    result.began = _next_boundary(sizes.window_s)
    result.shift_start = result.began + sizes.stationary * sizes.window_s
    result.ended = result.shift_start + sizes.shifted * sizes.window_s
    console.say(
        f"drift: {sizes.stationary} stationary then {sizes.shifted} shifted windows of {sizes.window_s} s, "
        f"{per_phase} predictions each, from {time.strftime('%H:%M:%S', time.gmtime(result.began))} UTC"
    )
    time.sleep(max(0.0, result.began - time.time()))
    send_phase(
        loop,
        stationary,
        result.began,
        sizes.window_s,
        sizes.stationary,
        result,
        sizes.feedback_share,
        console,
        "stationary",
    )
    time.sleep(max(0.0, result.shift_start - time.time()))
    send_phase(
        loop, shifted, result.shift_start, sizes.window_s, sizes.shifted, result, sizes.feedback_share, console, "shift"
    )
    last = result.ended - sizes.window_s
    wait = sizes.window_s + loop.monitor.settle_s + 120
    if not wait_for_window(loop.search.url, loop.names.monitor_index, last, wait):
        console.say(f"drift: the monitor had not finished the last window within {wait:.0f} s; reporting what it has")
    result.windows = gather_windows(
        loop.search.url, loop.names.index, loop.names.monitor_index, sizes.window_s, "text-classifier", result.began
    )
    found = alarms(result.windows)
    result.false_alarms = [(start, metrics) for start, metrics in found if start < result.shift_start]
    after = [(start, metrics) for start, metrics in found if start >= result.shift_start]
    result.first_alarm = after[0] if after else None
    result.accuracy_before = _accuracy(loop.search.url, loop.names.index, result.began, result.shift_start)
    result.accuracy_after = _accuracy(loop.search.url, loop.names.index, result.shift_start, result.ended)
    if result.first_alarm is not None:
        result.prometheus_alert = wait_for_alert(loop, ALERT, timeout_s=90)
    return result


ALERT = "SeldonFeedbackDriftDetected"


def wait_for_alert(loop: LoopStack, name: str, timeout_s: float) -> str:
    """What the stack's Prometheus says of the alert `name`: firing (with the metrics and since when), or that it
    did not fire within `timeout_s` (scrape and evaluation run every 5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            firing = [
                a for a in loop.prometheus.alerts() if a["labels"].get("alertname") == name and a["state"] == "firing"
            ]
        except (requests.RequestException, KeyError, ValueError) as exc:
            firing, error = [], str(exc)
        else:
            error = ""
        if firing:
            metrics = sorted({a["labels"].get("metric", "?") for a in firing})
            since = min(a.get("activeAt", "") for a in firing)
            return f"alert {name} firing (since {since[11:19]} UTC) for {', '.join(metrics)} at {loop.prometheus.url}"
        if time.monotonic() > deadline:
            return f"alert {name} did not fire within {timeout_s:.0f} s{f' ({error})' if error else ''}"
        time.sleep(2.0)
