"""One server process: start it with its own log, wait until it is ready, stop it without leaving orphans.

Every process runs in its own session (process group) so that stopping it also stops its children, and
every started process is registered so that an interpreter exit stops whatever is still running.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from devstack.runtime.errors import DevstackError
from devstack.runtime.ports import ensure_free

log = logging.getLogger(__name__)

_RUNNING: set[ManagedProcess] = set()


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ('' if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.1,
    max_interval: float = 2.0,
) -> None:
    """Poll `predicate` with growing sleeps until it is true; raise TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)


class ManagedProcess:
    """A server started from `argv` with stdout and stderr in `log_dir/<name>.log`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ports: Sequence[int] = (),
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_dir = log_dir
        self.log_path = log_dir / f"{name}.log"
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.ports = list(ports)
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> ManagedProcess:
        if self.running():
            return self
        for port in self.ports:
            ensure_free(port, self.name)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            out.write(f"\n=== starting {self.name}: {' '.join(self.argv)}\n".encode())
            out.flush()
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise DevstackError(f"{self.name}: cannot run {self.argv[0]!r} ({exc.strerror}); install it") from None
        _RUNNING.add(self)
        _stop_on_sigterm()
        log.info("%s started (pid %s), log %s", self.name, self.popen.pid, self.log_path)
        return self

    def wait_ready(self, check: Callable[[], bool], timeout: float) -> None:
        """Wait until `check()` is true; if the process exits or time runs out, stop it and explain."""

        def ready() -> bool:
            if not self.running():
                code = self.popen.returncode if self.popen else None
                raise DevstackError(
                    f"{self.name} exited with code {code} while starting; last lines of {self.log_path}:\n"
                    f"{tail(self.log_path)}"
                )
            try:
                return check()
            except DevstackError:  # the check found a fault waiting will not cure (e.g. another server answers)
                raise
            except Exception:  # a server that is still coming up refuses or half-answers
                return False

        try:
            wait_until(ready, timeout, f"{self.name} becoming ready")
        except TimeoutError:
            self.stop()
            raise DevstackError(
                f"{self.name} did not become ready within {timeout:.0f} s; last lines of {self.log_path}:\n"
                f"{tail(self.log_path)}"
            ) from None
        except DevstackError:
            self.stop()
            raise

    def _signal(self, sig: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `timeout` s."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %.0f s; killing it", self.name, timeout)
        self._signal(signal.SIGKILL)  # children that outlived their parent
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        _RUNNING.discard(self)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (for crash tests)."""
        self._signal(signal.SIGKILL)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=10)
        _RUNNING.discard(self)

    def rss_bytes(self) -> int:
        """Resident memory of the process and its descendants, in bytes (0 when not running)."""
        if not self.running() or self.popen is None:
            return 0
        total = 0
        for pid in descendants(self.popen.pid):
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines)


def descendants(root: int) -> list[int]:
    """`root` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _interrupted_by_sigterm(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_on_sigterm() -> None:
    """A SIGTERM (CI timeout, `kill`) ends the interpreter without atexit, leaving our servers (own sessions)
    running; unless the program handles SIGTERM itself, turn it into a KeyboardInterrupt so that cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupted_by_sigterm)


@atexit.register
def _stop_everything() -> None:
    for proc in list(_RUNNING):
        proc.stop(timeout=10)
