"""The per-version table reproduces the README's "Other versions in range" table at every recorded version."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devstack.engine.versions import VersionError, behaviour_of, first_version_with

# version: (feedback logged, Ce-Protocol, skip-logging honoured, direct Kafka logging, buffer flags, workers,
#           grpc port default, gRPC port open with --transport rest), as the README's table says
README_TABLE = {
    "1.3.0": (False, False, False, False, False, 5, 8000, False),
    "1.4.0": (True, False, False, False, False, 5, 8000, False),
    "1.10.0": (True, False, False, False, False, 5, 5000, True),
    "1.13.1": (True, False, True, True, True, 10, 5000, True),
    "1.14.0": (True, True, True, True, True, 10, 5000, True),
    "1.17.1": (True, True, True, True, True, 10, 5000, True),
}


@pytest.mark.parametrize("version", sorted(README_TABLE))
def test_each_recorded_version_behaves_as_recorded(version: str) -> None:
    b = behaviour_of(version)
    assert (
        b.logs_feedback,
        b.sends_protocol_header,
        b.honours_skip_logging,
        b.direct_kafka_logging,
        b.bounded_log_buffer,
        b.default_logger_workers,
        b.default_grpc_port,
        b.grpc_with_rest_transport,
    ) == README_TABLE[version]


def test_versions_between_recordings_take_the_upstream_release_that_changed_it() -> None:
    assert behaviour_of("1.11.0").direct_kafka_logging and not behaviour_of("1.11.0").bounded_log_buffer
    assert behaviour_of("1.12.0").default_logger_workers == 10 and not behaviour_of("1.12.0").honours_skip_logging
    assert behaviour_of("1.5.0").grpc_with_rest_transport and not behaviour_of("1.4.9").grpc_with_rest_transport
    assert behaviour_of("1.18.2") == replace(behaviour_of("1.17.1"), version="1.18.2")
    assert first_version_with("direct_kafka_logging") == "1.11.0"


@pytest.mark.parametrize(("text", "message"), [("1.2.9", "older than 1.3.0"), ("v1.17.1", "not a Seldon Core release")])
def test_unusable_versions_are_refused(text: str, message: str) -> None:
    with pytest.raises(VersionError, match=message):
        behaviour_of(text)
