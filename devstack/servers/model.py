"""The text classifier under the real `seldon-core-microservice`, run the way its container runs it.

    server = ModelServer(run_dir, workers=1).start()
    requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": ["This is an input"]}})
    server.stop()

What it prepares, once per machine and reused afterwards (all under `~/.cache/seldon-feedback`):
- the model's own virtualenv, from `images/text-classifier/requirements.txt` with Python 3.11, keyed by the
  hash of that file (`model-venv/<hash>`); a marker file says it is complete, a half-made one is rebuilt;
- the trained artifacts, from `train.py` on the shipped data, keyed by the model version (a hash of the
  data, the training code and the requirements: `model-artifacts/<version>`).

Then it runs `seldon-core-microservice TextClassifier --service-type MODEL` from that virtualenv in the
build context, as the image's entrypoint does, with the environment the Seldon operator gives a model
container. seldon-core 1.17.1 binds its REST, gRPC and metrics servers to 0.0.0.0 with no flag or variable to
change it (`seldon_core/microservice.py`), so the process gets a `sitecustomize.py` (through PYTHONPATH) that
rewrites those wildcard binds to 127.0.0.1: nothing else in the code path changes.

`model_python()` and `model_bin(name)` give the virtualenv's interpreter and tools (for example
`seldon-batch-processor`) to other parts of the local stack.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from devstack.names import DEPLOYMENT, NODE, PREDICTOR
from devstack.runtime.errors import DevstackError
from devstack.runtime.locks import file_lock
from devstack.runtime.paths import REPO_ROOT, cache_dir
from devstack.runtime.ports import HOST, free_ports, is_listening
from devstack.runtime.process import ManagedProcess, tail
from devstack.runtime.startup import still_free

log = logging.getLogger(__name__)

BUILD_CONTEXT = REPO_ROOT / "images" / "text-classifier"
REQUIREMENTS = BUILD_CONTEXT / "requirements.txt"
MODEL_NAME = "TextClassifier"
PYTHON = os.environ.get("MODEL_PYTHON", "python3.11")
VENV_TIMEOUT_S = 1200.0
TRAIN_TIMEOUT_S = 600.0
START_TIMEOUT_S = 120.0
COMPLETE = ".complete"
DIGESTS = ".sha256.json"  # of each trained artifact, checked on every use

# Loaded by every Python process of the model server (PYTHONPATH): seldon-core 1.17.1 hard-codes 0.0.0.0 for
# gunicorn (REST, metrics) and gRPC, and "" for the gRPC port reservation; this turns those into 127.0.0.1.
LOOPBACK_SITECUSTOMIZE = '''\
"""devstack: bind seldon-core-microservice's servers to 127.0.0.1 instead of every interface."""
import socket

_bind = socket.socket.bind


def _loopback_bind(self, address):
    if self.family == socket.AF_INET and isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
        address = ("127.0.0.1", *address[1:])
    elif self.family == socket.AF_INET6 and isinstance(address, tuple) and address[0] in ("", "::"):
        address = ("::1", *address[1:])
    return _bind(self, address)


socket.socket.bind = _loopback_bind

try:
    import grpc._server as _grpc_server
except ImportError:
    _grpc_server = None

if _grpc_server is not None:
    _add_insecure_port = _grpc_server._Server.add_insecure_port

    def _loopback_add_insecure_port(self, address):
        host, _, port = address.rpartition(":")
        if host in ("", "0.0.0.0", "[::]", "::"):
            address = "127.0.0.1:" + port
        return _add_insecure_port(self, address)

    _grpc_server._Server.add_insecure_port = _loopback_add_insecure_port
