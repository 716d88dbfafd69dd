"""Reading environment variables into typed values, with errors that name the variable and the fix.

Every setting of the collector and the indexer goes through these helpers, so a bad value fails at start with
one line such as ``COLLECTOR_SAMPLING_RATE='2' must be a number from 0 to 1 (got 2.0)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable, the bad value and what is allowed."""


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(env: Mapping[str, str], name: str, default: str | None = None, *, required: bool = False) -> str:
    value = _raw(env, name)
    if value is None:
        if required or default is None:
            raise SettingsError(f"{name} is required but not set; set it, for example {name}=<value>")
        return default
    return value


def env_optional(env: Mapping[str, str], name: str) -> str | None:
    return _raw(env, name)


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = _raw(env, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} must be a whole number from {minimum} to {maximum}") from None
    if not minimum <= number <= maximum:
        raise SettingsError(f"{name}={value!r} must be a whole number from {minimum} to {maximum}")
    return number


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float) -> float:
    value = _raw(env, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} must be a number from {minimum:g} to {maximum:g}") from None
    if not minimum <= number <= maximum or number != number:
        raise SettingsError(f"{name}={value!r} must be a number from {minimum:g} to {maximum:g}")
    return number


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _raw(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={value!r} must be true or false")


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered not in choices:
        raise SettingsError(f"{name}={value!r} is not allowed; use one of: {', '.join(choices)}")
    return lowered


def env_list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A comma-separated list; blanks are dropped."""
    value = _raw(env, name)
    if value is None:
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


def env_regex_list(env: Mapping[str, str], name: str) -> tuple[re.Pattern[str], ...]:
    """A JSON array of regular expressions (JSON so that commas inside a pattern need no escaping)."""
    value = _raw(env, name)
    if value is None:
        return ()
    try:
        items = json.loads(value)
    except json.JSONDecodeError:
        example = f"{name}='[\"ID-[0-9]+\"]'"
        raise SettingsError(f"{name} must be a JSON array of regular expressions, e.g. {example}") from None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise SettingsError(f"{name} must be a JSON array of strings, e.g. {name}='[\"ID-[0-9]+\"]'")
    patterns = []
    for item in items:
        try:
            patterns.append(re.compile(item))
        except re.error as exc:
            raise SettingsError(f"{name}: {item!r} is not a valid regular expression ({exc})") from None
    return tuple(patterns)


@dataclass(frozen=True)
class KafkaSettings:
    """How both services reach Kafka (the same variables for the collector and the indexer)."""

    bootstrap_servers: str
    security_protocol: str = "plaintext"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None  # a TLS client certificate (PEM), for mutual TLS
    ssl_key_location: str | None = None

    def client_config(self) -> dict[str, str]:
        """librdkafka settings shared by producers and consumers (see librdkafka CONFIGURATION.md)."""
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        if self.ssl_certificate_location:
            config["ssl.certificate.location"] = self.ssl_certificate_location
        if self.ssl_key_location:
            config["ssl.key.location"] = self.ssl_key_location
        return config


SECURITY_PROTOCOLS = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def kafka_settings(env: Mapping[str, str]) -> KafkaSettings:
    bootstrap = env_str(env, "KAFKA_BOOTSTRAP_SERVERS", required=True)
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(
                f"KAFKA_BOOTSTRAP_SERVERS={bootstrap!r}: {server.strip()!r} is not host:port; "
                "use a comma-separated list such as kafka-0:9092,kafka-1:9092"
            )
    protocol = env_choice(env, "KAFKA_SECURITY_PROTOCOL", "plaintext", SECURITY_PROTOCOLS)
    mechanism = env_optional(env, "KAFKA_SASL_MECHANISM")
    if mechanism is not None and mechanism.upper() not in SASL_MECHANISMS:
        allowed = ", ".join(SASL_MECHANISMS)
        raise SettingsError(f"KAFKA_SASL_MECHANISM={mechanism!r} is not allowed; use one of: {allowed}")
    username = env_optional(env, "KAFKA_SASL_USERNAME")
    password = env_optional(env, "KAFKA_SASL_PASSWORD")
    if protocol.startswith("sasl") and (username is None or password is None):
        raise SettingsError(
            f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD; set both"
        )
    certificate = env_optional(env, "KAFKA_SSL_CERTIFICATE_LOCATION")
    key = env_optional(env, "KAFKA_SSL_KEY_LOCATION")
    if (certificate is None) != (key is None):
        given, missing = (
            ("KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION")
            if key is None
            else ("KAFKA_SSL_KEY_LOCATION", "KAFKA_SSL_CERTIFICATE_LOCATION")
        )
        raise SettingsError(f"{given} is set but {missing} is not: a client certificate needs both; set {missing}")
    if certificate is not None and not protocol.endswith("ssl"):
        raise SettingsError(
            f"KAFKA_SSL_CERTIFICATE_LOCATION needs KAFKA_SECURITY_PROTOCOL=ssl or sasl_ssl (got {protocol})"
        )
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        security_protocol=protocol,
        sasl_mechanism=mechanism.upper() if mechanism else ("PLAIN" if protocol.startswith("sasl") else None),
        sasl_username=username,
        sasl_password=password,
        ssl_ca_location=env_optional(env, "KAFKA_SSL_CA_LOCATION"),
        ssl_certificate_location=certificate,
        ssl_key_location=key,
    )


TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def env_topic(env: Mapping[str, str], name: str, default: str) -> str:
    topic = env_str(env, name, default)
    if not TOPIC_NAME.match(topic) or topic in {".", ".."}:
        raise SettingsError(f"{name}={topic!r} is not a valid Kafka topic name (letters, digits, '.', '_', '-')")
    return topic


LOG_LEVELS = ("debug", "info", "warning", "error")
