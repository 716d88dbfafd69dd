"""Turn a failed server start into one line naming the cause and the fix (the log's last lines follow)."""

from __future__ import annotations

import re
from pathlib import Path

from devstack.errors import DevstackError
from devstack.process import tail

_CAUSE = re.compile(r"(ERROR|FATAL|Exception|Error:|error:|Caused by)")


def likely_cause(log_path: Path, lines: int = 200) -> str:
    """The last log line that looks like an error (trimmed), or '' when there is none."""
    for line in reversed(tail(log_path, lines).splitlines()):
        if _CAUSE.search(line) and not line.startswith("=== starting"):
            return line.strip()[:300]
    return ""


def start_failure(name: str, error: DevstackError, log_path: Path, config: Path | None) -> DevstackError:
    """A DevstackError whose first line says why `name` did not start and what to do, then the log tail."""
    first, _, rest = str(error).partition("\n")
    cause = likely_cause(log_path)
    where = f"check {config} and " if config else "check "
    fix = f"{where}the log {log_path} (`python -m devstack logs {name}`), fix that cause and retry"
    line = f"{first.rstrip(':;')}" + (f": {cause}" if cause else "") + f"; {fix}"
    return DevstackError(f"{line}\n{rest}" if rest else line)
