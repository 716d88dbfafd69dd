"""The whole loop on 127.0.0.1 for the smoke tests and the demo.

    loop = LoopStack(run_dir).start()   # Kafka, search, S3, topics+bucket, model, collector, indexer, monitor,
                                        # Prometheus (scraping them, evaluating the alert rules), engines
    loop.target()                       # a smoke_tests.target.Target (also written to loop.target_path)
    loop.stop()

It is a `devstack.stack.LocalStack` (ordered start, reverse stop, state file for `python -m devstack status`)
over the servers of `devstack.servers`. Servers that already run (the test session's `kafka`, `search`, `s3`
fixtures) can be passed in: they are used, not started or stopped. Names come from `devstack.names`, the target
description from `devstack.target`.

In front of the model run two executors (devstack/servers/engine.py: the local engine, or the real binary named
by DEVSTACK_EXECUTOR_BIN), configured from the text-classifier chart as a cluster's are: the chart is rendered
(tools.helm.executor_definition) for the real-time SeldonDeployment (REST and gRPC, `engine`) and for the
streaming one (`--server_type kafka` from the input to the output topic, `engine-kafka`), with the graph's
logger (mode all) pointing at the local collector. They behave as the executor of the dev stack's
`seldon:version` (stacks/Pulumi.dev.yaml) unless `seldon_version` says otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from devstack import target as target_description
from devstack.engine.kafka_api import group_id as executor_group
from devstack.names import DEPLOYMENT, NAMESPACE, PREDICTOR, STREAMING_DEPLOYMENT, Names
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import REPO_ROOT, new_run_dir
from devstack.runtime.ports import HOST
from devstack.servers.engine import EngineServer
from devstack.servers.feedback import CollectorServer, IndexerServer, MonitorServer
from devstack.servers.kafka import KafkaServer
from devstack.servers.model import ModelService, artifacts_path
from devstack.servers.prometheus import PrometheusServer
from devstack.servers.s3 import S3Server
from devstack.servers.search import SearchServer
from devstack.stack import LocalStack, PrivateStack, Server, Tracked
from infra.kafka_access import COLLECTOR_USER, EXECUTOR_USER, INDEXER_USER, MONITOR_USER, KafkaNames
from smoke_tests.target import Limits, Target

log = logging.getLogger(__name__)

DEV_STACK_FILE = REPO_ROOT / "stacks" / "Pulumi.dev.yaml"
# short waits on one machine: a request without a response is no_response after 5 s (not 120), a feedback without
# the prediction's puid is joined by fingerprint after 3 s (not 60), the sweep runs every second
LOCAL_INDEXER_SETTINGS = {
    "batch_wait_s": 0.2,
    "no_response_after_s": 5.0,
    "feedback_join_delay_s": 3.0,
    "sweep_interval_s": 1.0,
}
SELDON_VERSION_KEY = "seldon:version"


def stack_seldon_version(path: Path = DEV_STACK_FILE) -> str | None:
    """The `seldon:version` the dev stack deploys (None when the file does not set it: the engine's own default,
    the recorded 1.17.1, applies)."""
    try:
        config = (yaml.safe_load(path.read_text()) or {}).get("config", {})
    except (OSError, yaml.YAMLError) as exc:
        raise DevstackError(f"cannot read {SELDON_VERSION_KEY} from {path}: {exc}") from None
    value = config.get(SELDON_VERSION_KEY)
    return str(value) if value is not None else None


def kafka_names(names: Names, executor_groups: tuple[str, ...] | None = None) -> KafkaNames:
    """The names the access table's grants resolve to in this stack (infra/kafka_access.py); the streaming
    executor's group is `<predictor>.<deployment>.<namespace>` (devstack.names' unless given)."""
    return KafkaNames(
        capture_topic=names.capture_topic,
        dead_letter_topic=names.dead_letter_topic,
        input_topic=names.input_topic,
        output_topic=names.output_topic,
        indexer_group=names.group_id,
        executor_groups=executor_groups or (executor_group(PREDICTOR, STREAMING_DEPLOYMENT, NAMESPACE),),
    )


class Provision:
    """A step in the server list: create the topics and the bucket once Kafka and S3 are up; on a secure broker,
    the users and ACLs of infra/kafka_access.py for this stack's names."""

    name = "provision"
    process = None

    def __init__(self, kafka: Any, s3: Any, names: Names) -> None:
        self.kafka = kafka
        self.s3 = s3
        self.names = names
        self.acls = 0
        self.executor_groups: tuple[str, ...] | None = None  # set by LoopStack from the chart's streaming definition

    def start(self) -> Provision:
        self.kafka.create_topics(self.names.topics)
        self.acls = self.kafka.grant(kafka_names(self.names, self.executor_groups))
        self.s3.create_buckets([self.names.bucket, self.names.flowback_bucket])
        return self

    def stop(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "topics": self.names.topics,
            "bucket": self.names.bucket,
            "flowbackBucket": self.names.flowback_bucket,
            "acls": self.acls,
        }


