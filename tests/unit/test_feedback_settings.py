"""Settings of the collector and the indexer: defaults, and errors that name the variable and the fix."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from feedback.collector.settings import CollectorSettings
from feedback.config import SettingsError
from feedback.indexer.settings import IndexerSettings
from feedback.seldon_protos import default_dir

# the Seldon protos the session fixture built (tests/fixtures/seldon_protos.py), wherever this run's cache is
BASE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "SELDON_PROTOS_DIR": str(default_dir(os.environ))}
INDEXER_BASE = {**BASE, "INDEXER_SEARCH_URL": "http://127.0.0.1:9200"}


def test_collector_defaults() -> None:
    settings = CollectorSettings.from_env(BASE)
    assert settings.topic == "seldon-capture"
    assert settings.port == 8080
    assert settings.sampling_rate == 1.0
    assert settings.max_body_bytes == 512 * 1024
    assert settings.redactor.builtins == ("email", "phone")
    assert settings.kafka.client_config() == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "plaintext"}


def test_indexer_defaults() -> None:
    settings = IndexerSettings.from_env(INDEXER_BASE)
    assert settings.search.engine == "elasticsearch"
    assert settings.dead_letter_topic == "seldon-capture-dead-letter"
    assert settings.streaming_deployments == (), "no deployment is streaming unless the deployer lists it"
    # since issue 18: the indexer redacts like the collector by default (direct-logged events bypass the collector)
    assert settings.redactor.builtins == ("email", "phone")
    assert settings.redactor.headers == {"requestid", "subject", "traceparent", "tracestate"}
    assert (settings.no_response_after_s, settings.feedback_join_delay_s) == (120.0, 60.0)
    assert (settings.feedback_join_window_s, settings.sweep_interval_s) == (3600.0, 10.0)


def test_both_services_load_the_seldon_protos_of_the_configured_version() -> None:
    for settings in (CollectorSettings.from_env(BASE), IndexerSettings.from_env(INDEXER_BASE)):
        assert settings.protos is not None and settings.protos.version == "1.17.1"


@pytest.mark.parametrize("build", [CollectorSettings.from_env, IndexerSettings.from_env])
def test_missing_or_out_of_range_protos_stop_the_service_by_name(build: Callable[..., object], tmp_path: Path) -> None:
    with pytest.raises(
        SettingsError, match=re.escape("SELDON_PROTO_VERSION='1.2.0' must be a Seldon Core release >= 1.3.0")
    ):
        build({**INDEXER_BASE, "SELDON_PROTO_VERSION": "1.2.0"})
    with pytest.raises(SettingsError, match=re.escape("python -m feedback.seldon_protos ensure --version 1.17.1")):
        build({**INDEXER_BASE, "SELDON_PROTOS_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "KAFKA_BOOTSTRAP_SERVERS is required"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "kafka"}, "KAFKA_BOOTSTRAP_SERVERS='kafka': 'kafka' is not host:port"),
        ({**BASE, "COLLECTOR_SAMPLING_RATE": "2"}, "COLLECTOR_SAMPLING_RATE='2' must be a number from 0 to 1"),
        ({**BASE, "COLLECTOR_SAMPLING_RATE": "half"}, "COLLECTOR_SAMPLING_RATE='half' must be a number"),
        ({**BASE, "COLLECTOR_PORT": "0"}, "COLLECTOR_PORT='0' must be a whole number from 1 to 65535"),
        ({**BASE, "COLLECTOR_REDACT_PATTERNS": "email,ssn"}, "COLLECTOR_REDACT_PATTERNS: unknown pattern(s) ssn"),
        ({**BASE, "COLLECTOR_REDACT_REGEXES": "[x"}, "COLLECTOR_REDACT_REGEXES must be a JSON array"),
        ({**BASE, "COLLECTOR_REDACT_REGEXES": '["(unclosed"]'}, "is not a valid regular expression"),
        ({**BASE, "CAPTURE_TOPIC": "bad topic"}, "CAPTURE_TOPIC='bad topic' is not a valid Kafka topic name"),
        ({**BASE, "KAFKA_SECURITY_PROTOCOL": "tls"}, "KAFKA_SECURITY_PROTOCOL='tls' is not allowed"),
        ({**BASE, "KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        ({**BASE, "LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is not allowed; use one of: debug, info, warning, error"),
    ],
)
def test_collector_rejects_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        CollectorSettings.from_env(env)
    assert message in str(error.value)


def test_indexer_reads_the_listed_streaming_deployments() -> None:
    env = {**INDEXER_BASE, "INDEXER_STREAMING_DEPLOYMENTS": "text-classifier-streaming, reddit-kafka"}
    assert IndexerSettings.from_env(env).streaming_deployments == ("text-classifier-streaming", "reddit-kafka")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (BASE, "INDEXER_SEARCH_URL is required"),
        ({**BASE, "INDEXER_SEARCH_URL": "search:9200"}, "INDEXER_SEARCH_URL: 'search:9200' is not an http(s) URL"),
        ({**INDEXER_BASE, "INDEXER_SEARCH_ENGINE": "solr"}, "INDEXER_SEARCH_ENGINE='solr' is not allowed"),
        ({**INDEXER_BASE, "INDEXER_INDEX": "Feedback"}, "INDEXER_INDEX='Feedback' is not a valid index name"),
        ({**INDEXER_BASE, "INDEXER_DEAD_LETTER_TOPIC": "seldon-capture"}, "must differ from CAPTURE_TOPIC"),
        ({**INDEXER_BASE, "INDEXER_SEARCH_USERNAME": "elastic"}, "must be set together"),
        (
            {**INDEXER_BASE, "INDEXER_SEARCH_ENGINE": "opensearch", "INDEXER_SEARCH_API_KEY": "k"},
            "INDEXER_SEARCH_API_KEY works only with INDEXER_SEARCH_ENGINE=elasticsearch",
        ),
        ({**INDEXER_BASE, "INDEXER_SEARCH_CA_CERTS": "/nonexistent/ca.pem"}, "is not a readable file"),
        ({**INDEXER_BASE, "INDEXER_BATCH_SIZE": "0"}, "INDEXER_BATCH_SIZE='0' must be a whole number from 1"),
        (
            {**INDEXER_BASE, "INDEXER_RETRY_INITIAL_S": "5", "INDEXER_RETRY_MAX_S": "1"},
            "INDEXER_RETRY_MAX_S=1 must be at least INDEXER_RETRY_INITIAL_S=5",
        ),
        ({**INDEXER_BASE, "INDEXER_SEARCH_VERIFY_CERTS": "maybe"}, "INDEXER_SEARCH_VERIFY_CERTS='maybe' must be true"),
        (
            {**INDEXER_BASE, "INDEXER_STREAMING_DEPLOYMENTS": "*-streaming"},
            "INDEXER_STREAMING_DEPLOYMENTS: '*-streaming' is not a SeldonDeployment name; list the exact names",
        ),
        (
            {**INDEXER_BASE, "INDEXER_STREAMING_DEPLOYMENTS": "text-classifier-streaming,Reddit"},
            "INDEXER_STREAMING_DEPLOYMENTS: 'Reddit' is not a SeldonDeployment name",
        ),
        ({**INDEXER_BASE, "INDEXER_NO_RESPONSE_AFTER_S": "0"}, "INDEXER_NO_RESPONSE_AFTER_S='0' must be a number"),
        ({**INDEXER_BASE, "INDEXER_FEEDBACK_JOIN_DELAY_S": "soon"}, "INDEXER_FEEDBACK_JOIN_DELAY_S='soon' must be"),
        ({**INDEXER_BASE, "INDEXER_FEEDBACK_JOIN_WINDOW_S": "-1"}, "INDEXER_FEEDBACK_JOIN_WINDOW_S='-1' must be"),
        ({**INDEXER_BASE, "INDEXER_SWEEP_INTERVAL_S": "0"}, "INDEXER_SWEEP_INTERVAL_S='0' must be a number"),
    ],
)
def test_indexer_rejects_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        IndexerSettings.from_env(env)
    assert message in str(error.value)


def test_sasl_settings_reach_librdkafka() -> None:
    settings = CollectorSettings.from_env(
        {
            **BASE,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "user",
            "KAFKA_SASL_PASSWORD": "secret",
            "KAFKA_SASL_MECHANISM": "scram-sha-512",
        }
    )
    config = settings.kafka.client_config()
    assert config["security.protocol"] == "sasl_ssl"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "user"


def test_client_certificate_settings_reach_librdkafka() -> None:
    settings = CollectorSettings.from_env(
        {
            **BASE,
            "KAFKA_SECURITY_PROTOCOL": "ssl",
            "KAFKA_SSL_CA_LOCATION": "/etc/feedback/kafka-ca/ca.crt",
            "KAFKA_SSL_CERTIFICATE_LOCATION": "/etc/feedback/kafka-client/user.crt",
            "KAFKA_SSL_KEY_LOCATION": "/etc/feedback/kafka-client/user.key",
        }
    )
    config = settings.kafka.client_config()
    assert config["ssl.certificate.location"] == "/etc/feedback/kafka-client/user.crt"
    assert config["ssl.key.location"] == "/etc/feedback/kafka-client/user.key"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "ssl", "KAFKA_SSL_CERTIFICATE_LOCATION": "/c.crt"},
            "KAFKA_SSL_CERTIFICATE_LOCATION is set but KAFKA_SSL_KEY_LOCATION is not",
        ),
        (
            {"KAFKA_SSL_CERTIFICATE_LOCATION": "/c.crt", "KAFKA_SSL_KEY_LOCATION": "/c.key"},
            "KAFKA_SSL_CERTIFICATE_LOCATION needs KAFKA_SECURITY_PROTOCOL=ssl or sasl_ssl",
        ),
    ],
)
def test_incomplete_client_certificate_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        CollectorSettings.from_env({**BASE, **env})
