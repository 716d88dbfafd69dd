"""The local stack's executor takes its definition from the text-classifier chart's rendered SeldonDeployment:
deployment, predictor graph, ports, logger and Kafka settings come out as the chart renders them."""

from __future__ import annotations

from pathlib import Path

from tools import helm


def test_realtime_definition_matches_the_chart_defaults(helm_bin: Path) -> None:
    definition = helm.executor_definition()
    assert (definition.deployment, definition.namespace, definition.server_type) == ("text-classifier", "seldon", "rpc")
    assert definition.predictor["name"] == "default"
    assert definition.predictor["graph"]["name"] == "classifier"
    assert definition.logger_mode == "all"
    assert definition.logger_url == "http://feedback-pipeline-collector.seldon.svc.cluster.local:8080/"
    assert (definition.model_http_port, definition.model_grpc_port) == (9000, 9500)
    assert definition.env == {} and definition.secret_env == ()


def test_local_predictor_points_the_graph_at_a_local_model(helm_bin: Path) -> None:
    definition = helm.executor_definition()
    predictor = definition.local_predictor("127.0.0.1", 19000, 19500, logger_url="http://127.0.0.1:18080/")
    graph = predictor["graph"]
    assert graph["endpoint"] == {
        "type": "REST",
        "service_host": "127.0.0.1",
        "service_port": 19000,
        "httpPort": 19000,
        "grpcPort": 19500,
    }
    assert graph["logger"] == {"mode": "all", "url": "http://127.0.0.1:18080/"}
    assert "service_host" not in definition.predictor["graph"]["endpoint"], "the definition itself stays unchanged"

    grpc = helm.executor_definition({"transport": "grpc"}).local_predictor("127.0.0.1", 19000, 19500)
    assert grpc["graph"]["endpoint"]["service_port"] == 19500, "with gRPC transport the operator uses the gRPC port"


def test_streaming_and_direct_kafka_settings_come_from_the_chart(helm_bin: Path) -> None:
    values = {
        "mode": "streaming",
        "kafka": {"broker": "127.0.0.1:39092"},
        "streaming": {"inputTopic": "in", "outputTopic": "out"},
        "logger": {"sink": "kafka", "kafka": {"topic": "capture"}},
    }
    definition = helm.executor_definition(values)
    assert definition.deployment == "text-classifier-streaming"
    assert definition.server_type == "kafka"
    assert definition.env == {
        "KAFKA_BROKER": "127.0.0.1:39092",
        "KAFKA_INPUT_TOPIC": "in",
        "KAFKA_OUTPUT_TOPIC": "out",
        "LOGGER_KAFKA_BROKER": "127.0.0.1:39092",
        "LOGGER_KAFKA_TOPIC": "capture",
    }
    assert (definition.logger_mode, definition.logger_url) == ("all", None)


def test_secret_references_are_listed_not_resolved(helm_bin: Path) -> None:
    values = {"mode": "streaming", "kafka": {"securityProtocol": "SASL_SSL", "sasl": {"existingSecret": "user"}}}
    definition = helm.executor_definition(values)
    assert definition.env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert ("KAFKA_SASL_PASSWORD", "user", "password") in definition.secret_env
