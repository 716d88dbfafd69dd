"""The Seldon executor in front of the local model: our engine (`python -m devstack.engine`) or a real binary.

    engine = EngineServer(run_dir, predictor=lambda: predictor_spec, deployment="text-classifier").start()
    requests.post(f"{engine.url}/api/v1.0/predictions", json=...)      # engine.grpc_address for gRPC
    engine.stop()

It is started exactly as the operator starts the executor: the flags `--sdep --namespace --predictor --http_port
--grpc_port --server_type --transport --protocol --hostname` and the environment `ENGINE_PREDICTOR` (base64
PredictorSpec JSON), `REQUEST_LOGGER_DEFAULT_ENDPOINT`, `KAFKA_*`, `LOGGER_KAFKA_*` (the chart's
svcOrchSpec.env), plus `SELDON_VERSION` (which executor to behave as; the real binary ignores it). So setting
`DEVSTACK_EXECUTOR_BIN=/path/to/executor` runs a real Seldon executor binary with the same configuration
instead (docs/executor.md says how to take it out of the `seldonio/seldon-core-executor` image). That binary
listens on every interface (`:<port>`, no bind flag): a warning says so, and its ports are left out of
`listeners()`, so the loopback check stays strict for the default engine.

The predictor is a callable, asked at start: the model's ports are final only once the model runs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

from devstack.names import NAMESPACE, PREDICTOR
from devstack.runtime import metrics as prometheus
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import REPO_ROOT
from devstack.runtime.ports import HOST, free_ports
from devstack.runtime.process import ManagedProcess
from devstack.runtime.startup import still_free

log = logging.getLogger(__name__)

EXECUTOR_BIN_ENV = "DEVSTACK_EXECUTOR_BIN"
START_TIMEOUT_S = 90.0


def executor_binary(env: Mapping[str, str] | None = None) -> Path | None:
    """The real executor binary named by DEVSTACK_EXECUTOR_BIN, or None (the local engine runs)."""
    value = (os.environ if env is None else env).get(EXECUTOR_BIN_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise DevstackError(
            f"{EXECUTOR_BIN_ENV}={value} is not an executable file; extract the executor from the "
            "seldonio/seldon-core-executor image (docs/executor.md) or unset the variable to run the local engine"
        )
    return path


def encode_predictor(predictor: Mapping[str, Any]) -> str:
    """ENGINE_PREDICTOR's value: base64 (standard alphabet) of the predictor's JSON, as the operator writes it."""
    from devstack.engine.spec import encode

    return encode(dict(predictor))


class EngineServer:
    """One executor process (REST + gRPC, or the Kafka server type) in front of the model."""

    def __init__(
        self,
        run_dir: Path,
        *,
        predictor: Callable[[], Mapping[str, Any]],
        deployment: str,
        namespace: str = NAMESPACE,
        predictor_name: str = PREDICTOR,
        name: str = "engine",
        server_type: str = "rpc",
        transport: str = "rest",
        protocol: str = "seldon",
        env: Mapping[str, str] | None = None,
        seldon_version: str | None = None,
        logger_default_endpoint: str = "",
        http_port: int | None = None,
        grpc_port: int | None = None,
        binary: Path | bool | None = True,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """`binary=True` takes DEVSTACK_EXECUTOR_BIN when set, `False` always runs the local engine, a Path that
        binary; `extra_args` are more executor flags (e.g. ("--logger_workers", "2"))."""
        self.name = name
        self.home = Path(run_dir) / name
        self.predictor = predictor
        self.deployment = deployment
        self.namespace = namespace
        self.predictor_name = predictor_name
        self.server_type = server_type
        self.transport = transport
        self.protocol = protocol
        self.extra_env = dict(env or {})
        self.seldon_version = seldon_version
        self.logger_default_endpoint = logger_default_endpoint
        self.extra_args = extra_args
        self.binary = executor_binary() if binary is True else (binary or None)
        chosen = iter(free_ports(2))
        self.http_port = http_port or next(chosen)
        self.grpc_port = grpc_port or next(chosen)
        self._chosen_by_us = (http_port is None, grpc_port is None)
        self._started_once = False
        self.process: ManagedProcess | None = None

    # ------------------------------------------------------------------ connection facts

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"

    @property
    def is_binary(self) -> bool:
        return self.binary is not None

    @property
    def source(self) -> str:
        """What captures the traffic, for reports: the local engine or the binary's path."""
        if self.binary is not None:
            return f"the real Seldon executor binary {self.binary} ({EXECUTOR_BIN_ENV})"
        version = self.seldon_version or "1.17.1"
        return f"the local engine (devstack/engine, as the Seldon {version} executor)"

    def listeners(self) -> dict[str, int]:
        """Ports that must listen on 127.0.0.1 only; none for a real binary, which listens on every interface."""
        if self.binary is not None:
            return {}
        ports = {f"{self.name}-http": self.http_port}
        if self.serves_grpc:
            ports[f"{self.name}-grpc"] = self.grpc_port
        return ports

    @property
    def serves_grpc(self) -> bool:
        from devstack.engine.versions import RECORDED, behaviour_of

        return self.transport == "grpc" or behaviour_of(self.seldon_version or RECORDED).grpc_with_rest_transport

    # ------------------------------------------------------------------ the process

    def argv(self) -> list[str]:
        program = [str(self.binary)] if self.binary is not None else [sys.executable, "-m", "devstack.engine"]
        return [
            *program,
            "--sdep", self.deployment,
            "--namespace", self.namespace,
            "--predictor", self.predictor_name,
            "--http_port", str(self.http_port),
            "--grpc_port", str(self.grpc_port),
            "--server_type", self.server_type,
            "--transport", self.transport,
            "--protocol", self.protocol,
            "--hostname", HOST,
            *self.extra_args,
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop(EXECUTOR_BIN_ENV, None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["DEVSTACK_RUN_DIR"] = str(self.home.parent)  # how `python -m devstack status` recognises its pid
        env["ENGINE_PREDICTOR"] = encode_predictor(self.predictor())
        if self.logger_default_endpoint:
            env["REQUEST_LOGGER_DEFAULT_ENDPOINT"] = self.logger_default_endpoint
        if self.seldon_version:
            env["SELDON_VERSION"] = self.seldon_version
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = START_TIMEOUT_S, require_ready: bool = True) -> EngineServer:
        """Start and wait until /ready answers 200 (the model is reachable); `require_ready=False` waits for /live
        only (a test of an engine whose model is down)."""
        if self.process is not None and self.process.running():
            return self
        if not self._started_once:
            http, grpc = self._chosen_by_us
            self.http_port = still_free(self.http_port, http, f"{self.name} http")
            self.grpc_port = still_free(self.grpc_port, grpc, f"{self.name} grpc")
        self._started_once = True
        if self.binary is not None:
            log.warning(
                "%s: running the real executor %s; it listens on every interface (:%d, :%d), not only 127.0.0.1, "
                "so other machines can reach it while it runs",
                self.name,
                self.binary,
                self.http_port,
                self.grpc_port,
            )
        self.process = ManagedProcess(
            self.name, self.argv(), self.home, env=self.environment(), cwd=REPO_ROOT, ports=[self.http_port]
        )
        self.process.start()
        self.process.wait_ready(self._ready if require_ready else self._live, timeout)
        log.info("%s ready at %s (%s)", self.name, self.url, self.source)
        return self

    def _ready(self) -> bool:
        return requests.get(f"{self.url}/ready", timeout=2).status_code == 200

    def _live(self) -> bool:
        return requests.get(f"{self.url}/live", timeout=2).status_code == 200

    def readiness(self) -> tuple[int, str]:
        """(status, body) of GET /ready: 200, or 503 with the reason."""
        answer = requests.get(f"{self.url}/ready", timeout=5)
        return answer.status_code, answer.text

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def metric(self, name: str, **labels: str) -> float:
        return prometheus.sample(self.metrics_url, name, **labels)

    def describe(self) -> dict[str, Any]:
        process = self.process
        running = process is not None and process.running()
        return {
            "name": self.name,
            "url": self.url,
            "grpc": self.grpc_address if self.serves_grpc else None,
            "server_type": self.server_type,
            "source": self.source,
            "pid": process.pid if running and process is not None else None,
            "log": str(process.log_path) if process is not None else str(self.home / f"{self.name}.log"),
            "rss_bytes": process.rss_bytes() if running and process is not None else 0,
        }
