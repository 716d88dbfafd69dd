"""The engine's command line: the real executor's flags and environment, checked at start with one clear line."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.engine.main import ConfigError, go_duration_s, kafka_security, parse_config
from devstack.engine.spec import encode
from tests.unit.engine.test_spec import GOOD

REQUIRED = ["--sdep", "text-classifier", "--namespace", "seldon", "--predictor", "default"]
ENV = {"ENGINE_PREDICTOR": encode(GOOD)}


def config(*argv: str, **env: str) -> Any:
    return parse_config([*REQUIRED, *argv], {**ENV, **env})


def test_defaults_are_the_real_executors() -> None:
    c = config()
    assert (c.http_port, c.grpc_port, c.transport, c.server_type, c.protocol) == (8080, 5000, "rest", "rpc", "seldon")
    assert (c.logger_workers, c.log_buffer_size, c.log_write_timeout_ms) == (10, 10000, 2000)
    assert (c.kafka_workers, c.kafka_auto_commit, c.prometheus_path, c.graceful_timeout_s) == (
        4,
        True,
        "/metrics",
        15.0,
    )
    assert c.bind == "127.0.0.1" and c.behaviour.version == "1.17.1" and c.serves_grpc
    assert c.source_url == "http://:8080/", "no --hostname and no POD_NAME: an empty host (versions/ README)"
    assert config(POD_NAME="pod-1").source_url == "http://pod-1:8080/"


def test_an_old_version_changes_the_defaults_it_changed() -> None:
    old = config("--seldon-version", "1.4.0")
    assert (old.grpc_port, old.logger_workers, old.serves_grpc) == (8000, 5, False)
    assert old.behaviour.bounded_log_buffer is False
    assert config(SELDON_VERSION="1.10.0").behaviour.version == "1.10.0"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {"ENGINE_PREDICTOR": ""}, "ENGINE_PREDICTOR is empty"),
        (["--seldon-version", "1.2.0"], {}, "--seldon-version=1.2.0 is older than 1.3.0"),
        (["--seldon-version", "1.17"], {}, "--seldon-version='1.17' is not a Seldon Core release"),
        (["--protocol", "v2"], {}, "--protocol=v2: the local engine speaks the Seldon protocol only"),
        (["--protocol", "json"], {}, "--protocol='json' is not one of seldon, tensorflow, v2, kfserving"),
        (["--server_type", "stream"], {}, "--server_type='stream' is not rpc or kafka"),
        (["--bind", "0.0.0.0"], {}, "--bind=0.0.0.0 is not a loopback address"),
        (["--bind", "localhost"], {}, "--bind='localhost' is not an IP address"),
        (["--server_type", "kafka"], {}, "Required argument --kafka_broker missing (or KAFKA_BROKER)"),
        (["--server_type", "kafka", "--kafka_broker", "b:9092"], {}, "Required argument --kafka_input_topic missing"),
        (
            ["--seldon-version", "1.10.0", "--log_kafka_broker", "b:9092"],
            {},
            "--log_kafka_broker needs Seldon >= 1.11.0",
        ),
        (
            ["--seldon-version", "1.11.0", "--log_work_buffer_size", "5"],
            {},
            "--log_work_buffer_size needs Seldon >= 1.12.0",
        ),
        (["--http_port", "http"], {}, "--http_port='http' is not a whole number"),
        (["--kafka_auto_commit", "maybe"], {}, "KAFKA_AUTO_COMMIT/--kafka_auto_commit='maybe' is not a boolean"),
        ([], {"KAFKA_FULL_GRAPH": "true"}, "KAFKA_FULL_GRAPH=true needs the Kafka proxy"),
        (["--file", "sdep.yaml"], {}, "--file is not supported by the local engine"),
        (["--graceful_timeout", "soon"], {}, "--graceful_timeout='soon' is not a duration"),
    ],
)
def test_a_bad_start_names_the_flag_or_variable(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        config(*argv, **env)
    assert message in str(error.value)


def test_a_missing_required_flag_is_named() -> None:
    with pytest.raises(ConfigError, match="--predictor is required"):
        parse_config(["--sdep", "x", "--namespace", "y"], ENV)


def test_a_non_loopback_bind_needs_the_explicit_flag() -> None:
    assert config("--bind", "0.0.0.0", "--allow-non-loopback").bind == "0.0.0.0"
    assert config("--bind", "::1").bind == "::1"


def test_kafka_settings_come_from_flags_or_environment() -> None:
    c = config(
        "--server_type", "kafka", KAFKA_BROKER="b:9092", KAFKA_INPUT_TOPIC="in", KAFKA_OUTPUT_TOPIC="out",
        KAFKA_WORKERS="2", KAFKA_AUTO_COMMIT="false",
    )  # fmt: skip
    assert (c.kafka_broker, c.kafka_input_topic, c.kafka_output_topic, c.kafka_workers) == ("b:9092", "in", "out", 2)
    assert c.kafka_auto_commit is False
    flagged = config("--server_type", "kafka", "--kafka_broker", "f:1", "--kafka_input_topic", "i", KAFKA_BROKER="e:2",
                     KAFKA_INPUT_TOPIC="e", KAFKA_OUTPUT_TOPIC="o")  # fmt: skip
    assert (flagged.kafka_broker, flagged.kafka_input_topic) == ("f:1", "i"), "a flag wins over its variable"


def test_direct_kafka_logging_takes_the_flag_or_logger_kafka_variables() -> None:
    assert (
        config(LOGGER_KAFKA_BROKER="b:9092").log_kafka_broker,
        config(LOGGER_KAFKA_BROKER="b:9092").log_kafka_topic,
    ) == (
        "b:9092",
        "seldon",
    )
    c = config("--log_kafka_broker", "f:1", "--log_kafka_topic", "capture")
    assert (c.log_kafka_broker, c.log_kafka_topic) == ("f:1", "capture")
    assert config(LOGGER_KAFKA_BROKER="b:9092", SELDON_VERSION="1.10.0").log_kafka_broker == "", (
        "1.10 has no direct Kafka logging: the variable is ignored, as that executor ignores it"
    )


def test_kafka_security_variables_become_librdkafka_settings() -> None:
    assert kafka_security(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "p",
            "KAFKA_SSL_CA_CERT_FILE": "/ca.pem",
            "KAFKA_SSL_CLIENT_CERT": "-----BEGIN CERT",
        }
    ) == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": "p",
        "ssl.ca.location": "/ca.pem",
        "ssl.certificate.pem": "-----BEGIN CERT",
    }
    assert kafka_security({}) == {}


@pytest.mark.parametrize(("text", "seconds"), [("15s", 15.0), ("500ms", 0.5), ("1m", 60.0), ("2", 2.0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration_s(text, "--graceful_timeout") == seconds
