"""The smoke target that describes a running loop stack (`smoke_tests.target.Target`, written as `target.yaml`).

    target = describe(loop)            # what the smoke suite needs: endpoints, topics, index, bucket, ports, pids
    write(target, loop.target_path)    # SMOKE_TARGET=<that file> make smoke

The real-time, gRPC and batch endpoints are the loop's executor (`engine`: the local engine or a real binary),
the streaming deployment its Kafka-mode twin (`engine-kafka`); both log to the local collector.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from devstack.names import DEPLOYMENT, NAMESPACE, PREDICTOR, STREAMING_DEPLOYMENT
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import REPO_ROOT
from infra.kafka_access import SMOKE_USER
from smoke_tests.target import (
    BatchTarget,
    CollectorTarget,
    FlowbackTarget,
    KafkaTarget,
    LocalInfo,
    MonitorTarget,
    ObjectStoreTarget,
    RealtimeTarget,
    SearchTarget,
    StreamingTarget,
    Target,
    write,
)

if TYPE_CHECKING:
    from devstack.loop import LoopStack

TARGET_FILE = "target.yaml"
BATCH_WORKERS = 4

__all__ = ["BATCH_WORKERS", "TARGET_FILE", "describe", "listeners", "pids", "write"]


def describe(loop: LoopStack) -> Target:
    """The target of a started loop stack (raises when it is not up: its ports would not answer)."""
    if loop.stack.status != "up":
        raise DevstackError("the loop stack is not up; start() it before asking for its smoke target")
    rest_url = loop.rest_url
    engine = loop.engine
    return Target(
        name="local",
        kind="local",
        realtime=RealtimeTarget(
            rest_url=rest_url,
            grpc_address=engine.grpc_address if engine.serves_grpc else None,
            deployment=DEPLOYMENT,
            namespace=NAMESPACE,
            predictor=PREDICTOR,
            executor=True,
        ),
        streaming=StreamingTarget(
            input_topic=loop.names.input_topic,
            output_topic=loop.names.output_topic,
            deployment=STREAMING_DEPLOYMENT,
        ),
        collector=CollectorTarget(url=loop.collector.url),
        monitor=MonitorTarget(
            index=loop.names.monitor_index, window_s=loop.monitor.window_s, settle_s=loop.monitor.settle_s
        ),
        # the smoke suite logs in as its own user (infra/kafka_access.py), as it does on a cluster
        kafka=KafkaTarget(
            bootstrap=loop.kafka.bootstrap,
            capture_topic=loop.names.capture_topic,
            config={k: v for k, v in loop.kafka.client_config(SMOKE_USER).items() if k != "bootstrap.servers"},
        ),
        search=SearchTarget(url=loop.search.url, index=loop.names.index),
        object_store=ObjectStoreTarget(
            endpoint=loop.s3.endpoint,
            bucket=loop.names.bucket,
            access_key=loop.s3.access_key,
            secret_key=loop.s3.secret_key,
            region=loop.s3.region,
        ),
        batch=BatchTarget(
            runner="local",
            rest_host=rest_url.split("://", 1)[1].rstrip("/"),
            deployment=DEPLOYMENT,
            namespace=NAMESPACE,
            workers=BATCH_WORKERS,
            executor=True,
            python=sys.executable,  # `python -m devstack batch run` in this checkout, with this interpreter
            workdir=str(REPO_ROOT),
        ),
        flowback=FlowbackTarget(bucket=loop.names.flowback_bucket),
        limits=loop.limits,
        local=LocalInfo(listeners=listeners(loop), processes=pids(loop)),
    )


def listeners(loop: LoopStack) -> dict[str, int]:
    """Every TCP port the loop's processes listen on, by a readable name."""
    ports = {
        "kafka": loop.kafka.port,
        "kafka-controller": loop.kafka.controller_port,
        "search": loop.search.port,
        "s3": loop.s3.port,
        "model-http": loop.model.server.http_port,
        "model-grpc": loop.model.server.grpc_port,
        "model-metrics": loop.model.server.metrics_port,
        "collector": loop.collector.port,
        "collector-metrics": loop.collector.ops_port,
        "indexer-metrics": loop.indexer.port,
        "monitor-metrics": loop.monitor.port,
        "prometheus": loop.prometheus.port,
    }
    for engine in (loop.engine, loop.engine_kafka):
        ports.update(engine.listeners())  # a real executor binary listens on every interface: not listed
    return ports


def pids(loop: LoopStack) -> dict[str, int]:
    """The process id of every server of the loop that runs, by name."""
    named = {
        "kafka": loop.kafka,
        "search": loop.search,
        "s3": loop.s3,
        "model": loop.model,
        "collector": loop.collector,
        "indexer": loop.indexer,
        "monitor": loop.monitor,
        "prometheus": loop.prometheus,
        "engine": loop.engine,
        "engine-kafka": loop.engine_kafka,
    }
    found = {}
    for name, server in named.items():
        process = getattr(server, "process", None)
        if process is not None and process.pid is not None:
            found[name] = int(process.pid)
    return found
