"""`python -m devstack.engine`: flags, environment and wiring only (executor/cmd/executor/main.go).

It takes the real executor's flags and environment (README "Start-up"), so one command line runs either this
engine or a real executor binary:

    ENGINE_PREDICTOR=<base64 PredictorSpec JSON> python -m devstack.engine --sdep text-classifier \\
        --namespace seldon --predictor default --http_port 8000 --grpc_port 5001 [--server_type kafka ...]

plus three of our own, which the real binary does not have (so they also come from the environment):
`--bind` (default 127.0.0.1; any other address is refused unless `--allow-non-loopback`), `--seldon-version`
(env SELDON_VERSION, default 1.17.1: which executor to behave as, devstack/engine/versions.py) and
`--max-body-bytes` (env ENGINE_MAX_BODY_BYTES, default 10 MiB: larger REST bodies get 413, larger gRPC messages
RESOURCE_EXHAUSTED). A bad flag, variable or predictor spec stops the start with one line naming it (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devstack.engine.spec import PredictorSpec, SpecError, parse_predictor
from devstack.engine.versions import RECORDED, Behaviour, VersionError, behaviour_of, first_version_with

log = logging.getLogger("devstack.engine")

PROTOCOLS = ("seldon", "tensorflow", "v2", "kfserving")
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
LOG_TOPIC_DEFAULT = "seldon"  # upstream's LOGGER_KAFKA_TOPIC default when a log broker is set


class ConfigError(ValueError):
    """A flag, variable or the predictor spec is wrong; the message names it and the fix."""


@dataclass(frozen=True)
class EngineConfig:
    deployment: str
    namespace: str
    predictor_name: str
    spec: PredictorSpec
    behaviour: Behaviour
    protocol: str
    transport: str
    server_type: str
    bind: str
    http_port: int
    grpc_port: int
    hostname: str
    prometheus_path: str
    logger_workers: int
    log_buffer_size: int
    log_write_timeout_ms: int
    log_kafka_broker: str
    log_kafka_topic: str
    kafka_broker: str
    kafka_input_topic: str
    kafka_output_topic: str
    kafka_workers: int
    kafka_auto_commit: bool
    kafka_client_config: Mapping[str, Any] = field(default_factory=dict)
    graceful_timeout_s: float = 15.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_level: str = "info"

    @property
    def serves_grpc(self) -> bool:
        return self.transport == "grpc" or self.behaviour.grpc_with_rest_transport

    @property
    def source_url(self) -> str:
        return f"http://{self.hostname}:{self.http_port}/"


def _go_bool(text: str, name: str) -> bool:
    value = text.strip()
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ConfigError(f"{name}={text!r} is not a boolean; write true or false")


def _int(text: str | int, name: str, low: int = 0) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={text!r} is not a whole number") from None
    if value < low:
        raise ConfigError(f"{name}={value} must be at least {low}")
    return value


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def go_duration_s(text: str, name: str) -> float:
    """A Go duration such as 15s, 500ms, 1m (a bare number is seconds)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ConfigError(f"{name}={text!r} is not a duration; write e.g. 15s, 500ms or 1m")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match[2] or "s"]
    return float(match[1]) * scale


