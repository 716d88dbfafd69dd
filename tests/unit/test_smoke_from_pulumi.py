"""Stack outputs (the contract in docs/deploy.md) become a cluster smoke target; port-forwards rewrite addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from smoke_tests import from_pulumi
from smoke_tests.target import TargetError, parse, to_dict

OUTPUTS = {
    "namespaces": {"app": "seldon", "objectStore": "minio"},
    "prediction": {
        "restUrl": "http://text-classifier-default.seldon.svc.cluster.local:8000",
        "grpcAddress": "text-classifier-default.seldon.svc.cluster.local:5001",
        "deployment": "text-classifier",
        "streamingDeployment": "text-classifier-streaming",
        "predictor": "default",
        "namespace": "seldon",
    },
    "kafka": {
        "bootstrap": "seldon-kafka-kafka-bootstrap.seldon.svc.cluster.local:9092",
        "securityProtocol": "PLAINTEXT",
        "caSecret": None,
        "topics": {"modelInput": "model_input", "modelOutput": "model_output", "capture": "seldon-capture"},
    },
    "search": {
        "url": "http://seldon-search-es-http.seldon.svc.cluster.local:9200",
        "index": "seldon-feedback",
        "username": "elastic",
        "credentialsSecret": "seldon-search-es-elastic-user",
        "credentialsSecretKey": "elastic",
    },
    "objectStore": {
        "endpoint": "http://minio.minio.svc.cluster.local:9000",
        "bucket": "seldon-batch",
        "credentialsSecret": "objectstore-credentials",
    },
    "collector": {"url": "http://feedback-pipeline-collector.seldon.svc.cluster.local:8080/"},
    "batch": {"workflowTemplate": "batch-workflow", "namespace": "seldon"},
    "flowback": {
        "enabled": True,
        "workflowTemplate": "flowback-workflow",
        "cronWorkflow": "",
        "namespace": "seldon",
        "bucket": "flowback",
        "modelName": "text-classifier",
        "registryPrefix": "registry/text-classifier/",
        "datasetsPrefix": "datasets/",
        "credentialsSecret": "objectstore-credentials",
    },
    "components": {"collector": {"namespace": "seldon", "selector": "app.kubernetes.io/component=collector"}},
}


class SecretsFromDict(from_pulumi.Kubectl):
    """Answers Secret look-ups from a dict instead of a cluster (pure-logic unit test)."""

    def __init__(self, secrets: dict[tuple[str, str, str], str]) -> None:
        super().__init__()
        self.secrets = secrets
        self.asked: list[tuple[str, str, str]] = []

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        self.asked.append((namespace, name, key))
        return self.secrets[(namespace, name, key)]


SECRETS = {
    ("seldon", "seldon-search-es-elastic-user", "elastic"): "es-pass",
    ("seldon", "objectstore-credentials", "accessKey"): "ak",
    ("seldon", "objectstore-credentials", "secretKey"): "sk",
}


def test_outputs_fill_every_section_and_credentials_come_from_the_named_secrets() -> None:
    kubectl = SecretsFromDict(SECRETS)
    target = from_pulumi.build_target(OUTPUTS, kubectl, {}, name="dev")
    assert target.kind == "cluster"
    assert target.realtime.rest_url == OUTPUTS["prediction"]["restUrl"] and target.realtime.executor
    assert target.streaming is not None and target.streaming.input_topic == "model_input"
    assert target.kafka.capture_topic == "seldon-capture" and target.kafka.config == {}
    assert (target.search.username, target.search.password) == ("elastic", "es-pass")
    assert (target.object_store.access_key, target.object_store.secret_key) == ("ak", "sk")
    assert target.batch is not None and target.batch.runner == "argo"
    assert target.batch.workflow_template == "batch-workflow"
    assert target.cluster is not None and target.cluster.components["collector"].namespace == "seldon"
    assert target.flowback is not None
    assert (target.flowback.bucket, target.flowback.workflow_template, target.flowback.workflow_namespace) == (
        "flowback",
        "flowback-workflow",
        "seldon",
    )
    assert parse(to_dict(target)) == target  # what `write` saves reads back unchanged
    without = {key: value for key, value in OUTPUTS.items() if key != "flowback"}  # a stack from before the flow back
    assert from_pulumi.build_target(without, SecretsFromDict(SECRETS), {}, name="dev").flowback is None


def test_variables_replace_secret_lookups() -> None:
    kubectl = SecretsFromDict({})
    env = {"SMOKE_SEARCH_PASSWORD": "p", "SMOKE_S3_ACCESS_KEY": "a", "SMOKE_S3_SECRET_KEY": "s"}
    target = from_pulumi.build_target(OUTPUTS, kubectl, env, name="dev")
    assert kubectl.asked == [] and target.search.password == "p"


def test_sasl_without_credentials_says_what_to_set() -> None:
    outputs = {**OUTPUTS, "kafka": {**OUTPUTS["kafka"], "securityProtocol": "SASL_SSL"}}
    with pytest.raises(TargetError, match="SMOKE_KAFKA_CONFIG="):
        from_pulumi.build_target(outputs, SecretsFromDict(SECRETS), {}, name="prod")


def test_cluster_ca_travels_inside_the_target() -> None:
    outputs = {**OUTPUTS, "kafka": {**OUTPUTS["kafka"], "securityProtocol": "SSL", "caSecret": "seldon-kafka-ca"}}
    secrets = {**SECRETS, ("seldon", "seldon-kafka-ca", "ca.crt"): "-----BEGIN CERTIFICATE-----\nx\n"}
    target = from_pulumi.build_target(outputs, SecretsFromDict(secrets), {}, name="prod")
    assert target.kafka.config == {"security.protocol": "SSL", "ssl.ca.pem": "-----BEGIN CERTIFICATE-----\nx\n"}


def test_missing_output_is_named(tmp_path: Path) -> None:
    outputs = {key: value for key, value in OUTPUTS.items() if key != "objectStore"}
    with pytest.raises(TargetError, match="stack output objectStore is missing"):
        from_pulumi.build_target(outputs, SecretsFromDict(SECRETS), {}, name="dev")


def test_port_forwards_rewrite_every_address_to_loopback() -> None:
    target = from_pulumi.build_target(OUTPUTS, SecretsFromDict(SECRETS), {}, name="dev")
    local, forwards = from_pulumi.forwarded(target)
    services = {(f.service, f.namespace, f.remote_port) for f in forwards}
    assert services == {
        ("text-classifier-default", "seldon", 8000),
        ("text-classifier-default", "seldon", 5001),
        ("seldon-kafka-kafka-bootstrap", "seldon", 9092),
        ("seldon-search-es-http", "seldon", 9200),
        ("minio", "minio", 9000),
        ("feedback-pipeline-collector", "seldon", 8080),
    }
    ports = {f.remote_port: f.local_port for f in forwards}
    assert local.realtime.rest_url == f"http://127.0.0.1:{ports[8000]}"
    assert local.realtime.grpc_address == f"127.0.0.1:{ports[5001]}"
    assert local.collector is not None and local.collector.url == f"http://127.0.0.1:{ports[8080]}/"
    assert local.kafka.bootstrap == f"127.0.0.1:{ports[9092]}"
    assert local.search.password == "es-pass"


def test_not_a_service_address_is_rejected() -> None:
    with pytest.raises(TargetError, match="is not an in-cluster service address"):
        from_pulumi.service_of("http://localhost:8000")
