"""text-classifier chart: the rendered SeldonDeployment's wiring (graph, modes, topics, brokers, capture sink, the
collector URL) and the values the schema or the templates reject, with Helm's message asserted verbatim."""

from __future__ import annotations

from typing import Any

import pytest
from feedback.flowback.__main__ import _parser

from tests.fixtures.charts import NAMESPACE, RenderFn, env_of, one, service_url

CHART = "text-classifier"
BROKER = "kafka-a.kafka.svc:9092,kafka-b.kafka.svc:9092"


def sdep(chart_render: RenderFn, values: dict[str, Any] | None = None) -> dict[str, Any]:
    objects = chart_render(CHART, values)
    assert [o["kind"] for o in objects] == ["SeldonDeployment"]
    return objects[0]


def executor_env(deployment: dict[str, Any]) -> dict[str, Any]:
    return env_of(deployment["spec"]["predictors"][0]["svcOrchSpec"])


def test_realtime_defaults_are_the_contract_the_local_stack_reads(chart_render: RenderFn) -> None:
    deployment = sdep(chart_render)
    assert deployment["apiVersion"] == "machinelearning.seldon.io/v1"
    assert deployment["metadata"] == {**deployment["metadata"], "name": "text-classifier", "namespace": NAMESPACE}
    spec = deployment["spec"]
    assert (spec["serverType"], spec["protocol"], spec["transport"]) == ("rpc", "seldon", "rest")
    [predictor] = spec["predictors"]
    assert predictor["name"] == "default"
    graph = predictor["graph"]
    assert (graph["name"], graph["type"], graph["children"]) == ("classifier", "MODEL", [])
    assert graph["logger"]["mode"] == "all"
    [component] = predictor["componentSpecs"]
    [container] = component["spec"]["containers"]
    assert container["name"] == graph["name"], "Seldon finds the model container by the graph node's name"
    assert container["image"] == "ghcr.io/seldon-feedback/text-classifier:0.1.0"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 9000, "grpc": 9500, "metrics": 6000}
    assert "env" not in predictor["svcOrchSpec"], "real-time capture through the collector needs no executor env"


def test_logger_url_is_the_collector_service_in_cluster_url(chart_render: RenderFn) -> None:
    collector = one(chart_render("feedback-pipeline"), "Service", "feedback-pipeline-collector")
    url = sdep(chart_render)["spec"]["predictors"][0]["graph"]["logger"]["url"]
    assert url == service_url(collector) == "http://feedback-pipeline-collector.seldon.svc.cluster.local:8080/"


def test_logger_url_follows_a_renamed_or_remote_collector(chart_render: RenderFn) -> None:
    collector = one(
        chart_render(
            "feedback-pipeline", {"collector": {"service": {"port": 80}}}, release="capture", namespace="feedback"
        ),
        "Service",
    )
    located = {"serviceName": collector["metadata"]["name"], "namespace": "feedback", "port": 80}
    values = {"logger": {"collector": located}}
    url = sdep(chart_render, values)["spec"]["predictors"][0]["graph"]["logger"]["url"]
    assert url == service_url(collector) == "http://capture-feedback-pipeline-collector.feedback.svc.cluster.local:80/"
    explicit = sdep(chart_render, {"logger": {"url": "https://collector.example.com/capture"}})
    assert explicit["spec"]["predictors"][0]["graph"]["logger"]["url"] == "https://collector.example.com/capture"


