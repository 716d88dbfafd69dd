"""The monitor on a real OpenSearch, on capture documents written with the indexer's own index template.

What: windows of 60 s of seeded documents (stationary held-out comments, then the spam wave of
devstack/drift_traffic.py), a model version without a profile, an empty window, documents with missing fields.
Wait: nothing; the monitor runs in the test (`Monitor.run_once`) with a fixed clock after the last window, so
every window is finished and settled.
Assert: exactly one window document per window and one result per window, group and metric; counts equal what was
written; no breach while stationary, the alarm in the second shifted window; a restart computes only the windows
after its state; late ground truth updates the quality of the request's window; a search outage is retried and
skips or doubles no window.
Cleanup: each test's indices are deleted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from feedback.indexer.core import index_template as capture_template
from feedback.indexer.search_io import OpenSearchBackend
from feedback.indexer.settings import SearchSettings
from feedback.monitor.main import Monitor
from feedback.monitor.metrics import MonitorMetrics
from feedback.monitor.search_io import MonitorStore
from feedback.monitor.settings import MonitorSettings, RegistrySettings, Thresholds

from tests.monitor_data import MODEL_VERSION, profile_data, window_documents

pytestmark = pytest.mark.integration

WINDOW = 60
SETTLE = 5.0
SEARCH_TIMEOUT_S = 300  # a shared 2-core machine under load: a first bulk with refresh can take minutes


def bulk(url: str, lines: list[str]) -> None:
    """One _bulk request (NDJSON lines), refreshed so the monitor's next query sees it; every item must succeed."""
    answer = requests.post(
        f"{url}/_bulk?refresh=true",
        data="\n".join(lines) + "\n",
        headers={"Content-Type": "application/x-ndjson"},
        timeout=SEARCH_TIMEOUT_S,
    ).json()
    assert not answer["errors"], answer


class Setup:
    def __init__(self, search_url: str, profiles: Path) -> None:
        token = uuid.uuid4().hex[:6]
        self.url = search_url
        self.capture_index = f"mon-{token}-feedback"
        self.index = f"mon-{token}-monitor"
        self.profiles = profiles
        self.base = (int(time.time()) // WINDOW - 30) * WINDOW  # 30 windows ago: all finished
        self.backend = OpenSearchBackend(SearchSettings(engine="opensearch", urls=(search_url,), request_timeout_s=120))
        self.backend.put_index_template(f"{self.capture_index}-template", capture_template(self.capture_index, 1, 0))
        self.sent: Counter = Counter()  # window index -> documents written

    def window_start(self, index: int) -> float:
        return self.base + index * WINDOW

    def write(self, index: int, docs: list[dict[str, Any]], **fields: Any) -> list[str]:
        ids, lines = [], []
        for n, doc in enumerate(docs):
            at = self.window_start(index) + (n + 0.5) * (WINDOW - 1) / len(docs)
            request_id = f"w{index}-{uuid.uuid4().hex[:10]}"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
            source = {
                "@timestamp": stamp,
                "request_time": stamp,
                "request_id": request_id,
                "instance": 0,
                "deployment": "text-classifier",
                "predictor": "default",
                "model_version": MODEL_VERSION,
                **doc,
                **fields,
            }
            source = {k: v for k, v in source.items() if v is not None}
            if "truth" in source:
                source["feedback_time"] = stamp
            lines += [json.dumps({"index": {"_index": self.capture_index, "_id": request_id}}), json.dumps(source)]
            ids.append(request_id)
        bulk(self.url, lines)
        self.sent[index] += len(docs)
        return ids

    def monitor(self, now: float, registry: RegistrySettings | None = None, **thresholds: Any) -> Monitor:
        settings = MonitorSettings(
            search=SearchSettings(engine="opensearch", urls=(self.url,), request_timeout_s=120),
            profiles_dir=self.profiles,
            capture_index=self.capture_index,
            index=self.index,
            index_replicas=0,
            window_s=WINDOW,
            settle_s=SETTLE,
            backfill_windows=40,
            interval_s=0.2,
            retry_initial_s=0.2,
            retry_max_s=1.0,
            thresholds=Thresholds(domain_permutations=10, **thresholds),
            registry=registry,
        )
        monitor = Monitor(
            settings,
            MonitorStore(self.backend, self.capture_index, self.index),
            MonitorMetrics(),
            threading.Event(),
            clock=lambda: now,
        )
        assert monitor.store.install(settings.index_shards, settings.index_replicas) is not None  # the setup step
        monitor.wait_for_setup()
        return monitor

    def after(self, windows: int) -> float:
        return self.window_start(windows) + SETTLE + 1

    def results(self, **term: str) -> list[dict[str, Any]]:
        requests.post(f"{self.url}/{self.index}/_refresh", timeout=SEARCH_TIMEOUT_S)
        body = {"size": 10_000, "query": {"bool": {"filter": [{"term": {k: v}} for k, v in term.items()]}}}
        hits = requests.post(f"{self.url}/{self.index}/_search", json=body, timeout=SEARCH_TIMEOUT_S).json()["hits"][
            "hits"
        ]
        return [{**hit["_source"], "_id": hit["_id"]} for hit in hits]

    def by_window(self, **term: str) -> dict[int, list[dict[str, Any]]]:
        grouped: dict[int, list[dict[str, Any]]] = {}
        for doc in self.results(**term):
            start = datetime.fromisoformat(doc["window_start"].replace("Z", "+00:00")).timestamp()
            grouped.setdefault(round((start - self.base) / WINDOW), []).append(doc)
        return grouped

    def delete(self) -> None:
        for index in (self.capture_index, self.index):
            requests.delete(f"{self.url}/{index}", timeout=SEARCH_TIMEOUT_S)
        requests.delete(f"{self.url}/_index_template/{self.capture_index}-template", timeout=SEARCH_TIMEOUT_S)
        requests.delete(f"{self.url}/_index_template/{self.index}-template", timeout=SEARCH_TIMEOUT_S)
        self.backend.close()


@pytest.fixture
def setup(search: Any, tmp_path: Path) -> Iterator[Setup]:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "profile.json").write_text(json.dumps(profile_data()))
    (tmp_path / "profiles" / "broken.json").write_text("{not json")
    current = Setup(search.url, tmp_path / "profiles")
    try:
        yield current
    finally:
        current.delete()


