"""Where downloads, builds and run-time data live.

Downloads and builds go to the cache (`$XDG_CACHE_HOME/seldon-feedback`, else `~/.cache/seldon-feedback`),
keyed by version, and are reused by every checkout on the machine. Each running stack gets its own run
folder with one data and one log folder per server.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "seldon-feedback"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(*parts: str) -> Path:
    """A folder in the cache, created on demand: `cache_dir("kafka", "4.1.1")`."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_run_dir(prefix: str = "devstack-") -> Path:
    """A fresh folder for one stack's data and logs (outside the checkout)."""
    root = Path(os.environ.get("DEVSTACK_RUN_ROOT") or cache_dir("runs"))
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))
