"""The local base image: what `python:3.11.x-slim-bookworm` gives our Dockerfiles, made here from Debian packages.

No registry is reachable, so the official image cannot be pulled. Debian bookworm's Python is 3.11 (the same minor
version), so the base is `mmdebstrap --variant=minbase bookworm` with the packages the official slim image adds
(ca-certificates, netbase, tzdata), Python (python3, python3-venv) and `passwd` (groupadd/useradd, which our
Dockerfiles call), laid out like the official image: a virtualenv at /usr/local, so `python`, `python3`, `pip`
and `pip3` are /usr/local/bin commands and `pip install` writes /usr/local/lib/python3.11/site-packages as it
does there, without --break-system-packages; in it the packages the official 3.11.11 image carries (pip 24.0,
setuptools 65.5.1, wheel 0.45.1). Documentation, manual pages and locales are left out as in Debian's slim
images. `PATH`, `LANG=C.UTF-8` and `CMD ["python3"]` are the official image's.

Cached in the project's image storage as `localhost/seldon-feedback/python-base:<key>`, keyed by the recipe
(suite, packages, dpkg options, pip packages, environment), with a marker beside the storage
(`~/.cache/seldon-feedback/containers/base/<key>.json`); the mirror is the one apt uses on this machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.images.pip_access import config_mounts
from devstack.images.tools import Buildah
from devstack.runtime.errors import DevstackError
from devstack.runtime.locks import file_lock
from devstack.runtime.process import tail

log = logging.getLogger(__name__)

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "passwd", "ca-certificates", "netbase", "tzdata")
# Debian's slim images leave these out; the copyright files stay
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)
MERGED_USR_HOOK = "/usr/share/mmdebstrap/hooks/merged-usr"  # merged /usr without the usrmerge package (and perl)
VENV_COMMAND = "python3 -m venv /usr/local"
# what python:3.11.11-slim-bookworm carries: ensurepip's pip, then setuptools and wheel
PIP_PACKAGES = ("pip==24.0", "setuptools==65.5.1", "wheel==0.45.1")
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
COMMAND = ("python3",)
REPOSITORY = "localhost/seldon-feedback/python-base"
RECIPE_FORMAT = 1  # bump when the way the recipe becomes an image changes
MMDEBSTRAP_TIMEOUT_S = 1200.0
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


@dataclass(frozen=True)
class BaseImage:
    reference: str
    image_id: str
    seconds: float  # build time when this call built it, 0 when it was cached


def recipe() -> dict[str, object]:
    return {
        "format": RECIPE_FORMAT,
        "suite": SUITE,
        "packages": sorted(PACKAGES),
        "dpkg": list(DPKG_OPTIONS),
        "venv": VENV_COMMAND,
        "pip": list(PIP_PACKAGES),
        "env": ENVIRONMENT,
        "cmd": list(COMMAND),
    }


def base_key() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]


def base_reference() -> str:
    return f"{REPOSITORY}:3.11-{SUITE}-{base_key()}"


# ------------------------------------------------------------------------------------------------ mirror
def one_line_entries(text: str) -> list[str]:
    """`deb ...` lines of a one-line-style sources.list text."""
    return [line.strip() for line in text.splitlines() if re.match(r"\s*deb\s", line)]


def deb822_entries(text: str) -> list[str]:
    """The stanzas of a deb822 `.sources` text as one-line `deb [signed-by=...] URI suite components` entries."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        options = f"[signed-by={fields['signed-by']}] " if fields.get("signed-by", "").startswith("/") else ""
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                entries.append(f"deb {options}{uri} {suite} {fields.get('components', 'main')}".strip())
    return entries


def suite_entries(entries: list[str], suite: str = SUITE) -> list[str]:
    """The entries for `suite` and its -updates / -security companions (not other distributions' sources)."""
    kept = []
    for entry in entries:
        words = re.sub(r"\[[^\]]*\]", "", entry).split()
        if len(words) >= 3 and (words[2] == suite or words[2].startswith(f"{suite}-")):
            kept.append(entry)
    return kept


def host_mirror_entries(suite: str = SUITE) -> list[str]:
    """The Debian sources apt uses on this machine for `suite`, so mmdebstrap reaches the same mirror."""
    entries: list[str] = []
    for location in APT_SOURCES:
        files = sorted(location.iterdir()) if location.is_dir() else [location]
        for path in files:
            if not path.is_file():
                continue
            if path.suffix == ".sources":
                entries += deb822_entries(path.read_text())
            elif path.suffix == ".list" or path == Path("/etc/apt/sources.list"):
                entries += one_line_entries(path.read_text())
    kept = suite_entries(entries, suite)
    if not kept:
        raise DevstackError(
            f"apt on this machine has no source for Debian {suite} (looked in /etc/apt/sources.list and "
            f"/etc/apt/sources.list.d); add one, e.g. `deb http://deb.debian.org/debian {suite} main`"
        )
    return kept


