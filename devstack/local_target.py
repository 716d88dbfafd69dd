"""The whole loop on 127.0.0.1 for the smoke tests and the demo, and the target description that points at it.

    loop = LoopStack(run_dir).start()   # Kafka, search, S3, topics+bucket, model, executor(s), collector, indexer
    loop.target()                       # a smoke_tests.target.Target (also written to loop.target_path)
    loop.stop()

It is a `devstack.stack.LocalStack` (ordered start, reverse stop, state file for `python -m devstack status`)
over these servers. Servers that already run (the test session's `kafka`, `search`, `s3` fixtures) can be passed
in: they are used, not started or stopped.

The Seldon executor is used when `devstack.executor` offers `loop_executors(loop) -> (rest, kafka)`: two servers
in the `devstack.stack.Server` shape (`name`, `process`, `start()`, `stop()`, `describe()`), both in front of
`loop.model.url` with the graph's logger (mode all) posting to `loop.collector.url`; `rest` serves REST on `.url`
(`http://127.0.0.1:PORT`) and gRPC on `.grpc_address` as SeldonDeployment DEPLOYMENT / predictor PREDICTOR in
NAMESPACE, and `kafka` runs `--server_type kafka` for STREAMING_DEPLOYMENT from `loop.names.input_topic` to
`loop.names.output_topic` on `loop.kafka.bootstrap`; each may offer `listeners() -> {name: port}` for the
testinfra socket check.

The executor is used when it exists; while it cannot be built (docs/executor.md) the
real-time and batch endpoints are the bare model microservice, nothing captures their traffic and there is no
streaming deployment. The target says so (`realtime.executor: false`, no `streaming`), so the smoke suite skips
those capture checks with the reason and still proves the collector -> Kafka -> indexer -> search path.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.errors import DevstackError
from devstack.paths import new_run_dir
from devstack.stack import STATE_FILE, LocalStack, Server
from smoke_tests.target import (
    BatchTarget,
    CollectorTarget,
    KafkaTarget,
    Limits,
    LocalInfo,
    ObjectStoreTarget,
    RealtimeTarget,
    SearchTarget,
    StreamingTarget,
    Target,
    write,
)

log = logging.getLogger(__name__)

CAPTURE_TOPIC = "seldon-capture"
DEAD_LETTER_TOPIC = f"{CAPTURE_TOPIC}-dead-letter"
INPUT_TOPIC = "model_input"
OUTPUT_TOPIC = "model_output"
INDEX = "seldon-feedback"
BUCKET = "batch"
DEPLOYMENT = "text-classifier"
STREAMING_DEPLOYMENT = "text-classifier-streaming"  # passed to the indexer as INDEXER_STREAMING_DEPLOYMENTS
NAMESPACE = "seldon"
PREDICTOR = "default"
TARGET_FILE = "target.yaml"


@dataclass(frozen=True)
class Names:
    """Topic, index, bucket and consumer-group names of one loop stack. The defaults are the cluster's; a stack
    sharing Kafka and the search engine with other tests takes `Names.unique()` so nothing of theirs mixes in
    (the index must not start with another indexer's index name: their templates' patterns would overlap)."""

    capture_topic: str = CAPTURE_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    input_topic: str = INPUT_TOPIC
    output_topic: str = OUTPUT_TOPIC
    index: str = INDEX
    bucket: str = BUCKET
    group_id: str = "seldon-feedback-indexer"

    @classmethod
    def unique(cls, prefix: str = "smoke") -> Names:
        token = f"{prefix}-{secrets.token_hex(3)}"
        return cls(
            capture_topic=f"{token}-capture",
            dead_letter_topic=f"{token}-capture-dead-letter",
            input_topic=f"{token}-model_input",
            output_topic=f"{token}-model_output",
            index=f"{token}-feedback",
            bucket=f"{token}-batch",
            group_id=f"{token}-indexer",
        )

    @property
    def topics(self) -> list[str]:
        return [self.capture_topic, self.dead_letter_topic, self.input_topic, self.output_topic]


def executor_available() -> bool:
    """True when devstack.executor can give the loop its executors (REST mode and Kafka mode, logging to the
    collector): the module exists and offers `loop_executors(loop)`. It does not while the executor cannot be
    built from this machine's registries (docs/executor.md)."""
    if importlib.util.find_spec("devstack.executor") is None:
        return False
    module = importlib.import_module("devstack.executor")
    if not hasattr(module, "loop_executors"):
        log.warning("devstack.executor has no loop_executors(loop); running the loop without the executor")
        return False
    return True