def test_stationary_windows_do_not_alarm_and_the_shift_alarms_in_its_second_window(setup: Setup) -> None:
    for index in range(4):
        setup.write(index, window_documents(150, 100 + index))
    # window 4 stays empty
    for index in (5, 6):
        setup.write(index, window_documents(150, 100 + index, spam_share=1.0))
    # in the newest window, whose groups the metrics show (an older window's groups are forgotten)
    setup.write(6, window_documents(20, 7), model_version="9.9.9+noprofile")
    monitor = setup.monitor(setup.after(7))
    assert monitor.run_once() == 7

    windows = setup.by_window(metric="window")
    assert sorted(windows) == list(range(7)) and all(len(docs) == 1 for docs in windows.values())
    assert [windows[i][0]["value"] for i in range(7)] == [setup.sent[i] for i in range(7)]
    assert windows[4][0]["status"] == "empty"
    volume = setup.by_window(metric="volume", model_version=MODEL_VERSION)
    assert {i: docs[0]["value"] for i, docs in volume.items()} == {0: 150, 1: 150, 2: 150, 3: 150, 5: 150, 6: 150}

    drift = setup.by_window(kind="drift", model_version=MODEL_VERSION)
    for index in range(4):
        assert len(drift[index]) == 7, "one result per drift metric"
        assert [d["metric"] for d in drift[index] if d["breach"]] == [], f"stationary window {index} breached"
    assert {d["metric"] for d in drift[5] if d["breach"]} == {d["metric"] for d in drift[5]}
    assert not any(d["alarm"] for d in drift[5]), "the first shifted window breaches but cannot alarm yet"
    assert {d["metric"] for d in drift[6] if d["alarm"]} == {d["metric"] for d in drift[6]}

    missing = setup.results(kind="drift", model_version="9.9.9+noprofile")
    assert len(missing) == 7 and {d["status"] for d in missing} == {"no_profile"}
    assert "no reference profile for model version '9.9.9+noprofile'" in missing[0]["reason"]
    assert monitor.profiles.errors and "broken.json" in next(iter(monitor.profiles.errors))
    assert monitor.metrics.profile_missing.labels("text-classifier", "default", "9.9.9+noprofile")._value.get() == 1
    assert (
        monitor.metrics.drift_alarm.labels("text-classifier", "default", MODEL_VERSION, "token_psi")._value.get() == 1
    )


