"""The feedback collector and indexer as local processes on 127.0.0.1, configured through their environment
variables exactly as in a container (see images/feedback/README.md):

    collector = CollectorServer(run_dir, kafka.bootstrap, "seldon-capture").start()
    requests.post(collector.url, headers={"Ce-Type": ..., "Ce-Requestid": ...}, data=payload)
    collector.metrics_url  # /metrics, /healthz and /readyz are on the collector's own metrics port
    CollectorServer(run_dir, ..., producer_token_file=path).producer_url  # bearer-token listener for other producers
    indexer = IndexerServer(run_dir, kafka.bootstrap, "seldon-capture", search.url, "seldon-feedback").start()
    indexer.kill(); indexer.start()  # crash test: same group, resumes from committed offsets
    monitor = MonitorServer(run_dir, search.url, "seldon-feedback", profiles_dir, window_s=60).start()

Extra keyword arguments become environment variables: `sampling_rate=0.25` on the collector sets
`COLLECTOR_SAMPLING_RATE=0.25`, `batch_size=100` on the indexer sets `INDEXER_BATCH_SIZE=100`; upper-case names
(`LOG_LEVEL="debug"`) are passed as they are.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from devstack.names import CAPTURE_TOPIC, INDEX, MONITOR_INDEX
from devstack.runtime import metrics as prometheus
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import REPO_ROOT
from devstack.runtime.ports import HOST, free_port, free_ports
from devstack.runtime.process import ManagedProcess

log = logging.getLogger(__name__)

PACKAGE_DIR = REPO_ROOT / "images" / "feedback"
START_TIMEOUT_S = 60.0


def _env(prefix: str, base: dict[str, str], settings: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(base)
    for key, value in settings.items():
        name = key if key.isupper() else f"{prefix}{key.upper()}"
        env[name] = value if isinstance(value, str) else str(value)
    return env


def ensure_seldon_protos(env: dict[str, str]) -> None:
    """Both services need Seldon's protobuf definitions at start (gRPC payloads): build them once into the cache
    (`python -m feedback.seldon_protos ensure`: downloads seldon-core, compiles its .proto; seconds, then cached)."""
    result = subprocess.run(
        [sys.executable, "-m", "feedback.seldon_protos", "ensure"],
        env=env,
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise DevstackError(f"the Seldon protobuf definitions could not be built: {result.stderr.strip()[-800:]}")


def _get_ok(url: str) -> bool:
    return requests.get(url, timeout=2).status_code == 200


class _Service:
    name = "service"
    module = ""
    needs_protos = True  # the collector and the indexer decode gRPC payloads; the monitor reads the index only
    has_setup = False  # the indexer and the monitor: `python -m <module> setup` prepares the search engine first

    def __init__(
        self,
        run_dir: Path,
        port: int,
        env: dict[str, str],
        *,
        ops_port: int | None = None,
        extra_ports: tuple[int, ...] = (),
    ) -> None:
        self.run_dir = run_dir
        self.port = port
        self.ops_port = port if ops_port is None else ops_port  # where /metrics, /healthz and /readyz are served
        self.setup_env: dict[str, str] = {}  # added to the setup's environment (e.g. a secured engine's admin)
        self.process = ManagedProcess(
            self.name,
            [sys.executable, "-m", self.module],
            run_dir / self.name,
            env=env,
            cwd=PACKAGE_DIR,
            ports=sorted({port, self.ops_port, *extra_ports}),
        )

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ops_url(self) -> str:
        return f"http://{HOST}:{self.ops_port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.ops_url}/metrics"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def setup(self) -> None:
        """`python -m <module> setup` (idempotent): what a Kubernetes setup Job does before the service starts,
        with the service's own environment (the local engine has no users) plus `setup_env` (a secured engine's
        admin credentials: the service's own user may not install anything)."""
        result = subprocess.run(
            [sys.executable, "-m", self.module, "setup"],
            env={**self.process.env, **self.setup_env},
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise DevstackError(f"{self.module} setup failed ({result.returncode}): {result.stderr.strip()[-800:]}")

    def start(self, timeout: float = START_TIMEOUT_S) -> Any:
        if self.needs_protos:
            ensure_seldon_protos(self.process.env)
        if self.has_setup:
            self.setup()
        self.process.start()
        self.process.wait_ready(lambda: _get_ok(f"{self.ops_url}/readyz"), timeout)
        log.info("%s ready at %s", self.name, self.base_url)
        return self

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL: no flush, no commit (for crash tests)."""
        self.process.kill()

    def running(self) -> bool:
        return self.process.running()

    def rss_bytes(self) -> int:
        return self.process.rss_bytes()

    def metrics(self) -> dict[str, float]:
        """Current Prometheus samples summed over labels: {"feedback_indexer_retries_total": 3.0, ...}."""
        return prometheus.totals(self.metrics_url)

    def metric(self, name: str, **labels: str) -> float:
        """One Prometheus sample summed over the series whose labels include `labels`."""
        return prometheus.sample(self.metrics_url, name, **labels)

    def describe(self) -> dict[str, Any]:
        return {"url": self.base_url, "metrics": self.metrics_url, "log": str(self.log_path)}


class CollectorServer(_Service):
    """`python -m feedback.collector` on 127.0.0.1: `.url` receives CloudEvents (Seldon's, no token), `.metrics_url`
    serves metrics on a port of its own (`.ops_port`, COLLECTOR_METRICS_PORT); with `producer_token_file`,
    `.producer_url` takes other producers' feedback with "Authorization: Bearer <token>" (COLLECTOR_PRODUCER_*)."""

    name = "collector"
    module = "feedback.collector"

    def __init__(
        self,
        run_dir: Path,
        bootstrap: str | None = None,
        topic: str = CAPTURE_TOPIC,
        port: int | None = None,
        *,
        metrics_port: int | None = None,
        producer_token_file: Path | None = None,
        **settings: Any,
    ) -> None:
        bootstrap = bootstrap or settings.pop("kafka_bootstrap")
        spare = [free for free in free_ports(5) if free not in (port, metrics_port)]  # distinct: held open together
        port = port or spare.pop()
        metrics_port = metrics_port or spare.pop()
        base = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CAPTURE_TOPIC": topic,
            "COLLECTOR_HOST": HOST,
            "COLLECTOR_PORT": str(port),
            "COLLECTOR_METRICS_PORT": str(metrics_port),
            "COLLECTOR_READINESS_INTERVAL_S": "1",
        }
        self.producer_port: int | None = None
        if producer_token_file is not None:
            self.producer_port = spare.pop()
            base["COLLECTOR_PRODUCER_PORT"] = str(self.producer_port)
            base["COLLECTOR_PRODUCER_TOKEN_FILE"] = str(producer_token_file)
        extra = () if self.producer_port is None else (self.producer_port,)
        super().__init__(run_dir, port, _env("COLLECTOR_", base, settings), ops_port=metrics_port, extra_ports=extra)
        self.topic = topic

    @property
    def url(self) -> str:
        return self.base_url + "/"

    @property
    def producer_url(self) -> str:
        if self.producer_port is None:
            raise DevstackError("this collector has no producer listener; start it with producer_token_file=<path>")
        return f"http://{HOST}:{self.producer_port}/"


class IndexerServer(_Service):
    """`python -m feedback.indexer` against a local OpenSearch; `.metrics_url`, `.kill()` for crash tests."""

    name = "indexer"
    module = "feedback.indexer"
    has_setup = True

    def __init__(
        self,
        run_dir: Path,
        bootstrap: str | None = None,
        topic: str = CAPTURE_TOPIC,
        search_url: str | None = None,
        index: str = INDEX,
        port: int | None = None,
        **settings: Any,
    ) -> None:
        bootstrap = bootstrap or settings.pop("kafka_bootstrap")
        if search_url is None:
            raise ValueError("IndexerServer needs search_url (for example SearchServer(...).url)")
        port = port or free_port()
        base = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CAPTURE_TOPIC": topic,
            "INDEXER_SEARCH_ENGINE": "opensearch",
            "INDEXER_SEARCH_URL": search_url,
            "INDEXER_INDEX": index,
            "INDEXER_INDEX_REPLICAS": "0",
            "INDEXER_METRICS_HOST": HOST,
            "INDEXER_METRICS_PORT": str(port),
            "INDEXER_RETRY_MAX_S": "5",
        }
        super().__init__(run_dir, port, _env("INDEXER_", base, settings))
        self.topic = topic
        self.index = index
        self.search_url = search_url
        self.dead_letter_topic = settings.get("dead_letter_topic", f"{topic}-dead-letter")


