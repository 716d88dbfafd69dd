"""LocalStack starts in order, stops in reverse even when a start fails, and leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.__main__ import main
from devstack.runtime.errors import DevstackError
from devstack.runtime.process import ManagedProcess
from devstack.stack import LocalStack, current_state_path, pid_alive, read_state

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # keep the real current.json untouched


class SleepServer:
    """A real process (sleep) standing in for a server; `fail=True` makes its start fail after the spawn."""

    def __init__(self, name: str, run_dir: Path, events: list[str], fail: bool = False) -> None:
        self.name = name
        self.run_dir = run_dir
        self.events = events
        self.fail = fail
        self.process: ManagedProcess | None = None

    def start(self) -> SleepServer:
        self.events.append(f"start {self.name}")
        log_dir = self.run_dir / self.name
        self.process = ManagedProcess(self.name, ["sh", "-c", "sleep 300; true", str(log_dir)], log_dir).start()
        if self.fail:
            raise DevstackError(f"{self.name} did not come up")
        return self

    def stop(self) -> None:
        self.events.append(f"stop {self.name}")
        if self.process:
            self.process.stop()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.process.pid if self.process and self.process.running() else None,
            "log": str(self.process.log_path) if self.process else None,
            "ports": {},
        }


def test_starts_in_order_and_stops_in_reverse(tmp_path: Path) -> None:
    events: list[str] = []
    servers = [SleepServer(n, tmp_path, events) for n in ("a", "b", "c")]
    with LocalStack(servers, tmp_path) as stack:
        pids = [s.process.pid for s in servers if s.process]
        assert all(pid_alive(pid, str(tmp_path)) for pid in pids)
        assert stack.status == "up"
    assert events == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert not any(pid_alive(pid, str(tmp_path)) for pid in pids)


def test_a_failed_start_stops_the_started_servers_and_never_starts_the_rest(tmp_path: Path) -> None:
    events: list[str] = []
    a, b, c = SleepServer("a", tmp_path, events), SleepServer("b", tmp_path, events, fail=True), None
    c = SleepServer("c", tmp_path, events)
    stack = LocalStack([a, b, c], tmp_path)
    with pytest.raises(DevstackError, match="b did not come up"):
        stack.start()
    assert events == ["start a", "start b", "stop b", "stop a"]
    assert a.process and b.process and c.process is None
    assert not pid_alive(a.process.pid, str(tmp_path))
    assert not pid_alive(b.process.pid, str(tmp_path))
    assert read_state()["status"] == "failed"


def test_state_file_says_ports_pids_and_logs(tmp_path: Path) -> None:
    servers = [SleepServer("a", tmp_path, []), SleepServer("b", tmp_path, [])]
    with LocalStack(servers, tmp_path):
        state = json.loads((tmp_path / "state.json").read_text())
        assert state == read_state(current_state_path())
        assert list(state["servers"]) == ["a", "b"]
        assert state["status"] == "up" and state["owner_pid"] == os.getpid()
        assert state["servers"]["a"]["pid"] == servers[0].process.pid
        assert Path(state["servers"]["b"]["log"]).is_file()
    assert read_state()["status"] == "stopped"


def test_down_stops_a_kept_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    servers = [SleepServer("a", tmp_path, []), SleepServer("b", tmp_path, [])]
    stack = LocalStack(servers, tmp_path).start()
    stack.detach()
    pids = [s.process.pid for s in servers if s.process]

    assert main(["down"]) == 0

    assert "stopped 2 server(s): a, b" in capsys.readouterr().out
    for server in servers:
        assert server.process and server.process.popen
        server.process.popen.wait(timeout=10)  # reap: we are its parent
    assert not any(pid_alive(pid, str(tmp_path)) for pid in pids)


def test_cli_logs_of_an_unknown_server_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LocalStack([SleepServer("a", tmp_path, [])], tmp_path):
        assert main(["logs", "nosuch"]) == 2
    assert capsys.readouterr().err == "error: no server called 'nosuch' in the last stack; choose one of: a\n"


def test_cli_status_without_a_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 1
    assert "no local stack has been started" in capsys.readouterr().out


def test_a_readiness_check_that_finds_a_fault_stops_the_process_at_once(tmp_path: Path) -> None:
    """E.g. another cluster answers on the port: waiting cannot cure it, so the error comes now, not at the timeout."""

    def foreign_answer() -> bool:
        raise DevstackError("search: port 1 is answered by another cluster")

    process = ManagedProcess("a", ["sh", "-c", "sleep 300; true", str(tmp_path)], tmp_path).start()
    began = time.monotonic()
    with pytest.raises(DevstackError, match="answered by another cluster"):
        process.wait_ready(foreign_answer, timeout=120)
    assert time.monotonic() - began < 60
    assert not pid_alive(process.pid, str(tmp_path))


def test_a_sigterm_to_the_interpreter_still_stops_its_servers(tmp_path: Path) -> None:
    """CI timeouts and `kill` send SIGTERM, which skips atexit: the servers (own sessions) must not outlive us."""
    import signal
    import subprocess
    import sys

    from devstack.runtime.paths import REPO_ROOT
    from devstack.runtime.process import wait_until

    script = (
        "import sys, time\nfrom pathlib import Path\nfrom devstack.runtime.process import ManagedProcess\n"
        "p = ManagedProcess('a', ['sh', '-c', 'sleep 300; true', sys.argv[1]], Path(sys.argv[1])).start()\n"
        "print(p.pid, flush=True)\ntime.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert pid_alive(child, str(tmp_path))
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=60)
        wait_until(lambda: not pid_alive(child, str(tmp_path)), 30, "the server stopping with its interpreter")
    finally:
        parent.kill()
        parent.wait(timeout=10)
        if child and pid_alive(child, str(tmp_path)):  # leave nothing behind when the check failed
            os.killpg(child, signal.SIGKILL)


_WRITE_STATE_OFTEN = """
import sys
from pathlib import Path
from devstack.stack import LocalStack
stack = LocalStack([], Path(sys.argv[1]))
for _ in range(300):
    stack.write_state()
"""


def test_concurrent_stacks_can_write_the_shared_current_state(tmp_path: Path) -> None:
    """Every stack on the machine writes cache_dir("runs")/current.json: parallel writers must not collide."""
    # separate interpreters, as concurrent stacks are (a fork of this threaded test process can deadlock in the child)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITE_STATE_OFTEN, str(tmp_path / f"run-{i}")],
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for writer in writers:
        try:
            _, stderr = writer.communicate(timeout=120)
        finally:
            writer.kill()
        assert writer.returncode == 0, f"a concurrent writer failed: {stderr}"
    assert read_state()["run_dir"] in {str(tmp_path / f"run-{i}") for i in range(3)}