'''


def _run_logged(argv: list[str], log_path: Path, timeout: float, what: str, cwd: Path | None = None) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        try:
            result = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, timeout=timeout,
                env=_clean_env(), check=False,
            )  # fmt: skip
        except FileNotFoundError:
            raise DevstackError(f"{what}: cannot run {argv[0]!r}; install Python 3.11 (or set MODEL_PYTHON)") from None
        except subprocess.TimeoutExpired:
            raise DevstackError(f"{what} took longer than {timeout:.0f} s; see {log_path}") from None
    if result.returncode != 0:
        raise DevstackError(f"{what} failed (exit {result.returncode}); last lines of {log_path}:\n{tail(log_path)}")


def _clean_env() -> dict[str, str]:
    """The caller's environment without the dev virtualenv's Python settings."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]


def _venv_usable(target: Path) -> bool:
    """Finished, and its interpreter still resolves (a removed or upgraded base Python breaks the venv's link)."""
    return (target / COMPLETE).exists() and (target / "bin" / "python").exists()


def model_venv() -> Path:
    """The model's virtualenv (created on first use; a few minutes, then cached)."""
    root = cache_dir("model-venv")
    target = root / requirements_digest()
    if _venv_usable(target):
        return target
    with file_lock(root / f"{target.name}.lock"):
        if _venv_usable(target):
            return target
        if target.exists():
            log.warning("removing the half-made model virtualenv %s", target)
            shutil.rmtree(target)
        log.info("creating the model virtualenv in %s (once per requirements.txt; takes minutes)", target)
        build_log = root / f"{target.name}.log"
        build_log.unlink(missing_ok=True)
        try:
            _run_logged([PYTHON, "-m", "venv", str(target)], build_log, 120, "creating the model virtualenv")
            pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
            _run_logged([*pip, "-r", str(REQUIREMENTS)], build_log, VENV_TIMEOUT_S, "pip install -r requirements.txt")
        except DevstackError:
            shutil.rmtree(target, ignore_errors=True)
            raise
        (target / COMPLETE).write_text(REQUIREMENTS.read_text())
    return target


def model_python() -> Path:
    """The Python interpreter of the model's virtualenv (seldon-core 1.17.1, spaCy, scikit-learn)."""
    return model_venv() / "bin" / "python"


def model_bin(name: str) -> Path:
    """A console script of the model's virtualenv, e.g. `seldon-core-microservice`, `seldon-batch-processor`."""
    path = model_venv() / "bin" / name
    if not path.exists():
        raise DevstackError(f"{path} does not exist; is {name!r} a console script of a package in {REQUIREMENTS}?")
    return path


def _fingerprint_module():  # type: ignore[no-untyped-def]
    """images/text-classifier/textclf/fingerprint.py (standard library only), loaded without sys.path changes."""
    spec = importlib.util.spec_from_file_location("_textclf_fingerprint", BUILD_CONTEXT / "textclf" / "fingerprint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_version() -> str:
    """The version the artifacts will carry (`meta.tags.model_version`), e.g. `1.0.0+3f2a9c1d0b7e`."""
    return str(_fingerprint_module().model_version(BUILD_CONTEXT))


def _file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every visible file of `folder` (the artifacts; the dot files are ours)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".")
    }


def _artifacts_intact(target: Path) -> bool:
    """A finished entry whose files are exactly those written by train.py (a truncated or lost file is retrained)."""
    if not (target / COMPLETE).exists():
        return False
    try:
        expected = json.loads((target / DIGESTS).read_text())
        return bool(expected) and _file_digests(target) == expected
    except (OSError, ValueError):
        return False


def _adopt_entry_without_digests(target: Path) -> bool:
    """An entry finished before digests were recorded: keep it (and record them) when its files look whole."""
    if not (target / COMPLETE).exists() or (target / DIGESTS).exists():
        return False
    try:
        json.loads((target / "metadata.json").read_text())
        if (target / "model.joblib").stat().st_size == 0:
            return False
    except (OSError, ValueError):
        return False
    (target / DIGESTS).write_text(json.dumps(_file_digests(target), indent=2) + "\n")
    return True


def artifacts_path() -> Path:
    """Where `trained_artifacts()` keeps (or will keep) the artifacts of the current model version, with its
    reference profile (`profile.json`): the folder the local monitor reads profiles from."""
    return cache_dir("model-artifacts") / model_version()


def trained_artifacts() -> Path:
    """Artifacts trained by `train.py` on the shipped data, cached under the model version."""
    python = model_python()
    target = artifacts_path()
    root = target.parent
    if _artifacts_intact(target):
        return target
    with file_lock(root / f"{target.name}.lock"):
        if _artifacts_intact(target):
            return target
        if _adopt_entry_without_digests(target):
            return target
        if target.exists():
            log.warning("the cached model artifacts in %s are incomplete or changed; training again", target)
        staging = root / f"{target.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        train_log = root / f"{target.name}.log"
        train_log.unlink(missing_ok=True)
        log.info("training the text classifier into %s", target)
        _run_logged(
            [str(python), "train.py", "--out", str(staging)], train_log, TRAIN_TIMEOUT_S, "train.py", cwd=BUILD_CONTEXT
        )
        (staging / DIGESTS).write_text(json.dumps(_file_digests(staging), indent=2) + "\n")
        (staging / COMPLETE).write_text(train_log.read_text())
        staging.rename(target)
    return target


class ModelServer:
    """`seldon-core-microservice TextClassifier` on 127.0.0.1 with its log under `run_dir/model`."""

    name = "text-classifier"

    def __init__(
        self,
        run_dir: Path,
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise DevstackError(f"{self.name}: workers must be at least 1, got {workers}")
        self.home = Path(run_dir) / "model"
        chosen = iter(free_ports(3))
        self.http_port = http_port or next(chosen)
        self.grpc_port = grpc_port or next(chosen)
        self.metrics_port = metrics_port or next(chosen)
        self._chosen_by_us = (http_port is None, grpc_port is None, metrics_port is None)
        self._started_once = False
        self.workers = workers
        self.artifacts: Path | None = None
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/prometheus"

    @property
    def ports(self) -> list[int]:
        return [self.http_port, self.grpc_port, self.metrics_port]

    def environment(self) -> dict[str, str]:
        """What the Seldon operator sets on a model container, plus the loopback shim and the artifacts."""
        shim = self.home / "loopback"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "sitecustomize.py").write_text(LOOPBACK_SITECUSTOMIZE)
        env = _clean_env()
        env.update(
            {
                "PYTHONPATH": str(shim),
                "PYTHONUNBUFFERED": "1",
                "MODEL_ARTIFACTS_DIR": str(self.artifacts),
                "PREDICTIVE_UNIT_SERVICE_PORT": str(self.http_port),
                "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(self.http_port),
                "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(self.grpc_port),
                "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(self.metrics_port),
                "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
                "PREDICTIVE_UNIT_ID": NODE,
                "PREDICTOR_ID": PREDICTOR,
                "PREDICTIVE_UNIT_IMAGE": f"text-classifier:{self.artifacts.name if self.artifacts else 'local'}",
                "SELDON_DEPLOYMENT_ID": DEPLOYMENT,
                "SELDON_EXECUTOR_ENABLED": "true",
            }
        )
        return env

    def argv(self) -> list[str]:
        return [
            str(model_bin("seldon-core-microservice")),
            MODEL_NAME,
            "--service-type",
            "MODEL",
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            "--metrics-port",
            str(self.metrics_port),
            "--workers",
            str(self.workers),
        ]

    def start(self) -> ModelServer:
        if self.process is not None and self.process.running():
            return self
        self.artifacts = trained_artifacts()  # minutes on a first run: another process may take our ports meanwhile
        if not self._started_once:  # a restart keeps its ports
            http, grpc, metrics = self._chosen_by_us
            self.http_port = still_free(self.http_port, http, f"{self.name} http")
            self.grpc_port = still_free(self.grpc_port, grpc, f"{self.name} grpc")
            self.metrics_port = still_free(self.metrics_port, metrics, f"{self.name} metrics")
        self._started_once = True
        self.process = ManagedProcess(
            self.name, self.argv(), self.home, env=self.environment(), cwd=BUILD_CONTEXT, ports=self.ports
        )
        self.process.start()
        self.process.wait_ready(self._ready, START_TIMEOUT_S)
        log.info("%s ready at %s (grpc %s, metrics %s)", self.name, self.url, self.grpc_port, self.metrics_port)
        return self

    def _ready(self) -> bool:
        if not all(is_listening(port) for port in self.ports):
            return False
        return requests.get(f"{self.url}/health/status", timeout=5).status_code == 200

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def rss_bytes(self) -> int:
        return self.process.rss_bytes() if self.process is not None else 0

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ModelService:
    """A ModelServer in the local stack's Server shape (`devstack.stack.Server`): named "model" in the state file,
    `describe()` with version, ports, pid, log and memory."""

    name = "model"

    def __init__(self, run_dir: Path) -> None:
        self.server = ModelServer(run_dir)

    @property
    def process(self) -> ManagedProcess | None:
        return self.server.process

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.server.grpc_port}"

    @property
    def ports(self) -> list[int]:
        return list(self.server.ports)

    def start(self) -> ModelService:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def describe(self) -> dict[str, Any]:
        process = self.server.process
        return {
            "name": self.name,
            "version": "seldon-core 1.17.1 microservice",
            "url": self.server.url,
            "ports": {
                "http": self.server.http_port,
                "grpc": self.server.grpc_port,
                "metrics": self.server.metrics_port,
            },
            "pid": process.pid if process is not None and process.running() else None,
            "log": str(process.log_path) if process is not None else "",
            "rss_bytes": self.server.rss_bytes(),
        }


def main(argv: list[str]) -> int:
    """`python -m devstack.servers.model [venv|artifacts|serve]`: prepare (or run until Ctrl-C) the model server."""
    from devstack.runtime.paths import new_run_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    command = argv[1] if len(argv) > 1 else "serve"
    if command == "venv":
        sys.stdout.write(f"{model_venv()}\n")
    elif command == "artifacts":
        sys.stdout.write(f"{trained_artifacts()}\n")
    elif command == "serve":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops the server too, not only Ctrl-C
        with ModelServer(new_run_dir("model-")) as server:
            sys.stdout.write(f"text classifier at {server.url} (grpc {HOST}:{server.grpc_port}); Ctrl-C stops it\n")
            sys.stdout.flush()
            with contextlib.suppress(KeyboardInterrupt):
                while server.process is not None and server.process.running():
                    time.sleep(1)
    else:
        sys.stderr.write(f"unknown command {command!r}; use venv, artifacts or serve\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
