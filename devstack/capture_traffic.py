"""Realistic Seldon capture traffic for the feedback pipeline, with the documents it must produce (tests, benchmarks).

    traffic = generate_traffic(ids=1000)             # request, response, feedback; real-time, streaming, batch
    pipeline.produce(traffic.records)                # as the collector or the executor's direct logging writes them
    post_events(collector.url, traffic.http_events)  # or as the executor POSTs them to the collector
    pipeline.assert_matches(traffic.expected)        # exactly these documents, every field right

The HTTP events come from the one executor-events client (smoke_tests/executor_events.py); the records the
collector would write come from the collector's own pure function (images/feedback on the path).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from devstack.names import DEPLOYMENT, NAMESPACE, NODE, PREDICTOR, STREAMING_DEPLOYMENT
from smoke_tests.executor_events import EVENT_TYPES, Deployment, ExecutorEvent, executor_event

HttpEvent = ExecutorEvent  # a CloudEvent as Seldon's executor POSTs it to the collector (binary mode)
T0_US = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z
REALTIME, STREAMING = DEPLOYMENT, STREAMING_DEPLOYMENT
SOURCE = "http://text-classifier-default-0:8000/"  # Ce-Source of a predictor pod


def iso(time_us: int) -> str:
    from feedback.indexer.core import iso_time

    return iso_time(time_us)


@dataclass
class WireRecord:
    """A message on the capture topic, either as the collector writes it or as the executor's direct logging."""

    request_id: str
    kind: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    timestamp_ms: int | None = None

    def with_value(self, value: bytes) -> WireRecord:
        return dataclasses.replace(self, value=value)

    def with_header(self, name: str, value: bytes) -> WireRecord:
        return dataclasses.replace(self, headers=[(n, value if n == name else v) for n, v in self.headers])

    def without_headers(self) -> WireRecord:
        return dataclasses.replace(self, headers=[])


@dataclass
class Traffic:
    http_events: list[HttpEvent]
    records: list[WireRecord]
    expected: dict[tuple[str, int], dict[str, Any]]


def http_event(kind: str, request_id: str, payload: Any, time_us: int, deployment: str = REALTIME) -> HttpEvent:
    """The executor's CloudEvent for `payload` at `time_us` (microseconds since the epoch: Ce-Time)."""
    when = datetime.fromtimestamp(time_us / 1_000_000, UTC)
    return executor_event(kind, request_id, payload, Deployment(name=deployment, source=SOURCE), when)


def as_collector_record(event: HttpEvent) -> WireRecord:
    """Exactly what the collector produces for `event` (its own pure function, without redaction)."""
    from feedback.collector.core import CaptureRecord, build_record
    from feedback.redaction import Redactor

    record = build_record(event.headers, event.body, max_body_bytes=1 << 22, redactor=Redactor())
    assert isinstance(record, CaptureRecord), record
    return WireRecord(event.request_id, event.kind, record.key, record.value, record.headers)


def direct_record(kind: str, request_id: str, payload: Any, time_ms: int, deployment: str = STREAMING) -> WireRecord:
    """What the executor writes with LOGGER_KAFKA_BROKER set: plain headers, no key, Kafka timestamp as time."""
    headers = {
        "type": EVENT_TYPES[kind],
        "content-type": "application/json",
        "modelid": NODE,
        "requestid": request_id,
        "inferenceservicename": deployment,
        "namespace": NAMESPACE,
        "endpoint": PREDICTOR,
        "protocol": "seldon",
    }
    return WireRecord(
        request_id, kind, None, json.dumps(payload).encode(), [(k, v.encode()) for k, v in headers.items()], time_ms
    )


def probability(i: int, k: int) -> float:
    p = ((i * 7 + k * 13) % 97 + 1) / 100
    return 0.51 if p == 0.5 else p


