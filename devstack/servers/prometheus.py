"""A real Prometheus on 127.0.0.1, scraping the loop's collector, indexer and monitor and evaluating the chart's
alert rules (charts/feedback-pipeline/files/prometheus-rules.yaml, the file the PrometheusRule is rendered from):

    prometheus = PrometheusServer(run_dir, {"collector": "127.0.0.1:8080", "indexer": ..., "monitor": ...}).start()
    prometheus.alerts()            # the alerts Prometheus holds (pending and firing), as its API gives them
    prometheus.query("up")         # an instant query's result vector

The binaries (`prometheus`, `promtool`) are built once from the `github.com/prometheus/prometheus` Go module by
`devstack.runtime.go_build` (part `prometheus`); the web UI's assets are not built in (`builtinassets` is off): the
HTTP API, scraping and rule evaluation are what the stack uses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
import yaml

from devstack.runtime.go_build import build, entry_dir, prometheus_part
from devstack.runtime.paths import REPO_ROOT
from devstack.runtime.ports import HOST, free_port
from devstack.runtime.process import ManagedProcess

log = logging.getLogger(__name__)

RULES = REPO_ROOT / "charts" / "feedback-pipeline" / "files" / "prometheus-rules.yaml"
START_TIMEOUT_S = 120.0


def prometheus_bin_dir() -> Path:
    """The folder with `prometheus` and `promtool` (built on first use: minutes, then cached)."""
    return build(["prometheus"])["prometheus"]


def scrape_config(targets: Mapping[str, str], interval_s: float, rule_files: list[Path]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": f"{interval_s:g}s", "evaluation_interval": f"{interval_s:g}s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": [address]}]}
            for job, address in targets.items()
        ],
    }


class PrometheusServer:
    name = "prometheus"

    def __init__(
        self,
        run_dir: Path,
        targets: Mapping[str, str],
        *,
        interval_s: float = 5.0,
        rule_files: list[Path] | None = None,
        port: int | None = None,
    ) -> None:
        self.folder = run_dir / self.name
        self.port = port or free_port()
        self.targets = dict(targets)
        self.config_path = self.folder / "prometheus.yml"
        self.config = scrape_config(self.targets, interval_s, [RULES] if rule_files is None else rule_files)
        binary = entry_dir(prometheus_part()) / "bin" / "prometheus"  # built by start() when the cache lacks it
        self.process = ManagedProcess(
            self.name,
            [
                str(binary),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                "--storage.tsdb.retention.time=1d",
                f"--web.listen-address={HOST}:{self.port}",
                "--log.level=warn",
            ],
            self.folder,
            ports=[self.port],
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_S) -> PrometheusServer:
        prometheus_bin_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.process.start()
        self.process.wait_ready(self._ready, timeout)
        log.info("prometheus ready at %s scraping %s", self.url, ", ".join(self.targets))
        return self

    def _ready(self) -> bool:
        return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def stop(self) -> None:
        self.process.stop()

    def alerts(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return list(answer["data"]["alerts"])

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        if answer.get("status") != "success":
            raise ValueError(f"prometheus refused {expr!r}: {answer.get('error')}")
        return list(answer["data"]["result"])

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "targets": self.targets,
            "rules": self.config["rule_files"],
            "config": str(self.config_path),
        }
