"""One feedback pipeline on shared Kafka and search servers: its own capture and dead-letter topics and index, with
collectors and indexers started on demand, and readers for what landed (tests, benchmarks).

    pipeline = FeedbackPipeline(kafka, search, run_dir)  # creates <name>-capture and <name>-capture-dead-letter
    indexer = pipeline.indexer(batch_size="1000")       # devstack.servers.feedback.IndexerServer, started
    pipeline.produce(records); pipeline.wait_for(lambda: pipeline.count() >= n, 60, "indexed")
    pipeline.stop_all()                                 # every collector and indexer it started, last first
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from devstack.capture_traffic import WireRecord, mismatches
from devstack.names import INDEXER_GROUP, STREAMING_DEPLOYMENT
from devstack.runtime.process import wait_until
from devstack.servers.feedback import CollectorServer, IndexerServer
from infra.kafka_access import COLLECTOR_USER, INDEXER_USER, KafkaNames

TRANSIENT_GROUP_ERRORS = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
}


@dataclass
class FeedbackPipeline:
    """One test's pipeline on the shared servers: own capture and dead-letter topics, own index."""

    kafka: Any
    search: Any
    run_dir: Path
    partitions: int = 4
    # no separator after "fb": request ids made from the name ("fb-59040918-x") could otherwise hold a digit run
    # the default phone redaction takes, and the collector would key such an event by the id's pseudonym
    name: str = field(default_factory=lambda: f"fb{uuid.uuid4().hex[:8]}")
    started: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.topic = f"{self.name}-capture"
        self.dead_letter_topic = f"{self.topic}-dead-letter"
        self.index = f"{self.name}-index"
        self.kafka.create_topics([self.topic, self.dead_letter_topic], partitions=self.partitions)
        self.kafka.grant(  # a secure broker: the collector and indexer users get these topics (plain: nothing)
            KafkaNames(
                capture_topic=self.topic,
                dead_letter_topic=self.dead_letter_topic,
                input_topic=f"{self.name}-model_input",
                output_topic=f"{self.name}-model_output",
                indexer_group=INDEXER_GROUP,
            )
        )

    # ------------------------------------------------------------------------------------ services
    def collector(self, **settings: Any) -> CollectorServer:
        settings = {**self.kafka.client_env(COLLECTOR_USER), **settings}
        server = CollectorServer(self.run_dir / self.name, self.kafka.bootstrap, self.topic, **settings)
        self.started.append(server)
        return server.start()

    def indexer(self, **settings: Any) -> IndexerServer:
        settings.setdefault("batch_wait_s", "0.2")
        settings.setdefault("streaming_deployments", STREAMING_DEPLOYMENT)
        return self.indexer_server(**settings).start()

    def indexer_server(self, **settings: Any) -> IndexerServer:
        """An indexer on this pipeline's topic and index, not started (stopped by `stop_all`), with only `settings`."""
        settings = {**self.kafka.client_env(INDEXER_USER), **settings}
        server = IndexerServer(
            self.run_dir / self.name, self.kafka.bootstrap, self.topic, self.search.url, self.index, **settings
        )
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()

    # --------------------------------------------------------------------------------------- Kafka
    def produce(self, records: list[WireRecord], topic: str | None = None) -> None:
        producer = Producer({**self.kafka.client_config(), "enable.idempotence": True, "linger.ms": 5})
        for record in records:
            kwargs: dict[str, Any] = {"key": record.key, "headers": record.headers}
            if record.timestamp_ms is not None:
                kwargs["timestamp"] = record.timestamp_ms
            while True:
                try:
                    producer.produce(topic or self.topic, record.value, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        assert producer.flush(60) == 0, "Kafka did not acknowledge every test record"

    def read_topic(self, topic: str, timeout: float = 30.0) -> list[Any]:
        """Every message currently in `topic` (from the beginning to the end offsets seen at the start)."""
        consumer = Consumer(
            {
                **self.kafka.client_config(),
                "group.id": f"reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
            consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
            messages: list[Any] = []
            deadline = time.monotonic() + timeout
            done = {p for p, end in ends.items() if end == 0}
            while len(done) < len(ends) and time.monotonic() < deadline:
                for message in consumer.consume(500, 1.0):
                    if message.error():
                        continue
                    messages.append(message)
                    if message.offset() + 1 >= ends[message.partition()]:
                        done.add(message.partition())
            assert len(done) == len(ends), f"could not read {topic} to its end within {timeout:.0f} s"
            return messages
        finally:
            consumer.close()

    def committed_to_end(self, group_id: str = INDEXER_GROUP) -> bool:
        """True when `group_id` has committed every partition of the capture topic up to its end offset: the
        indexer commits only after the search engine acknowledged, so every message is then in the index.
        A transient broker answer (e.g. NOT_COORDINATOR while the group coordinator loads) is "not yet"."""
        consumer = Consumer({**self.kafka.client_config(), "group.id": group_id})
        try:
            partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            committed = consumer.committed([TopicPartition(self.topic, p) for p in partitions], timeout=10)
            for tp in committed:
                end = consumer.get_watermark_offsets(TopicPartition(self.topic, tp.partition), timeout=10)[1]
                if end > 0 and tp.offset < end:
                    return False
            return True
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and (error.retriable() or error.code() in TRANSIENT_GROUP_ERRORS):
                return False
            raise
        finally:
            consumer.close()

    # --------------------------------------------------------------------------------------- index
    def documents(self) -> list[dict[str, Any]]:
        """All documents of the index (refreshed first), as hits with _id and _source."""
        requests.post(f"{self.search.url}/{self.index}/_refresh", timeout=30).raise_for_status()
        hits: list[dict[str, Any]] = []
        search_after = None
        while True:
            body: dict[str, Any] = {"size": 5000, "sort": [{"_id": "asc"}], "track_total_hits": True}
            if search_after is not None:
                body["search_after"] = search_after
            response = requests.post(f"{self.search.url}/{self.index}/_search", json=body, timeout=60)
            response.raise_for_status()
            page = response.json()["hits"]["hits"]
            hits.extend(page)
            if len(page) < 5000:
                return hits
            search_after = page[-1]["sort"]

    def count(self) -> int:
        """Documents in the index after a refresh, so that everything acknowledged is counted."""
        requests.post(f"{self.search.url}/{self.index}/_refresh", timeout=30)
        response = requests.get(f"{self.search.url}/{self.index}/_count", timeout=30)
        if response.status_code == 404:
            return 0
        response.raise_for_status()
        return int(response.json()["count"])

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        wait_until(predicate, timeout, what, interval=0.5, max_interval=2.0)

    def by_key(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Documents keyed by (request id, instance); fails on a duplicate key."""
        result: dict[tuple[str, int], dict[str, Any]] = {}
        for hit in self.documents():
            source = hit["_source"]
            key = (source["request_id"], source["instance"])
            assert key not in result, f"duplicate document for {key}: {hit['_id']}"
            result[key] = source
        return result

    def assert_matches(self, expected: dict[tuple[str, int], dict[str, Any]]) -> None:
        """Exactly one document per expected (request id, instance), every expected field right, nothing else."""
        actual = self.by_key()
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        assert not missing, f"{len(missing)} documents missing, e.g. {missing[:3]}"
        assert not extra, f"{len(extra)} unexpected documents, e.g. {extra[:3]}"
        wrong = {key: mismatches(want, actual[key]) for key, want in expected.items()}
        wrong = {key: diff for key, diff in wrong.items() if diff}
        assert not wrong, f"{len(wrong)} documents with wrong fields, e.g. {list(wrong.items())[:2]}"
