"""The local stack's Prometheus: the real server (built from its Go module) scrapes a real metrics endpoint of ours
and evaluates the chart's alert rules.

What: the monitor's own /metrics endpoint (serve_http with MonitorMetrics) on 127.0.0.1 with one drift metric in
alarm, and a PrometheusServer scraping it every second with files/prometheus-rules.yaml.
Wait: until Prometheus reports the target up and the alert, at most 120 s.
Assert: SeldonFeedbackDriftDetected fires with the group's labels and the metric that alarmed, and no other alert
fires (the other rules have nothing to fire on); a query reads the scraped series.
Cleanup: both servers stopped in `finally`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from feedback.indexer.metrics import serve_http
from feedback.monitor.metrics import MonitorMetrics

from devstack.runtime.ports import HOST, free_port
from devstack.servers.prometheus import PrometheusServer

pytestmark = pytest.mark.integration


def test_prometheus_scrapes_our_metrics_and_fires_the_drift_alert(tmp_path: Path) -> None:
    metrics = MonitorMetrics()
    labels = {"deployment": "text-classifier", "predictor": "default", "model_version": "1.0.0+x"}
    metrics.drift_alarm.labels(**labels, metric="oov_rate").set(1)
    metrics.drift_alarm.labels(**labels, metric="label_chi2").set(0)
    metrics.last_window_end.set(time.time())
    metrics.window_length.set(60)
    port = free_port()
    endpoint = serve_http(metrics, HOST, port)
    prometheus = PrometheusServer(tmp_path, {"monitor": f"{HOST}:{port}"}, interval_s=1.0)
    try:
        prometheus.start()
        deadline = time.monotonic() + 120
        firing: list[dict] = []
        while time.monotonic() < deadline and not firing:
            firing = [a for a in prometheus.alerts() if a["state"] == "firing"]
            time.sleep(1.0)
        assert [a["labels"]["alertname"] for a in firing] == ["SeldonFeedbackDriftDetected"]
        assert firing[0]["labels"] | labels == firing[0]["labels"] and firing[0]["labels"]["metric"] == "oov_rate"
        [up] = prometheus.query('up{job="monitor"}')
        assert up["value"][1] == "1"
    finally:
        prometheus.stop()
        endpoint.shutdown()
