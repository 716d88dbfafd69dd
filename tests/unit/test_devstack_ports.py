"""A port that is already taken is reported in one line with the fix, and nothing is started."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.runtime.errors import DevstackError
from devstack.servers.kafka import KafkaServer
from devstack.servers.s3 import S3Server
from devstack.servers.search import SearchServer


@pytest.fixture
def occupied() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


def assert_port_error(error: pytest.ExceptionInfo[DevstackError], owner: str, port: int) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{owner}: port 127.0.0.1:{port} is already in use")
    assert "leave the port unset so a free one is chosen" in message


def test_kafka_controller_port_in_use(occupied: socket.socket, tmp_path: Path) -> None:
    port = occupied.getsockname()[1]
    server = KafkaServer(tmp_path, controller_port=port)
    with pytest.raises(DevstackError) as error:
        server.start()
    assert_port_error(error, "kafka controller", port)
    assert server.process is None


def test_chosen_ports_are_distinct(tmp_path: Path) -> None:
    kafka = KafkaServer(tmp_path)
    assert kafka.port != kafka.controller_port


def test_a_port_we_chose_that_got_taken_is_replaced(occupied: socket.socket) -> None:
    from devstack.runtime.startup import still_free

    port = occupied.getsockname()[1]
    replacement = still_free(port, chosen_by_us=True, owner="kafka")
    assert replacement != port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", replacement))  # really free
    with pytest.raises(DevstackError, match="is already in use"):
        still_free(port, chosen_by_us=False, owner="kafka")  # the caller asked for exactly this port


@pytest.mark.parametrize(
    ("server_class", "owner"),
    [(KafkaServer, "kafka"), (S3Server, "s3"), (SearchServer, "search")],
    ids=["kafka", "s3", "search"],
)
def test_server_port_in_use(server_class: type, owner: str, occupied: socket.socket, tmp_path: Path) -> None:
    port = occupied.getsockname()[1]
    server = server_class(tmp_path, port=port)
    with pytest.raises(DevstackError) as error:
        server.start()
    assert_port_error(error, owner, port)
    assert server.process is None