# ----------------------------------------------------------------------------------------------- building
def mmdebstrap_argv(tarball: Path, sources: Path) -> list[str]:
    argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", f"--hook-dir={MERGED_USR_HOOK}"]
    argv += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
    argv += [f'--customize-hook=chroot "$1" {VENV_COMMAND}', SUITE, str(tarball), str(sources)]
    return argv


def _marker(buildah: Buildah, key: str) -> Path:
    return buildah.state_dir("base") / f"{key}.json"


def cached_base(buildah: Buildah) -> BaseImage | None:
    try:
        marker = json.loads(_marker(buildah, base_key()).read_text())
    except (OSError, ValueError):
        return None
    reference = base_reference()
    if buildah.image_id(reference) != marker.get("image_id"):
        return None
    return BaseImage(reference, str(marker["image_id"]), 0.0)


def ensure_base(buildah: Buildah) -> BaseImage:
    """The local base image, built once per recipe (mmdebstrap ~1-2 min, then the pip packages) and reused."""
    found = cached_base(buildah)
    if found is not None:
        return found
    key = base_key()
    work = buildah.state_dir("base")
    with file_lock(work / f"{key}.lock"):
        found = cached_base(buildah)
        if found is not None:
            return found
        started = time.monotonic()
        log_path = work / f"{key}.log"
        log_path.unlink(missing_ok=True)
        image_id = _build(buildah, work / f"{key}.partial", log_path)
        seconds = time.monotonic() - started
        _marker(buildah, key).write_text(
            json.dumps({"image_id": image_id, "reference": base_reference(), "seconds": round(seconds, 1)}) + "\n"
        )
        log.info("built the local base %s in %.0f s", base_reference(), seconds)
        return BaseImage(base_reference(), image_id, seconds)


def _build(buildah: Buildah, work: Path, log_path: Path) -> str:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sources = work / "sources.list"
    sources.write_text("\n".join(host_mirror_entries()) + "\n")
    tarball = work / "rootfs.tar"
    log.info("making the local base root filesystem with mmdebstrap (%s; log %s)", SUITE, log_path)
    try:
        with log_path.open("ab") as out:
            done = subprocess.run(
                mmdebstrap_argv(tarball, sources), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                timeout=MMDEBSTRAP_TIMEOUT_S, check=False,
            )  # fmt: skip
    except FileNotFoundError:
        raise DevstackError("mmdebstrap is not installed; apt-get install -y mmdebstrap") from None
    except subprocess.TimeoutExpired:
        raise DevstackError(f"mmdebstrap took longer than {MMDEBSTRAP_TIMEOUT_S:.0f} s; see {log_path}") from None
    if done.returncode != 0:
        raise DevstackError(
            f"mmdebstrap could not make the base (exit {done.returncode}); check the Debian mirror in "
            f"{sources} (taken from apt's sources) and {log_path}:\n{tail(log_path, 10)}"
        )
    container = f"seldon-feedback-base-{base_key()}"
    if _container_exists(buildah, container):  # left by an interrupted build
        buildah.run(["rm", container], log_path=log_path)
    try:
        buildah.run(["from", "--name", container, "scratch"], log_path=log_path)
        buildah.run(["add", container, str(tarball), "/"], log_path=log_path)
        volumes = [arg for mount in config_mounts() for arg in ("-v", mount.volume())]
        pip = ["/usr/local/bin/pip", "install", "--no-cache-dir", "--no-input", "--disable-pip-version-check"]
        buildah.run(["run", "--isolation", "chroot", *volumes, container, "--", *pip, *PIP_PACKAGES], log_path=log_path)
        config = [arg for name, value in ENVIRONMENT.items() for arg in ("--env", f"{name}={value}")]
        config += ["--cmd", json.dumps(list(COMMAND)), "--label", f"org.opencontainers.image.description=local "
                   f"stand-in for python:3.11-slim-{SUITE}, recipe {base_key()}"]  # fmt: skip
        buildah.run(["config", *config, container], log_path=log_path)
        buildah.run(["commit", "--rm", container, base_reference()], log_path=log_path)
    except DevstackError:
        if _container_exists(buildah, container):
            buildah.run(["rm", container], log_path=log_path)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    image_id = buildah.image_id(base_reference())
    if image_id is None:
        raise DevstackError(f"buildah committed {base_reference()} but cannot find it; see {log_path}")
    return image_id


def _container_exists(buildah: Buildah, name: str) -> bool:
    try:
        buildah.run(["inspect", "--type", "container", name])
    except DevstackError:
        return False
    return True
