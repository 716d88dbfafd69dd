"""ENGINE_PREDICTOR: a good spec gives the node the engine calls; every bad one fails at start naming the field."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from devstack.engine.spec import SpecError, encode, parse_predictor

GOOD: dict[str, Any] = {
    "name": "default",
    "graph": {
        "name": "classifier",
        "type": "MODEL",
        "endpoint": {
            "type": "REST",
            "service_host": "127.0.0.1",
            "service_port": 9000,
            "httpPort": 9000,
            "grpcPort": 9500,
        },
        "children": [],
        "logger": {"mode": "all", "url": "http://127.0.0.1:8080/"},
    },
    "componentSpecs": [{"spec": {"containers": [{"name": "classifier"}]}}],
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the dotted `path` set to `value` (a value of DELETE removes the key)."""
    spec = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return spec


DELETE = object()


def test_a_chart_rendered_spec_gives_the_node_its_ports_and_logger() -> None:
    spec = parse_predictor(encode(GOOD))
    node = spec.graph
    assert (spec.name, node.name, node.type) == ("default", "classifier", "MODEL")
    assert (node.endpoint.host, node.endpoint.service_port, node.endpoint.http_port, node.endpoint.grpc_port) == (
        "127.0.0.1",
        9000,
        9000,
        9500,
    )
    assert node.logger is not None and (node.logger.mode, node.logger.url) == ("all", "http://127.0.0.1:8080/")


def test_the_logger_url_defaults_to_request_logger_default_endpoint() -> None:
    spec = parse_predictor(encode(with_change("graph.logger.url", DELETE)), "http://collector:8080/")
    assert spec.graph.logger is not None and spec.graph.logger.url == "http://collector:8080/"
    assert parse_predictor(encode(with_change("graph.logger", DELETE))).graph.logger is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (with_change("name", DELETE), "ENGINE_PREDICTOR: name is missing"),
        (with_change("graph", DELETE), "ENGINE_PREDICTOR: graph is missing"),
        (with_change("graph.endpoint.httpPort", DELETE), "ENGINE_PREDICTOR: graph.endpoint.httpPort is missing"),
        (with_change("graph.endpoint.grpcPort", "9500"), "graph.endpoint.grpcPort must be int, got '9500'"),
        (with_change("graph.endpoint.service_port", 70000), "graph.endpoint.service_port=70000 is not a TCP port"),
        (with_change("graph.endpoint.service_host", ""), "graph.endpoint.service_host is empty"),
        (with_change("graph.endpoint", DELETE), "ENGINE_PREDICTOR: graph.endpoint is missing"),
        (with_change("graph.logger.mode", "everything"), "graph.logger.mode='everything' is not one of all, request"),
        (with_change("graph.logger.url", DELETE), "graph.logger.url is missing and REQUEST_LOGGER_DEFAULT_ENDPOINT"),
        (with_change("graph.logger.url", "collector:8080"), "graph.logger.url='collector:8080' is not an http(s) URL"),
        (with_change("graph.type", "ROUTER"), "graph.type='ROUTER': the local engine serves a single MODEL node"),
        (with_change("graph.children", [{"name": "x"}]), "graph.children is not empty"),
        (with_change("graph.name", 3), "ENGINE_PREDICTOR: graph.name must be str, got 3"),
    ],
)
def test_a_bad_spec_names_its_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as error:
        parse_predictor(encode(spec))
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "ENGINE_PREDICTOR is empty"),
        ("not base64!", "ENGINE_PREDICTOR is not base64"),
        (base64.b64encode(b"{not json").decode(), "ENGINE_PREDICTOR does not hold JSON"),
        (base64.b64encode(json.dumps([1]).encode()).decode(), "must hold a JSON object (a PredictorSpec), got list"),
    ],
)
def test_a_bad_encoding_says_what_it_is(value: str, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_predictor(value)


def test_direct_kafka_logging_needs_no_logger_url() -> None:
    spec = parse_predictor(encode(with_change("graph.logger.url", DELETE)), direct_kafka=True)
    assert spec.graph.logger is not None and spec.graph.logger.url == ""
