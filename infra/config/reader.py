"""Reading raw stack config values for the keys in `KEYS`: parse each by its declared kind, check common shapes
(versions, DNS labels, quantities, images, topics) and collect every problem in one list instead of stopping at
the first, so a deployer fixes them all in one go."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from infra.config.keys import (
    IMAGE_FIELDS,
    KEYS,
    KEYS_BY_NAME,
    NAMESPACES,
    REMOVED_KEYS,
    RESOURCE_FIELDS,
    TOPIC_FIELDS,
    Key,
)
from infra.config.settings import Image, Resources, Topic, version_tuple

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
KAFKA_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
NO_VERSION = (0, 0, 0)  # what `version` returns for an unparsable value (already reported)


class ConfigError(pulumi.RunError):
    """The stack configuration is invalid; the message lists every problem with its key and fix."""


def raw_config() -> dict[str, Any]:
    """Every config key the engine gave us (mocks set them through `set_all_config`)."""
    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return {_normalise_key(key): value for key, value in raw.items()}


def _normalise_key(key: str) -> str:
    # The engine may pass "<namespace>:config:<name>"; the CLI shows "<namespace>:<name>".
    parts = key.split(":")
    return f"{parts[0]}:{parts[2]}" if len(parts) == 3 and parts[1] == "config" else key


def fmt(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


class Reader:
    """Parses raw config strings for the keys in KEYS and collects every problem in `errors`."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: list[str] = []
        self._configs: dict[str, pulumi.Config] = {}

    def error(self, message: str) -> None:
        self.errors.append(message)

    def raise_errors(self) -> None:
        """Raises one ConfigError listing every problem collected so far, if there is any."""
        if self.errors:
            raise ConfigError(
                f"stack configuration has {len(self.errors)} problem(s):\n" + "\n".join(f"  - {e}" for e in self.errors)
            )

    def check_unknown(self) -> None:
        for name in sorted(self.raw):
            namespace = name.split(":", 1)[0]
            if name in REMOVED_KEYS:
                self.error(f"{name} is no longer read: {REMOVED_KEYS[name]}; remove it with `pulumi config rm {name}`")
            elif namespace in NAMESPACES and name not in KEYS_BY_NAME:
                close = difflib.get_close_matches(name, KEYS_BY_NAME, n=1)
                hint = (
                    f"did you mean {close[0]}?"
                    if close
                    else f"known {namespace}:* keys: "
                    + ", ".join(k.name for k in KEYS if k.name.startswith(namespace + ":"))
                )
                self.error(f"{name} is not a known key ({hint}); remove it with `pulumi config rm {name}`")

    def _config(self, key: Key) -> tuple[pulumi.Config, str]:
        namespace, short = key.name.split(":", 1)
        return self._configs.setdefault(namespace, pulumi.Config(namespace)), short

    def get(self, name: str) -> Any:
        """The parsed value of key `name`, or its default when unset or invalid (the problem is recorded)."""
        key = KEYS_BY_NAME[name]
        config, short = self._config(key)
        text = config.get(short)
        if text is None:
            return key.default
        parse: Callable[[Key, str], Any] = getattr(self, f"_parse_{key.kind}")
        try:
            return parse(key, text)
        except ValueError as exc:
            self.error(f"{key.name}={text!r} {exc}")
            return key.default

    def secret(self, name: str, *, required: bool, why: str, min_length: int = 0) -> pulumi.Output[str] | None:
        key = KEYS_BY_NAME[name]
        config, short = self._config(key)
        value = config.get(short)
        if value is None:
            if required:
                self.error(f"{key.name} is required {why}; set it with `pulumi config set --secret {key.name} <value>`")
            return None
        if len(value) < min_length:
            self.error(
                f"{key.name} is {len(value)} characters long, at least {min_length} are required; set a longer one "
                f"with `pulumi config set --secret {key.name} <value>`"
            )
        full_key = config.full_key(short)
        if not (runtime_config.is_config_secret(full_key) or full_key in runtime_config.get_config_secret_keys_env()):
            self.error(
                f"{key.name} is stored in plain text; store it encrypted with "
                f"`pulumi config set --secret {key.name} <value>`"
            )
        return config.require_secret(short)

    @staticmethod
    def _parse_str(key: Key, text: str) -> str:
        if key.enum and text not in key.enum:
            raise ValueError(f"is not allowed; use one of {', '.join(key.enum)}")
        return text

    @staticmethod
    def _parse_int(key: Key, text: str) -> int:
        if not re.fullmatch(r"-?\d+", text.strip()):
            raise ValueError("is not an integer; write a whole number such as 3")
        return int(text)

    @staticmethod
    def _parse_float(key: Key, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("is not a number; write a decimal such as 0.5") from None

    @staticmethod
    def _parse_bool(key: Key, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError("is not a boolean; use true or false")
        return lowered == "true"

    @staticmethod
    def _parse_object(key: Key, text: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("is not an object; write a YAML mapping in the stack file") from None
        if not isinstance(value, dict):
            raise ValueError("is not an object; write a YAML mapping in the stack file")
        if key.fields:
            unknown = sorted(set(value) - set(key.fields))
            if unknown:
                raise ValueError(f"has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(key.fields)}")
        elif not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError("must map strings to strings (quote numbers and booleans)")
        return value

    @staticmethod
    def _parse_list(key: Key, text: str) -> list[str]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("is not a list; write a YAML list of strings in the stack file") from None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("is not a list of strings; write a YAML list of strings in the stack file")
        return value

    # ---- shapes shared by several namespaces -------------------------------------------------------------------

    def at_least(self, name: str, value: int, minimum: int) -> None:
        if value < minimum:
            self.error(f"{name}={value} must be at least {minimum}")

    def dns_label(self, name: str, value: str, max_len: int = 63) -> None:
        if not DNS_LABEL.match(value) or len(value) > max_len:
            self.error(f"{name}={value!r} is not a DNS label (lower-case letters, digits, '-', at most {max_len})")

    def quantity(self, name: str, value: str) -> None:
        if not QUANTITY.match(value):
            self.error(f'{name}={value!r} is not a Kubernetes quantity; write e.g. "10Gi"')

    def version(self, name: str) -> tuple[int, int, int]:
        """Key `name` as (major, minor, patch); NO_VERSION (and a recorded problem) when it is not one."""
        value = self.get(name)
        parsed = version_tuple(value)
        if parsed is None:
            self.error(f"{name}={value!r} is not a version; write MAJOR.MINOR.PATCH such as 1.17.1")
            return NO_VERSION
        return parsed

    def resources(self, name: str) -> Resources:
        value = {**KEYS_BY_NAME[name].default, **self.get(name)}
        for part in RESOURCE_FIELDS:
            text = value.get(part)
            if not isinstance(text, str) or not QUANTITY.match(text):
                self.error(f'{name}.{part}={text!r} is not a Kubernetes quantity; write e.g. "500m" or "1Gi"')
        return Resources(cpu=str(value.get("cpu")), memory=str(value.get("memory")))

    def image(self, name: str) -> Image:
        value = {**KEYS_BY_NAME[name].default, **self.get(name)}
        repository, tag, digest = ("" if value.get(part) is None else str(value[part]) for part in IMAGE_FIELDS)
        if not repository or ":" in repository.rsplit("/", 1)[-1] or "@" in repository:
            self.error(f"{name}.repository={repository!r} must be an image name without tag or digest")
        if digest:
            if not DIGEST.match(digest):
                self.error(f"{name}.digest={digest!r} is not a digest; write sha256:<64 hex characters>")
        elif not tag or tag == "latest" or not IMAGE_TAG.match(tag):
            self.error(f"{name}.tag={tag!r} is not a fixed tag; pin a version such as 0.1.0 (never latest) or a digest")
        return Image(repository=repository, tag="" if digest else tag, digest=digest)

    def topic(self, role: str, partitions: int, retention: int) -> Topic:
        """The topic of `role`: the fields set in kafka:topics.<role> over that role's default (its name), with the
        namespace-wide partitions and retention unless set."""
        default = KEYS_BY_NAME["kafka:topics"].default[role]
        overrides = self.get("kafka:topics").get(role)
        if overrides is None:
            overrides = {}
        where = f"kafka:topics.{role}"
        if not isinstance(overrides, dict):
            self.error(f"{where}={overrides!r} is not an object; allowed fields: {', '.join(TOPIC_FIELDS)}")
            overrides = {}
        for unknown in sorted(set(overrides) - set(TOPIC_FIELDS)):
            self.error(f"{where}.{unknown} is not a known field; allowed: {', '.join(TOPIC_FIELDS)}")
        overrides = {**default, **overrides}
        name = overrides["name"]
        if not isinstance(name, str) or not KAFKA_TOPIC.match(name) or name in (".", ".."):
            self.error(f"{where}.name={name!r} is not a valid Kafka topic name (letters, digits, '.', '_', '-')")
        topic_partitions = overrides.get("partitions", partitions)
        if not isinstance(topic_partitions, int) or topic_partitions < 1:
            self.error(f"{where}.partitions={topic_partitions!r} must be a whole number >= 1")
        topic_retention = overrides.get("retentionHours", retention)
        if not isinstance(topic_retention, int) or topic_retention < 1:
            self.error(f"{where}.retentionHours={topic_retention!r} must be a whole number >= 1")
        return Topic(name=str(name), partitions=int(topic_partitions), retention_hours=int(topic_retention))
