"""The monitor's loop: compute every finished window in order, write its results, then move the state on; recompute
the quality of past windows that got late ground truth. A search failure backs off and retries the same window,
so no window is skipped or computed twice into different documents.

`python -m feedback.monitor` runs `main()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from feedback.config import SettingsError
from feedback.indexer.main import Backoff, configure_logging, stop_on_signals
from feedback.indexer.metrics import serve_http
from feedback.indexer.search_io import SearchUnavailable, create_backend
from feedback.monitor.core import (
    DRIFT_FIELDS,
    DRIFT_METRICS,
    EVERYTHING,
    QUALITY_FIELDS,
    Group,
    Result,
    Window,
    capture_results,
    class_names_of,
    decide,
    drift_statistics,
    no_profile_results,
    quality_results,
    result_document,
    result_id,
    seed_of,
)
from feedback.monitor.kafka_io import KafkaOffsets, KafkaUnavailable
from feedback.monitor.metrics import MonitorMetrics
from feedback.monitor.profiles import ProfileStore
from feedback.monitor.registry_profiles import RegistryProfiles
from feedback.monitor.search_io import MonitorStore, State
from feedback.monitor.settings import MonitorSettings

log = logging.getLogger("feedback.monitor")


class Monitor:
    def __init__(
        self,
        settings: MonitorSettings,
        store: MonitorStore,
        metrics: MonitorMetrics,
        stop: threading.Event,
        kafka: KafkaOffsets | None = None,
        clock: Any = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.stop = stop
        self.kafka = kafka
        self.clock = clock
        self.profiles = ProfileStore(settings.profiles_dir, registry_profiles(settings, metrics))
        self.backoff = Backoff(settings.retry_initial_s, settings.retry_max_s, stop)
        metrics.window_length.set(settings.window_s)

    # ------------------------------------------------------------------------------------------ the loop

    def wait_for_setup(self) -> None:
        """Until the setup (`python -m feedback.monitor setup`, a separate privileged step) has prepared the monitor
        index for this version: not ready, with the reason naming that command; the monitor installs nothing."""
        while not self.stop.is_set():
            try:
                problem = self.store.setup_problem()
            except SearchUnavailable as exc:
                self._retry("setup_check", exc)
                continue
            if problem is None:
                self.metrics.set_ready()
                self.backoff.reset()
                return
            self.metrics.not_ready["starting"] = problem
            self.metrics.retries.labels("setup_missing").inc()
            log.warning("%s (checked again in %.1f s)", problem, self.backoff.delay)
            self.backoff.wait(self.metrics.beat)

    def run(self) -> None:
        self.wait_for_setup()
        while not self.stop.is_set():
            self.metrics.beat()
            try:
                self.run_once()
                self.backoff.reset()
            except SearchUnavailable as exc:
                self._retry("search_unavailable", exc)
                continue
            self.stop.wait(self.settings.interval_s)

    def _retry(self, reason: str, exc: Exception) -> None:
        self.metrics.retries.labels(reason).inc()
        log.warning("search cluster unavailable (%s), retrying in %.1f s: %s", reason, self.backoff.delay, exc)
        self.backoff.wait(self.metrics.beat)

    def run_once(self) -> int:
        """Compute every window that has finished and settled, then late feedback; returns windows computed."""
        self.profiles.refresh()
        state = self.store.read_state() or self.first_state()
        window = Window.containing(state.last_window_end, self.settings.window_s)
        computed = 0
        while not self.stop.is_set() and window.end + self.settings.settle_s <= self.clock():
            self.metrics.beat()
            self.compute_window(window)
            state = State(window.end, state.feedback_checked_until)
            self.store.write_state(state, self.clock())
            self.metrics.last_window_end.set(window.end)
            computed += 1
            window = window.next()
        self.recompute_late_quality(state)
        return computed

    def first_state(self) -> State:
        """Where a monitor with no state starts: the first window with capture documents, at most
        MONITOR_BACKFILL_WINDOWS back; with an empty index, the current window."""
        now = self.clock()
        oldest = Window.containing(now, self.settings.window_s).previous(self.settings.backfill_windows).start
        first = self.store.earliest_capture_time()
        start = now if first is None else max(first, oldest)
        begin = Window.containing(start, self.settings.window_s).start
        log.info(
            "no monitor state yet: starting with the window at %s", Window(begin, self.settings.window_s).start_iso
        )
        return State(begin, now - self.settings.settle_s)

    # --------------------------------------------------------------------------------------- one window

    def compute_window(self, window: Window) -> None:
        started = time.perf_counter()
        self.store.refresh_capture()
        counts = self.store.capture_counts(window)
        now = self.clock()
        documents: list[tuple[str, dict[str, Any]]] = []
        self.metrics.new_window()
        for group, group_counts in sorted(counts.items()):
            results = capture_results(group_counts)
            results += self.drift_results(window, group)
            results += self.quality(window, group)
            self.metrics.record(group, results)
            documents += [(result_id(window, group, r.key), result_document(window, group, r, now)) for r in results]
        documents += [
            (result_id(window, EVERYTHING, r.key), result_document(window, EVERYTHING, r, now))
            for r in self.window_results(window, counts)
        ]
        self.store.write(documents)
        self.metrics.windows.inc()
        self.metrics.window_seconds.observe(time.perf_counter() - started)
        log.info(
            "window %s: %d documents in %d groups, %d results",
            window.start_iso,
            sum(c.documents for c in counts.values()),
            len(counts),
            len(documents),
        )

    def window_results(self, window: Window, counts: dict[Group, Any]) -> list[Result]:
        total = sum(c.documents for c in counts.values())
        results = [
            Result("window", "window", status="ok" if total else "empty", value=total, samples=len(counts)),
        ]
        if self.kafka is None:
            return results
        try:
            dead = self.kafka.dead_letters(window.start, window.end)
            results.append(Result("capture", "dead_letters", value=dead, samples=dead))
            self.metrics.dead_letters.set(dead)
        except KafkaUnavailable as exc:
            results.append(Result("capture", "dead_letters", status="unavailable", reason=str(exc)))
        try:
            lag = self.kafka.indexer_lag()
            results.append(Result("capture", "indexer_lag", value=lag, samples=lag))
            self.metrics.indexer_lag.set(lag)
        except KafkaUnavailable as exc:
            results.append(Result("capture", "indexer_lag", status="unavailable", reason=str(exc)))
        return results

    def drift_results(self, window: Window, group: Group) -> list[Result]:
        profile = self.profiles.get(group.model_version)
        if profile is None:
            return no_profile_results(group.model_version, self.profiles.versions)
        documents = self.store.documents(window, group, ("outcome", *DRIFT_FIELDS), self.settings.max_documents)
        statistics, skipped = drift_statistics(
            documents, profile, self.settings.thresholds, seed_of(window, group, "drift")
        )
        for reason, count in skipped.items():
            self.metrics.skipped.labels(reason).inc(count)
        history = self.store.breach_history(
            group, window, DRIFT_METRICS, self.settings.thresholds.consecutive_windows - 1
        )
        results = decide(statistics, self.settings.thresholds, history)
        if skipped:
            for result in results:
                result.detail = {**result.detail, "skipped": dict(skipped)}
        return results

    def quality(self, window: Window, group: Group) -> list[Result]:
        documents = self.store.documents(
            window, group, QUALITY_FIELDS, self.settings.max_documents, extra=[{"exists": {"field": "truth"}}]
        )
        profile = self.profiles.get(group.model_version)
        history = self.store.breach_history(
            group, window, ["accuracy"], self.settings.thresholds.consecutive_windows - 1
        ).get("accuracy", [])
        results = quality_results(
            documents,
            class_names_of(documents, profile),
            profile,
            self.settings.thresholds,
            history,
            seed_of(window, group, "quality"),
        )
        skipped = Counter(results[0].detail.get("skipped", {}))
        for reason, count in skipped.items():
            self.metrics.skipped.labels(reason).inc(count)
        return results

    # ------------------------------------------------------------------------------------ late feedback

    def recompute_late_quality(self, state: State) -> None:
        """Windows already computed whose documents got ground truth since the last look: recompute their quality
        (attributed to the window of the original request). Overlaps by MONITOR_SETTLE_S: a recompute overwrites."""
        now = self.clock()
        until = now - self.settings.settle_s
        if until <= state.feedback_checked_until:
            return
        oldest = max(0.0, now - self.settings.late_feedback_lookback_s)
        since = state.feedback_checked_until - self.settings.settle_s
        self.store.refresh_capture()
        late = self.store.late_feedback(since, state.last_window_end, oldest, self.settings.window_s)
        documents: list[tuple[str, dict[str, Any]]] = []
        for start, group in sorted(late):
            window = Window(start, self.settings.window_s)
            results = self.quality(window, group)
            documents += [(result_id(window, group, r.key), result_document(window, group, r, now)) for r in results]
        self.store.write(documents)
        if late:
            self.metrics.recomputed.inc(len(late))
            log.info("late ground truth: quality of %d past windows recomputed", len(late))
        self.store.write_state(State(state.last_window_end, until), now)


def registry_profiles(settings: MonitorSettings, metrics: MonitorMetrics) -> RegistryProfiles | None:
    """The flow back's registry as a second source of profiles (MONITOR_REGISTRY_BUCKET), or None."""
    if settings.registry is None:
        return None
    from feedback.flowback.registry import Registry
    from feedback.flowback.store import ObjectStore

    registry = Registry(ObjectStore(settings.registry.store), settings.registry.model_name)
    return RegistryProfiles(
        registry,
        retry_s=settings.registry.retry_s,
        on_failure=lambda reason: metrics.registry_profile_errors.labels(reason).inc(),
    )


def main() -> int:
    try:
        settings = MonitorSettings.from_env()
    except SettingsError as exc:
        configure_logging("error")
        log.error("invalid configuration: %s", exc)
        return 2
    configure_logging(settings.log_level)
    stop = stop_on_signals("finishing the current window, then stopping", log)
    metrics = MonitorMetrics()
    server = serve_http(metrics, settings.metrics_host, settings.metrics_port)
    log.info(
        "monitor: %s -> %s every %d s windows (settle %g s), profiles in %s%s; metrics on %s:%d",
        settings.capture_index,
        settings.index,
        settings.window_s,
        settings.settle_s,
        settings.profiles_dir,
        f" and s3://{settings.registry.store.bucket}/registry/{settings.registry.model_name}/"
        if settings.registry is not None
        else "",
        settings.metrics_host,
        settings.metrics_port,
    )
    backend = create_backend(settings.search)
    kafka = KafkaOffsets(settings.dead_letters) if settings.dead_letters is not None else None
    try:
        Monitor(settings, MonitorStore(backend, settings.capture_index, settings.index), metrics, stop, kafka).run()
    finally:
        server.shutdown()
        backend.close()
        if kafka is not None:
            kafka.close()
    return 0
