"""Stack config: every bad value fails before the first resource, with a message that names the key and the fix;
the stack files, their JSON schema and the docs table agree with infra/config/keys.py."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from infra import config
from infra.config.readers import SWEEP_RANGES
from tests.infra.harness import (
    ENVIRONMENTS,
    OPTIONAL_TEST_SECRETS,
    REPO_ROOT,
    STACKS,
    TEST_SECRETS,
    run_program,
    stack_config,
)

SWEEP_VARIABLES = {
    "feedback:noResponseAfterSeconds": "INDEXER_NO_RESPONSE_AFTER_S",
    "feedback:feedbackJoinDelaySeconds": "INDEXER_FEEDBACK_JOIN_DELAY_S",
    "feedback:feedbackJoinWindowSeconds": "INDEXER_FEEDBACK_JOIN_WINDOW_S",
    "feedback:sweepIntervalSeconds": "INDEXER_SWEEP_INTERVAL_S",
}
SCRAM_ON = {"kafka:tls": True, "kafka:authentication": "scram-sha-512"}


def config_error(env: str = "dev", **kwargs: Any) -> str:
    """Runs the program expecting a ConfigError and returns its message; asserts no resource was created."""
    from tests.infra import harness

    created: list[Any] = []
    original = harness.RecordingMocks.new_resource

    def spy(self: harness.RecordingMocks, args: Any) -> Any:
        created.append(args.typ)
        return original(self, args)

    harness.RecordingMocks.new_resource = spy  # type: ignore[method-assign]
    try:
        with pytest.raises(config.ConfigError) as caught:
            run_program(env, **kwargs)
    finally:
        harness.RecordingMocks.new_resource = original  # type: ignore[method-assign]
    assert created == [], f"resources were created before the config error: {created}"
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"kafka:replicationFactor": 3}, "kafka:replicationFactor=3 exceeds kafka:brokers=1"),
        ({"kafka:minInsyncReplicas": 2}, "kafka:minInsyncReplicas=2 exceeds kafka:replicationFactor=1"),
        ({"kafka:brokrs": 3}, "kafka:brokrs is not a known key (did you mean kafka:brokers?)"),
        ({"kafka:brokers": "three"}, "kafka:brokers='three' is not an integer"),
        ({"kafka:controllers": 2}, "kafka:controllers=2 must be 1, 3 or 5"),
        ({"kafka:tls": "yes"}, "kafka:tls='yes' is not a boolean; use true or false"),
        ({"kafka:authentication": "scram-sha-512"}, "kafka:authentication=scram-sha-512 needs kafka:tls=true"),
        ({"kafka:topics": {"captur": {}}}, "has unknown field(s) captur; allowed: modelInput, modelOutput, capture"),
        ({"kafka:topics": {"capture": {"partitons": 6}}}, "kafka:topics.capture.partitons is not a known field"),
        ({"kafka:topics": {"capture": {"name": "model_input"}}}, "gives two roles the same topic name"),
        ({"kafka:topics": {"deadLetter": {"name": "bad topic"}}}, "kafka:topics.deadLetter.name='bad topic' is not"),
        ({"kafka:brokerResources": {"cpu": "lots"}}, "kafka:brokerResources.cpu='lots' is not a Kubernetes quantity"),
        (
            {"seldon:version": "1.2.0"},
            "seldon:version=1.2.0 is older than 1.3.0: the streaming classifier needs the executor's Kafka server type",
        ),
        ({"seldon:version": "1.18.2"}, "seldon:version=1.18.2 is licensed under the Business Source License 1.1"),
        ({"seldon:version": "1.17"}, "seldon:version='1.17' is not a version; write MAJOR.MINOR.PATCH"),
        (
            {"seldon:version": "1.12.0", "kafka:tls": True},
            "kafka:tls=true needs seldon:version >= 1.13.0",
        ),
        (
            {"seldon:version": "1.14.0", **SCRAM_ON},
            "kafka:authentication=scram-sha-512 needs seldon:version >= 1.15.0",
        ),
        (
            {"seldon:version": "1.10.0", "classifier:captureSink": "kafka"},
            "classifier:captureSink=kafka needs seldon:version >= 1.11.0 (direct Kafka logging, LOGGER_KAFKA_BROKER",
        ),
        (
            {"seldon:version": "1.3.0"},
            "classifier:loggerMode=all captures ground truth (feedback events), which seldon:version=1.3.0 cannot do: "
            "the 1.3 executor logs no feedback events (they arrive with 1.4.0)",
        ),
        (
            {"seldon:version": "1.3.2", "classifier:loggerMode": "response"},
            "classifier:loggerMode=response captures ground truth (feedback events), which seldon:version=1.3.2",
        ),
        ({"classifier:loggerMode": "everything"}, "is not allowed; use one of all, request, response, off"),
        (
            {"classifier:image": {"repository": "ghcr.io/x/y", "tag": "latest"}},
            "classifier:image.tag='latest' is not a fixed tag",
        ),
        ({"feedback:image": {"repository": "ghcr.io/x/y", "digest": "sha256:abc"}}, "feedback:image.digest="),
        ({"search:version": "9.1.0"}, "search:version=9.1.0 is not an 8.x release"),
        (
            {"platform:podDisruptionBudgets": True},
            "platform:podDisruptionBudgets=true needs feedback:collectorReplicas",
        ),
        ({"platform:labels": {"team": 7}}, "platform:labels='{\"team\": 7}' must map strings to strings"),
        ({"platform:appNamespace": "Seldon_NS"}, "platform:appNamespace='Seldon_NS' is not a DNS label"),
        ({"objectstore:mode": "distributed"}, "objectstore:replicas=1 is too few for objectstore:mode=distributed"),
        ({"objectstore:replicas": 4}, "objectstore:replicas=4 needs objectstore:mode=distributed"),
        ({"objectstore:bucket": "B"}, "objectstore:bucket='B' is not a valid S3 bucket name"),
        ({"feedback:samplingRate": 1.5}, "feedback:samplingRate=1.5 must be between 0 and 1"),
        ({"feedback:redaction": {"patterns": ["ssn"]}}, "feedback:redaction.patterns: unknown pattern(s) ssn"),
        ({"feedback:redaction": {"regexes": ["(x"]}}, "feedback:redaction.regexes: '(x' is not a valid regular"),
        ({"feedback:redaction": {"headers": ["ce_type"]}}, "feedback:redaction.headers: 'ce_type' cannot be redacted"),
        ({"feedback:redaction": {"fields": "email"}}, "feedback:redaction.fields='email' must be a list of"),
        (
            {"feedback:feedbackJoinWindowSeconds": 2592001},
            "feedback:feedbackJoinWindowSeconds=2592001 must be from 1 to 2592000 seconds",
        ),
        (
            {"feedback:sweepIntervalSeconds": 0.05},
            "feedback:sweepIntervalSeconds=0.05 must be from 0.1 to 3600 seconds",
        ),
        ({"feedback:noResponseAfterSeconds": 0}, "feedback:noResponseAfterSeconds=0 must be from 1 to 86400 seconds"),
        (
            {"feedback:feedbackJoinDelaySeconds": "soon"},
            "feedback:feedbackJoinDelaySeconds='soon'",
        ),
        ({"feedback:indexerReplicas": 4}, "feedback:indexerReplicas=4 exceeds the capture topic's partitions (3)"),
        ({"workflows:imageTag": "latest"}, "workflows:imageTag='latest' is not a release tag; write e.g. v3.7.11"),
        ({"objectstore:imageTag": "latest"}, "objectstore:imageTag='latest' is not a MinIO release tag"),
        ({"workflows:chartVersion": "v0.47.5"}, "workflows:chartVersion='v0.47.5' is not a version"),
        ({"seldon:namespace": "Seldon System"}, "seldon:namespace='Seldon System' is not a DNS label"),
        ({"search:storage": "ten gigs"}, "search:storage='ten gigs' is not a Kubernetes quantity"),
        ({"kafka:operatorNamespace": "seldon"}, "kafka:operatorNamespace=seldon equals platform:appNamespace"),
        ({"flowback:enabled": "yes"}, "flowback:enabled='yes' is not a boolean; use true or false"),
        ({"flowback:bucket": "Registry"}, "flowback:bucket='Registry' is not a valid S3 bucket name"),
        (
            {"flowback:bucket": "seldon-batch"},
            "flowback:bucket=seldon-batch equals objectstore:bucket: the registry gets a bucket of its own",
        ),
        (
            {"flowback:schedule": "nightly"},
            "flowback:schedule='nightly' is not a five-field cron expression (minute hour day month weekday)",
        ),
        ({"flowback:schedule": "0 3 * *"}, "flowback:schedule='0 3 * *' is not a five-field cron expression"),
        (
            {"flowback:schedule": "0 3 * * *", "flowback:timezone": "Mars/Olympus"},
            "flowback:timezone='Mars/Olympus' is not an IANA time zone such as Europe/Berlin or UTC",
        ),
        (
            {"flowback:timezone": "Europe/Berlin"},
            "flowback:timezone is set but flowback:schedule is empty; set a schedule or remove it",
        ),
        ({"flowback:lookback": "1 week"}, "flowback:lookback='1 week' must be a number and one of s, m, h, d"),
        ({"flowback:rule": {"margin": 0.1}}, "flowback:rule='{\"margin\": 0.1}' has unknown field(s) margin; allowed:"),
        ({"flowback:rule": {"confidence": 1.5}}, "flowback:rule.confidence=1.5 must be a number from 0.5 to 0.999"),
        (
            {"flowback:rule": {"minFeedbackRows": 2.5}},
            "flowback:rule.minFeedbackRows=2.5 must be a whole number from 1 to 100000",
        ),
        (
            {"flowback:rule": {"feedbackSignificant": "no"}},
            "flowback:rule.feedbackSignificant='no' must be true or false",
        ),
    ],
)
def test_bad_config_is_rejected_with_the_key_and_the_fix(overrides: dict[str, Any], expected: str) -> None:
    assert expected in config_error("dev", overrides=overrides)


def test_every_problem_is_reported_at_once() -> None:
    message = config_error("dev", overrides={"kafka:replicationFactor": 2, "seldon:version": "1.2.0"})
    assert message.startswith("stack configuration has 2 problem(s):")
    assert "kafka:replicationFactor=2 exceeds kafka:brokers=1" in message
    assert "seldon:version=1.2.0 is older than 1.3.0" in message


ONE_PROBLEM_PER_NAMESPACE = {
    "platform:appNamespace": "Bad_NS",
    "kafka:controllers": 2,
    "search:nodes": 0,
    "objectstore:bucket": "B",
    "workflows:imageTag": "latest",
    "seldon:loggerWorkQueueSize": 0,
    "classifier:replicas": 0,
    "feedback:index": "Bad Index",
    "batch:workers": 0,
    "flowback:lookback": "forever",
}


def test_every_namespace_reader_adds_to_the_one_error_list() -> None:
    assert {key.split(":")[0] for key in ONE_PROBLEM_PER_NAMESPACE} == set(config.NAMESPACES)
    message = config_error("dev", overrides=ONE_PROBLEM_PER_NAMESPACE)
    assert message.startswith(f"stack configuration has {len(ONE_PROBLEM_PER_NAMESPACE)} problem(s):"), message
    for key in ONE_PROBLEM_PER_NAMESPACE:
        assert f"  - {key}=" in message, f"{key} is not reported"


@pytest.mark.parametrize(
    ("overrides", "logger_mode"),
    [
        ({"seldon:version": "1.3.0", "classifier:loggerMode": "request"}, "request"),
        ({"seldon:version": "1.4.0"}, "all"),
        ({"seldon:version": "1.11.0", "classifier:captureSink": "kafka"}, "all"),
    ],
    ids=["1.3-request-only", "1.4-feedback", "1.11-direct-kafka"],
)
def test_the_oldest_version_of_each_feature_is_accepted(overrides: dict[str, Any], logger_mode: str) -> None:
    run = run_program("dev", overrides=overrides)
    assert run.one("kubernetes:helm.sh/v3:Release", "seldon-operator").inputs["version"] == overrides["seldon:version"]
    assert run.one("kubernetes:helm.sh/v4:Chart", "classifier-realtime").inputs["values"]["logger"]["mode"] == (
        logger_mode
    )


def test_bsl_versions_need_the_explicit_opt_in() -> None:
    run = run_program("dev", overrides={"seldon:version": "1.18.2", "seldon:acceptBsl": True})
    release = run.one("kubernetes:helm.sh/v3:Release", "seldon-operator")
    assert release.inputs["version"] == "1.18.2"
    assert release.inputs["values"]["executor"]["image"]["tag"] == "1.18.2"


@pytest.mark.parametrize(
    ("secrets", "plain", "expected"),
    [
        (
            {},
            {},
            "objectstore:rootPassword is required (MinIO root credentials); set it with `pulumi config set --secret",
        ),
        (
            {},
            {"objectstore:rootPassword": "in-clear-text"},
            "objectstore:rootPassword is stored in plain text; store it encrypted with `pulumi config set --secret",
        ),
    ],
    ids=["missing", "plain-text"],
)
def test_secrets_must_be_present_and_encrypted(secrets: dict[str, str], plain: dict[str, str], expected: str) -> None:
    overrides = SCRAM_ON if "kafka" in expected else {}
    assert expected in config_error("dev", overrides=overrides, secrets=secrets, plain=plain)


def test_keys_of_other_namespaces_are_left_alone() -> None:
    run = run_program("dev", overrides={"kubernetes:context": "kind-dev", "aws:region": "eu-west-1"})
    assert run.of_type("kubernetes:kafka.strimzi.io/v1:Kafka")


def test_an_explicit_zero_is_not_replaced_by_the_default() -> None:
    run = run_program("dev", overrides={"classifier:streamingWorkers": 0, "batch:retries": 0})
    batch = run.one("kubernetes:helm.sh/v4:Chart", "batch-workflow")
    assert batch.inputs["values"]["batch"]["retries"] == 0


# ---- stack files, schema and docs ------------------------------------------------------------------------------

SCHEMA_PATH = STACKS / "config.schema.json"


def test_schema_file_is_generated_from_the_declared_keys() -> None:
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == config.json_schema(), "regenerate: python -m infra.config regenerate"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_files_follow_the_schema(env: str) -> None:
    document = yaml.safe_load((STACKS / f"Pulumi.{env}.yaml").read_text())
    errors = [error.message for error in jsonschema.Draft7Validator(config.json_schema()).iter_errors(document)]
    assert errors == [], f"stacks/Pulumi.{env}.yaml breaks stacks/config.schema.json: {errors}"


def test_schema_rejects_unknown_keys_and_plain_secrets() -> None:
    validator = jsonschema.Draft7Validator(config.json_schema())
    assert not validator.is_valid({"config": {"kafka:brokrs": 1}})
    assert not validator.is_valid({"config": {"objectstore:rootPassword": "in-clear-text"}})
    assert validator.is_valid({"config": {"objectstore:rootPassword": {"secure": "v1:abc"}, "aws:region": "x"}})


def test_password_like_keys_are_declared_secret_and_never_plain_in_stack_files() -> None:
    for key in config.KEYS:
        if config.SECRET_NAME.search(key.name.split(":", 1)[1]):
            assert key.kind == "secret", f"{key.name} looks like a credential but is declared {key.kind}"
    for env in ENVIRONMENTS:
        for name, value in stack_config(env).items():
            if config.SECRET_NAME.search(name.split(":", 1)[-1]):
                assert isinstance(value, dict) and set(value) == {"secure"}, (
                    f"stacks/Pulumi.{env}.yaml stores {name} in plain text; use `pulumi config set --secret {name}`"
                )


def test_test_secrets_are_the_secret_keys() -> None:
    assert set(TEST_SECRETS) | set(OPTIONAL_TEST_SECRETS) == {key.name for key in config.KEYS if key.kind == "secret"}
    assert not set(TEST_SECRETS) & set(OPTIONAL_TEST_SECRETS)


def test_docs_list_every_key() -> None:
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text()
    assert config.markdown_table() in docs, "regenerate: python -m infra.config regenerate"


def test_project_file_points_at_the_program_and_the_stacks() -> None:
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    assert project["main"] == "infra/"
    assert project["stackConfigDir"] == "stacks"
    assert project["runtime"]["name"] == "python"
    # Pulumi refuses types on keys outside the project namespace; ours are namespaced (kafka:, seldon:, ...).
    for key, declaration in (project.get("config") or {}).items():
        if ":" in key and not key.startswith(project["name"] + ":"):
            assert "type" not in declaration and "default" not in declaration, key


def test_defaults_live_in_one_place() -> None:
    names = [key.name for key in config.KEYS]
    assert len(names) == len(set(names))
    for path in sorted((REPO_ROOT / "infra" / "config").glob("*.py")):
        source = path.read_text()
        assert not re.search(r"\.get(_int|_bool|_object)?\([^)]*\)\s+or\s", source), f"{path.name}: use `is None`"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"classifier:canaryModelVersion": "1.0.0+abc", "classifier:canaryTraffic": 100},
            "classifier:canaryTraffic must be from 1 to 99 (percent), got 100",
        ),
        (
            {"classifier:canaryModelVersion": "../etc"},
            "classifier:canaryModelVersion '../etc' is not a registry version such as 1.0.0+3f2a9c1d0b7e",
        ),
    ],
    ids=["traffic", "version"],
)
def test_a_canary_setting_that_cannot_work_is_refused(overrides: dict[str, Any], expected: str) -> None:
    assert expected in config_error("dev", overrides=overrides)


def test_a_canary_reaches_only_the_real_time_deployment_with_the_registry_of_the_object_store() -> None:
    run = run_program("dev", overrides={"classifier:canaryModelVersion": "1.0.0+abc"})
    canary = run.one("kubernetes:helm.sh/v4:Chart", "classifier-realtime").inputs["values"]["canary"]
    assert (canary["enabled"], canary["traffic"], canary["modelVersion"]) == (True, 10, "1.0.0+abc")
    flowback = run.one("kubernetes:helm.sh/v4:Chart", "flowback-workflow").inputs["values"]["objectStore"]
    # the bucket the workflow registers versions in (flowback:bucket), not the batch bucket
    assert canary["registry"]["bucket"] == flowback["bucket"] == "flowback"
    assert canary["registry"]["existingSecret"] == flowback["existingSecret"]
    assert "canary" not in run.one("kubernetes:helm.sh/v4:Chart", "classifier-streaming").inputs["values"]


@pytest.mark.parametrize(("key", "variable"), list(SWEEP_VARIABLES.items()))
def test_sweep_timing_ranges_are_the_indexers(key: str, variable: str) -> None:
    """The stack refuses exactly what the indexer would refuse at start: the range ends pass, just outside fails."""
    from feedback.config import SettingsError
    from feedback.indexer.settings import IndexerSettings

    minimum, maximum = SWEEP_RANGES[key]
    base = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "INDEXER_SEARCH_URL": "http://127.0.0.1:9200"}
    for accepted in (minimum, maximum):
        assert IndexerSettings.from_env({**base, variable: str(accepted)}) is not None
    for refused in (minimum * 0.99, maximum * 1.01):
        with pytest.raises(SettingsError, match=variable):
            IndexerSettings.from_env({**base, variable: str(refused)})


@pytest.mark.parametrize("removed", ["kafka:feedbackPassword", "kafka:executorPassword"])
def test_removed_kafka_password_keys_are_refused_naming_what_replaced_them(removed: str) -> None:
    """Breaking change (issue 18): one KafkaUser per client, passwords generated by Strimzi; the old shared-password
    keys are refused, never ignored, with the replacement and the command that removes them."""
    message = config_error("dev", overrides=SCRAM_ON, secrets={removed: "old-password-123"})
    assert f"{removed} is no longer read" in message
    assert "Strimzi's User Operator generates" in message and f"pulumi config rm {removed}" in message


def test_tls_client_authentication_needs_the_tls_listener() -> None:
    message = config_error("dev", overrides={"kafka:authentication": "tls"})
    assert "kafka:authentication=tls needs kafka:tls=true" in message


def test_unknown_kafka_authentication_is_refused_listing_the_choices() -> None:
    message = config_error("dev", overrides={"kafka:authentication": "plain"})
    assert "kafka:authentication" in message and "scram-sha-512" in message and "tls" in message


def test_existing_kafka_client_secret_needs_the_shared_sasl_secret() -> None:
    existing = {"bootstrap": "kafka.corp:9093", "tlsSecret": "corp-ca", "collectorSecret": "corp-collector"}
    message = config_error("dev", overrides={"kafka:existing": existing})
    assert "kafka:existing.collectorSecret needs kafka:existing.saslSecret" in message