class Provision:
    """A step in the server list: create the topics and the bucket once Kafka and S3 are up."""

    name = "provision"
    process = None

    def __init__(self, kafka: Any, s3: Any, names: Names) -> None:
        self.kafka = kafka
        self.s3 = s3
        self.names = names

    def start(self) -> Provision:
        self.kafka.create_topics(self.names.topics)
        self.s3.create_buckets([self.names.bucket])
        return self

    def stop(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"topics": self.names.topics, "bucket": self.names.bucket}


class ModelService:
    """devstack.model.ModelServer in the stack's Server shape (name "model", describe with pid and ports)."""

    name = "model"

    def __init__(self, run_dir: Path) -> None:
        from devstack.model import ModelServer

        self.server = ModelServer(run_dir)

    @property
    def process(self) -> Any:
        return self.server.process

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    @property
    def ports(self) -> list[int]:
        return list(self.server.ports)

    def start(self) -> ModelService:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def describe(self) -> dict[str, Any]:
        process = self.server.process
        return {
            "name": self.name,
            "version": "seldon-core 1.17.1 microservice",
            "url": self.server.url,
            "ports": {
                "http": self.server.http_port,
                "grpc": self.server.grpc_port,
                "metrics": self.server.metrics_port,
            },
            "pid": process.pid if process is not None and process.running() else None,
            "log": str(process.log_path) if process is not None else "",
            "rss_bytes": self.server.rss_bytes(),
        }


class Tracked:
    """A server whose `describe()` lacks a pid, made visible to `python -m devstack status|down`: it adds the pid
    and memory, and puts the run folder in the process environment (how the state file recognises its pids)."""

    def __init__(self, server: Any, run_dir: Path) -> None:
        self.server = server
        self.name = server.name
        self.run_dir = run_dir

    @property
    def process(self) -> Any:
        return self.server.process

    def start(self) -> Tracked:
        if self.server.process is not None:
            self.server.process.env["DEVSTACK_RUN_DIR"] = str(self.run_dir)
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def describe(self) -> dict[str, Any]:
        process = self.server.process
        running = process is not None and process.running()
        return {
            "name": self.name,
            **self.server.describe(),
            "pid": process.pid if running else None,
            "rss_bytes": process.rss_bytes() if running else 0,
        }


class PrivateStack(LocalStack):
    """A LocalStack that writes its state file only into its run folder, not the machine-wide `current.json`
    (a test session's stack must not hide a stack the user left running with `--keep`)."""

    def write_state(self) -> None:
        path = self.run_dir / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.state(), indent=2) + "\n")


