"""Missing or unusable Java / Maven and corrupt cache entries give one line naming the cause and the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devstack.runtime import maven
from devstack.runtime.errors import DevstackError
from devstack.runtime.java import java_executable, mvn_executable
from devstack.servers.kafka import KafkaServer


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty download cache, so nothing resolved earlier on this machine hides the fault."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def one_line(error: pytest.ExceptionInfo[DevstackError]) -> str:
    message = str(error.value)
    assert "\n" not in message, f"expected one line, got: {message!r}"
    return message


def test_java_at_a_missing_path_names_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSTACK_JAVA", "/nonexistent/jdk/bin/java")
    with pytest.raises(DevstackError) as error:
        java_executable()
    message = one_line(error)
    assert "DEVSTACK_JAVA=/nonexistent/jdk/bin/java" in message
    assert "install a JDK >= 17" in message


def test_no_java_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DEVSTACK_JAVA", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevstackError) as error:
        java_executable()
    assert one_line(error).startswith("Java not found (no JAVA_HOME/bin/java, no java on PATH); install a JDK >= 17")


def test_java_older_than_17_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "old-jdk" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("DEVSTACK_JAVA", str(fake))
    with pytest.raises(DevstackError) as error:
        java_executable()
    message = one_line(error)
    assert "is version 11, the servers need >= 17" in message


def test_a_server_without_java_starts_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEVSTACK_JAVA", "/nonexistent/java")
    server = KafkaServer(tmp_path)
    with pytest.raises(DevstackError, match="Java not found"):
        server.start()
    assert server.process is None


def test_missing_maven_names_the_fix(monkeypatch: pytest.MonkeyPatch, fresh_cache: Path) -> None:
    monkeypatch.setenv("DEVSTACK_MVN", "/nonexistent/maven/bin/mvn")
    with pytest.raises(DevstackError) as error:
        maven.classpath("org.slf4j:slf4j-api:1.7.36")
    message = one_line(error)
    assert "Maven not found" in message and "apt-get install maven" in message


def test_no_mvn_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DEVSTACK_MVN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevstackError) as error:
        mvn_executable()
    message = one_line(error)
    assert message.startswith("Maven not found (no mvn on PATH); install Maven (Debian: `apt-get install maven`)")


def test_bad_coordinate_is_explained() -> None:
    with pytest.raises(DevstackError) as error:
        maven.classpath("kafka")
    assert one_line(error) == "bad Maven coordinate 'kafka'; write it as group:artifact:version"


def test_corrupt_classpath_file_is_detected_and_rebuilt() -> None:
    """Uses the real Maven and the shared cache (slf4j-api is already there as a Kafka dependency)."""
    coordinate = "org.slf4j:slf4j-api:1.7.36"
    good = maven.classpath(coordinate)
    entry = maven.entry_dir([maven.Coordinate.parse(coordinate)])
    listing = entry / maven.CLASSPATH_FILE

    for corruption in ("/nonexistent/broken.jar", "", "\x00\x01garbage"):
        listing.write_text(corruption)
        rebuilt = maven.classpath(coordinate)
        assert rebuilt == good
        assert all(jar.is_file() for jar in rebuilt)
        assert listing.read_text().strip() == os.pathsep.join(map(str, good))


def test_truncated_jar_is_removed_and_an_unreachable_repository_is_reported(
    monkeypatch: pytest.MonkeyPatch, fresh_cache: Path
) -> None:
    """A half-downloaded jar is found, deleted (so Maven fetches it again), and a failed fetch says what to do."""
    monkeypatch.setenv("DEVSTACK_MAVEN_OFFLINE", "1")  # Maven cannot download anything: the fix must be named
    coordinate = maven.Coordinate.parse("org.example.devstack:tiny:1.0")
    entry = maven.entry_dir([coordinate])
    jar = maven.local_repository() / "org/example/devstack/tiny/1.0/tiny-1.0.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"PK\x03\x04 truncated")
    (entry / maven.CLASSPATH_FILE).write_text(str(jar))

    with pytest.raises(DevstackError) as error:
        maven.classpath(str(coordinate))

    message = one_line(error)
    assert message.startswith("Maven could not resolve org.example.devstack:tiny:1.0")
    assert "check access to Maven Central" in message and "resolve.log" in message
    assert not jar.exists()
    assert not (entry / maven.CLASSPATH_FILE).exists()


def test_a_corrupt_classpath_file_never_deletes_files_outside_the_repository(
    monkeypatch: pytest.MonkeyPatch, fresh_cache: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEVSTACK_MAVEN_OFFLINE", "1")
    precious = tmp_path / "precious.txt"
    precious.write_text("not a jar, not ours")
    coordinate = maven.Coordinate.parse("org.example.devstack:tiny:1.0")
    (maven.entry_dir([coordinate]) / maven.CLASSPATH_FILE).write_text(str(precious))

    with pytest.raises(DevstackError):
        maven.classpath(str(coordinate))

    assert precious.read_text() == "not a jar, not ours"
