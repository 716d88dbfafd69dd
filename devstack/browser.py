"""Headless Chromium (Debian's `chromium` package; `make test` and `make demo` install it with apt-get when missing and
run as root) to look at an HTML file as a person would: the DOM after its scripts ran, its console errors and a
screenshot.

    page = open_page(Path("report.html"), screenshot=Path("report.png"))
    page.dom, page.console_errors, page.screenshot

Every run has its own profile folder, no network (host resolution mapped to nothing, background services off), and
a deadline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devstack.runtime.errors import DevstackError

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing leaves the machine, whatever a page asks for
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE = re.compile(r'CONSOLE[:(]\d+\)?\] "(.*)", source: (.*) \(\d+\)')  # INFO:CONSOLE:1] or CONSOLE(1)]
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Page:
    dom: str
    console_errors: list[str]
    screenshot: Path | None


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise DevstackError(
        "chromium is not installed; `make test` and `make demo` install it as root (apt-get install chromium), "
        "or install Debian's chromium package yourself"
    )


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DevstackError(f"chromium did not finish within {TIMEOUT_S:.0f} s: {' '.join(argv[:3])} ...") from None


def open_page(path: Path, screenshot: Path | None = None, window: tuple[int, int] = (1240, 2400)) -> Page:
    """Load `path` (a local file) in headless Chromium: its DOM after the scripts ran and the console messages that
    report errors (uncaught exceptions, failed loads); with `screenshot`, also a PNG of the page."""
    browser = chromium_path()
    url = path.resolve().as_uri()
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        base = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}"]
        result = _run([*base, "--dump-dom", url])
        if result.returncode != 0 or "<html" not in result.stdout:
            raise DevstackError(f"chromium could not open {path}: {result.stderr.strip()[-500:]}")
        errors += _errors(result.stderr)
        if screenshot is not None:
            shot = _run([*base, f"--screenshot={screenshot}", "--hide-scrollbars", url])
            if shot.returncode != 0 or not screenshot.is_file():
                raise DevstackError(f"chromium could not take a screenshot of {path}: {shot.stderr.strip()[-500:]}")
    return Page(result.stdout, errors, screenshot)


def _errors(stderr: str) -> list[str]:
    found = []
    for line in stderr.splitlines():
        match = CONSOLE.search(line)
        if match and ("Uncaught" in match.group(1) or "Error" in match.group(1)):
            found.append(f"{match.group(1)} ({match.group(2)})")
        elif "Failed to load resource" in line or "net::ERR_" in line:
            found.append(line.strip())
    return found
