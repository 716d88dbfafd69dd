"""Resolve a Maven artifact's runtime classpath once, into the cache, and reuse it.

A throwaway pom that depends on the artifact(s) is resolved with `mvn dependency:build-classpath` into a
local repository under the cache (`cache_dir("maven", "repository")`), and the classpath is stored next to
the pom. Later calls read the stored classpath and check that every jar is there and is a readable zip;
nothing is downloaded then. A corrupt or incomplete entry (a jar missing or truncated) is rebuilt: the bad
jars are removed and Maven fetches them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack.runtime.errors import DevstackError
from devstack.runtime.java import java_env, mvn_executable
from devstack.runtime.locks import file_lock
from devstack.runtime.paths import cache_dir
from devstack.runtime.process import tail

log = logging.getLogger(__name__)

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
RESOLVE_TIMEOUT_S = 900.0
CLASSPATH_FILE = "classpath.txt"


@dataclass(frozen=True)
class Coordinate:
    group: str
    artifact: str
    version: str

    @classmethod
    def parse(cls, text: str) -> Coordinate:
        parts = text.split(":")
        if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_.\-]+", part) for part in parts):
            raise DevstackError(f"bad Maven coordinate {text!r}; write it as group:artifact:version")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    def dependency_xml(self) -> str:
        return (
            f"    <dependency><groupId>{self.group}</groupId><artifactId>{self.artifact}</artifactId>"
            f"<version>{self.version}</version></dependency>"
        )


def local_repository() -> Path:
    return cache_dir("maven", "repository")


def entry_dir(coordinates: Sequence[Coordinate]) -> Path:
    """The cache folder of one classpath, named after its first artifact and keyed by all coordinates."""
    key = hashlib.sha256("\n".join(str(c) for c in coordinates).encode()).hexdigest()[:10]
    first = coordinates[0]
    return cache_dir("maven", "classpaths", f"{first.artifact}-{first.version}-{key}")


def classpath(*coordinates: str) -> list[Path]:
    """The runtime classpath (jar paths) of the given `group:artifact:version` coordinates, resolved once."""
    if not coordinates:
        raise DevstackError("no Maven coordinate given; pass at least one group:artifact:version")
    parsed = [Coordinate.parse(c) for c in coordinates]
    entry = entry_dir(parsed)
    jars = _valid_entry(entry)
    if jars is not None:
        return jars
    with file_lock(cache_dir("maven") / "resolve.lock"):  # one resolve at a time: the repository is shared
        jars = _valid_entry(entry)  # another process may have resolved it while we waited
        if jars is not None:
            return jars
        _remove_bad_jars(entry)
        _resolve(parsed, entry)
        jars = _valid_entry(entry)
        if jars is None:
            raise DevstackError(
                f"the cached classpath in {entry} is still incomplete after a fresh Maven resolve; "
                f"delete {entry} and {local_repository()} and retry"
            )
        return jars


def classpath_string(*coordinates: str) -> str:
    return os.pathsep.join(str(jar) for jar in classpath(*coordinates))


def _bad_jars(entry: Path) -> list[Path] | None:
    """None when the entry has no classpath file; else the jars that are missing or not readable zips."""
    listing = entry / CLASSPATH_FILE
    if not listing.is_file():
        return None
    text = listing.read_text().strip()
    if not text:
        return None
    return [jar for jar in map(Path, text.split(os.pathsep)) if not _readable_jar(jar)]


def _valid_entry(entry: Path) -> list[Path] | None:
    bad = _bad_jars(entry)
    if bad is None:
        return None
    if bad:
        log.warning("cached classpath %s is incomplete (%d bad jars, e.g. %s); rebuilding it", entry, len(bad), bad[0])
        return None
    return [Path(p) for p in (entry / CLASSPATH_FILE).read_text().strip().split(os.pathsep)]


def _readable_jar(jar: Path) -> bool:
    try:
        return jar.stat().st_size > 0 and zipfile.is_zipfile(jar)
    except (OSError, ValueError):  # ValueError: a garbled path (e.g. a NUL byte)
        return False


def _remove_bad_jars(entry: Path) -> None:
    """Remove truncated jars of the local repository, so that Maven (which trusts any file it finds) fetches them
    again. Only files inside the local repository are touched, whatever a corrupt classpath file lists."""
    repository = local_repository().resolve()
    for jar in _bad_jars(entry) or []:
        with contextlib.suppress(OSError, ValueError):
            if jar.resolve().is_relative_to(repository) and jar.is_file():
                jar.unlink()
                (jar.parent / "_remote.repositories").unlink(missing_ok=True)
    (entry / CLASSPATH_FILE).unlink(missing_ok=True)


def _pom(coordinates: Sequence[Coordinate]) -> str:
    deps = "\n".join(c.dependency_xml() for c in coordinates)
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>seldon-feedback.devstack</groupId>
  <artifactId>classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def _resolve(coordinates: Sequence[Coordinate], entry: Path) -> None:
    names = ", ".join(str(c) for c in coordinates)
    log.info("resolving %s with Maven into %s (first time only)", names, local_repository())
    (entry / "pom.xml").write_text(_pom(coordinates))
    partial = entry / (CLASSPATH_FILE + ".partial")
    partial.unlink(missing_ok=True)
    log_path = entry / "resolve.log"
    argv = [
        mvn_executable(),
        "-q",
        "-B",
        "-f",
        str(entry / "pom.xml"),
        f"-Dmaven.repo.local={local_repository()}",
        f"{DEPENDENCY_PLUGIN}:build-classpath",
        "-Dmdep.includeScope=runtime",
        f"-Dmdep.outputFile={partial}",
    ]
    if os.environ.get("DEVSTACK_MAVEN_OFFLINE"):
        argv.insert(1, "-o")
    try:
        with log_path.open("wb") as out:
            result = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env=java_env(), timeout=RESOLVE_TIMEOUT_S, check=False
            )
    except subprocess.TimeoutExpired:
        raise DevstackError(
            f"Maven did not resolve {names} within {RESOLVE_TIMEOUT_S:.0f} s; check access to Maven Central "
            f"and retry (log: {log_path})"
        ) from None
    if result.returncode != 0 or not partial.is_file():
        last = " | ".join(line.strip() for line in tail(log_path, 3).splitlines() if line.strip())
        raise DevstackError(
            f"Maven could not resolve {names} (exit {result.returncode}: {last[-300:]}); check access to Maven "
            f"Central (or a mirror in ~/.m2/settings.xml) and retry; full log: {log_path}"
        )
    partial.replace(entry / CLASSPATH_FILE)