def kafka_security(env: Mapping[str, str]) -> dict[str, Any]:
    """librdkafka settings from the executor's Kafka security variables (seldon-core-v1.md 3.5)."""
    conf: dict[str, Any] = {}
    protocol = env.get("KAFKA_SECURITY_PROTOCOL", "").strip()
    if protocol:
        conf["security.protocol"] = protocol.lower()
    for variable, pem_key, file_key in (
        ("KAFKA_SSL_CA_CERT", "ssl.ca.pem", "ssl.ca.location"),
        ("KAFKA_SSL_CLIENT_CERT", "ssl.certificate.pem", "ssl.certificate.location"),
        ("KAFKA_SSL_CLIENT_KEY", "ssl.key.pem", "ssl.key.location"),
    ):
        if env.get(f"{variable}_FILE"):
            conf[file_key] = env[f"{variable}_FILE"]
        elif env.get(variable):
            conf[pem_key] = env[variable]
    if env.get("KAFKA_SSL_CLIENT_KEY_PASS"):
        conf["ssl.key.password"] = env["KAFKA_SSL_CLIENT_KEY_PASS"]
    if env.get("KAFKA_SASL_MECHANISM"):
        conf["sasl.mechanism"] = env["KAFKA_SASL_MECHANISM"]
    if env.get("KAFKA_SASL_USERNAME"):
        conf["sasl.username"] = env["KAFKA_SASL_USERNAME"]
    if env.get("KAFKA_SASL_PASSWORD"):
        conf["sasl.password"] = env["KAFKA_SASL_PASSWORD"]
    return conf


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m devstack.engine",
        description="An executor-compatible engine for the local stack: the real executor's flags and environment.",
    )
    real = p.add_argument_group("the real executor's flags")
    for name in ("sdep", "namespace", "predictor"):
        real.add_argument(f"--{name}", default="", help="required")
    real.add_argument("--protocol", default="seldon", help="seldon (tensorflow, v2, kfserving need the real one)")
    real.add_argument("--transport", default="rest", help="rest or grpc")
    real.add_argument("--http_port", default="8080", help="REST port (default 8080)")
    real.add_argument("--grpc_port", default=None, help="gRPC port (default 5000; 8000 before 1.5)")
    real.add_argument("--server_type", default="rpc", help="rpc or kafka")
    real.add_argument("--file", default="", help="a SeldonDeployment file instead of ENGINE_PREDICTOR (refused)")
    real.add_argument("--hostname", default="", help="the host in Ce-Source (else POD_NAME, else empty)")
    real.add_argument("--logger_workers", default=None, help="log workers (default 10; 5 before 1.12)")
    real.add_argument("--log_work_buffer_size", default=None, help="log buffer, events (default 10000; >= 1.12)")
    real.add_argument("--log_write_timeout_ms", default=None, help="wait for buffer space, ms (default 2000)")
    real.add_argument("--log_kafka_broker", default=None, help="log straight to Kafka (else LOGGER_KAFKA_BROKER)")
    real.add_argument("--log_kafka_topic", default=None, help="its topic (else LOGGER_KAFKA_TOPIC, else seldon)")
    real.add_argument("--kafka_broker", default="", help="server_type kafka: broker (else KAFKA_BROKER)")
    real.add_argument("--kafka_input_topic", default="", help="input topic (else KAFKA_INPUT_TOPIC)")
    real.add_argument("--kafka_output_topic", default="", help="output topic (else KAFKA_OUTPUT_TOPIC)")
    real.add_argument("--kafka_full_graph", default="false", help="Kafka between graph nodes (refused: one node)")
    real.add_argument("--kafka_workers", default="4", help="messages predicted at once (env KAFKA_WORKERS)")
    real.add_argument("--kafka_auto_commit", default="true", help="auto-commit offsets (env KAFKA_AUTO_COMMIT)")
    real.add_argument("--prometheus_path", default="/metrics", help="metrics path on the REST port")
    real.add_argument("--graceful_timeout", default="15s", help="time to finish work on SIGTERM")
    real.add_argument("--log_level", default=None, help="debug, info, warning, error (env SELDON_LOG_LEVEL)")
    real.add_argument("--debug", default=None, nargs="?", const="true", help="debug logging (env SELDON_DEBUG)")
    for ignored in ("shutdown_delay", "full_health_checks", "config", "kubeconfig"):
        real.add_argument(f"--{ignored}", default=None, nargs="?", const="true", help="accepted, no effect here")
    ours = p.add_argument_group("this engine's own flags (also from the environment)")
    ours.add_argument("--bind", default=None, help="listen address (env ENGINE_BIND, default 127.0.0.1)")
    ours.add_argument("--allow-non-loopback", action="store_true", help="allow a --bind other than loopback")
    ours.add_argument("--seldon-version", default=None, help=f"executor to behave as (env SELDON_VERSION, {RECORDED})")
    ours.add_argument("--max-body-bytes", default=None, help="request size limit (env ENGINE_MAX_BODY_BYTES)")
    return p


