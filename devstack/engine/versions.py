"""What the executor of each Seldon Core version does differently, as one table the engine reads at start.

Every row names where it is shown: the recordings of real executors 1.3.0, 1.4.0, 1.10.0, 1.13.1, 1.14.0 and
1.17.1 in ../shared/reference/seldon-executor-1.17.1/versions/ (README "Other versions in range"), or, for a
change between two recorded versions, the upstream source or issue that dates it. A version between two recorded
ones behaves like the newest rule that starts at or before it.

    behaviour = behaviour_of("1.13.1")       # raises VersionError for "1.2.0", "1.17", "latest"
    behaviour.sends_protocol_header           # False: Ce-Protocol starts with 1.14.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RECORDED = "1.17.1"  # the version the engine is held to by default: the recordings' executor (and our chart's)
OLDEST = (1, 3, 0)  # the Kafka server type starts here; we promise every version from it on
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class VersionError(ValueError):
    """A Seldon version the engine cannot stand in for; the message names the setting and what to write."""


def parse_version(text: str, setting: str = "--seldon-version") -> tuple[int, int, int]:
    match = _VERSION.match(text.strip())
    if match is None:
        raise VersionError(f"{setting}={text!r} is not a Seldon Core release; write MAJOR.MINOR.PATCH, e.g. {RECORDED}")
    version = (int(match[1]), int(match[2]), int(match[3]))
    if version < OLDEST:
        raise VersionError(
            f"{setting}={text} is older than 1.3.0: executors before it have no Kafka server type and this project "
            f"supports none of them; choose 1.3.0 or later (default {RECORDED})"
        )
    return version


@dataclass(frozen=True)
class Behaviour:
    """The executor's observable behaviour at one version (each field's comment says where it is shown)."""

    version: str
    # io.seldon.serving.feedback events: none in 1.3.0 (versions/v1.3.0 holds no feedback files; its model still
    # gets the feedback), logged from 1.4.0 (versions/v1.4.0/05-*, 06-*).
    logs_feedback: bool
    # Ce-Protocol header (and the direct-Kafka `protocol` header): absent in 1.13.1, `seldon` in 1.14.0
    # (versions/v1.13.1/01-* vs versions/v1.14.0/01-*).
    sends_protocol_header: bool
    # Seldon-Skip-Logging: ignored by 1.10.0, honoured by 1.13.1 and 1.17.1 (README table, tested there);
    # upstream added SeldonSkipLoggingHeader in 1.13.0.
    honours_skip_logging: bool
    # --log_kafka_broker / --log_kafka_topic and LOGGER_KAFKA_*: undefined in 1.3.0 (exit 2), 1.4.0, 1.10.0;
    # present in 1.13.1 (README table); upstream added them in 1.11.0 (#3457).
    direct_kafka_logging: bool
    # --log_work_buffer_size / --log_write_timeout_ms and the dropping buffer: from 1.12.0 (README table; PR #3734).
    # Before, events are never dropped: a dispatcher takes each one at once.
    bounded_log_buffer: bool
    # --logger_workers default: 5 up to 1.10.0, 10 in 1.13.1 (README table; PR #3734, 1.12.0).
    default_logger_workers: int
    # --grpc_port default and whether the gRPC port is open with --transport rest: 8000 and no in 1.3.0 and
    # 1.4.0, 5000 and yes in 1.10.0 (README table); both ports are open from 1.5.0 (SeldonIO/seldon-core#2786).
    default_grpc_port: int
    grpc_with_rest_transport: bool


# (first version, field, value): the rows above as data, oldest first
_CHANGES: tuple[tuple[tuple[int, int, int], str, object], ...] = (
    ((1, 4, 0), "logs_feedback", True),
    ((1, 5, 0), "default_grpc_port", 5000),
    ((1, 5, 0), "grpc_with_rest_transport", True),
    ((1, 11, 0), "direct_kafka_logging", True),
    ((1, 12, 0), "bounded_log_buffer", True),
    ((1, 12, 0), "default_logger_workers", 10),
    ((1, 13, 0), "honours_skip_logging", True),
    ((1, 14, 0), "sends_protocol_header", True),
)

_OLDEST_BEHAVIOUR = {
    "logs_feedback": False,
    "sends_protocol_header": False,
    "honours_skip_logging": False,
    "direct_kafka_logging": False,
    "bounded_log_buffer": False,
    "default_logger_workers": 5,
    "default_grpc_port": 8000,
    "grpc_with_rest_transport": False,
}


def behaviour_of(text: str, setting: str = "--seldon-version") -> Behaviour:
    """The behaviour of Seldon Core `text` (MAJOR.MINOR.PATCH, >= 1.3.0)."""
    version = parse_version(text, setting)
    fields = dict(_OLDEST_BEHAVIOUR)
    for since, name, value in _CHANGES:
        if version >= since:
            fields[name] = value
    return Behaviour(version=text.strip(), **fields)  # type: ignore[arg-type]


def first_version_with(field: str) -> str:
    """The first version whose behaviour sets `field` (for error messages: "needs Seldon >= 1.11.0")."""
    for since, name, _value in _CHANGES:
        if name == field:
            return ".".join(map(str, since))
    raise KeyError(field)
