"""Build the smoke target from a Pulumi stack's outputs, and reach the services from outside the cluster.

    python -m smoke_tests.from_pulumi write --stack dev --out /tmp/smoke-target.yaml [--in-cluster]
    python -m smoke_tests.from_pulumi run --stack dev [-- <pytest args>]

`write` turns `pulumi stack output --json` (or `--outputs FILE`) into a target file; addresses stay in-cluster
DNS names, which is what the in-cluster Job (smoke_tests/k8s/job.yaml) needs. `run` does the same, then opens a
`kubectl port-forward` for every HTTP service (classifier REST and gRPC, search, object store, collector) and for
the Kafka bootstrap Service, rewrites the target to those 127.0.0.1 ports, runs pytest on smoke_tests/ with it,
and closes the port-forwards in `finally`.

Credentials are never stack outputs: the search password and the object-store keys are read from the Secrets the
outputs name (with kubectl), unless SMOKE_SEARCH_PASSWORD / SMOKE_S3_ACCESS_KEY / SMOKE_S3_SECRET_KEY are set.
Kafka with SASL needs SMOKE_KAFKA_CONFIG (librdkafka settings as JSON); the cluster CA is read from the
`kafka.caSecret` Secret into `ssl.ca.pem` when it is set.

Kafka through a port-forward reaches the bootstrap Service only: the brokers then advertise in-cluster names.
From a laptop that works when those names resolve (a single dev broker with an /etc/hosts entry, or an external
listener: pass `--kafka-bootstrap host:port`); otherwise run the suite in the cluster.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from smoke_tests import target as target_module
from smoke_tests.target import (
    BatchTarget,
    ClusterComponent,
    ClusterInfo,
    CollectorTarget,
    FlowbackTarget,
    KafkaTarget,
    ObjectStoreTarget,
    RealtimeTarget,
    SearchTarget,
    StreamingTarget,
    Target,
    TargetError,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def pulumi_outputs(stack: str | None, outputs_file: Path | None) -> dict[str, Any]:
    """The stack outputs as a dict, from a saved `pulumi stack output --json` or from the pulumi CLI."""
    if outputs_file is not None:
        try:
            return json.loads(outputs_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TargetError(f"--outputs {outputs_file}: cannot read it as JSON ({exc})") from None
    argv = ["pulumi", "stack", "output", "--json"] + (["--stack", stack] if stack else [])
    try:
        done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise TargetError(
            "the pulumi CLI is not installed; install it or pass --outputs <saved outputs.json>"
        ) from None
    if done.returncode != 0:
        raise TargetError(f"`{' '.join(argv)}` failed: {done.stderr.strip()[:400]}")
    return json.loads(done.stdout)


def _need(outputs: Mapping[str, Any], dotted: str) -> Any:
    value: Any = outputs
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value or value[part] is None:
            raise TargetError(f"stack output {dotted} is missing; is this stack deployed with infra/ (docs/deploy.md)?")
        value = value[part]
    return value


class Kubectl:
    def __init__(self, context: str = "") -> None:
        self.prefix = ["kubectl"] + (["--context", context] if context else [])

    def run(self, *args: str, timeout: float = 60) -> str:
        try:
            done = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise TargetError(
                "kubectl is not installed; install it or give the credentials as SMOKE_* variables"
            ) from None
        if done.returncode != 0:
            raise TargetError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()[:400]}")
        return done.stdout

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        data = json.loads(self.run("get", "secret", name, "-n", namespace, "-o", "json")).get("data", {})
        if key not in data:
            raise TargetError(f"Secret {namespace}/{name} has no key {key!r} (keys: {sorted(data)})")
        return base64.b64decode(data[key]).decode()


def smoke_kafka_login(kafka: Mapping[str, Any], kubectl: Kubectl, app_ns: str, protocol: str) -> dict[str, str]:
    """The smoke suite's own Kafka login from the stack outputs: the KafkaUser smoke-tests (infra/kafka_access.py),
    its password (SASL) or certificate (mutual TLS) read from its Secret. Empty without authentication."""
    secret = (kafka.get("credentialsSecrets") or {}).get("smoke")
    if not secret:
        return {}
    if kafka.get("clientCertificates"):
        return {
            "ssl.certificate.pem": kubectl.secret_value(app_ns, str(secret), "user.crt"),
            "ssl.key.pem": kubectl.secret_value(app_ns, str(secret), "user.key"),
        }
    if "SASL" not in protocol.upper():
        return {}
    username = (kafka.get("users") or {}).get("smoke") or kubectl.secret_value(
        app_ns, str(secret), str(kafka.get("usernameKey") or "username")
    )
    return {
        "sasl.mechanism": str(kafka.get("saslMechanism") or "SCRAM-SHA-512"),
        "sasl.username": str(username),
        "sasl.password": kubectl.secret_value(app_ns, str(secret), str(kafka.get("passwordKey") or "password")),
    }


def build_target(
    outputs: Mapping[str, Any],
    kubectl: Kubectl,
    environ: Mapping[str, str],
    name: str,
    context: str = "",
) -> Target:
    """A cluster Target from the stack outputs (addresses as the outputs give them: in-cluster DNS names)."""
    prediction = _need(outputs, "prediction")
    app_ns = str(_need(outputs, "prediction.namespace"))
    topics = _need(outputs, "kafka.topics")
    kafka_config: dict[str, str] = {}
    protocol = str(outputs.get("kafka", {}).get("securityProtocol") or "PLAINTEXT")
    if protocol.upper() != "PLAINTEXT":
        kafka_config["security.protocol"] = protocol
    ca_secret = outputs.get("kafka", {}).get("caSecret")
    if ca_secret:  # the PEM itself (librdkafka ssl.ca.pem), so the target works on a laptop and in the Job alike
        kafka_config["ssl.ca.pem"] = kubectl.secret_value(app_ns, str(ca_secret), "ca.crt")
    if environ.get("SMOKE_KAFKA_CONFIG"):
        kafka_config.update(json.loads(environ["SMOKE_KAFKA_CONFIG"]))
    else:
        kafka_config.update(smoke_kafka_login(outputs.get("kafka", {}), kubectl, app_ns, protocol))
    if "SASL" in protocol.upper() and "sasl.username" not in kafka_config:
        raise TargetError(
            f"kafka.securityProtocol={protocol} needs SASL credentials: the stack outputs name no smoke-tests user "
            "(kafka.credentialsSecrets.smoke); set SMOKE_KAFKA_CONFIG="
            '\'{"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "...", "sasl.password": "..."}\''
        )
    search = _need(outputs, "search")
    password = environ.get("SMOKE_SEARCH_PASSWORD") or (
        kubectl.secret_value(
            app_ns, str(search["credentialsSecret"]), str(search.get("credentialsSecretKey", "elastic"))
        )
        if search.get("credentialsSecret")
        else ""
    )
    store = _need(outputs, "objectStore")
    access_key = environ.get("SMOKE_S3_ACCESS_KEY") or kubectl.secret_value(
        app_ns, str(store["credentialsSecret"]), "accessKey"
    )
    secret_key = environ.get("SMOKE_S3_SECRET_KEY") or kubectl.secret_value(
        app_ns, str(store["credentialsSecret"]), "secretKey"
    )
    batch = outputs.get("batch") or {}
    flowback = outputs.get("flowback") or {}
    streaming_name = prediction.get("streamingDeployment")
    rest_url = str(_need(outputs, "prediction.restUrl"))
    components = {
        role: ClusterComponent(namespace=str(spec["namespace"]), selector=str(spec["selector"]))
        for role, spec in (outputs.get("components") or {}).items()
    }
    return Target(
        name=name,
        kind="cluster",
        realtime=RealtimeTarget(
            rest_url=rest_url,
            grpc_address=prediction.get("grpcAddress"),
            deployment=str(prediction.get("deployment", "text-classifier")),
            namespace=app_ns,
            predictor=str(prediction.get("predictor", "default")),
        ),
        streaming=StreamingTarget(
            input_topic=str(topics["modelInput"]),
            output_topic=str(topics["modelOutput"]),
            deployment=str(streaming_name),
        )
        if streaming_name
        else None,
        collector=CollectorTarget(url=str(outputs["collector"]["url"])) if outputs.get("collector") else None,
        kafka=KafkaTarget(
            bootstrap=str(_need(outputs, "kafka.bootstrap")), capture_topic=str(topics["capture"]), config=kafka_config
        ),
        search=SearchTarget(
            url=str(search["url"]),
            index=str(search.get("index") or search.get("indexPattern")),
            username=str(search.get("username") or ""),
            password=password,
            verify_certs=environ.get("SMOKE_SEARCH_VERIFY_CERTS", "true").lower() not in {"0", "false", "no"},
        ),
        object_store=ObjectStoreTarget(
            endpoint=str(store["endpoint"]), bucket=str(store["bucket"]), access_key=access_key, secret_key=secret_key
        ),
        batch=BatchTarget(
            runner="argo",
            deployment=str(prediction.get("deployment", "text-classifier")),
            namespace=app_ns,
            workflow_template=str(batch["workflowTemplate"]),
            workflow_namespace=str(batch.get("namespace") or app_ns),
        )
        if batch.get("workflowTemplate")
        else None,
        flowback=FlowbackTarget(
            bucket=str(flowback["bucket"]),
            model_name=str(flowback.get("modelName") or "text-classifier"),
            workflow_template=str(flowback.get("workflowTemplate") or ""),
            workflow_namespace=str(flowback.get("namespace") or app_ns),
        )
        if flowback.get("bucket")
        else None,
        cluster=ClusterInfo(context=context, components=components),
    )


# ------------------------------------------------------------------------------------ port-forwards


@dataclass(frozen=True)
class Forward:
    service: str
    namespace: str
    remote_port: int
    local_port: int


def service_of(address: str) -> tuple[str, str, int]:
    """(service, namespace, port) of an in-cluster address: `http://svc.ns.svc.cluster.local:port/` or `svc.ns:port`."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    host, port = parts.hostname or "", parts.port
    labels = host.split(".")
    if len(labels) < 2 or port is None:
        raise TargetError(f"{address!r} is not an in-cluster service address (<service>.<namespace>[.svc...]:<port>)")
    return labels[0], labels[1], port


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _local(address: str, port: int) -> str:
    if "://" in address:
        parts = urlsplit(address)
        return urlunsplit((parts.scheme, f"127.0.0.1:{port}", parts.path, parts.query, parts.fragment))
    return f"127.0.0.1:{port}"


