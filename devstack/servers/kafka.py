"""Apache Kafka 4.x, KRaft single node (broker + controller in one JVM), from its Maven Central jars.

    kafka = KafkaServer(run_dir).start()
    kafka.create_topics(["model_input", "model_output"], partitions=3)
    ... kafka.bootstrap  # "127.0.0.1:PORT"
    kafka.stop(); kafka.start()  # same data dir, same ports

    kafka = KafkaServer(run_dir, secure=True).start()  # SASL/SCRAM + StandardAuthorizer (kafka_auth.py)
    kafka.grant(KafkaNames(...))       # the users and ACLs of infra/kafka_access.py
    kafka.client_config("feedback-collector")  # bootstrap.servers + that user's login

The storage is formatted on the first start only; a restart reuses the data (topics, offsets, records, users,
ACLs). A plain broker (the default) takes anyone; a secure one only the admin (its super user) and the table's
users, each limited to its ACLs.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from devstack.runtime.errors import DevstackError
from devstack.runtime.java import java_executable, java_process_env, jvm_options
from devstack.runtime.maven import classpath_string
from devstack.runtime.ports import HOST, ensure_free, free_ports, is_listening
from devstack.runtime.process import ManagedProcess, tail
from devstack.runtime.startup import likely_cause, remember, remembered, start_failure, still_free
from devstack.servers.kafka_auth import KafkaSecurity, create_acls, upsert_users
from infra.kafka_access import ADMIN_USER, KafkaNames

log = logging.getLogger(__name__)
_client_log = logging.getLogger(__name__ + ".admin")  # librdkafka's own lines go to logging, not stderr

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # the version kafka_2.13 4.1.1 depends on; adds the SLF4J 1.x binding it leaves out
ARTIFACTS = (
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
)
START_TIMEOUT_S = 120.0
FORMAT_TIMEOUT_S = 120.0

LOG4J2_PROPERTIES = """\
status = warn
name = devstack-kafka
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.log.name = kafka.log
logger.log.level = WARN
logger.storage.name = org.apache.kafka.storage
logger.storage.level = WARN
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
logger.kafkaconfig.name = kafka.server.KafkaConfig
logger.kafkaconfig.level = WARN
"""


def new_cluster_id() -> str:
    """A KRaft cluster id, as `kafka-storage random-uuid` makes it (URL-safe base64 of 16 random bytes)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaServer:
    """One KRaft broker+controller on 127.0.0.1 with its data and logs under `run_dir/kafka`."""

    name = "kafka"

    def __init__(
        self, run_dir: Path, port: int | None = None, controller_port: int | None = None, *, secure: bool = False
    ) -> None:
        self.home = Path(run_dir) / "kafka"
        # the passwords live beside the data: a restart (or a second process on the same run dir) logs in again
        self.security: KafkaSecurity | None = KafkaSecurity.load_or_create(self.home) if secure else None
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.config_path = self.home / "server.properties"
        self.log4j_path = self.home / "log4j2.properties"
        saved = remembered(self.home)  # the same data dir comes back on the same ports (the quorum records them)
        chosen = free_ports(2)
        self.port = port or saved.get("port") or chosen[0]
        self.controller_port = controller_port or saved.get("controller_port") or chosen[1]
        if self.controller_port == self.port:
            self.controller_port = chosen[0] if chosen[0] != self.port else chosen[1]
        self._chosen_by_us = (port is None and not saved, controller_port is None and not saved)
        self._started_once = False
        self.process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def secure(self) -> bool:
        return self.security is not None

    def client_config(self, user: str = ADMIN_USER) -> dict[str, str]:
        """librdkafka settings for this broker that log in as `user` (a plain broker ignores the user)."""
        login = self.security.client_config(user) if self.security is not None else {}
        return {"bootstrap.servers": self.bootstrap, **login}

    def client_env(self, user: str) -> dict[str, str]:
        """KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_* for a service that logs in as `user` (empty: a plain broker)."""
        return self.security.client_env(user) if self.security is not None else {}

    def _listener_lines(self) -> list[str]:
        if self.security is not None:
            return self.security.server_properties(HOST, self.port, self.controller_port)
        return [
            f"listeners=PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "auto.create.topics.enable=true",
        ]

    def server_properties(self) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                *self._listener_lines(),
                f"controller.quorum.bootstrap.servers={HOST}:{self.controller_port}",
                f"log.dirs={self.data_dir}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=4",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "num.network.threads=2",
                "num.io.threads=2",
                "num.recovery.threads.per.data.dir=1",
                "",
            ]
        )

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            java_executable(),
            *jvm_options(),
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            f"-Dkafka.logs.dir={self.log_dir}",
            main_class,
            *args,
        ]

    def _env(self) -> dict[str, str]:
        return java_process_env(classpath_string(*ARTIFACTS))

    def _format_storage(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        format_log = self.log_dir / "format.log"
        argv = self._java(
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.config_path),
            *(self.security.format_arguments() if self.security is not None else []),
        )
        with format_log.open("ab") as out:
            try:
                result = subprocess.run(
                    argv, stdout=out, stderr=subprocess.STDOUT, env=self._env(), timeout=FORMAT_TIMEOUT_S, check=False
                )
            except subprocess.TimeoutExpired:  # run() has killed it; say so in one line instead of a traceback
                raise DevstackError(
                    f"kafka: formatting the storage in {self.data_dir} took over {FORMAT_TIMEOUT_S:.0f} s and was "
                    f"stopped; the machine may be overloaded: retry, and see {format_log}"
                ) from None
        if result.returncode != 0:
            cause = likely_cause(format_log)
            raise DevstackError(
                f"kafka: formatting the storage in {self.data_dir} failed (exit {result.returncode})"
                + (f": {cause}" if cause else "")
                + f"; fix {self.config_path} (or remove {self.data_dir}) and retry\n"
                f"last lines of {format_log}:\n{tail(format_log)}"
            )

    def start(self, timeout: float = START_TIMEOUT_S) -> KafkaServer:
        if self.process is not None and self.process.running():
            return self
        if not self._started_once:  # a restart must come back on the same ports
            self.port = still_free(self.port, self._chosen_by_us[0], "kafka")
            self.controller_port = still_free(self.controller_port, self._chosen_by_us[1], "kafka controller")
        ensure_free(self.port, "kafka")
        ensure_free(self.controller_port, "kafka controller")
        remember(self.home, {"port": self.port, "controller_port": self.controller_port})
        self._started_once = True
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.server_properties())
        self.config_path.chmod(0o600)  # a secure broker's file holds the admin password
        self.log4j_path.write_text(LOG4J2_PROPERTIES)
        self._format_storage()
        began = time.monotonic()
        self.process = ManagedProcess(
            "kafka",
            self._java("kafka.Kafka", str(self.config_path)),
            self.log_dir,
            env=self._env(),
            ports=[self.port, self.controller_port],
        ).start()
        try:
            self.process.wait_ready(self._ready, timeout)
        except DevstackError as exc:
            raise start_failure(self.name, exc, self.log_path, self.config_path) from None
        log.info("kafka ready at %s in %.1f s (data %s)", self.bootstrap, time.monotonic() - began, self.data_dir)
        return self

    def _admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        return AdminClient({**self.client_config(), "socket.timeout.ms": 5000, "logger": _client_log})

    def grant(self, names: KafkaNames, timeout: float = 60.0) -> int:
        """On a secure broker: the SCRAM users and the ACLs of infra/kafka_access.py for `names` (as the admin);
        returns the number of ACL bindings (0 on a plain broker, which takes anyone)."""
        if self.security is None:
            return 0
        admin = self._admin()
        upsert_users(admin, self.security, timeout)
        return create_acls(admin, names, timeout)

    def _ready(self) -> bool:
        if not is_listening(self.port):
            return False
        metadata = self._admin().list_topics(timeout=5)
        return 1 in metadata.brokers and metadata.controller_id == 1

    def create_topics(self, names: list[str], partitions: int = 1, timeout: float = 60.0) -> None:
        """Create topics (replication 1); an existing topic is kept as it is. Returns when all have leaders."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic

        if not names:
            return
        if partitions < 1:
            raise DevstackError(f"kafka: partitions must be >= 1, got {partitions}")
        admin = self._admin()
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise DevstackError(f"kafka: cannot create topic {name!r}: {error.str()}") from None
        deadline = time.monotonic() + timeout
        while True:
            topics = admin.list_topics(timeout=10).topics
            ready = all(
                name in topics
                and topics[name].error is None
                and topics[name].partitions
                and all(p.leader >= 0 for p in topics[name].partitions.values())
                for name in names
            )
            if ready:
                return
            if time.monotonic() > deadline:
                raise DevstackError(f"kafka: topics {names} have no leader after {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.2)

    @property
    def log_path(self) -> Path:
        return self.log_dir / "kafka.log"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": KAFKA_VERSION,
            "bootstrap": self.bootstrap,
            "security": "SASL_PLAINTEXT/SCRAM-SHA-512, StandardAuthorizer" if self.secure else "PLAINTEXT",
            "ports": {"broker": self.port, "controller": self.controller_port},
            "pid": self.process.pid if self.process and self.process.running() else None,
            "log": str(self.log_path),
            "data": str(self.data_dir),
            "rss_bytes": self.process.rss_bytes() if self.process else 0,
        }
