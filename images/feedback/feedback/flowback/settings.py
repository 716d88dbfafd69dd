"""Flow-back settings from environment variables, each read only by the steps that need it, with errors that name
the variable and the fix (images/feedback/README.md and docs/flowback.md list them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from feedback.config import SettingsError, env_choice, env_list, env_optional, env_regex_list, env_str
from feedback.flowback.store import StoreSettings
from feedback.indexer.settings import SEARCH_ENGINES, SearchSettings
from feedback.redaction import Redactor, build_redactor

DEFAULT_BUCKET = "flowback"
DEFAULT_INDEX = "seldon-feedback"
DEFAULT_MODEL_NAME = "text-classifier"
# The classifier's build context: next to this image's folder in a checkout, /microservice in its own image.
_CHECKOUT_CLASSIFIER = Path(__file__).resolve().parents[3] / "text-classifier"
IMAGE_CLASSIFIER = Path("/microservice")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def store_settings(env: Mapping[str, str] | None = None) -> StoreSettings:
    env = _env(env)
    access_key = env_optional(env, "AWS_ACCESS_KEY_ID")
    secret_key = env_optional(env, "AWS_SECRET_ACCESS_KEY")
    if (access_key is None) != (secret_key is None):
        raise SettingsError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
    endpoint = env_optional(env, "FLOWBACK_S3_ENDPOINT")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(f"FLOWBACK_S3_ENDPOINT={endpoint!r} must be an http(s) URL such as http://minio:9000")
    return StoreSettings(
        endpoint=endpoint,
        bucket=env_str(env, "FLOWBACK_BUCKET", DEFAULT_BUCKET),
        access_key=access_key,
        secret_key=secret_key,
        region=env_str(env, "AWS_REGION", "us-east-1"),
    )


def search_settings(env: Mapping[str, str] | None = None) -> SearchSettings:
    env = _env(env)
    urls = env_list(env, "FLOWBACK_SEARCH_URL")
    if not urls or not all(url.startswith(("http://", "https://")) for url in urls):
        raise SettingsError(
            "FLOWBACK_SEARCH_URL must be the search cluster's http(s) URL, for example "
            f"FLOWBACK_SEARCH_URL=https://feedback-es-http:9200 (got {','.join(urls) or 'nothing'})"
        )
    username = env_optional(env, "FLOWBACK_SEARCH_USERNAME")
    password = env_optional(env, "FLOWBACK_SEARCH_PASSWORD")
    if (username is None) != (password is None):
        raise SettingsError("FLOWBACK_SEARCH_USERNAME and FLOWBACK_SEARCH_PASSWORD must be set together")
    return SearchSettings(
        engine=env_choice(env, "FLOWBACK_SEARCH_ENGINE", "elasticsearch", SEARCH_ENGINES),
        urls=urls,
        username=username,
        password=password,
        ca_certs=env_optional(env, "FLOWBACK_SEARCH_CA_CERTS"),
    )


def index_name(env: Mapping[str, str] | None = None) -> str:
    return env_str(_env(env), "FLOWBACK_INDEX", DEFAULT_INDEX)


def model_name(env: Mapping[str, str] | None = None) -> str:
    return env_str(_env(env), "FLOWBACK_MODEL_NAME", DEFAULT_MODEL_NAME)


def redactor(env: Mapping[str, str] | None = None) -> Redactor:
    """Redaction applied again to every exported text (events logged straight to Kafka bypass the collector)."""
    env = _env(env)
    return build_redactor(
        env_list(env, "FLOWBACK_REDACT_FIELDS"),
        env_list(env, "FLOWBACK_REDACT_PATTERNS"),
        env_regex_list(env, "FLOWBACK_REDACT_REGEXES"),
        patterns_variable="FLOWBACK_REDACT_PATTERNS",
    )


@dataclass(frozen=True)
class ClassifierSettings:
    """Where the classifier's own code (retrain.py, score.py) is and which Python has spaCy and scikit-learn."""

    python: Path
    directory: Path


def classifier_settings(env: Mapping[str, str] | None = None) -> ClassifierSettings:
    env = _env(env)
    default_dir = _CHECKOUT_CLASSIFIER if _CHECKOUT_CLASSIFIER.is_dir() else IMAGE_CLASSIFIER
    directory = Path(env_str(env, "FLOWBACK_CLASSIFIER_DIR", str(default_dir)))
    if not (directory / "retrain.py").is_file() or not (directory / "score.py").is_file():
        raise SettingsError(
            f"FLOWBACK_CLASSIFIER_DIR={str(directory)!r} holds no retrain.py and score.py; point it at the "
            "text classifier's build context (images/text-classifier in a checkout, /microservice in its image)"
        )
    python = env_optional(env, "FLOWBACK_CLASSIFIER_PYTHON")
    if python is None:
        raise SettingsError(
            "FLOWBACK_CLASSIFIER_PYTHON is required for train and evaluate: the Python that has the classifier's "
            "requirements (spaCy, scikit-learn), e.g. FLOWBACK_CLASSIFIER_PYTHON=$(python -m devstack.servers.model "
            "venv)/bin/python in a checkout"
        )
    if not Path(python).exists():
        raise SettingsError(f"FLOWBACK_CLASSIFIER_PYTHON={python!r} does not exist")
    return ClassifierSettings(python=Path(python), directory=directory)
