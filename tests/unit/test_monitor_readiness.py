"""The monitor's /readyz, served by the same endpoint as the indexer's: 503 with the reason until its index is set up
(`python -m feedback.monitor setup`), then 200 (the endpoint once asked the monitor's metrics for the indexer's
reasons and failed)."""

from __future__ import annotations

import requests
from feedback.indexer.metrics import serve_http
from feedback.monitor.metrics import MonitorMetrics

from devstack.runtime.ports import HOST, free_port


def test_the_monitor_is_not_ready_until_its_template_is_installed_and_says_why() -> None:
    metrics = MonitorMetrics()
    port = free_port()
    server = serve_http(metrics, HOST, port)
    try:
        before = requests.get(f"http://{HOST}:{port}/readyz", timeout=5)
        assert before.status_code == 503
        assert before.text == "not ready: the monitor is checking that its index is set up\n"
        metrics.set_ready()
        after = requests.get(f"http://{HOST}:{port}/readyz", timeout=5)
        assert (after.status_code, after.text) == (200, "ready\n")
        assert b"feedback_monitor_ready 1.0" in requests.get(f"http://{HOST}:{port}/metrics", timeout=5).content
    finally:
        server.shutdown()
        server.server_close()
