"""The monitor's Prometheus metrics: the latest finished window's results per group, and the monitor's own health.

Gauges carry `deployment`, `predictor`, `model_version` (and `metric`); each is set when a window is computed, so
Prometheus sees the newest window's value until the next one. The alert rules
(charts/feedback-pipeline/files/prometheus-rules.yaml) read these and the collector's and indexer's metrics.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from feedback.monitor.core import Group, Result

GROUP = ["deployment", "predictor", "model_version"]


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.windows = Counter(
            "feedback_monitor_windows_total",
            "Windows computed (a recompute after a restart counts again)",
            registry=registry,
        )
        self.retries = Counter(
            "feedback_monitor_retries_total",
            "Window computations to be repeated because the search cluster failed, by reason",
            ["reason"],
            registry=registry,
        )
        self.skipped = Counter(
            "feedback_monitor_documents_skipped_total",
            "Capture documents left out of a statistic because a field it needs is missing, by reason",
            ["reason"],
            registry=registry,
        )
        self.recomputed = Counter(
            "feedback_monitor_quality_recomputed_total",
            "Past windows whose quality was recomputed because late ground truth arrived",
            registry=registry,
        )
        self.window_seconds = Histogram(
            "feedback_monitor_window_compute_seconds",
            "Time to compute one window (every group)",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )
        self.last_window_end = Gauge(
            "feedback_monitor_last_window_end_timestamp_seconds",
            "End of the newest finished window (the monitor falls behind when this stops moving)",
            registry=registry,
        )
        self.window_length = Gauge(
            "feedback_monitor_window_length_seconds", "Length of a window (MONITOR_WINDOW_S)", registry=registry
        )
        self.documents = Gauge(
            "feedback_monitor_window_documents",
            "Capture documents in the newest window, by group and mode",
            [*GROUP, "mode"],
            registry=registry,
        )
        self.capture = Gauge(
            "feedback_monitor_capture",
            "Capture health of the newest window by group: without_response, errors, orphan_feedback, feedback",
            [*GROUP, "metric"],
            registry=registry,
        )
        self.dead_letters = Gauge(
            "feedback_monitor_window_dead_letters",
            "Records the indexer dead-lettered during the newest window (from the dead-letter topic's offsets)",
            registry=registry,
        )
        self.indexer_lag = Gauge(
            "feedback_monitor_indexer_lag_messages",
            "Capture messages the indexer group had not committed when the newest window was computed",
            registry=registry,
        )
        self.drift_value = Gauge(
            "feedback_monitor_drift_value",
            "Drift statistic of the newest window (chi-square, PSI, KS D, mean OOV rate, domain AUC)",
            [*GROUP, "metric"],
            registry=registry,
        )
        self.drift_p_value = Gauge(
            "feedback_monitor_drift_p_value",
            "Adjusted p-value (multiple-testing control) of a drift test in the newest window",
            [*GROUP, "metric"],
            registry=registry,
        )
        self.drift_threshold = Gauge(
            "feedback_monitor_drift_threshold",
            "Threshold of a drift metric in the newest window (adjusted p-values: the level)",
            [*GROUP, "metric"],
            registry=registry,
        )
        self.drift_breach = Gauge(
            "feedback_monitor_drift_breach",
            "1 when the drift metric breached its threshold in the newest window",
            [*GROUP, "metric"],
            registry=registry,
        )
        self.drift_alarm = Gauge(
            "feedback_monitor_drift_alarm",
            "1 when the drift metric breached in MONITOR_CONSECUTIVE_WINDOWS consecutive windows",
            [*GROUP, "metric"],
            registry=registry,
        )
        self.accuracy = Gauge(
            "feedback_monitor_accuracy",
            "Accuracy on ground truth of the newest window with labels, and its interval bounds (bound=lower|upper)",
            [*GROUP, "bound"],
            registry=registry,
        )
        self.quality_alarm = Gauge(
            "feedback_monitor_quality_alarm",
            "1 when the accuracy's upper bound stayed below the held-out accuracy minus MONITOR_ACCURACY_DROP",
            GROUP,
            registry=registry,
        )
        self.profile_missing = Gauge(
            "feedback_monitor_profile_missing",
            "1 when a model version seen in the newest window has no reference profile (no drift computed)",
            GROUP,
            registry=registry,
        )
        self.registry_profile_errors = Counter(
            "feedback_monitor_registry_profile_errors_total",
            "Failed lookups of a registered version's profile in the flow back's registry, by reason (store, "
            "no_profile_file, corrupt, invalid)",
            ["reason"],
            registry=registry,
        )
        self.ready = Gauge(
            "feedback_monitor_ready",
            "1 once the monitor index is set up (python -m feedback.monitor setup)",
            registry=registry,
        )
        self.heartbeat = time.monotonic()
        # what /readyz reports (feedback.indexer.metrics.serve_http serves both services' endpoints)
        self.not_ready: dict[str, str] = {"starting": "the monitor is checking that its index is set up"}
        self.not_alive: dict[str, str] = {}  # what /healthz reports besides a stalled loop (nothing, for the monitor)

    def set_ready(self) -> None:
        """The monitor index is set up: ready from now on."""
        self.not_ready.clear()
        self.ready.set(1)

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def new_window(self) -> None:
        """Forget the previous window's groups: a group without documents in the newest window has no values (an
        alarm of a deployment that stopped sending must not stay raised forever)."""
        for gauge in (
            self.documents,
            self.capture,
            self.drift_value,
            self.drift_p_value,
            self.drift_threshold,
            self.drift_breach,
            self.drift_alarm,
            self.accuracy,
            self.quality_alarm,
            self.profile_missing,
        ):
            gauge.clear()

    def record(self, group: Group, results: list[Result]) -> None:
        labels = group.labels
        for result in results:
            if result.kind == "capture" and result.metric == "volume" and result.by_mode is not None:
                for mode, count in result.by_mode.items():
                    self.documents.labels(**labels, mode=mode).set(count)
            elif result.kind == "capture" and result.value is not None:
                self.capture.labels(**labels, metric=result.metric).set(result.value)
            elif result.kind == "drift":
                self.profile_missing.labels(**labels).set(1 if result.status == "no_profile" else 0)
                if result.status != "ok" or result.value is None:
                    continue
                self.drift_value.labels(**labels, metric=result.metric).set(result.value)
                if result.adjusted_p_value is not None:
                    self.drift_p_value.labels(**labels, metric=result.metric).set(result.adjusted_p_value)
                if result.threshold is not None:
                    self.drift_threshold.labels(**labels, metric=result.metric).set(result.threshold)
                self.drift_breach.labels(**labels, metric=result.metric).set(1 if result.breach else 0)
                self.drift_alarm.labels(**labels, metric=result.metric).set(1 if result.alarm else 0)
            elif result.kind == "quality" and result.metric == "accuracy" and result.status == "ok":
                self.accuracy.labels(**labels, bound="value").set(result.value or 0.0)
                self.accuracy.labels(**labels, bound="lower").set(result.lower or 0.0)
                self.accuracy.labels(**labels, bound="upper").set(result.upper or 0.0)
                self.quality_alarm.labels(**labels).set(1 if result.alarm else 0)
