"""Settings of the collector and the indexer: defaults, and errors that name the variable and the fix."""

from __future__ import annotations

import pytest
from feedback.collector.settings import CollectorSettings
from feedback.config import SettingsError
from feedback.indexer.settings import IndexerSettings

BASE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}
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
    assert not settings.redactor.active


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
