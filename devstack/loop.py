"""The whole loop on 127.0.0.1 for the smoke tests and the demo.

    loop = LoopStack(run_dir).start()   # Kafka, search, S3, topics+bucket, model, engine(s), collector, indexer,
                                        # monitor, Prometheus (scraping them, evaluating the alert rules)
    loop.target()                       # a smoke_tests.target.Target (also written to loop.target_path)
    loop.stop()

It is a `devstack.stack.LocalStack` (ordered start, reverse stop, state file for `python -m devstack status`)
over the servers of `devstack.servers`. Servers that already run (the test session's `kafka`, `search`, `s3`
fixtures) can be passed in: they are used, not started or stopped. Names come from `devstack.names`, the target
description from `devstack.target`.

The engine in front of the model is used when `devstack.servers.engine` offers `loop_executors(loop) -> (rest,
kafka)`: two servers in the `devstack.stack.Server` shape (`name`, `process`, `start()`, `stop()`, `describe()`),
both in front of `loop.model.url` with the graph's logger (mode all) posting to `loop.collector.url`; `rest`
serves REST on `.url` (`http://127.0.0.1:PORT`) and gRPC on `.grpc_address` as SeldonDeployment DEPLOYMENT /
predictor PREDICTOR in NAMESPACE, and `kafka` runs `--server_type kafka` for STREAMING_DEPLOYMENT from
`loop.names.input_topic` to `loop.names.output_topic` on `loop.kafka.bootstrap`; each may offer
`listeners() -> {name: port}` for the testinfra socket check.

While there is no engine (docs/executor.md) the real-time and batch endpoints are the bare model microservice,
nothing captures their traffic and there is no streaming deployment. The target says so (`realtime.executor:
false`, no `streaming`), so the smoke suite skips those capture checks with the reason and still proves the
collector -> Kafka -> indexer -> search path.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

from devstack import target as target_description
from devstack.names import STREAMING_DEPLOYMENT, Names
from devstack.runtime.paths import new_run_dir
from devstack.runtime.ports import HOST
from devstack.servers.feedback import CollectorServer, IndexerServer, MonitorServer
from devstack.servers.kafka import KafkaServer
from devstack.servers.model import ModelService, artifacts_path
from devstack.servers.prometheus import PrometheusServer
from devstack.servers.s3 import S3Server
from devstack.servers.search import SearchServer
from devstack.stack import LocalStack, PrivateStack, Server, Tracked
from smoke_tests.target import Limits, Target

log = logging.getLogger(__name__)

ENGINE_MODULE = "devstack.servers.engine"


def executor_available() -> bool:
    """True when the engine module can give the loop its executors (REST mode and Kafka mode, logging to the
    collector): `devstack.servers.engine` exists and offers `loop_executors(loop)`."""
    if importlib.util.find_spec(ENGINE_MODULE) is None:
        return False
    module = importlib.import_module(ENGINE_MODULE)
    if not hasattr(module, "loop_executors"):
        log.warning("%s has no loop_executors(loop); running the loop without the engine", ENGINE_MODULE)
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
        monitor_settings: dict[str, Any] | None = None,
        publish_state: bool = True,
    ) -> None:
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
            engine = importlib.import_module(ENGINE_MODULE)
            self.executor_rest, self.executor_kafka = engine.loop_executors(self)  # REST mode, Kafka mode
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
        self.monitor = MonitorServer(
            self.run_dir,
            search.url,
            names.index,
            profiles_dir=artifacts_path(),  # the model's start trains it (with its profile) before the monitor starts
            index=names.monitor_index,
            kafka_bootstrap=kafka.bootstrap,
            capture_topic=names.capture_topic,
            dead_letter_topic=names.dead_letter_topic,
            indexer_group=names.group_id,
            **(monitor_settings or {}),
        )
        servers.append(Tracked(self.monitor, self.run_dir))
        # a real Prometheus scraping the three services and evaluating the chart's alert rules
        self.prometheus = PrometheusServer(
            self.run_dir,
            {
                "collector": f"{HOST}:{self.collector.port}",
                "indexer": f"{HOST}:{self.indexer.port}",
                "monitor": f"{HOST}:{self.monitor.port}",
            },
            interval_s=5.0,
        )
        servers.append(Tracked(self.prometheus, self.run_dir))
        self.stack = (LocalStack if publish_state else PrivateStack)(servers, self.run_dir)
        self.target_path = self.run_dir / target_description.TARGET_FILE

    def start(self) -> LoopStack:
        self.stack.start()
        target_description.write(self.target(), self.target_path)
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

    @property
    def has_executor(self) -> bool:
        return self.executor_rest is not None

    @property
    def rest_url(self) -> str:
        return self.executor_rest.url if self.has_executor else self.model.url

    def target(self) -> Target:
        """The smoke target describing this running stack (devstack.target)."""
        return target_description.describe(self)