def _check_bind(bind: str, allowed: bool) -> str:
    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        raise ConfigError(f"--bind={bind!r} is not an IP address; the default is 127.0.0.1") from None
    if not address.is_loopback and not allowed:
        raise ConfigError(
            f"--bind={bind} is not a loopback address: the local engine listens on 127.0.0.1 only; pass "
            "--allow-non-loopback if it really must be reachable from other machines"
        )
    return bind


def _version_gate(args: argparse.Namespace, behaviour: Behaviour, env: Mapping[str, str]) -> None:
    """Refuse flags the chosen executor does not have (it exits 2: "flag provided but not defined")."""
    gates = (
        ("log_kafka_broker", "direct_kafka_logging"),
        ("log_kafka_topic", "direct_kafka_logging"),
        ("log_work_buffer_size", "bounded_log_buffer"),
        ("log_write_timeout_ms", "bounded_log_buffer"),
    )
    for flag, feature in gates:
        if getattr(args, flag) is not None and not getattr(behaviour, feature):
            raise ConfigError(
                f"--{flag} needs Seldon >= {first_version_with(feature)}; the {behaviour.version} executor has no such "
                "flag (it exits with 'flag provided but not defined'); drop it or choose a later --seldon-version"
            )
    if env.get("LOGGER_KAFKA_BROKER") and not behaviour.direct_kafka_logging:
        log.warning(
            "LOGGER_KAFKA_BROKER is ignored: Seldon %s logs over HTTP only (direct Kafka logging starts with %s)",
            behaviour.version,
            first_version_with("direct_kafka_logging"),
        )


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> EngineConfig:
    """Flags and environment into a checked EngineConfig; ConfigError names the first problem."""
    args = parser().parse_args(list(argv))
    for name in ("sdep", "namespace", "predictor"):
        if not getattr(args, name):
            raise ConfigError(f"--{name} is required (the operator passes it); e.g. --{name} {_EXAMPLES[name]}")
    try:
        behaviour = behaviour_of(args.seldon_version or env.get("SELDON_VERSION") or RECORDED)
    except VersionError as exc:
        raise ConfigError(str(exc)) from None
    if args.protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol={args.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if args.protocol != "seldon":
        raise ConfigError(
            f"--protocol={args.protocol}: the local engine speaks the Seldon protocol only (the classifier's); "
            "run the real executor (DEVSTACK_EXECUTOR_BIN) for the others"
        )
    if args.transport not in ("rest", "grpc"):
        raise ConfigError(f"--transport={args.transport!r} is not rest or grpc")
    if args.server_type not in ("rpc", "kafka"):
        raise ConfigError(f"--server_type={args.server_type!r} is not rpc or kafka")
    if args.file:
        raise ConfigError("--file is not supported by the local engine; give the predictor in ENGINE_PREDICTOR")
    _version_gate(args, behaviour, env)

    log_kafka_broker = args.log_kafka_broker or (
        env.get("LOGGER_KAFKA_BROKER", "") if behaviour.direct_kafka_logging else ""
    )
    log_kafka_topic = ""
    if log_kafka_broker:
        log_kafka_topic = args.log_kafka_topic or env.get("LOGGER_KAFKA_TOPIC") or LOG_TOPIC_DEFAULT
    try:
        spec = parse_predictor(
            env.get("ENGINE_PREDICTOR", ""), env.get("REQUEST_LOGGER_DEFAULT_ENDPOINT", ""), bool(log_kafka_broker)
        )
    except SpecError as exc:
        raise ConfigError(str(exc)) from None

    kafka_broker = args.kafka_broker or env.get("KAFKA_BROKER", "")
    kafka_input = args.kafka_input_topic or env.get("KAFKA_INPUT_TOPIC", "")
    kafka_output = args.kafka_output_topic or env.get("KAFKA_OUTPUT_TOPIC", "")
    if args.server_type == "kafka":
        for value, flag, variable in (
            (kafka_broker, "--kafka_broker", "KAFKA_BROKER"),
            (kafka_input, "--kafka_input_topic", "KAFKA_INPUT_TOPIC"),
            (kafka_output, "--kafka_output_topic", "KAFKA_OUTPUT_TOPIC"),
        ):
            if not value:
                raise ConfigError(f"Required argument {flag} missing (or {variable}) for --server_type kafka")
    full_graph = _go_bool(env.get("KAFKA_FULL_GRAPH") or args.kafka_full_graph, "KAFKA_FULL_GRAPH/--kafka_full_graph")
    if full_graph:
        raise ConfigError(
            "KAFKA_FULL_GRAPH=true needs the Kafka proxy between graph nodes; the local engine serves one node"
        )

    level = (args.log_level or env.get("SELDON_LOG_LEVEL") or "info").lower()
    if _go_bool(args.debug or env.get("SELDON_DEBUG") or "false", "--debug/SELDON_DEBUG"):
        level = "debug"
    if level not in ("debug", "info", "warning", "warn", "error"):
        raise ConfigError(f"--log_level={level!r} is not debug, info, warning or error")

    return EngineConfig(
        deployment=args.sdep,
        namespace=args.namespace,
        predictor_name=args.predictor,
        spec=spec,
        behaviour=behaviour,
        protocol=args.protocol,
        transport=args.transport,
        server_type=args.server_type,
        bind=_check_bind(args.bind or env.get("ENGINE_BIND") or "127.0.0.1", args.allow_non_loopback),
        http_port=_int(args.http_port, "--http_port", 1),
        grpc_port=_int(args.grpc_port or behaviour.default_grpc_port, "--grpc_port", 1),
        hostname=args.hostname or env.get("POD_NAME", ""),
        prometheus_path=args.prometheus_path if args.prometheus_path.startswith("/") else "/" + args.prometheus_path,
        logger_workers=_int(args.logger_workers or behaviour.default_logger_workers, "--logger_workers", 1),
        log_buffer_size=_int(args.log_work_buffer_size or 10000, "--log_work_buffer_size", 1),
        log_write_timeout_ms=_int(
            args.log_write_timeout_ms if args.log_write_timeout_ms is not None else 2000, "--log_write_timeout_ms"
        ),
        log_kafka_broker=log_kafka_broker,
        log_kafka_topic=log_kafka_topic,
        kafka_broker=kafka_broker,
        kafka_input_topic=kafka_input,
        kafka_output_topic=kafka_output,
        kafka_workers=_int(env.get("KAFKA_WORKERS") or args.kafka_workers, "KAFKA_WORKERS/--kafka_workers", 1),
        kafka_auto_commit=_go_bool(
            env.get("KAFKA_AUTO_COMMIT") or args.kafka_auto_commit, "KAFKA_AUTO_COMMIT/--kafka_auto_commit"
        ),
        kafka_client_config=kafka_security(env),
        graceful_timeout_s=go_duration_s(args.graceful_timeout, "--graceful_timeout"),
        max_body_bytes=_int(
            args.max_body_bytes or env.get("ENGINE_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES, "--max-body-bytes", 1
        ),
        log_level="warning" if level == "warn" else level,
    )


_EXAMPLES = {"sdep": "text-classifier", "namespace": "seldon", "predictor": "default"}


async def serve(config: EngineConfig, stop: asyncio.Event | None = None) -> None:
    """Run the servers of `config` until `stop` is set (or SIGTERM/SIGINT), then shut down gracefully."""
    from aiohttp import web

    from devstack.engine import grpc_api, kafka_api, logger, rest
    from devstack.engine.metrics import EngineMetrics
    from devstack.engine.predictor import ModelRestClient, Predictor

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    metrics = EngineMetrics()
    identity = logger.Identity(
        deployment=config.deployment,
        namespace=config.namespace,
        predictor=config.predictor_name,
        source=config.source_url,
        protocol=config.protocol if config.behaviour.sends_protocol_header else None,
    )
    log_queue = None
    if config.spec.graph.logger is not None:
        broker_config = {"bootstrap.servers": config.log_kafka_broker, **config.kafka_client_config}
        sink: logger.Sink = (
            logger.KafkaSink(identity, broker_config, config.log_kafka_topic, metrics)
            if config.log_kafka_broker
            else logger.HttpSink(identity)
        )
        log_queue = logger.LogQueue(
            sink,
            metrics,
            buffer_size=config.log_buffer_size,
            write_timeout_ms=config.log_write_timeout_ms,
            workers=config.logger_workers,
            bounded=config.behaviour.bounded_log_buffer,
        )
        await log_queue.start()
    predictor = Predictor(config.spec, config.behaviour, log_queue)
    model = ModelRestClient(config.spec.graph.endpoint)
    await model.start()

    app = rest.create_app(
        rest.RestContext(predictor, model, metrics, config.max_body_bytes),
        config.prometheus_path,
        probes_only=config.transport == "grpc",
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=65.0)
    await runner.setup()
    await web.TCPSite(runner, config.bind, config.http_port).start()
    grpc_server = grpc_model = None
    if config.serves_grpc:
        grpc_model = grpc_api.ModelGrpcClient(config.spec.graph.endpoint, config.max_body_bytes)
        grpc_server = await grpc_api.start_server(
            grpc_api.SeldonService(predictor, grpc_model, metrics), config.bind, config.grpc_port, config.max_body_bytes
        )
    kafka_server = None
    if config.server_type == "kafka":
        kafka_server = kafka_api.KafkaServer(
            kafka_api.KafkaServerConfig(
                broker=config.kafka_broker,
                input_topic=config.kafka_input_topic,
                output_topic=config.kafka_output_topic,
                group_id=kafka_api.group_id(config.predictor_name, config.deployment, config.namespace),
                workers=config.kafka_workers,
                auto_commit=config.kafka_auto_commit,
                client_config=config.kafka_client_config,
            ),
            predictor,
            model,
            metrics,
        )
        await kafka_server.start()
    print(startup_line(config), flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping (graceful timeout %.0f s)", config.graceful_timeout_s)
        if kafka_server is not None:
            await kafka_server.stop(config.graceful_timeout_s)
        if grpc_server is not None:
            await grpc_server.stop(grace=min(5.0, config.graceful_timeout_s))
        await runner.cleanup()
        if grpc_model is not None:
            await grpc_model.close()
        await model.close()
        if log_queue is not None:
            await log_queue.stop(config.graceful_timeout_s)


def startup_line(config: EngineConfig) -> str:
    node = config.spec.graph
    logger = node.logger
    if logger is None:
        logging_to = "no logger"
    elif config.log_kafka_broker:
        logging_to = f"logging ({logger.mode}) to Kafka {config.log_kafka_broker} topic {config.log_kafka_topic}"
    else:
        logging_to = f"logging ({logger.mode}) to {logger.url}"
    parts = [
        f"engine as Seldon {config.behaviour.version} executor for {config.deployment}/{config.predictor_name} "
        f"in {config.namespace}: REST on {config.bind}:{config.http_port}",
        f"gRPC on {config.bind}:{config.grpc_port}" if config.serves_grpc else "no gRPC port",
        f"model {node.name} at {node.endpoint.host}:{node.endpoint.http_port} (gRPC {node.endpoint.grpc_port})",
        logging_to,
    ]
    if config.server_type == "kafka":
        parts.append(f"Kafka {config.kafka_input_topic} -> {config.kafka_output_topic} on {config.kafka_broker}")
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = parse_config(sys.argv[1:] if argv is None else argv, env)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger().setLevel(config.log_level.upper())
    try:
        asyncio.run(serve(config))
    except OSError as exc:  # a port taken, an address not ours
        print(f"error: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0