def test_a_restart_resumes_after_the_last_finished_window(setup: Setup) -> None:
    for index in range(5):
        setup.write(index, window_documents(60, 200 + index))
    first = setup.monitor(setup.after(3))
    assert first.run_once() == 3
    computed_at = {d["_id"]: d["computed_at"] for d in setup.results(metric="window")}
    again = setup.monitor(setup.after(3))  # a restart at the same time: nothing left to do
    assert again.run_once() == 0
    later = setup.monitor(setup.after(5))
    assert later.run_once() == 2
    assert later.metrics.windows._value.get() == 2
    windows = setup.by_window(metric="window")
    assert sorted(windows) == list(range(5)) and all(len(docs) == 1 for docs in windows.values())
    assert {
        d["_id"]: d["computed_at"] for d in setup.results(metric="window") if d["_id"] in computed_at
    } == computed_at
    [state] = setup.results(kind="state")
    assert state["last_window_end"].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(setup.window_start(5))))


def test_late_ground_truth_updates_the_quality_of_the_request_window(setup: Setup) -> None:
    docs = window_documents(80, 300, truth_share=0.0)
    ids = setup.write(0, docs)
    monitor = setup.monitor(setup.after(1))
    monitor.run_once()
    [before] = setup.results(metric="accuracy")
    assert (before["status"], before["samples"]) == ("too_few_samples", 0)

    late = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(setup.after(1) + 30))
    truth = window_documents(80, 300, truth_share=1.0)
    lines = []
    for request_id, doc in zip(ids, truth, strict=True):
        update = {k: doc[k] for k in ("truth", "truth_index", "correct")} | {"feedback_time": late}
        lines += [
            json.dumps({"update": {"_index": setup.capture_index, "_id": request_id}}),
            json.dumps({"doc": update}),
        ]
    bulk(setup.url, lines)
    monitor.clock = lambda: setup.after(1) + 30 + SETTLE + 1
    assert monitor.run_once() == 0
    [after] = setup.results(metric="accuracy")
    assert (after["status"], after["samples"]) == ("ok", 80)
    expected = sum(d["correct"] for d in truth) / 80
    assert after["value"] == pytest.approx(expected)
    assert after["lower"] <= after["value"] <= after["upper"]
    assert monitor.metrics.recomputed._value.get() == 1
    assert len(setup.results(metric="window")) == 1, "late feedback recomputes quality only, not the window"


def test_documents_with_missing_fields_are_left_out_and_counted(setup: Setup) -> None:
    docs = window_documents(90, 400)
    for doc in docs[:30]:
        doc["input_text"] = None
    for doc in docs[30:40]:
        doc.update(predicted_label=None, predicted_score=None)  # answered, yet the fields are missing
    setup.write(0, docs)
    setup.write(0, [{"deployment": None, "model_version": None, "outcome": "pending"}] * 3)
    monitor = setup.monitor(setup.after(1))
    monitor.run_once()
    skipped = {labels[0]: value for labels, value in _samples(monitor.metrics.skipped)}
    assert skipped == {"no_input_text": 30, "no_predicted_label": 10, "no_predicted_score": 10}
    [length] = setup.results(metric="length_ks", model_version=MODEL_VERSION)
    assert length["samples"] == 60
    [unknown] = setup.results(metric="without_response", deployment="unknown")
    assert unknown["value"] == 3


def test_a_search_outage_is_retried_and_no_window_is_skipped_or_doubled(setup: Setup, search: Any) -> None:
    for index in range(4):
        setup.write(index, window_documents(60, 500 + index))
    now = {"t": setup.after(2)}
    monitor = setup.monitor(0)
    monitor.clock = lambda: now["t"]
    assert monitor.run_once() == 2
    thread = threading.Thread(target=monitor.run, daemon=True)
    search.stop()
    try:
        now["t"] = setup.after(4)
        thread.start()
        deadline = time.monotonic() + 60
        while _retries(monitor) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        search.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(setup.results(metric="window")) < 4:
        time.sleep(0.5)
    monitor.stop.set()
    thread.join(30)
    assert _retries(monitor) >= 2
    windows = setup.by_window(metric="window")
    assert sorted(windows) == [0, 1, 2, 3] and all(len(docs) == 1 for docs in windows.values())
    assert [windows[i][0]["value"] for i in range(4)] == [60, 60, 60, 60]


def _samples(counter: Any) -> list[tuple[tuple[str, ...], float]]:
    return [
        (tuple(sample.labels.values()), sample.value)
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    ]


def _retries(monitor: Monitor) -> float:
    return sum(value for _labels, value in _samples(monitor.metrics.retries))
