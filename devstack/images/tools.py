"""The container tools (Debian's buildah and mmdebstrap) and one buildah with the project's own storage.

    ensure_tools()                  # installs what is missing with apt-get when root, else says the apt-get line
    buildah = Buildah()             # storage under ~/.cache/seldon-feedback/containers (vfs driver)
    buildah.run(["images"])         # `buildah --root ... --runroot ... --storage-driver vfs images`

Why these choices (docs/decisions.md): no container daemon runs here and `podman run` cannot set resource limits,
so images are built with `buildah bud --isolation chroot` and run with `buildah run --isolation chroot`; the vfs
storage driver needs no overlay or fuse support; the storage lives in the cache, outside the checkout, so CI
keeps it between runs and a checkout stays clean.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.runtime.errors import DevstackError
from devstack.runtime.locks import file_lock
from devstack.runtime.paths import cache_dir
from devstack.runtime.process import tail

log = logging.getLogger(__name__)

# command -> the Debian package that ships it
TOOLS = {
    "buildah": "buildah",
    "mmdebstrap": "mmdebstrap",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "ip": "iproute2",
}
APT_TIMEOUT_S = 1200.0
COMMAND_TIMEOUT_S = 600.0
# buildah re-executes itself from a sealed in-memory copy; on this kernel the seal now and then fails with EBUSY
# (containers/storage pkg/unshare/unshare.c) before anything of the command ran: such a start is retried
REEXEC_FLAKE = "sealing memfd copy"
REEXEC_ATTEMPTS = 3


def reexec_flaked(output: str) -> bool:
    """Whether buildah failed in its own re-exec, before running anything (safe to run again)."""
    return REEXEC_FLAKE in output


def missing_tools(tools: dict[str, str] = TOOLS) -> dict[str, str]:
    """{command: package} for every command not found on PATH (or in /usr/sbin, /sbin, which root's PATH has)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return {command: package for command, package in tools.items() if shutil.which(command, path=search) is None}


def apt_line(packages: Sequence[str]) -> str:
    return f"apt-get update && apt-get install -y --no-install-recommends {' '.join(sorted(set(packages)))}"


def ensure_tools(tools: dict[str, str] = TOOLS) -> None:
    """Install the Debian packages of missing tools with apt-get (as root), or raise naming the apt-get line.

    Unattended (CI): no prompt, a wait of up to 5 minutes for another apt run's lock, the log in the cache."""
    missing = missing_tools(tools)
    if not missing:
        return
    packages = sorted(set(missing.values()))
    line = apt_line(packages)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DevstackError(
            f"the image tools {', '.join(sorted(missing))} are not installed and this user cannot install them; "
            f"run as root: {line}"
        )
    root = cache_dir("containers")
    with file_lock(root / "apt.lock"):
        if not missing_tools(tools):
            return
        log_path = root / "apt.log"
        log.info("installing %s with apt-get (log %s)", " ".join(packages), log_path)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        lock = ["-o", "DPkg::Lock::Timeout=300"]
        steps = [
            ["apt-get", *lock, "update", "-q"],
            ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", *packages],
        ]
        with log_path.open("ab") as out:
            for argv in steps:
                try:
                    done = subprocess.run(
                        argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                        timeout=APT_TIMEOUT_S, check=False,
                    )  # fmt: skip
                except subprocess.TimeoutExpired:
                    raise DevstackError(
                        f"{' '.join(argv)} took longer than {APT_TIMEOUT_S:.0f} s; see {log_path}"
                    ) from None
                if done.returncode != 0:
                    raise DevstackError(
                        f"{' '.join(argv)} failed (exit {done.returncode}); fix apt (log {log_path}) or install by "
                        f"hand: {line}\n{tail(log_path, 10)}"
                    )
    still = missing_tools(tools)
    if still:
        raise DevstackError(f"after installing {' '.join(packages)} these commands are still missing: {sorted(still)}")


def storage_root() -> Path:
    return cache_dir("containers")


@dataclass(frozen=True)
class Buildah:
    """buildah on the project's own image storage (vfs driver, under the cache)."""

    root: Path = Path()
    runroot: Path = Path()

    @classmethod
    def default(cls) -> Buildah:
        base = storage_root()
        return cls(base / "storage", base / "runroot")

    def state_dir(self, *parts: str) -> Path:
        """A folder beside this storage for markers and logs of what was built into it (created on demand)."""
        path = self.root.parent.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def argv(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "vfs",
            *args,
        ]

    def run(self, args: Sequence[str], *, log_path: Path | None = None, timeout: float = COMMAND_TIMEOUT_S) -> str:
        """Run `buildah <args>`; its output (stdout) is returned, or appended to `log_path` when given.

        A failure raises a DevstackError naming the command, the exit code and the last lines it printed."""
        argv = self.argv(*args)
        what = f"buildah {' '.join(args[:3])}"
        try:
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                with log_path.open("ab") as out:
                    out.write(f"\n=== {' '.join(argv)}\n".encode())
                    out.flush()
                    done = subprocess.run(
                        argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout,
                        check=False,
                    )  # fmt: skip
                if done.returncode != 0:
                    raise DevstackError(
                        f"{what} failed (exit {done.returncode}); last lines of {log_path}:\n{tail(log_path, 15)}"
                    )
                return ""
            done = subprocess.run(
                argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout, check=False
            )
        except FileNotFoundError:
            raise DevstackError(f"buildah is not installed; {apt_line(['buildah'])}") from None
        except subprocess.TimeoutExpired:
            raise DevstackError(f"{what} took longer than {timeout:.0f} s") from None
        if done.returncode != 0:
            raise DevstackError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-600:]}")
        return done.stdout

    def image_id(self, reference: str) -> str | None:
        """The full id of a local image (name:tag or id), None when the storage has no such image."""
        try:
            found = json.loads(self.run(["images", "--json", "--no-trunc", reference]) or "null")
        except DevstackError:
            return None
        return str(found[0]["id"]).removeprefix("sha256:") if found else None

    def inspect_image(self, reference: str) -> dict[str, Any]:
        """`buildah inspect --type image`: OCIv1.config holds Env, User, WorkingDir, Entrypoint, Cmd, ExposedPorts."""
        return dict(json.loads(self.run(["inspect", "--type", "image", reference])))

    def image_size(self, reference: str) -> int:
        """The image's size in bytes: its layers, uncompressed (as `docker images` counts them)."""
        manifest = json.loads(self.inspect_image(reference)["Manifest"])
        return sum(int(layer["size"]) for layer in manifest["layers"])

    def images(self, repository: str) -> list[dict[str, Any]]:
        """Local images whose name starts with `repository`: [{"id", "names", "created", "size"}], newest first."""
        found = [
            item
            for item in json.loads(self.run(["images", "--json", "--no-trunc"]) or "null") or []
            if any(name.startswith(repository) for name in item.get("names") or [])
        ]
        return sorted(found, key=lambda item: int(item.get("created") or 0), reverse=True)