def test_streaming_mode_consumes_and_produces_the_configured_topics(chart_render: RenderFn) -> None:
    deployment = sdep(chart_render, {"mode": "streaming", "kafka": {"broker": BROKER}, "streaming": {"workers": 8}})
    assert deployment["metadata"]["name"] == "text-classifier-streaming", "a streaming release is its own SDep"
    assert deployment["spec"]["serverType"] == "kafka"
    env = executor_env(deployment)
    assert env == {
        "KAFKA_BROKER": BROKER,
        "KAFKA_INPUT_TOPIC": "model_input",
        "KAFKA_OUTPUT_TOPIC": "model_output",
        "KAFKA_WORKERS": "8",
    }
    assert deployment["spec"]["predictors"][0]["graph"]["logger"]["url"].startswith(
        "http://feedback-pipeline-collector"
    )

    renamed = sdep(chart_render, {"mode": "streaming", "streaming": {"inputTopic": "in.v2", "outputTopic": "out.v2"}})
    assert executor_env(renamed)["KAFKA_INPUT_TOPIC"] == "in.v2"
    assert executor_env(renamed)["KAFKA_OUTPUT_TOPIC"] == "out.v2"


def test_direct_kafka_capture_sets_logger_env_and_no_url(chart_render: RenderFn) -> None:
    deployment = sdep(chart_render, {"kafka": {"broker": BROKER}, "logger": {"sink": "kafka", "mode": "request"}})
    logger = deployment["spec"]["predictors"][0]["graph"]["logger"]
    assert logger == {"mode": "request"}, "with LOGGER_KAFKA_BROKER the executor ignores the URL; none is rendered"
    assert executor_env(deployment) == {"LOGGER_KAFKA_BROKER": BROKER, "LOGGER_KAFKA_TOPIC": "seldon-capture"}

    own_broker = sdep(chart_render, {"logger": {"sink": "kafka", "kafka": {"broker": "capture:9092", "topic": "cap"}}})
    assert executor_env(own_broker) == {"LOGGER_KAFKA_BROKER": "capture:9092", "LOGGER_KAFKA_TOPIC": "cap"}


def test_streaming_with_direct_kafka_capture_uses_one_broker(chart_render: RenderFn) -> None:
    env = executor_env(
        sdep(chart_render, {"mode": "streaming", "kafka": {"broker": BROKER}, "logger": {"sink": "kafka"}})
    )
    assert env["KAFKA_BROKER"] == env["LOGGER_KAFKA_BROKER"] == BROKER


def test_capture_off_renders_no_logger(chart_render: RenderFn) -> None:
    deployment = sdep(chart_render, {"logger": {"mode": "off", "sink": "kafka"}})
    assert "logger" not in deployment["spec"]["predictors"][0]["graph"]
    assert "env" not in deployment["spec"]["predictors"][0]["svcOrchSpec"]


