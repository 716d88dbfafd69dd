"""Create (once) the project's own virtual environment, keyed by the hash of pyproject.toml.

Runs on the bare system Python 3.11 with the standard library only, so `make` can call it on a fresh
machine. The environment lives under the cache (not the checkout), so a second `make test` on the same
machine installs nothing:

    python3.11 devstack/dev_env.py path     # print the environment's folder
    python3.11 devstack/dev_env.py ensure   # create it if missing, then print its folder
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seldon-feedback"


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])


def env_dir() -> Path:
    digest = hashlib.sha256("\n".join(requirements()).encode()).hexdigest()[:12]
    return cache_root() / "venvs" / f"dev-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"


def ensure() -> Path:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"error: Python 3.11 is required, this is {sys.version.split()[0]}; install python3.11 and retry")
    target = env_dir()
    marker = target / ".complete"
    if marker.exists():
        return target
    if target.exists():  # a broken or half-made environment from an interrupted run
        shutil.rmtree(target)
    print(f"creating the project environment in {target}", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run([*pip, *requirements()], check=False)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        sys.exit("error: pip could not install the project's dependencies (see above); fix the cause and rerun make")
    marker.write_text("\n".join(requirements()) + "\n")
    return target


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "ensure"
    if command == "path":
        print(env_dir())
    elif command == "ensure":
        print(ensure())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