@dataclass(frozen=True)
class _Id:
    """One request id of the generated traffic: what was sent for it and the documents it must become."""

    i: int
    request_id: str

    @property
    def streaming(self) -> bool:
        return self.i % 5 == 1

    @property
    def batch(self) -> bool:
        return self.i % 5 == 0

    @property
    def with_feedback(self) -> bool:
        return self.i % 2 == 0

    @property
    def instances(self) -> int:
        return 2 if self.i % 4 == 3 else 1

    @property
    def texts(self) -> list[str]:
        i = self.i
        return [
            f"review {i} part {k}: the product was {'great' if (i + k) % 2 else 'awful'}" for k in range(self.instances)
        ]

    @property
    def times_us(self) -> tuple[int, int, int]:
        """(request, response, feedback) times; whole milliseconds, so direct (Kafka timestamp) times are exact."""
        request_us = T0_US + self.i * 10_000 * 1000
        response_us = request_us + ((self.i % 50) + 1) * 1000
        return request_us, response_us, response_us + 5_000_000

    @property
    def rows(self) -> list[list[float]]:
        return [[round(1 - probability(self.i, k), 2), probability(self.i, k)] for k in range(self.instances)]

    @property
    def truths(self) -> list[int]:
        return [(self.i + k) % 2 for k in range(self.instances)]

    @property
    def batch_tags(self) -> dict[str, Any]:
        return {"batch_id": f"batch-{self.i // 100}", "batch_instance_id": self.request_id, "batch_index": self.i}

    def events(self) -> list[tuple[str, Any, int]]:
        """(kind, payload, time in us) of the request, the response and, for every second id, the feedback."""
        request_us, response_us, feedback_us = self.times_us
        request: dict[str, Any] = {"data": {"ndarray": self.texts}}
        if self.batch:
            request["meta"] = {"tags": self.batch_tags}
        response = {"data": {"names": ["t:0", "t:1"], "ndarray": self.rows}, "meta": {}}
        events = [("request", request, request_us), ("response", response, response_us)]
        if self.with_feedback:
            feedback = {"truth": {"data": {"ndarray": [[t] for t in self.truths]}}, "reward": float(self.i % 3)}
            events.append(("feedback", feedback, feedback_us))
        return events

    def documents(self) -> dict[tuple[str, int], dict[str, Any]]:
        request_us, response_us, feedback_us = self.times_us
        rows, truths = self.rows, self.truths
        found = {}
        for k, text in enumerate(self.texts):
            predicted = 1 if rows[k][1] > rows[k][0] else 0
            doc: dict[str, Any] = {
                "request_id": self.request_id,
                "instance": k,
                "node": NODE,
                "deployment": STREAMING if self.streaming else REALTIME,
                "namespace": NAMESPACE,
                "predictor": PREDICTOR,
                "mode": "batch" if self.batch else ("streaming" if self.streaming else "realtime"),
                "input_text": text,
                "class_names": ["t:0", "t:1"],
                "probabilities": rows[k],
                "predicted_index": predicted,
                "predicted_label": f"t:{predicted}",
                "predicted_score": rows[k][predicted],
                "request_time": iso(request_us),
                "response_time": iso(response_us),
                "@timestamp": iso(request_us),
                "latency_ms": (response_us - request_us) / 1000,
            }
            if self.batch:
                doc.update(self.batch_tags)
            if self.with_feedback:
                doc.update(
                    {
                        "truth": str(truths[k]),
                        "truth_index": truths[k],
                        "truth_label": f"t:{truths[k]}",
                        "correct": truths[k] == predicted,
                        "reward": float(self.i % 3),
                        "feedback_time": iso(feedback_us),
                    }
                )
            found[(self.request_id, k)] = doc
        return found


def generate_traffic(ids: int, total_events: int | None = None, seed: int = 5, prefix: str | None = None) -> Traffic:
    """Request, response and (for every second id) feedback events for `ids` request ids, with their documents.

    Every fifth id is a batch request (meta.tags), every fifth+1 a streaming one logged directly to Kafka (the
    executor's format), the rest real-time through the collector's format; every fourth id carries two texts
    (two instances). With `total_events`, random repeats are added up to that count; all events are shuffled.
    """
    rng = random.Random(seed)
    prefix = prefix or uuid.uuid4().hex[:8]
    http_events: list[HttpEvent] = []
    records: list[WireRecord] = []
    expected: dict[tuple[str, int], dict[str, Any]] = {}
    for i in range(ids):
        one = _Id(i, f"{prefix}-{i:06d}")
        for kind, payload, time_us in one.events():
            if one.streaming:
                records.append(direct_record(kind, one.request_id, payload, time_us // 1000))
            else:
                event = http_event(kind, one.request_id, payload, time_us)
                http_events.append(event)
                records.append(as_collector_record(event))
        expected.update(one.documents())
    if total_events is not None:
        if total_events < len(records):
            raise ValueError(f"total_events={total_events} is below the {len(records)} distinct events")
        records = records + [rng.choice(records) for _ in range(total_events - len(records))]
    rng.shuffle(records)
    rng.shuffle(http_events)
    return Traffic(http_events, records, expected)


def mismatches(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose indexed value differs from the expected one (floats compared to 1e-6)."""
    wrong = {}
    for name, want in expected.items():
        got = actual.get(name)
        if isinstance(want, float) and isinstance(got, int | float):
            if abs(want - got) > 1e-6:
                wrong[name] = (want, got)
        elif isinstance(want, list) and isinstance(got, list) and all(isinstance(x, float) for x in want):
            if len(want) != len(got) or any(abs(a - b) > 1e-6 for a, b in zip(want, got, strict=True)):
                wrong[name] = (want, got)
        elif got != want:
            wrong[name] = (want, got)
    return wrong


# ---------------------------------------------------------------------------------------------- HTTP load


Answer = tuple[int, dict[str, Any] | None]  # HTTP status (-1: no answer) and the JSON body, if it was JSON


async def _post_all(url: str, events: list[HttpEvent], concurrency: int, rate: float | None) -> list[Answer]:
    answers: list[Answer] = [(0, None)] * len(events)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(events)):
        queue.put_nowait(index)
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=90)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            if rate:
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            event = events[index]
            try:
                async with session.post(url, data=event.body, headers=event.headers) as response:
                    text = await response.read()
                    try:
                        body = json.loads(text)
                    except ValueError:
                        body = None
                    answers[index] = (response.status, body if isinstance(body, dict) else None)
            except (aiohttp.ClientError, TimeoutError):
                answers[index] = (-1, None)

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return answers


def post_events(url: str, events: list[HttpEvent], concurrency: int = 16, rate: float | None = None) -> list[int]:
    """POST every event to the collector; returns the HTTP status of each (-1 for a connection failure)."""
    return [status for status, _ in post_events_answered(url, events, concurrency, rate)]


def post_events_answered(
    url: str, events: list[HttpEvent], concurrency: int = 16, rate: float | None = None
) -> list[Answer]:
    """POST every event to the collector; returns each answer's status and JSON body (a 200's body names the
    partition and offset the broker gave the event)."""
    return asyncio.run(_post_all(url, events, concurrency, rate))