def forwarded(target: Target, kafka_bootstrap: str | None = None) -> tuple[Target, list[Forward]]:
    """The target rewritten to 127.0.0.1 ports, and the port-forwards that make those ports reach the services."""
    forwards: dict[tuple[str, str, int], Forward] = {}

    def via(address: str) -> str:
        service, namespace, port = service_of(address)
        key = (service, namespace, port)
        if key not in forwards:
            forwards[key] = Forward(service, namespace, port, _free_port())
        return _local(address, forwards[key].local_port)

    realtime = replace(
        target.realtime,
        rest_url=via(target.realtime.rest_url),
        grpc_address=via(target.realtime.grpc_address) if target.realtime.grpc_address else None,
    )
    kafka = replace(target.kafka, bootstrap=kafka_bootstrap or via(target.kafka.bootstrap))
    rewritten = replace(
        target,
        realtime=realtime,
        kafka=kafka,
        search=replace(target.search, url=via(target.search.url)),
        object_store=replace(target.object_store, endpoint=via(target.object_store.endpoint)),
        collector=replace(target.collector, url=via(target.collector.url)) if target.collector else None,
    )
    return rewritten, list(forwards.values())


@contextmanager
def port_forwards(forwards: list[Forward], context: str = "", timeout: float = 30.0) -> Iterator[None]:
    prefix = ["kubectl"] + (["--context", context] if context else [])
    processes = []
    try:
        for fw in forwards:
            processes.append(
                subprocess.Popen(
                    [
                        *prefix,
                        "port-forward",
                        "--address",
                        "127.0.0.1",
                        "-n",
                        fw.namespace,
                        f"svc/{fw.service}",
                        f"{fw.local_port}:{fw.remote_port}",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + timeout
        for fw, process in zip(forwards, processes, strict=True):
            while not _listening(fw.local_port):
                if process.poll() is not None:
                    raise TargetError(
                        f"kubectl port-forward svc/{fw.service} -n {fw.namespace} exited: "
                        f"{(process.stderr.read() if process.stderr else '').strip()[:300]}"
                    )
                if time.monotonic() > deadline:
                    raise TargetError(
                        f"port-forward to svc/{fw.service} -n {fw.namespace} not up within {timeout:.0f} s"
                    )
                time.sleep(0.2)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smoke_tests.from_pulumi", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        nargs="?",
        default="write",
        choices=["write", "run"],
        help="write a target file (default), or run the suite through port-forwards",
    )
    parser.add_argument(
        "--stack", default=os.environ.get("PULUMI_STACK"), help="Pulumi stack (default: the selected one)"
    )
    parser.add_argument("--outputs", type=Path, help="a saved `pulumi stack output --json` instead of calling pulumi")
    parser.add_argument("--context", default="", help="kubectl context (default: the current one)")
    parser.add_argument("--out", type=Path, default=Path("smoke-target.yaml"), help="target file to write")
    parser.add_argument("--kafka-bootstrap", help="a Kafka address reachable from here (external listener)")
    parser.add_argument("pytest_args", nargs="*", default=[], help="after --: arguments for pytest (run)")
    args = parser.parse_args(argv)
    try:
        outputs = pulumi_outputs(args.stack, args.outputs)
        kubectl = Kubectl(args.context)
        target = build_target(outputs, kubectl, os.environ, name=args.stack or "cluster", context=args.context)
        if args.command == "write":
            target_module.write(target, args.out)
            sys.stdout.write(f"wrote {args.out}; run: SMOKE_TARGET={args.out} python -m pytest smoke_tests\n")
            return 0
        local, forwards = forwarded(target, args.kafka_bootstrap)
        target_module.write(local, args.out)
        with port_forwards(forwards, args.context):
            env = {**os.environ, target_module.TARGET_ENV: str(args.out.resolve())}
            return subprocess.call(
                [sys.executable, "-m", "pytest", "smoke_tests", *args.pytest_args], cwd=REPO_ROOT, env=env
            )
    except TargetError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
