"""Hash-checked lock files of the images' Python requirements: regenerate them, and read them to check coverage.

    python -m tools.locks compile              # every lock (pip-compile --generate-hashes; minutes, needs the index)
    python -m tools.locks compile feedback     # one
    python -m tools.locks check                # each lock pins exactly its inputs' pins (what the unit test checks)

Each image installs only from its lock (`pip install --require-hashes -r <lock>`): every package, the transitive
ones too, pinned to one version with the sha256 of every file PyPI publishes for it, so a re-uploaded or
substituted file fails the build. The locks are compiled by pip-tools (PIP_TOOLS_VERSION, installed once into a
cached virtualenv) with Python 3.11, the images' Python, in each lock's folder so the header's command reads the
same on every machine. Edit requirements.txt, then run `make locks` (this module) and commit both files.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from devstack.runtime.errors import DevstackError
from devstack.runtime.locks import file_lock
from devstack.runtime.paths import REPO_ROOT, cache_dir

PIP_TOOLS_VERSION = "7.6.2"
PIP_COMPILE_FLAGS = (
    "--generate-hashes",
    "--allow-unsafe",
    "--strip-extras",
    "--no-emit-index-url",
    "--no-emit-find-links",
)
# the environment the images install into (markers in requirements.txt are evaluated for it)
IMAGE_ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.11", "sys_platform": "linux"}


@dataclass(frozen=True)
class Lock:
    """One lock file and the requirements files it is compiled from (paths relative to `folder`)."""

    name: str
    folder: Path
    lock: str
    inputs: tuple[str, ...]

    @property
    def path(self) -> Path:
        return self.folder / self.lock


LOCKS = {
    "feedback": Lock("feedback", REPO_ROOT / "images" / "feedback", "requirements.lock", ("requirements.txt",)),
    "feedback-build": Lock(
        "feedback-build",
        REPO_ROOT / "images" / "feedback",
        "requirements-build.lock",
        ("requirements.txt", "requirements-build.txt"),
    ),
    "text-classifier": Lock(
        "text-classifier", REPO_ROOT / "images" / "text-classifier", "requirements.lock", ("requirements.txt",)
    ),
    "smoke-tests": Lock("smoke-tests", REPO_ROOT / "smoke_tests", "requirements.lock", ("requirements.txt",)),
}


# ------------------------------------------------------------------------------------------------ reading
@dataclass
class Locked:
    """One package of a lock: its version, hashes, and what pulled it in (`-r requirements.txt` or packages)."""

    version: str
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def read_lock(text: str) -> dict[str, Locked]:
    """{canonical name: Locked} of a pip-compile lock (`name==version \\`, `--hash=` lines, `# via` comments)."""
    packages: dict[str, Locked] = {}
    current: Locked | None = None
    in_via = False
    for raw in text.splitlines():
        line = raw.strip()
        match = _REQUIREMENT.match(raw)
        if match:
            current = packages.setdefault(canonicalize_name(match.group(1)), Locked(match.group(2)))
            in_via = False
        elif current is not None and line.startswith("--hash="):
            current.hashes.append(line.removeprefix("--hash=").rstrip(" \\"))
        elif current is not None and line.startswith("# via"):
            rest = line.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                current.via.append(rest)
        elif current is not None and in_via and line.startswith("#   "):
            current.via.append(line.removeprefix("#").strip())
        elif not line.startswith("#") or not line:
            in_via = False
    return packages


def read_pins(text: str, environment: Mapping[str, str] = IMAGE_ENVIRONMENT) -> dict[str, str]:
    """{canonical name: version} of the `name==version` lines of a requirements file whose markers hold in
    `environment`; a line that is not an exact pin is an error (a lock is only as fixed as its inputs)."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(dict(environment)):
            continue
        match = _REQUIREMENT.match(requirement.strip())
        if match is None:
            raise DevstackError(f"{line!r} is not pinned as name==version; pin it before locking")
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def coverage_problems(lock: Lock) -> list[str]:
    """Why `lock` does not pin exactly its inputs' pins ([] when it does): a pin missing from the lock or at
    another version (requirements.txt changed, the lock was not regenerated), a package the lock says came from an
    input that no input pins any more, a package without hashes, or a header naming other inputs."""
    if not lock.path.is_file():
        return [f"{lock.path.relative_to(REPO_ROOT)} is missing; run `make locks`"]
    text = lock.path.read_text()
    locked = read_lock(text)
    pins: dict[str, str] = {}
    for name in lock.inputs:
        pins.update(read_pins((lock.folder / name).read_text()))
    where = lock.path.relative_to(REPO_ROOT)
    problems = []
    for name, version in sorted(pins.items()):
        if name not in locked:
            problems.append(f"{where} lacks {name}=={version}")
        elif locked[name].version != version:
            problems.append(f"{where} has {name}=={locked[name].version}, its inputs pin {version}")
    from_inputs = {f"-r {name}" for name in lock.inputs}
    for name, entry in sorted(locked.items()):
        if from_inputs & set(entry.via) and name not in pins:
            problems.append(f"{where} still has {name}=={entry.version} from {sorted(entry.via)}, no input pins it")
        if not entry.hashes:
            problems.append(f"{where}: {name} has no --hash")
    header = next((line for line in text.splitlines() if "pip-compile" in line and "--output-file" in line), "")
    named = set(header.split()[-len(lock.inputs) :])  # pip-compile lists its inputs last, sorted
    if named != set(lock.inputs) or f"--output-file={lock.lock}" not in header:
        problems.append(f"{where}: its header was not compiled from {list(lock.inputs)} into {lock.lock}")
    if problems:
        problems.append(f"regenerate with `make locks` (python -m tools.locks compile {lock.name}) and commit it")
    return problems


