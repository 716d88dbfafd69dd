"""The predictor the engine serves, read from ENGINE_PREDICTOR like the real executor reads it.

ENGINE_PREDICTOR is the base64 (standard alphabet) of the operator's `v1.PredictorSpec` as JSON (README
"Start-up"); the local stack renders it from our chart (tools.helm.executor_definition). A node's endpoint is
`service_host`, `service_port` (the readiness TCP check), `httpPort` (REST calls), `grpcPort` (gRPC calls); its
logger is `{"url": ..., "mode": "all"|"request"|"response"}`, the URL defaulting to
REQUEST_LOGGER_DEFAULT_ENDPOINT.

The engine stands in for the executor of this project's classifier, a single-model graph: a graph with children,
routers, combiners or transformers is refused at start, naming the field, instead of being half served.

    spec = parse_predictor(os.environ["ENGINE_PREDICTOR"], default_logger_url="")   # SpecError names the field
    spec.graph.endpoint.http_port, spec.graph.logger.mode
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

LOGGER_MODES = ("all", "request", "response")
SUPPORTED_NODE_TYPES = ("MODEL",)


class SpecError(ValueError):
    """The predictor spec is unusable; the message names ENGINE_PREDICTOR's field and how to fix it."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    service_port: int  # the readiness check connects here
    http_port: int  # REST calls: /predict, /send-feedback
    grpc_port: int  # gRPC calls: /seldon.protos.Model/Predict, SendFeedback


@dataclass(frozen=True)
class Logger:
    mode: str  # all | request | response
    url: str  # "" only with direct Kafka logging, where no URL is used

    @property
    def logs_requests(self) -> bool:
        return self.mode in ("all", "request")

    @property
    def logs_responses(self) -> bool:
        return self.mode in ("all", "response")

    @property
    def logs_feedback(self) -> bool:  # predictor_process.go Feedback: mode response or all
        return self.mode in ("all", "response")


@dataclass(frozen=True)
class Node:
    name: str  # Ce-Modelid
    type: str
    endpoint: Endpoint
    logger: Logger | None


@dataclass(frozen=True)
class PredictorSpec:
    name: str
    graph: Node


def _field(obj: Any, path: str, key: str, kind: type, required: bool = True) -> Any:
    where = f"{path}.{key}" if path else key
    if not isinstance(obj, dict):
        raise SpecError(f"ENGINE_PREDICTOR: {path or 'the spec'} must be an object, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        if required:
            raise SpecError(f"ENGINE_PREDICTOR: {where} is missing")
        return None
    value = obj[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise SpecError(f"ENGINE_PREDICTOR: {where} must be {kind.__name__}, got {value!r}")
    return value


def _port(endpoint: dict[str, Any], key: str) -> int:
    value = _field(endpoint, "graph.endpoint", key, int)
    if not 0 < value < 65536:
        raise SpecError(f"ENGINE_PREDICTOR: graph.endpoint.{key}={value} is not a TCP port (1-65535)")
    return int(value)


def decode(encoded: str) -> dict[str, Any]:
    """The JSON object inside ENGINE_PREDICTOR's base64."""
    if not encoded.strip():
        raise SpecError(
            "ENGINE_PREDICTOR is empty: set it to the base64 of the predictor's JSON spec (the operator does; "
            "the local stack renders it from charts/text-classifier)"
        )
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SpecError(f"ENGINE_PREDICTOR is not base64 (standard alphabet): {exc}") from None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SpecError(f"ENGINE_PREDICTOR does not hold JSON once decoded: {exc}") from None
    if not isinstance(value, dict):
        raise SpecError(f"ENGINE_PREDICTOR must hold a JSON object (a PredictorSpec), got {type(value).__name__}")
    return value


def encode(predictor: dict[str, Any]) -> str:
    """ENGINE_PREDICTOR's value for a predictor spec (what the operator writes into the executor's env)."""
    return base64.b64encode(json.dumps(predictor).encode()).decode()


def parse_logger(graph: dict[str, Any], default_logger_url: str, direct_kafka: bool) -> Logger | None:
    logger = _field(graph, "graph", "logger", dict, required=False)
    if logger is None:
        return None
    mode = _field(logger, "graph.logger", "mode", str, required=False) or "all"
    if mode not in LOGGER_MODES:
        raise SpecError(f"ENGINE_PREDICTOR: graph.logger.mode={mode!r} is not one of {', '.join(LOGGER_MODES)}")
    url = _field(logger, "graph.logger", "url", str, required=False) or default_logger_url
    if direct_kafka:
        return Logger(mode=mode, url=url)
    if not url:
        raise SpecError(
            "ENGINE_PREDICTOR: graph.logger.url is missing and REQUEST_LOGGER_DEFAULT_ENDPOINT is not set; give the "
            "logger a URL (e.g. the collector's http://127.0.0.1:PORT/) or log straight to Kafka (--log_kafka_broker)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(f"ENGINE_PREDICTOR: graph.logger.url={url!r} is not an http(s) URL with a host")
    return Logger(mode=mode, url=url)


def parse_predictor(encoded: str, default_logger_url: str = "", direct_kafka: bool = False) -> PredictorSpec:
    """Decode and check ENGINE_PREDICTOR; `default_logger_url` is REQUEST_LOGGER_DEFAULT_ENDPOINT."""
    return predictor_from_dict(decode(encoded), default_logger_url, direct_kafka)


def predictor_from_dict(
    spec: dict[str, Any], default_logger_url: str = "", direct_kafka: bool = False
) -> PredictorSpec:
    name = _field(spec, "", "name", str)
    graph = _field(spec, "", "graph", dict)
    node_name = _field(graph, "graph", "name", str)
    node_type = _field(graph, "graph", "type", str, required=False) or "MODEL"
    if node_type not in SUPPORTED_NODE_TYPES:
        raise SpecError(
            f"ENGINE_PREDICTOR: graph.type={node_type!r}: the local engine serves a single MODEL node (the "
            "classifier's graph); routers, combiners and transformers need the real executor (DEVSTACK_EXECUTOR_BIN)"
        )
    if _field(graph, "graph", "children", list, required=False):
        raise SpecError(
            "ENGINE_PREDICTOR: graph.children is not empty: the local engine serves a single-model graph; run the "
            "real executor (DEVSTACK_EXECUTOR_BIN) for graphs with children"
        )
    endpoint = _field(graph, "graph", "endpoint", dict)
    host = _field(endpoint, "graph.endpoint", "service_host", str)
    if not host:
        raise SpecError("ENGINE_PREDICTOR: graph.endpoint.service_host is empty")
    return PredictorSpec(
        name=name,
        graph=Node(
            name=node_name,
            type=node_type,
            endpoint=Endpoint(
                host=host,
                service_port=_port(endpoint, "service_port"),
                http_port=_port(endpoint, "httpPort"),
                grpc_port=_port(endpoint, "grpcPort"),
            ),
            logger=parse_logger(graph, default_logger_url, direct_kafka),
        ),
    )