class LoopStack:
    """Every server of the feedback loop, in dependency order, with the smoke target that describes it."""

    def __init__(
        self,
        run_dir: Path | None = None,
        *,
        kafka: Any = None,
        search: Any = None,
        s3: Any = None,
        limits: Limits | None = None,
        names: Names | None = None,
        indexer_settings: dict[str, Any] | None = None,
        monitor_settings: dict[str, Any] | None = None,
        publish_state: bool = True,
        seldon_version: str | None = None,
    ) -> None:
        self.run_dir = run_dir or new_run_dir("loop-")
        self.limits = limits or Limits()
        self.names = names = names or Names()
        servers: list[Server] = []
        if kafka is None:  # the loop's own broker takes only the access table's users (a passed-in one may be plain)
            kafka = KafkaServer(self.run_dir, secure=True)
            servers.append(kafka)
        if search is None:
            search = SearchServer(self.run_dir)
            servers.append(search)
        if s3 is None:
            s3 = S3Server(self.run_dir)
            servers.append(s3)
        self.kafka, self.search, self.s3 = kafka, search, s3
        provision = Provision(kafka, s3, names)
        servers.append(provision)
        self.model = ModelService(self.run_dir)
        servers.append(self.model)
        self.collector = CollectorServer(
            self.run_dir, bootstrap=kafka.bootstrap, topic=names.capture_topic, **kafka.client_env(COLLECTOR_USER)
        )
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
            **(indexer_settings or LOCAL_INDEXER_SETTINGS),
            **kafka.client_env(INDEXER_USER),
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
            **kafka.client_env(MONITOR_USER),
        )
        servers.append(Tracked(self.monitor, self.run_dir))
        # a real Prometheus scraping the three services and evaluating the chart's alert rules
        self.prometheus = PrometheusServer(
            self.run_dir,
            {
                "collector": f"{HOST}:{self.collector.ops_port}",  # its metrics port, not the event port
                "indexer": f"{HOST}:{self.indexer.port}",
                "monitor": f"{HOST}:{self.monitor.port}",
            },
            interval_s=5.0,
        )
        servers.append(Tracked(self.prometheus, self.run_dir))
        self.seldon_version = seldon_version or stack_seldon_version()
        self.engine, self.engine_kafka = self._engines()
        streaming = self.engine_kafka
        provision.executor_groups = (
            executor_group(streaming.predictor_name, streaming.deployment, streaming.namespace),
        )
        servers += [self.engine, self.engine_kafka]  # last up, first down: their queued events reach the collector
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

    def _engines(self) -> tuple[EngineServer, EngineServer]:
        """The real-time and the streaming executor, defined by the text-classifier chart as rendered for a
        cluster, pointed at the local model, collector, Kafka and topics."""
        from tools.helm import executor_definition  # the one use of tools/ in devstack (docs/decisions.md)

        realtime = executor_definition()
        streaming = executor_definition(
            {
                "mode": "streaming",
                "kafka": {"broker": self.kafka.bootstrap},
                "streaming": {"inputTopic": self.names.input_topic, "outputTopic": self.names.output_topic},
            }
        )
        for definition, expected in ((realtime, DEPLOYMENT), (streaming, STREAMING_DEPLOYMENT)):
            if definition.deployment != expected or definition.secret_env:
                raise DevstackError(
                    f"the text-classifier chart renders SeldonDeployment {definition.deployment!r} (secrets "
                    f"{definition.secret_env}); the local stack expects {expected!r} without secrets "
                    "(devstack/names.py)"
                )
        model, collector_url = self.model, self.collector.url

        def engine(name: str, definition: Any) -> EngineServer:
            return EngineServer(
                self.run_dir,
                name=name,
                predictor=lambda: definition.local_predictor(
                    HOST, model.server.http_port, model.server.grpc_port, logger_url=collector_url
                ),
                deployment=definition.deployment,
                namespace=definition.namespace,
                predictor_name=definition.predictor["name"],
                server_type=definition.server_type,
                transport=definition.transport,
                protocol=definition.protocol,
                env={**definition.env, **self.kafka.client_env(EXECUTOR_USER)},
                seldon_version=self.seldon_version,
            )

        return engine("engine", realtime), engine("engine-kafka", streaming)

    @property
    def rest_url(self) -> str:
        return self.engine.url

    @property
    def capture_source(self) -> str:
        """What logs the loop's traffic, for reports: the local engine or the real binary's path."""
        return self.engine.source

    def target(self) -> Target:
        """The smoke target describing this running stack (devstack.target)."""
        return target_description.describe(self)
