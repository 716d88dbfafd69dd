"""Read what landed: search documents, Kafka records and object-store files, for one run's ids only.

Field names of the capture index live in `Fields` (one place), the event formats the capture topic may hold
(the collector's CloudEvents binary mode with `ce_*` headers, or the executor's direct Kafka logging with
`type`/`requestid` headers) in `capture_event`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from smoke_tests.target import KafkaTarget, ObjectStoreTarget, SearchTarget

CLASS_NAMES = ["t:0", "t:1"]


class Fields:
    """Field names of the capture documents (the indexer's template: images/feedback/feedback/indexer/core.py)."""

    request_id = "request_id"
    mode = "mode"
    batch_id = "batch_id"
    batch_index = "batch_index"
    batch_instance_id = "batch_instance_id"
    input_text = "input_text"
    predicted_label = "predicted_label"
    probabilities = "probabilities"
    class_names = "class_names"
    truth = "truth_label"  # the class name of the ground truth (also "truth": its index as a string)
    reward = "reward"
    has_request = "request_time"  # set by the request event
    has_response = "response_time"  # set by the response event
    deployment = "deployment"
    latency_ms = "latency_ms"
    timestamp = "@timestamp"
    transport = "transport"  # rest | grpc (how the executor logged the payload)
    outcome = "outcome"  # ok | error | pending | no_response
    feedback_join = "feedback_join"  # puid | fingerprint: how the ground truth found its prediction
    feedback_request_id = "feedback_request_id"  # joined by fingerprint: the puid the feedback was logged under


class MonitorFields:
    """Field names of the monitor's documents (its template: images/feedback/feedback/monitor/search_io.py)."""

    metric = "metric"
    status = "status"
    window_start = "window_start"
    deployment = "deployment"
    value = "value"


class SearchReader:
    """Counts and fetches capture documents over the Elasticsearch/OpenSearch REST API (both speak it)."""

    def __init__(self, target: SearchTarget, timeout: float = 30.0) -> None:
        self.target = target
        self.session = requests.Session()
        if target.username:
            self.session.auth = (target.username, target.password)
        self.session.verify = target.verify_certs
        self.timeout = timeout

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.target.url.rstrip('/')}/{self.target.index}/{path}"
        response = self.session.post(url, json=body, timeout=self.timeout, params={"ignore_unavailable": "true"})
        if response.status_code == 404:  # the index does not exist yet: nothing indexed so far
            return {"hits": {"hits": [], "total": {"value": 0}}, "count": 0}
        response.raise_for_status()
        return response.json()

    def search(self, query: dict[str, Any], size: int = 10_000) -> list[dict[str, Any]]:
        """All documents matching `query` (at most `size`), as `_source` dicts with `_id` added."""
        body = {"query": query, "size": size, "track_total_hits": True}
        hits = self._post("_search", body)["hits"]["hits"]
        return [{**hit.get("_source", {}), "_id": hit["_id"], "_index": hit.get("_index")} for hit in hits]

    def count(self, query: dict[str, Any]) -> int:
        return int(self._post("_count", {"query": query})["count"])

    def by_request_ids(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(ids)
        return self.search({"terms": {Fields.request_id: ids}}, size=max(10, 2 * len(ids)))

    def by_batch_id(self, batch_id: str, size: int) -> list[dict[str, Any]]:
        return self.search({"term": {Fields.batch_id: batch_id}}, size=max(10, 2 * size))

    def ping(self) -> bool:
        response = self.session.get(self.target.url, timeout=self.timeout)
        return response.status_code < 500


def field(doc: dict[str, Any], dotted: str) -> Any:
    """`doc["a"]["b"]` for "a.b" (documents may be nested or flat with dotted keys)."""
    if dotted in doc:
        return doc[dotted]
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def joined(doc: dict[str, Any]) -> bool:
    """Both halves of the request arrived: the document has the request's and the response's fields."""
    return field(doc, Fields.has_request) is not None and field(doc, Fields.has_response) is not None


def answered(doc: dict[str, Any]) -> bool:
    return field(doc, Fields.has_response) is not None


def truth_label(doc: dict[str, Any]) -> str | None:
    """The truth in a document as a class name, whichever form the indexer stored it in."""
    value = field(doc, Fields.truth)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        row = value[0] if isinstance(value[0], list) else value
        if len(row) == len(CLASS_NAMES):
            return CLASS_NAMES[max(range(len(row)), key=lambda i: row[i])]
    if isinstance(value, int | float):
        return CLASS_NAMES[int(value)]
    return None


@dataclass(frozen=True)
class CaptureEvent:
    """One record on the capture topic, decoded from either capture format."""

    request_id: str
    event_type: str  # request | response | feedback | <other>
    headers: dict[str, str]
    value: bytes
    offset: int
    partition: int

    def body(self) -> Any:
        try:
            return json.loads(self.value)
        except ValueError:
            return None


def _event_kind(ce_type: str) -> str:
    for kind in ("request", "response", "feedback"):
        if ce_type.endswith(kind):
            return kind
    return ce_type


def capture_event(message: Any) -> CaptureEvent | None:
    """Decode a confluent_kafka Message from the capture topic; None if it carries no request id."""
    headers = {
        key.lower(): (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or ""))
        for key, value in (message.headers() or [])
    }
    request_id = headers.get("ce_requestid") or headers.get("requestid") or ""
    if not request_id and message.key():
        request_id = message.key().decode("utf-8", "replace")
    if not request_id:
        return None
    ce_type = headers.get("ce_type") or headers.get("type") or ""
    return CaptureEvent(
        request_id=request_id,
        event_type=_event_kind(ce_type),
        headers=headers,
        value=message.value() or b"",
        offset=message.offset(),
        partition=message.partition(),
    )


class TopicReader:
    """Reads a topic from the offsets it had when the reader was created (so only this run's records)."""

    def __init__(self, kafka: KafkaTarget, topic: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.topic = topic
        self.consumer = Consumer(
            kafka.client_config(
                **{
                    # the prefix the KafkaUser smoke-tests may use (infra/kafka_access.py SMOKE_GROUP_PREFIX)
                    "group.id": f"smoke-tests-{uuid.uuid4()}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "enable.partition.eof": False,
                }
            )
        )
        metadata = self.consumer.list_topics(topic, timeout=30)
        topic_meta = metadata.topics.get(topic)
        if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
            self.consumer.close()
            raise AssertionError(
                f"topic {topic!r} does not exist on {kafka.bootstrap} "
                f"({topic_meta.error if topic_meta else 'no metadata'}); check the target's topic names"
            )
        starts = []
        for partition in sorted(topic_meta.partitions):
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            starts.append(TopicPartition(topic, partition, high))
        self.consumer.assign(starts)

    def read(self, max_seconds: float = 1.0) -> Iterator[Any]:
        """Messages that arrive within `max_seconds` (errors raise)."""
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            batch = self.consumer.consume(num_messages=500, timeout=min(0.5, max(0.05, deadline - time.monotonic())))
            for message in batch:
                if message.error() is not None:
                    raise AssertionError(f"reading {self.topic}: {message.error()}")
                yield message

    def close(self) -> None:
        self.consumer.close()


def s3_client(target: ObjectStoreTarget) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        region_name=target.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
