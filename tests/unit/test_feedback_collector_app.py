"""The collector's HTTP app through aiohttp's test client, with an in-memory producer (no Kafka needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent
from feedback.collector.app import create_app
from feedback.collector.kafka_io import Delivered, DeliveryFailed
from feedback.collector.settings import CollectorSettings

ENV = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "COLLECTOR_MAX_BODY_BYTES": "2048"}


class MemoryProducer:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
        self.ready = True
        self.fail_with: str | None = None
        self.resends = 0  # how often the real producer had to produce again (success reports without an offset)
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivered:
        if self.fail_with:
            raise DeliveryFailed(self.fail_with, "broker down", resends=self.resends)
        self.records.append((key, value, headers))
        return Delivered(partition=0, offset=len(self.records) - 1, resends=self.resends)

    def is_ready(self) -> bool:
        return self.ready

    def health_problem(self) -> str | None:
        return None

    def queue_depth(self) -> int:
        return 0

    async def close(self, timeout: float) -> None:
        self.closed = True


def event_message(kind: str = "request", request_id: str = "puid-1", data: Any = None) -> ce_http.HTTPMessage:
    types = {
        "request": "io.seldon.serving.inference.request",
        "response": "io.seldon.serving.inference.response",
        "feedback": "io.seldon.serving.feedback",
    }
    event = CloudEvent(
        {
            "type": types[kind],
            "source": "http://text-classifier-default-0:8000/",
            "requestid": request_id,
            "modelid": "classifier",
            "inferenceservicename": "text-classifier",
            "namespace": "seldon",
            "endpoint": "default",
            "datacontenttype": "application/json",
        },
        data if data is not None else {"data": {"ndarray": ["hello"]}},
    )
    return ce_http.to_binary_event(event)


@pytest.fixture
def producer() -> MemoryProducer:
    return MemoryProducer()


@pytest.fixture
async def client(aiohttp_client: Any, producer: MemoryProducer) -> TestClient:
    settings = CollectorSettings.from_env(ENV)
    return await aiohttp_client(create_app(settings, producer))


async def metric(client: TestClient, name: str) -> float:
    text = await (await client.get("/metrics")).text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("path", ["/", "/api/v1/log", "/seldon/ns/model"])
async def test_events_on_any_path_are_produced(client: TestClient, producer: MemoryProducer, path: str) -> None:
    message = event_message()
    response = await client.post(path, data=message.body, headers=message.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["status"] == "produced" and body["request_id"] == "puid-1"
    key, value, headers = producer.records[-1]
    assert key == b"puid-1"
    assert json.loads(value) == {"data": {"ndarray": ["hello"]}}
    assert dict(headers)["ce_type"] == b"io.seldon.serving.inference.request"
    assert await metric(client, "feedback_collector_events_produced_total") == 1


async def test_missing_type_is_a_400_with_reason_and_is_counted(client: TestClient, producer: MemoryProducer) -> None:
    message = event_message()
    headers = {name: value for name, value in message.headers.items() if name.lower() != "ce-type"}
    response = await client.post("/", data=message.body, headers=headers)
    assert response.status == 400
    body = await response.json()
    assert body["reason"] == "missing_type" and "Ce-Type" in body["error"]
    assert producer.records == []
    assert await metric(client, "feedback_collector_events_rejected_total") == 1


async def test_oversized_body_is_a_413(client: TestClient, producer: MemoryProducer) -> None:
    message = event_message(data={"data": {"ndarray": ["x" * 5000]}})
    response = await client.post("/", data=message.body, headers=message.headers)
    assert response.status == 413
    assert (await response.json())["reason"] == "body_too_large"
    assert producer.records == []


async def test_oversized_chunked_body_is_a_413(client: TestClient, producer: MemoryProducer) -> None:
    message = event_message(data={"data": {"ndarray": ["x" * 5000]}})

    async def chunks():  # no Content-Length: the limit must still hold
        for start in range(0, len(message.body), 1000):
            yield message.body[start : start + 1000]

    response = await client.post("/", data=chunks(), headers=message.headers)
    assert response.status == 413
    assert producer.records == []


async def test_kafka_failure_is_a_503_and_counted(client: TestClient, producer: MemoryProducer) -> None:
    producer.fail_with = "timeout"
    message = event_message()
    response = await client.post("/", data=message.body, headers=message.headers)
    assert response.status == 503
    assert (await response.json())["reason"] == "timeout"
    assert await metric(client, "feedback_collector_events_failed_total") == 1
    assert await metric(client, "feedback_collector_events_in_flight") == 0


async def test_events_produced_again_are_counted_whether_they_end_delivered_or_not(
    client: TestClient, producer: MemoryProducer
) -> None:
    producer.resends = 1
    message = event_message()
    assert (await client.post("/", data=message.body, headers=message.headers)).status == 200
    producer.resends, producer.fail_with = 3, "unconfirmed"
    response = await client.post("/", data=message.body, headers=message.headers)
    assert response.status == 503 and (await response.json())["reason"] == "unconfirmed"
    assert await metric(client, "feedback_collector_events_resent_total") == 4
    assert await metric(client, "feedback_collector_events_failed_total") == 1


async def test_an_unforeseen_error_is_a_500_with_a_reason_and_counted(
    client: TestClient, producer: MemoryProducer
) -> None:
    async def broken_send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivered:
        raise RuntimeError("bug")

    producer.send = broken_send  # type: ignore[method-assign]
    message = event_message()
    response = await client.post("/", data=message.body, headers=message.headers)
    assert response.status == 500
    body = await response.json()
    assert body["reason"] == "internal_error" and "RuntimeError" in body["error"]
    assert await metric(client, "feedback_collector_events_failed_total") == 1
    assert await metric(client, "feedback_collector_events_in_flight") == 0
    assert (await client.get("/healthz")).status == 200  # and it keeps serving


async def test_readiness_follows_kafka(client: TestClient, producer: MemoryProducer) -> None:
    assert (await client.get("/readyz")).status == 200
    producer.ready = False
    response = await client.get("/readyz")
    assert response.status == 503
    assert "Kafka" in (await response.json())["error"]
    assert (await client.get("/healthz")).status == 200
    assert await metric(client, "feedback_collector_kafka_ready") == 0


async def test_sampling_keeps_or_drops_all_events_of_an_id(aiohttp_client: Any, producer: MemoryProducer) -> None:
    settings = CollectorSettings.from_env({**ENV, "COLLECTOR_SAMPLING_RATE": "0.25"})
    client = await aiohttp_client(create_app(settings, producer))
    kept_ids = set()
    for i in range(200):
        for kind in ("request", "response", "feedback"):
            message = event_message(kind, f"puid-{i}", {"reward": 1} if kind == "feedback" else None)
            response = await client.post("/", data=message.body, headers=message.headers)
            assert response.status == 200
            if (await response.json())["status"] == "produced":
                kept_ids.add(f"puid-{i}")
    produced_ids = [key.decode() for key, _, _ in producer.records]
    assert all(produced_ids.count(request_id) == 3 for request_id in kept_ids)  # never split
    assert 30 <= len(kept_ids) <= 70
    assert await metric(client, "feedback_collector_events_sampled_out_total") == 3 * (200 - len(kept_ids))


async def test_get_on_event_path_is_not_allowed(client: TestClient) -> None:
    assert (await client.get("/api/v1/log")).status == 405


async def test_producer_lifecycle_is_tied_to_the_app(aiohttp_client: Any, producer: MemoryProducer) -> None:
    client = await aiohttp_client(create_app(CollectorSettings.from_env(ENV), producer))
    assert producer.started
    await client.close()
    assert producer.closed
