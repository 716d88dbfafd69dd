"""Turn a failed server start into one line naming the cause and the fix (the log's last lines follow)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from devstack.runtime.errors import DevstackError
from devstack.runtime.process import tail

_CAUSE = re.compile(r"(ERROR|FATAL|Exception|Error:|error:|Caused by)")
_FRAME = re.compile(r"\bat [\w$.<>/-]+\(|^\s*\.\.\. \d+ more")
_EXCEPTION = re.compile(r"(Exception|Error)(: |$)")


def likely_cause(log_path: Path, lines: int = 400) -> str:
    """The log line of the latest start that best names the failure ('' when none looks like an error).

    An exception's own message (the first one) beats other error lines; stack frames never count."""
    section = tail(log_path, lines).rsplit("=== starting", 1)[-1].splitlines()[1:]
    candidates = [line.strip() for line in section if _CAUSE.search(line) and not _FRAME.search(line)]
    if not candidates:
        return ""
    exceptions = [line for line in candidates if _EXCEPTION.search(line)]
    return (exceptions[0] if exceptions else candidates[-1])[:300]


def start_failure(name: str, error: DevstackError, log_path: Path, config: Path | None) -> DevstackError:
    """A DevstackError whose first line says why `name` did not start and what to do, then the log tail."""
    first, _, rest = str(error).partition("\n")
    first = re.sub(r"; last lines of \S+:?$", "", first.rstrip())
    cause = likely_cause(log_path)
    where = f"check {config} and " if config else "check "
    fix = f"{where}the log {log_path} (`python -m devstack logs {name}`), fix that cause and retry"
    line = first + (f": {cause}" if cause else "") + f"; {fix}"
    return DevstackError(f"{line}\nlast lines of {log_path}:\n{rest}" if rest else line)


def still_free(port: int, chosen_by_us: bool, owner: str) -> int:
    """`port` if it can still be bound; a fresh free port instead when we chose it (another process on this
    shared machine took it in the meantime); a one-line error when the caller asked for that port."""
    from devstack.runtime.ports import ensure_free, free_port

    try:
        ensure_free(port, owner)
        return port
    except DevstackError:
        if not chosen_by_us:
            raise
    return free_port()


IDENTITY_FILE = "identity.json"


def remembered(home: Path) -> dict[str, Any]:
    """What a server chose on an earlier start in `home` (ports, names, keys), so that a new server object on the
    same data comes back the same way; {} for a fresh folder."""
    try:
        value = json.loads((home / IDENTITY_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def remember(home: Path, values: dict[str, Any]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / IDENTITY_FILE).write_text(json.dumps(values, indent=2) + "\n")
