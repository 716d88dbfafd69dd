"""`python -m devstack check-servers` (or `demo --servers-only`): start Kafka, search and S3, show each works, stop.

The check is a list of steps run in order against a started `LocalStack`; each step returns one line saying
what it proved, and the report gives every server's version, address, start time and memory. Later parts of the
project extend it by adding servers to `default_servers()` and steps to `STEPS` (or by passing their own lists to
`run`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import new_run_dir
from devstack.servers.kafka import KafkaServer
from devstack.servers.s3 import S3Server
from devstack.servers.search import SearchServer
from devstack.stack import LocalStack, Server

log = logging.getLogger(__name__)


@dataclass
class DemoContext:
    stack: LocalStack
    run_dir: Path
    data: dict[str, Any] = field(default_factory=dict)  # steps may hand results to later steps here

    @property
    def kafka(self) -> KafkaServer:
        return self.stack["kafka"]  # type: ignore[return-value]

    @property
    def search(self) -> SearchServer:
        return self.stack["search"]  # type: ignore[return-value]

    @property
    def s3(self) -> S3Server:
        return self.stack["s3"]  # type: ignore[return-value]


@dataclass
class StepResult:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class DemoReport:
    run_dir: Path
    steps: list[StepResult]
    servers: dict[str, dict[str, Any]]
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(step.ok for step in self.steps)


Step = tuple[str, Callable[[DemoContext], str]]


def kafka_round_trip(ctx: DemoContext, count: int = 100) -> str:
    from confluent_kafka import Consumer, Producer

    topic = "demo-events"
    ctx.kafka.create_topics([topic], partitions=2)
    producer = Producer({**ctx.kafka.client_config(), "enable.idempotence": True, "logger": log})
    for i in range(count):
        producer.produce(topic, key=f"req-{i}", value=f'{{"n": {i}}}', headers=[("ce-requestid", f"req-{i}")])
    if producer.flush(30) != 0:
        raise DevstackError("kafka: the demo producer could not deliver within 30 s")
    consumer = Consumer(
        {**ctx.kafka.client_config(), "group.id": f"demo-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    keys: set[bytes] = set()
    deadline = time.monotonic() + 30
    try:
        while len(keys) < count and time.monotonic() < deadline:
            keys.update(m.key() for m in consumer.consume(num_messages=count, timeout=1.0) if m.error() is None)
    finally:
        consumer.close()
    if len(keys) != count:
        raise DevstackError(f"kafka: produced {count} records but consumed {len(keys)} distinct keys")
    return f"produced {count} keyed records with headers to '{topic}', consumed all {count} back"


def search_index_and_query(ctx: DemoContext) -> str:
    import requests

    index = "demo-docs"
    url = ctx.search.url
    requests.put(f"{url}/{index}", json={"settings": {"number_of_replicas": 0}}, timeout=30)
    docs = {
        "req-1": {"text": "the model said this post is about space", "label": "t:1"},
        "req-2": {"text": "a question about cooking pasta", "label": "t:0"},
    }
    for doc_id, doc in docs.items():
        requests.put(f"{url}/{index}/_doc/{doc_id}", json=doc, timeout=30).raise_for_status()
    requests.post(f"{url}/{index}/_refresh", timeout=30).raise_for_status()
    hits = requests.post(f"{url}/{index}/_search", json={"query": {"match": {"text": "space"}}}, timeout=30).json()
    ids = [hit["_id"] for hit in hits["hits"]["hits"]]
    if ids != ["req-1"]:
        raise DevstackError(f"search: expected the query 'space' to find req-1, found {ids}")
    return f"indexed {len(docs)} documents in '{index}', the query 'space' found exactly req-1"


def s3_put_and_get(ctx: DemoContext) -> str:
    client = ctx.s3.client()
    bucket, key, body = "demo-bucket", "batch/input.jsonl", b'{"text": "hello"}\n'
    ctx.s3.create_buckets([bucket])
    client.put_object(Bucket=bucket, Key=key, Body=body)
    read = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if read != body:
        raise DevstackError(f"s3: wrote {body!r} to s3://{bucket}/{key} but read {read!r}")
    return f"put and got back s3://{bucket}/{key} ({len(body)} bytes) via {ctx.s3.endpoint}"


STEPS: list[Step] = [
    ("kafka produce/consume", kafka_round_trip),
    ("search index/query", search_index_and_query),
    ("s3 put/get", s3_put_and_get),
]


def default_servers(run_dir: Path) -> list[Server]:
    return [KafkaServer(run_dir), SearchServer(run_dir), S3Server(run_dir)]


def run(
    run_dir: Path | None = None,
    servers: list[Server] | None = None,
    steps: list[Step] | None = None,
) -> DemoReport:
    """Start the servers, run every step (a failed step does not stop the others), measure, stop everything."""
    run_dir = run_dir or new_run_dir("demo-")
    stack = LocalStack(servers if servers is not None else default_servers(run_dir), run_dir)
    began = time.monotonic()
    results: list[StepResult] = []
    described: dict[str, dict[str, Any]] = {}
    try:
        stack.start()
        ctx = DemoContext(stack=stack, run_dir=run_dir)
        for name, step in steps if steps is not None else STEPS:
            step_began = time.monotonic()
            try:
                detail, ok = step(ctx), True
            except Exception as exc:  # report it and go on with the next step
                log.exception("demo step %s failed", name)
                detail, ok = f"{type(exc).__name__}: {exc}".splitlines()[0], False
            results.append(StepResult(name, ok, detail, round(time.monotonic() - step_began, 1)))
        described = stack.state()["servers"]  # resident memory measured while everything still runs
    except DevstackError as exc:
        return DemoReport(run_dir, results, described, round(time.monotonic() - began, 1), error=str(exc))
    finally:
        stack.stop()
    return DemoReport(run_dir, results, described, round(time.monotonic() - began, 1))


def _address(info: dict[str, Any]) -> str:
    return str(info.get("bootstrap") or info.get("url") or info.get("endpoint") or "")


def format_report(report: DemoReport) -> str:
    lines = ["", "Local stack demo", "================", ""]
    if report.servers:
        lines.append(f"{'server':<8} {'version':<20} {'address':<28} {'start':>7} {'memory (RSS)':>13}")
        for name, info in report.servers.items():
            rss = info.get("rss_bytes") or 0
            start = info.get("start_seconds")
            lines.append(
                f"{name:<8} {info.get('version', ''):<20} {_address(info):<28} "
                f"{(f'{start:.1f} s' if start is not None else '-'):>7} {rss / 2**20:>9.0f} MiB"
            )
        lines.append("")
    for step in report.steps:
        mark = "ok  " if step.ok else "FAIL"
        lines.append(f"[{mark}] {step.name}: {step.detail} ({step.seconds:.1f} s)")
    if report.error:
        lines.append(f"[FAIL] the stack did not start: {report.error}")
    lines.append("")
    verdict = "every step passed" if report.ok else "SOMETHING FAILED (see above)"
    lines.append(f"{verdict}; {report.seconds:.0f} s in all; servers stopped; logs in {report.run_dir}")
    return "\n".join(lines)
