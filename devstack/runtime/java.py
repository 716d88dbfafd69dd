"""Find the Java (>= 17) and Maven the servers need, or say in one line how to get them.

`DEVSTACK_JAVA` / `DEVSTACK_MVN` (a path) override the lookup; otherwise `JAVA_HOME/bin/java` and then
`java` / `mvn` on PATH are used.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from devstack.runtime.errors import DevstackError

MIN_JAVA = 17
INSTALL_JAVA = "install a JDK >= 17 (Debian: `apt-get install openjdk-17-jdk-headless`) or set DEVSTACK_JAVA"
INSTALL_MVN = "install Maven (Debian: `apt-get install maven`) or set DEVSTACK_MVN to its mvn"


def _explicit(var: str, what: str, fix: str) -> str | None:
    value = os.environ.get(var)
    if not value:
        return None
    path = shutil.which(value)
    if path is None:
        raise DevstackError(f"{what} not found: {var}={value} is not an executable; {fix}")
    return path


def java_executable() -> str:
    """Path of a `java` whose major version is >= 17."""
    path = _explicit("DEVSTACK_JAVA", "Java", INSTALL_JAVA)
    if path is None:
        java_home = os.environ.get("JAVA_HOME")
        candidate = Path(java_home, "bin", "java") if java_home else None
        path = str(candidate) if candidate and os.access(candidate, os.X_OK) else shutil.which("java")
    if path is None:
        raise DevstackError(f"Java not found (no JAVA_HOME/bin/java, no java on PATH); {INSTALL_JAVA}")
    major = java_major_version(path)
    if major < MIN_JAVA:
        raise DevstackError(f"Java at {path} is version {major}, the servers need >= {MIN_JAVA}; {INSTALL_JAVA}")
    return path


@functools.lru_cache(maxsize=8)
def java_major_version(java: str) -> int:
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise DevstackError(f"Java at {java} cannot run ({exc.strerror}); {INSTALL_JAVA}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if result.returncode != 0 or match is None:
        raise DevstackError(f"Java at {java} did not report its version (exit {result.returncode}); {INSTALL_JAVA}")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major  # "1.8.0" is Java 8


def mvn_executable() -> str:
    """Path of Maven's `mvn`."""
    path = _explicit("DEVSTACK_MVN", "Maven", INSTALL_MVN) or shutil.which("mvn")
    if path is None:
        raise DevstackError(f"Maven not found (no mvn on PATH); {INSTALL_MVN}")
    return path


def java_env() -> dict[str, str]:
    """Environment for Maven and Java children: JAVA_HOME pointing at the Java we chose."""
    env = dict(os.environ)
    java = Path(java_executable()).resolve()
    env["JAVA_HOME"] = str(java.parent.parent)
    return env


def jvm_options(max_heap: str = "512m", min_heap: str = "128m") -> list[str]:
    """Small-heap JVM flags shared by every server (the machine is shared; see docs/local-stack.md)."""
    return [
        f"-Xms{min_heap}",
        f"-Xmx{max_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=50",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        "-Dfile.encoding=UTF-8",
    ]


def java_process_env(classpath: str) -> dict[str, str]:
    """Environment for a server JVM: the classpath goes in CLASSPATH so that command lines (and logs) stay short."""
    env = dict(os.environ)
    env.pop("JAVA_TOOL_OPTIONS", None)
    env.pop("_JAVA_OPTIONS", None)
    env["CLASSPATH"] = classpath
    return env