class LoopStack:
    """Every server of the feedback loop, in dependency order, with the smoke target that describes it."""

    def __init__(
        self,
        run_dir: Path | None = None,
        *,
        kafka: Any = None,
        search: Any = None,
        s3: Any = None,
        use_executor: bool | None = None,
        limits: Limits | None = None,
        names: Names | None = None,
        indexer_settings: dict[str, Any] | None = None,
        publish_state: bool = True,
    ) -> None:
        from devstack.feedback import CollectorServer, IndexerServer
        from devstack.kafka import KafkaServer
        from devstack.s3 import S3Server
        from devstack.search import SearchServer

        self.run_dir = run_dir or new_run_dir("loop-")
        self.limits = limits or Limits()
        self.names = names = names or Names()
        servers: list[Server] = []
        if kafka is None:
            kafka = KafkaServer(self.run_dir)
            servers.append(kafka)
        if search is None:
            search = SearchServer(self.run_dir)
            servers.append(search)
        if s3 is None:
            s3 = S3Server(self.run_dir)
            servers.append(s3)
        self.kafka, self.search, self.s3 = kafka, search, s3
        servers.append(Provision(kafka, s3, names))
        self.model = ModelService(self.run_dir)
        servers.append(self.model)
        self.collector = CollectorServer(self.run_dir, bootstrap=kafka.bootstrap, topic=names.capture_topic)
        self.executor_rest: Any = None
        self.executor_kafka: Any = None
        if executor_available() if use_executor is None else use_executor:
            from devstack import executor  # type: ignore[attr-defined]

            self.executor_rest, self.executor_kafka = executor.loop_executors(self)  # REST mode, Kafka mode
            servers += [self.executor_rest, self.executor_kafka]
        servers.append(Tracked(self.collector, self.run_dir))
        self.indexer = IndexerServer(
            self.run_dir,
            bootstrap=kafka.bootstrap,
            topic=names.capture_topic,
            search_url=search.url,
            index=names.index,
            dead_letter_topic=names.dead_letter_topic,
            group_id=names.group_id,
            streaming_deployments=STREAMING_DEPLOYMENT,
            **(indexer_settings or {"batch_wait_s": 0.2}),
        )
        servers.append(Tracked(self.indexer, self.run_dir))
        self.stack = (LocalStack if publish_state else PrivateStack)(servers, self.run_dir)
        self.target_path = self.run_dir / TARGET_FILE

    # ----------------------------------------------------------------------------------- lifecycle

    def start(self) -> LoopStack:
        self.stack.start()
        write(self.target(), self.target_path)
        log.info("smoke target written to %s", self.target_path)
        return self

    def stop(self) -> None:
        self.stack.stop()

    def detach(self) -> None:
        self.stack.detach()

    def __enter__(self) -> LoopStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --------------------------------------------------------------------------------------- target

    @property
    def has_executor(self) -> bool:
        return self.executor_rest is not None

    @property
    def rest_url(self) -> str:
        return self.executor_rest.url if self.has_executor else self.model.url

    def target(self) -> Target:
        if self.stack.status != "up":
            raise DevstackError("the loop stack is not up; start() it before asking for its smoke target")
        rest_url = self.rest_url
        return Target(
            name="local",
            kind="local",
            realtime=RealtimeTarget(
                rest_url=rest_url,
                grpc_address=getattr(self.executor_rest, "grpc_address", None)
                if self.has_executor
                else self.model.grpc_address,
                deployment=DEPLOYMENT,
                namespace=NAMESPACE,
                predictor=PREDICTOR,
                executor=self.has_executor,
            ),
            streaming=StreamingTarget(
                input_topic=self.names.input_topic,
                output_topic=self.names.output_topic,
                deployment=STREAMING_DEPLOYMENT,
            )
            if self.executor_kafka is not None
            else None,
            collector=CollectorTarget(url=self.collector.url),
            kafka=KafkaTarget(bootstrap=self.kafka.bootstrap, capture_topic=self.names.capture_topic),
            search=SearchTarget(url=self.search.url, index=self.names.index),
            object_store=ObjectStoreTarget(
                endpoint=self.s3.endpoint,
                bucket=self.names.bucket,
                access_key=self.s3.access_key,
                secret_key=self.s3.secret_key,
                region=self.s3.region,
            ),
            batch=BatchTarget(
                runner="local",
                rest_host=rest_url.split("://", 1)[1].rstrip("/"),
                deployment=DEPLOYMENT,
                namespace=NAMESPACE,
                workers=4,
                executor=self.has_executor,
            ),
            limits=self.limits,
            local=LocalInfo(listeners=self.listeners(), processes=self.pids()),
        )

    def listeners(self) -> dict[str, int]:
        """Every TCP port the loop's processes listen on, by a readable name."""
        ports = {
            "kafka": self.kafka.port,
            "kafka-controller": self.kafka.controller_port,
            "search": self.search.port,
            "s3": self.s3.port,
            "model-http": self.model.server.http_port,
            "model-grpc": self.model.server.grpc_port,
            "model-metrics": self.model.server.metrics_port,
            "collector": self.collector.port,
            "indexer-metrics": self.indexer.port,
        }
        for server in (self.executor_rest, self.executor_kafka):
            for name, port in (getattr(server, "listeners", dict)() or {}).items():
                ports[name] = port
        return ports

    def pids(self) -> dict[str, int]:
        named = {
            "kafka": self.kafka,
            "search": self.search,
            "s3": self.s3,
            "model": self.model,
            "collector": self.collector,
            "indexer": self.indexer,
            "executor-rest": self.executor_rest,
            "executor-kafka": self.executor_kafka,
        }
        pids = {}
        for name, server in named.items():
            process = getattr(server, "process", None)
            if process is not None and process.pid is not None:
                pids[name] = int(process.pid)
        return pids
