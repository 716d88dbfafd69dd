"""Run an image here with buildah, the way a pod runs it: its own user, environment and command, a read-only root
filesystem with writable empty folders where the chart mounts them, and (on request) no network but loopback.

    with Container(buildah, reference, run_dir, RunOptions(read_only_root=True, writable=("/tmp",))) as box:
        box.start(["python", "-m", "feedback.collector"], ready=lambda: ..., timeout=60)
        ...
    box.config.user, box.config.env, box.read_file("/etc/passwd")   # what the image says about itself

How (docs/decisions.md): `podman run` cannot set resource limits on this machine, so a container is `buildah from`
(a fresh working container of the image) plus `buildah run --isolation chroot`, which applies the image's
environment, user and working folder. chroot isolation shares the host's network; `network="isolated"` runs it in
a new network namespace (`unshare -n`) holding only a loopback interface, reached with `nsenter` (`in_network`):
nothing there can reach another machine, and a server binding 0.0.0.0 binds loopback only. A read-only root is a
private mount namespace (`unshare -m`) in which the container's root folder is bind-mounted read-only before
buildah starts; each writable folder is an empty host folder bind-mounted over it, like an emptyDir volume. /run
is such a folder too, root-owned (buildah writes its /run/.containerenv there and removes it afterwards; a non-root
process cannot write it).

Every working container is named `seldon-feedback-run-<pid>-<n>` and removed by `stop()`; ones left by a process
that died are removed by the next `Container` of any process.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.images.tools import REEXEC_ATTEMPTS, Buildah, reexec_flaked
from devstack.runtime.errors import DevstackError
from devstack.runtime.process import ManagedProcess, tail

log = logging.getLogger(__name__)

PREFIX = "seldon-feedback-run-"
_COUNTER = itertools.count(1)


@dataclass(frozen=True)
class ImageConfig:
    """What an image says about how it runs (its OCI config)."""

    user: str
    env: dict[str, str]
    workdir: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    exposed: tuple[int, ...]

    @classmethod
    def of(cls, inspected: dict[str, Any]) -> ImageConfig:
        config = inspected["OCIv1"].get("config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [])
        ports = tuple(sorted(int(port.split("/")[0]) for port in config.get("ExposedPorts") or {}))
        return cls(
            str(config.get("User") or ""),
            env,
            str(config.get("WorkingDir") or "/"),
            tuple(config.get("Entrypoint") or ()),
            tuple(config.get("Cmd") or ()),
            ports,
        )

    @property
    def command(self) -> list[str]:
        """ENTRYPOINT then CMD, as a container runtime starts them."""
        return [*self.entrypoint, *self.cmd]


@dataclass(frozen=True)
class HostMount:
    host: Path
    container: str
    read_only: bool = True

    def volume(self) -> str:
        return f"{self.host}:{self.container}:{'ro' if self.read_only else 'rw'}"


@dataclass(frozen=True)
class RunOptions:
    user: str | None = None  # None: the image's USER
    env: dict[str, str] = field(default_factory=dict)  # on top of the image's ENV
    read_only_root: bool = False
    writable: tuple[str, ...] = ()  # folders that get an empty writable host folder (an emptyDir)
    mounts: tuple[HostMount, ...] = ()
    network: str = "host"  # "host" or "isolated" (a new network namespace with loopback only)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(buildah: Buildah) -> None:
    """Remove working containers that a process which has since died left behind."""
    listing = buildah.run(["containers", "--json"]) or "[]"
    for item in json.loads(listing) or []:  # buildah prints null when there is none
        name = str(item.get("containername", ""))
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(DevstackError):
                buildah.run(["rm", name])


class Container:
    """One working container of `reference`; `start()` runs a server in it, `run()` a command to its end."""

    def __init__(self, buildah: Buildah, reference: str, run_dir: Path, options: RunOptions | None = None) -> None:
        if options is not None and options.network not in ("host", "isolated"):
            raise DevstackError(f"network must be 'host' or 'isolated', not {options.network!r}")
        self.buildah = buildah
        self.reference = reference
        self.options = options or RunOptions()
        self.name = f"{PREFIX}{os.getpid()}-{next(_COUNTER)}"
        self.home = Path(run_dir) / self.name
        self.config = ImageConfig.of(buildah.inspect_image(reference))
        self.mount_point: Path | None = None
        self.process: ManagedProcess | None = None

    # ------------------------------------------------------------------------------------------ lifecycle
    def create(self) -> Container:
        if self.mount_point is not None:
            return self
        remove_stale(self.buildah)
        self.home.mkdir(parents=True, exist_ok=True)
        self.buildah.run(["from", "--pull-never", "--name", self.name, self.reference], log_path=self.log_path)
        self.mount_point = Path(self.buildah.run(["mount", self.name]).strip())
        return self

    @property
    def log_path(self) -> Path:
        return self.home / "container.log"

    def read_file(self, path: str) -> str:
        """A file of the container's root filesystem (as the image made it), e.g. "/etc/passwd"."""
        self.create()
        assert self.mount_point is not None
        return (self.mount_point / path.lstrip("/")).read_text()

    def exists(self, path: str) -> bool:
        self.create()
        assert self.mount_point is not None
        return (self.mount_point / path.lstrip("/")).exists()

    def stop(self) -> None:
        """Stop the process (SIGTERM to its process group, then SIGKILL) and remove the working container."""
        if self.process is not None:
            self.process.stop()
        if self.mount_point is not None:
            with contextlib.suppress(DevstackError):
                self.buildah.run(["rm", self.name], log_path=self.log_path)
            self.mount_point = None
        shutil.rmtree(self.home / "volumes", ignore_errors=True)

    def __enter__(self) -> Container:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------- running
    def _host_folder(self, container_path: str, mode: int) -> Path:
        folder = self.home / "volumes" / (container_path.strip("/").replace("/", "_") or "root")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        folder.chmod(mode)
        return folder

    def argv(self, command: Sequence[str] | None = None) -> list[str]:
        """The host command line that runs `command` (default: the image's ENTRYPOINT + CMD) in the container."""
        self.create()
        assert self.mount_point is not None
        command = list(command or self.config.command)
        if not command:
            raise DevstackError(f"{self.reference} has no ENTRYPOINT or CMD; give the command to run")
        options = self.options
        run = ["run", "--isolation", "chroot"]
        if options.user is not None:
            run += ["--user", options.user]
        run += [arg for name, value in sorted(options.env.items()) for arg in ("--env", f"{name}={value}")]
        volumes = [HostMount(self._host_folder(path, 0o777), path, read_only=False) for path in options.writable]
        run += [arg for mount in (*volumes, *options.mounts) for arg in ("-v", mount.volume())]
        buildah = self.buildah.argv(*run, self.name, "--", *command)
        steps = []
        if options.network == "isolated":
            steps.append("ip link set lo up")
        if options.read_only_root:
            self._make_mount_points([*volumes, *options.mounts])
            root = shlex.quote(str(self.mount_point))
            run_dir = shlex.quote(str(self._host_folder("/run", 0o755)))
            steps += [
                "mount --make-rprivate /",
                f"mount --bind {root} {root}",
                f"mount -o remount,bind,ro {root}",
                f"mount --bind {run_dir} {root}/run",
            ]
        if not steps:
            return buildah
        unshare = ["unshare", "--mount"] if options.read_only_root else ["unshare"]
        if options.network == "isolated":
            unshare.append("--net")
        script = " && ".join([*steps, "exec " + shlex.join(buildah)])
        return [*unshare, "--", "sh", "-c", script]

    def _make_mount_points(self, mounts: Sequence[HostMount]) -> None:
        """Create each mount's target in the root filesystem before it turns read-only, as a container runtime
        does (buildah would have to create them in the read-only root otherwise)."""
        assert self.mount_point is not None
        for mount in mounts:
            target = self.mount_point / mount.container.lstrip("/")
            if target.exists() or target.is_symlink():
                continue
            if mount.host.is_dir():
                target.mkdir(parents=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()

    def start(
        self,
        command: Sequence[str] | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 120.0,
        ports: Sequence[int] = (),
    ) -> ManagedProcess:
        """Start a server in the container and wait until `ready()` is true (its log: `log_path`)."""
        host_ports = ports if self.options.network == "host" else ()
        for attempt in range(1, REEXEC_ATTEMPTS + 1):
            self.process = ManagedProcess("container", self.argv(command), self.home, env=_host_env(), ports=host_ports)
            start = self.process.log_path.stat().st_size if self.process.log_path.exists() else 0
            self.process.start()
            try:
                if ready is not None:
                    self.process.wait_ready(ready, timeout)
                return self.process
            except DevstackError:
                if attempt == REEXEC_ATTEMPTS or not reexec_flaked(_read_from(self.process.log_path, start)):
                    raise
                log.warning("buildah failed in its re-exec (%s); starting %s again", self.process.log_path, self.name)
        raise AssertionError("unreachable")

    def run(self, command: Sequence[str] | None = None, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """Run a command in the container to its end; stdout and stderr together are returned as `stdout` (and
        kept in the run's log). Past `timeout` s the whole process group is stopped and an error raised."""
        for attempt in range(1, REEXEC_ATTEMPTS + 1):
            process = ManagedProcess("run", self.argv(command), self.home, env=_host_env())
            start = process.log_path.stat().st_size if process.log_path.exists() else 0
            process.start()
            assert process.popen is not None
            try:
                code = process.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise DevstackError(
                    f"{shlex.join(list(command or self.config.command))[:200]} in {self.reference} ran longer than "
                    f"{timeout:.0f} s and was stopped; last lines of {process.log_path}:\n{process.tail(30)}"
                ) from None
            finally:
                process.stop()
            output = _read_from(process.log_path, start)
            if code == 0 or attempt == REEXEC_ATTEMPTS or not reexec_flaked(output):
                return subprocess.CompletedProcess(process.argv, code, output, "")
            log.warning("buildah failed in its re-exec (%s); running the command again", process.log_path)
        raise AssertionError("unreachable")

    def in_network(self, argv: Sequence[str]) -> list[str]:
        """`argv` run in the container's network namespace (network="isolated", after `start()`)."""
        if self.options.network != "isolated" or self.process is None or self.process.pid is None:
            raise DevstackError("in_network needs a started container with network='isolated'")
        return ["nsenter", f"--net=/proc/{self.process.pid}/ns/net", "--", *argv]

    def tail(self, lines: int = 30) -> str:
        return tail(self.process.log_path if self.process else self.log_path, lines)


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def _host_env() -> dict[str, str]:
    """buildah's own environment: the host's, without Python settings that belong to the caller's virtualenv."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