def test_strimzi_user_secrets_give_the_executor_its_own_login(chart_render: RenderFn) -> None:
    """Strimzi's KafkaUser Secret holds the password (SCRAM) or user.crt/user.key (TLS), not the user name and not
    the cluster CA: the user name is a value, the client certificate comes from its own Secret."""
    values = {
        "mode": "streaming",
        "kafka": {
            "securityProtocol": "SASL_SSL",
            "tls": {"existingSecret": "seldon-kafka-cluster-ca-cert"},
            "sasl": {"existingSecret": "seldon-executor", "username": "seldon-executor"},
        },
    }
    env = executor_env(sdep(chart_render, values))
    assert env["KAFKA_SASL_USERNAME"] == "seldon-executor"
    assert env["KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "seldon-executor", "key": "password"}}
    tls = {
        "existingSecret": "seldon-kafka-cluster-ca-cert",
        "clientSecret": "seldon-executor",
        "clientCertKey": "user.crt",
        "clientKeyKey": "user.key",
    }
    env = executor_env(sdep(chart_render, {"mode": "streaming", "kafka": {"securityProtocol": "SSL", "tls": tls}}))
    assert env["KAFKA_SSL_CA_CERT"] == {"secretKeyRef": {"name": "seldon-kafka-cluster-ca-cert", "key": "ca.crt"}}
    assert env["KAFKA_SSL_CLIENT_CERT"] == {"secretKeyRef": {"name": "seldon-executor", "key": "user.crt"}}
    assert env["KAFKA_SSL_CLIENT_KEY"] == {"secretKeyRef": {"name": "seldon-executor", "key": "user.key"}}


def test_sasl_credentials_come_from_secrets_only(chart_render: RenderFn) -> None:
    values = {
        "mode": "streaming",
        "kafka": {
            "securityProtocol": "SASL_SSL",
            "tls": {"existingSecret": "cluster-ca", "caCertKey": "ca.crt", "clientCertKey": "user.crt"},
            "sasl": {"existingSecret": "kafka-user", "mechanism": "SCRAM-SHA-512"},
        },
    }
    env = executor_env(sdep(chart_render, values))
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_USERNAME"] == {"secretKeyRef": {"name": "kafka-user", "key": "username"}}
    assert env["KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "kafka-user", "key": "password"}}
    assert env["KAFKA_SSL_CA_CERT"] == {"secretKeyRef": {"name": "cluster-ca", "key": "ca.crt"}}
    assert env["KAFKA_SSL_CLIENT_CERT"] == {"secretKeyRef": {"name": "cluster-ca", "key": "user.crt"}}
    assert "KAFKA_SSL_CLIENT_KEY" not in env


def test_image_digest_wins_over_tag(chart_render: RenderFn) -> None:
    digest = "sha256:" + "ab" * 32
    deployment = sdep(chart_render, {"image": {"tag": "9.9.9", "digest": digest}})
    container = deployment["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/seldon-feedback/text-classifier@{digest}"


def test_hpa_replaces_fixed_replicas(chart_render: RenderFn) -> None:
    predictor = sdep(chart_render, {"hpa": {"enabled": True, "minReplicas": 2, "maxReplicas": 5}})["spec"][
        "predictors"
    ][0]
    assert "replicas" not in predictor
    hpa = predictor["componentSpecs"][0]["hpaSpec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert hpa["metricsv2"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert sdep(chart_render, {"replicas": 3})["spec"]["predictors"][0]["replicas"] == 3


def test_seldon_annotations_reach_the_spec(chart_render: RenderFn) -> None:
    deployment = sdep(chart_render, {"annotations": {"seldon.io/rest-timeout": "5000"}})
    assert deployment["spec"]["annotations"] == {"seldon.io/rest-timeout": "5000"}


SCHEMA_ERRORS = (
    "Error: values don't meet the specifications of the schema(s) in the following chart(s):\ntext-classifier:\n"
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "batch"}, "- at '/mode': value must be one of 'realtime', 'streaming'"),
        (
            {"logger": {"mode": "verbose"}},
            "- at '/logger/mode': value must be one of 'all', 'request', 'response', 'off'",
        ),
        ({"logger": {"sink": "http"}}, "- at '/logger/sink': value must be one of 'collector', 'kafka'"),
        (
            {"image": {"tag": "latest"}},
            "- at '/image/tag': value must be 'a fixed version such as 0.1.0 (latest is not allowed), or set "
            "image.digest'",
        ),
        ({"replicas": "two"}, "- at '/replicas': got string, want integer"),
        ({"hpa": {"enabled": "yes"}}, "- at '/hpa/enabled': got string, want boolean"),
        ({"streaming": {"workers": -1}}, "- at '/streaming/workers': minimum: got -1, want 0"),
        (
            {"kafka": {"securityProtocol": "TLS"}},
            "- at '/kafka/securityProtocol': value must be one of 'PLAINTEXT', 'SSL', 'SASL_SSL'",
        ),
        ({"replica": 2}, "- at '': additional properties 'replica' not allowed"),
        ({"securityContext": {"runAsNonRoot": False}}, "- at '/securityContext/runAsNonRoot': value must be true"),
    ],
    ids=[
        "mode",
        "logger-mode",
        "logger-sink",
        "latest",
        "replicas-type",
        "bool-type",
        "workers",
        "protocol",
        "unknown",
        "root",
    ],
)
def test_schema_rejects_bad_values(chart_render_error: Any, values: dict[str, Any], message: str) -> None:
    error = chart_render_error(CHART, values)
    assert SCHEMA_ERRORS + message in error


def test_sasl_without_a_secret_is_rejected_with_the_fix(chart_render_error: Any) -> None:
    error = chart_render_error(CHART, {"kafka": {"securityProtocol": "SASL_SSL"}})
    assert (
        "kafka.securityProtocol SASL_SSL needs kafka.sasl.existingSecret: the name of a Secret with the SASL user "
        "name and password" in error
    )


CANARY = {"canary": {"enabled": True, "traffic": 25, "modelVersion": "1.0.0+ac00925b3508"}}


def predictors_by_name(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in deployment["spec"]["predictors"]}


def test_no_canary_means_one_predictor_without_a_traffic_split(chart_render: RenderFn) -> None:
    [predictor] = sdep(chart_render)["spec"]["predictors"]
    assert "traffic" not in predictor
    assert predictor["labels"]["seldon-feedback/predictor-role"] == "main"
    assert "initContainers" not in predictor["componentSpecs"][0]["spec"]


def test_a_canary_predictor_splits_traffic_and_serves_a_registered_version(chart_render: RenderFn) -> None:
    predictors = predictors_by_name(sdep(chart_render, CANARY))
    assert sorted(predictors) == ["canary", "default"]
    main, canary = predictors["default"], predictors["canary"]
    assert (main["traffic"], canary["traffic"]) == (75, 25)
    assert canary["labels"]["seldon-feedback/predictor-role"] == "canary"
    assert canary["graph"]["logger"] == main["graph"]["logger"], "both predictors are captured the same way"
    spec = canary["componentSpecs"][0]["spec"]
    [init] = spec["initContainers"]
    assert _parser().parse_args(init["args"]).version == "1.0.0+ac00925b3508"
    assert init["command"] == ["python", "-m", "feedback.flowback"]
    assert env_of(init)["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "flowback-object-store", "key": "accessKey"}}
    [container] = spec["containers"]
    assert env_of(container)["MODEL_ARTIFACTS_DIR"] == "/mnt/registry-model"
    assert container["volumeMounts"] == [
        {"name": "registry-model", "mountPath": "/mnt/registry-model", "readOnly": True}
    ]
    assert container["image"] == main["componentSpecs"][0]["spec"]["containers"][0]["image"]
    assert "MODEL_ARTIFACTS_DIR" not in env_of(main["componentSpecs"][0]["spec"]["containers"][0])


def test_a_canary_image_replaces_the_registry_version(chart_render: RenderFn) -> None:
    values = {"canary": {"enabled": True, "image": {"tag": "0.2.0"}}}
    canary = predictors_by_name(sdep(chart_render, values))["canary"]
    spec = canary["componentSpecs"][0]["spec"]
    assert spec["containers"][0]["image"] == "ghcr.io/seldon-feedback/text-classifier:0.2.0"
    assert "initContainers" not in spec


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**CANARY, "mode": "streaming"}, 'canary.enabled needs mode "realtime" (got "streaming")'),
        ({"canary": {**CANARY["canary"], "predictorName": "default"}}, 'canary.predictorName "default" must differ'),
        ({"canary": {"enabled": True}}, "canary.enabled needs canary.modelVersion (a registered version) or"),
    ],
    ids=["streaming", "same-name", "no-model"],
)
def test_a_canary_that_cannot_work_is_rejected_with_the_fix(chart_render_error: Any, values: dict, message: str):
    assert message in chart_render_error(CHART, values)


@pytest.mark.parametrize("traffic", [0, 100])
def test_the_canary_share_is_between_one_and_ninety_nine_percent(chart_render_error: Any, traffic: int) -> None:
    error = chart_render_error(CHART, {"canary": {**CANARY["canary"], "traffic": traffic}})
    bound = "minimum: got 0, want 1" if traffic == 0 else "maximum: got 100, want 99"
    assert SCHEMA_ERRORS + f"- at '/canary/traffic': {bound}" in error
