"""A local stack: servers started in order, stopped in reverse (also when a start fails), described in a state file.

    with LocalStack([KafkaServer(run_dir), SearchServer(run_dir), S3Server(run_dir)], run_dir) as stack:
        ...  # stack.state() / run_dir/state.json / cache_dir("runs")/current.json say ports, pids and logs

The state file lets `python -m devstack status|logs|down` find a stack started by another command.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from devstack.runtime.paths import cache_dir
from devstack.runtime.process import _RUNNING, ManagedProcess

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


class Server(Protocol):
    name: str
    process: ManagedProcess | None

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


def current_state_path() -> Path:
    return cache_dir("runs") / "current.json"


class LocalStack:
    """Starts `servers` in the given order; `stop()` stops the started ones in reverse order."""

    def __init__(self, servers: list[Server], run_dir: Path) -> None:
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"server names must be unique, got {names}")
        self.servers = servers
        self.run_dir = Path(run_dir)
        self.started: list[Server] = []
        self.start_seconds: dict[str, float] = {}
        self.status = "new"

    def __getitem__(self, name: str) -> Server:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(name)

    def start(self) -> LocalStack:
        self.status = "starting"
        try:
            for server in self.servers:
                if server in self.started:
                    continue
                began = time.monotonic()
                log.info("starting %s", server.name)
                self.started.append(server)  # also stop a server whose start failed half-way
                server.start()
                self.start_seconds[server.name] = round(time.monotonic() - began, 1)
                log.info("%s up in %.1f s", server.name, self.start_seconds[server.name])
                self.write_state()
        except BaseException:
            self.status = "failed"
            self.stop()
            raise
        self.status = "up"
        self.write_state()
        return self

    def stop(self) -> None:
        """Stop every started server, last first; one failing stop does not keep the others running."""
        errors = []
        for server in reversed(self.started):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the rest
                log.error("stopping %s failed: %s", server.name, exc)
                errors.append(exc)
        self.started.clear()
        if self.status != "failed":
            self.status = "stopped"
        self.write_state()
        if errors:
            raise errors[0]

    def detach(self) -> None:
        """Leave the servers running after this interpreter exits (`up --keep`); `down` stops them later."""
        for server in self.started:
            if server.process is not None:
                _RUNNING.discard(server.process)

    def state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "run_dir": str(self.run_dir),
            "owner_pid": os.getpid(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "servers": {
                s.name: {**s.describe(), "start_seconds": self.start_seconds.get(s.name)} for s in self.servers
            },
        }

    def _describe(self, server: Server) -> dict[str, Any]:
        return {**server.describe(), "start_seconds": self.start_seconds.get(server.name)}

    def write_state(self) -> None:
        text = json.dumps(self.state(), indent=2) + "\n"
        for path in (self.run_dir / STATE_FILE, current_state_path()):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # current.json is shared by concurrent stacks
            tmp.write_text(text)
            tmp.replace(path)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def read_state(path: Path | None = None) -> dict[str, Any] | None:
    path = path or current_state_path()
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def pid_alive(pid: int | None, run_dir: str) -> bool:
    """True when `pid` runs and its command line or environment mentions `run_dir` (so a reused pid is not ours)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    if run_dir in cmdline:
        return True
    try:
        return run_dir.encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the process group of `pid` (servers lead their own group), SIGKILL after `timeout` s."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class PrivateStack(LocalStack):
    """A LocalStack that writes its state file only into its run folder, not the machine-wide `current.json`
    (a test session's stack must not hide a stack the user left running with `--keep`)."""

    def write_state(self) -> None:
        path = self.run_dir / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.state(), indent=2) + "\n")


class Tracked:
    """A server whose `describe()` lacks a pid, made visible to `python -m devstack status|down`: it adds the pid
    and memory, and puts the run folder in the process environment (how the state file recognises its pids)."""

    def __init__(self, server: Any, run_dir: Path) -> None:
        self.server = server
        self.name = server.name
        self.run_dir = run_dir

    @property
    def process(self) -> Any:
        return self.server.process

    def start(self) -> Tracked:
        if self.server.process is not None:
            self.server.process.env["DEVSTACK_RUN_DIR"] = str(self.run_dir)
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def describe(self) -> dict[str, Any]:
        process = self.server.process
        running = process is not None and process.running()
        return {
            "name": self.name,
            **self.server.describe(),
            "pid": process.pid if running else None,
            "rss_bytes": process.rss_bytes() if running else 0,
        }