class MonitorServer(_Service):
    """`python -m feedback.monitor` against a local OpenSearch: windows of `capture_index` against the profiles in
    `profiles_dir`, results in `index`; `kafka_bootstrap` adds dead letters and the indexer's lag from Kafka."""

    name = "monitor"
    module = "feedback.monitor"
    needs_protos = False
    has_setup = True

    def __init__(
        self,
        run_dir: Path,
        search_url: str,
        capture_index: str = INDEX,
        profiles_dir: Path | None = None,
        index: str = MONITOR_INDEX,
        port: int | None = None,
        kafka_bootstrap: str | None = None,
        capture_topic: str = CAPTURE_TOPIC,
        dead_letter_topic: str | None = None,
        indexer_group: str | None = None,
        **settings: Any,
    ) -> None:
        if profiles_dir is None:
            raise ValueError("MonitorServer needs profiles_dir (a folder with the models' profile.json files)")
        port = port or free_port()
        base = {
            "MONITOR_SEARCH_ENGINE": "opensearch",
            "MONITOR_SEARCH_URL": search_url,
            "MONITOR_CAPTURE_INDEX": capture_index,
            "MONITOR_INDEX": index,
            "MONITOR_INDEX_REPLICAS": "0",
            "MONITOR_PROFILES_DIR": str(profiles_dir),
            "MONITOR_METRICS_HOST": HOST,
            "MONITOR_METRICS_PORT": str(port),
            "MONITOR_WINDOW_S": "60",
            "MONITOR_SETTLE_S": "10",
            "MONITOR_INTERVAL_S": "1",
            "MONITOR_RETRY_MAX_S": "5",
        }
        if kafka_bootstrap is not None:
            base.update(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, CAPTURE_TOPIC=capture_topic)
            base["MONITOR_DEAD_LETTER_TOPIC"] = dead_letter_topic or f"{capture_topic}-dead-letter"
            if indexer_group is not None:
                base["MONITOR_INDEXER_GROUP"] = indexer_group
        super().__init__(run_dir, port, _env("MONITOR_", base, settings))
        self.index = index
        self.search_url = search_url

    @property
    def window_s(self) -> int:
        return int(self.process.env["MONITOR_WINDOW_S"])

    @property
    def settle_s(self) -> int:
        return int(float(self.process.env["MONITOR_SETTLE_S"]))
