"""A server that exits or hangs while starting: one line naming the cause and the fix, and no process left."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.runtime.errors import DevstackError
from devstack.servers.kafka import KafkaServer
from devstack.servers.s3 import S3Server
from devstack.servers.search import SearchServer

pytestmark = pytest.mark.integration


def processes_mentioning(path: Path) -> list[int]:
    """Live (non-zombie) processes whose command line mentions `path`: what a failed start must not leave."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(path) in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


class BrokenS3(S3Server):
    def properties(self) -> str:
        return super().properties().replace("s3proxy.authorization=aws-v2-or-v4", "s3proxy.authorization=no-such")


class BrokenSearch(SearchServer):
    def _write_config(self) -> None:
        super()._write_config()
        with (self.node_home / "config" / "opensearch.yml").open("a") as yml:
            yml.write("no.such.setting: 1\n")


class BrokenKafka(KafkaServer):
    def server_properties(self) -> str:
        return super().server_properties().replace("process.roles=broker,controller", "process.roles=nonsense")


def test_s3_exiting_during_start(tmp_path: Path) -> None:
    server = BrokenS3(tmp_path)
    with pytest.raises(DevstackError) as error:
        server.start()
    first = str(error.value).splitlines()[0]
    assert first.startswith("s3 exited with code 1 while starting")
    assert str(server.config_path) in first and "fix that cause and retry" in first
    assert "AuthenticationType.NO_SUCH" in first  # the cause, taken from the log
    assert processes_mentioning(tmp_path) == []


def test_search_exiting_during_start(tmp_path: Path) -> None:
    server = BrokenSearch(tmp_path)
    with pytest.raises(DevstackError) as error:
        server.start()
    first = str(error.value).splitlines()[0]
    assert first.startswith("search exited with code 1 while starting")
    assert "no.such.setting" in first
    assert "opensearch.yml" in first and "python -m devstack logs search" in first
    assert processes_mentioning(tmp_path) == []


def test_kafka_with_a_broken_config_cannot_format_its_storage(tmp_path: Path) -> None:
    server = BrokenKafka(tmp_path)
    with pytest.raises(DevstackError) as error:
        server.start()
    first = str(error.value).splitlines()[0]
    assert first.startswith(f"kafka: formatting the storage in {server.data_dir} failed (exit 1)")
    assert "Invalid value nonsense for configuration process.roles" in first  # the cause, from its output
    assert f"fix {server.config_path}" in first
    assert server.process is None
    assert processes_mentioning(tmp_path) == []


def test_a_server_that_is_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    server = S3Server(tmp_path)
    with pytest.raises(DevstackError) as error:
        server.start(timeout=0.3)
    first = str(error.value).splitlines()[0]
    assert first.startswith("s3 did not become ready within 0 s")
    assert "fix that cause and retry" in first
    assert server.process is not None and not server.process.running()
    assert processes_mentioning(tmp_path) == []