# ---------------------------------------------------------------------------------------------- compiling
def pip_compile() -> Path:
    """pip-compile from pip-tools PIP_TOOLS_VERSION, installed once into a cached virtualenv (Python 3.11)."""
    home = cache_dir("pip-tools", PIP_TOOLS_VERSION)
    binary = home / "bin" / "pip-compile"
    with file_lock(home.parent / f"{PIP_TOOLS_VERSION}.lock"):
        if not binary.is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
            subprocess.run(
                [str(home / "bin" / "pip"), "install", "--quiet", f"pip-tools=={PIP_TOOLS_VERSION}"], check=True
            )
    return binary


def compile_lock(lock: Lock) -> None:
    """Regenerate one lock in its folder (the index comes from the machine's pip configuration)."""
    if sys.version_info[:2] != (3, 11):
        raise DevstackError("compile the locks with Python 3.11, the images' Python (markers depend on it)")
    env = {key: value for key, value in os.environ.items() if key != "PIP_FIND_LINKS"}  # local wheels stay out
    argv = [str(pip_compile()), "--quiet", *PIP_COMPILE_FLAGS, f"--output-file={lock.lock}", *lock.inputs]
    result = subprocess.run(argv, cwd=lock.folder, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise DevstackError(f"pip-compile of {lock.path} failed:\n{result.stderr.strip()[-2000:]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.locks", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("compile", "check"))
    parser.add_argument("names", nargs="*", help=f"locks to act on: {', '.join(LOCKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(LOCKS))
    if unknown:
        parser.error(f"no lock called {', '.join(unknown)}; choose from {', '.join(LOCKS)}")
    chosen = [LOCKS[name] for name in args.names] if args.names else list(LOCKS.values())
    failed = False
    for lock in chosen:
        if args.command == "compile":
            print(f"compiling {lock.path.relative_to(REPO_ROOT)} from {', '.join(lock.inputs)}", flush=True)
            compile_lock(lock)
        for problem in coverage_problems(lock):
            failed = True
            print(problem, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
