"""The collector's HTTP app through aiohttp's test client, with an in-memory producer (no Kafka needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent
from feedback.collector.app import CollectorApps, create_apps
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
def apps(producer: MemoryProducer) -> CollectorApps:
    return create_apps(CollectorSettings.from_env(ENV), producer)


@pytest.fixture
async def ops(aiohttp_client: Any, apps: CollectorApps) -> TestClient:
    """The metrics and probe listener; it starts the producer, so it starts before the event listener."""
    return await aiohttp_client(apps.ops)


@pytest.fixture
async def client(aiohttp_client: Any, apps: CollectorApps, ops: TestClient) -> TestClient:
    """The event listener (Seldon's CloudEvents)."""
    return await aiohttp_client(apps.events)


async def metric(ops: TestClient, name: str) -> float:
    text = await (await ops.get("/metrics")).text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("path", ["/", "/api/v1/log", "/seldon/ns/model"])
async def test_events_on_any_path_are_produced(
    client: TestClient, ops: TestClient, producer: MemoryProducer, path: str
) -> None:
    message = event_message()
    response = await client.post(path, data=message.body, headers=message.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["status"] == "produced" and body["request_id"] == "puid-1"
    key, value, headers = producer.records[-1]
    assert key == b"puid-1"
    assert json.loads(value) == {"data": {"ndarray": ["hello"]}}
    assert dict(headers)["ce_type"] == b"io.seldon.serving.inference.request"
    assert await metric(ops, "feedback_collector_events_produced_total") == 1


async def test_missing_type_is_a_400_with_reason_and_is_counted(
    client: TestClient, ops: TestClient, producer: MemoryProducer
) -> None:
    message = event_message()
    headers = {name: value for name, value in message.headers.items() if name.lower() != "ce-type"}
    response = await client.post("/", data=message.body, headers=headers)
    assert response.status == 400
    body = await response.json()
    assert body["reason"] == "missing_type" and "Ce-Type" in body["error"]
    assert producer.records == []
    assert await metric(ops, "feedback_collector_events_rejected_total") == 1


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


async def test_kafka_failure_is_a_503_and_counted(
    client: TestClient, ops: TestClient, producer: MemoryProducer
) -> None:
    producer.fail_with = "timeout"
    message = event_message()
    response = await client.post("/", data=message.body, headers=message.headers)
    assert response.status == 503
    assert (await response.json())["reason"] == "timeout"
    assert await metric(ops, "feedback_collector_events_failed_total") == 1
    assert await metric(ops, "feedback_collector_events_in_flight") == 0


async def test_events_produced_again_are_counted_whether_they_end_delivered_or_not(
    client: TestClient, ops: TestClient, producer: MemoryProducer
) -> None:
    producer.resends = 1
    message = event_message()
    assert (await client.post("/", data=message.body, headers=message.headers)).status == 200
    producer.resends, producer.fail_with = 3, "unconfirmed"
    response = await client.post("/", data=message.body, headers=message.headers)
    assert response.status == 503 and (await response.json())["reason"] == "unconfirmed"
    assert await metric(ops, "feedback_collector_events_resent_total") == 4
    assert await metric(ops, "feedback_collector_events_failed_total") == 1


async def test_an_unforeseen_error_is_a_500_with_a_reason_and_counted(
    client: TestClient, ops: TestClient, producer: MemoryProducer
) -> None:
    async def broken_send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Delivered:
        raise RuntimeError("bug")

    producer.send = broken_send  # type: ignore[method-assign]
    message = event_message()
    response = await client.post("/", data=message.body, headers=message.headers)
    assert response.status == 500
    body = await response.json()
    assert body["reason"] == "internal_error" and "RuntimeError" in body["error"]
    assert await metric(ops, "feedback_collector_events_failed_total") == 1
    assert await metric(ops, "feedback_collector_events_in_flight") == 0
    assert (await ops.get("/healthz")).status == 200  # and it keeps serving


async def test_readiness_follows_kafka(client: TestClient, ops: TestClient, producer: MemoryProducer) -> None:
    assert (await ops.get("/readyz")).status == 200
    producer.ready = False
    response = await ops.get("/readyz")
    assert response.status == 503
    assert "Kafka" in (await response.json())["error"]
    assert (await ops.get("/healthz")).status == 200
    assert await metric(ops, "feedback_collector_kafka_ready") == 0


async def test_sampling_keeps_or_drops_all_events_of_an_id(aiohttp_client: Any, producer: MemoryProducer) -> None:
    apps = create_apps(CollectorSettings.from_env({**ENV, "COLLECTOR_SAMPLING_RATE": "0.25"}), producer)
    ops = await aiohttp_client(apps.ops)
    client = await aiohttp_client(apps.events)
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
    assert await metric(ops, "feedback_collector_events_sampled_out_total") == 3 * (200 - len(kept_ids))


async def test_get_on_event_path_is_not_allowed(client: TestClient) -> None:
    assert (await client.get("/api/v1/log")).status == 405


async def test_producer_lifecycle_is_tied_to_the_app(aiohttp_client: Any, producer: MemoryProducer) -> None:
    apps = create_apps(CollectorSettings.from_env(ENV), producer)
    ops = await aiohttp_client(apps.ops)
    assert producer.started
    await ops.close()
    assert producer.closed


async def test_the_event_listener_serves_no_metrics_and_the_ops_listener_takes_no_events(
    client: TestClient, ops: TestClient, producer: MemoryProducer
) -> None:
    for path in ("/metrics", "/healthz", "/readyz"):
        assert (await client.get(path)).status == 405, path  # only POST (events) exists on the event port
    message = event_message()
    assert (await ops.post("/", data=message.body, headers=message.headers)).status in (404, 405)
    assert producer.records == []
    assert "feedback_collector_events_received_total" in await (await ops.get("/metrics")).text()


TOKEN = "t0ken-" + "a" * 40
OLD_TOKEN = "rotated-" + "b" * 40


@pytest.fixture
async def producer_client(
    aiohttp_client: Any, producer: MemoryProducer, tmp_path: Any
) -> tuple[TestClient, TestClient]:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n\n{OLD_TOKEN}\n")
    settings = CollectorSettings.from_env(
        {**ENV, "COLLECTOR_PRODUCER_PORT": "8081", "COLLECTOR_PRODUCER_TOKEN_FILE": str(token_file)}
    )
    apps = create_apps(settings, producer)
    assert apps.producers is not None
    ops = await aiohttp_client(apps.ops)
    return await aiohttp_client(apps.producers), ops


async def auth_refused(ops: TestClient) -> dict[str, float]:
    text = await (await ops.get("/metrics")).text()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("feedback_collector_auth_refused_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            counts[reason] = float(line.rsplit(" ", 1)[1])
    return counts


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing_token"),
        ("", "missing_token"),
        (f"Basic {TOKEN}", "malformed_authorization"),
        ("Bearer", "malformed_authorization"),
        (f"Bearer {TOKEN} extra", "malformed_authorization"),
        (f"Bearer {TOKEN[:-1]}", "invalid_token"),
        (f"Bearer {TOKEN}x", "invalid_token"),
        ("Bearer " + "z" * 46, "invalid_token"),
    ],
)
async def test_the_producer_listener_refuses_without_the_right_token(
    producer_client: tuple[TestClient, TestClient],
    producer: MemoryProducer,
    authorization: str | None,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, ops = producer_client
    message = event_message("feedback", "puid-auth", {"reward": 1})
    headers = dict(message.headers)
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await client.post("/", data=message.body, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="feedback-collector"')
    body = await response.json()
    assert body["reason"] == reason and "token" in body["error"]
    assert TOKEN not in await response.text()
    assert producer.records == []
    assert await auth_refused(ops) == {reason: 1.0}
    assert await metric(ops, "feedback_collector_events_received_total") == 0
    assert TOKEN not in caplog.text and OLD_TOKEN not in caplog.text


async def test_the_producer_listener_takes_feedback_with_either_token_and_refuses_predictions(
    producer_client: tuple[TestClient, TestClient], producer: MemoryProducer
) -> None:
    client, ops = producer_client
    for number, token in enumerate((TOKEN, OLD_TOKEN)):
        message = event_message("feedback", f"puid-{number}", {"reward": 1})
        headers = {**message.headers, "Authorization": f"bearer {token}"}
        response = await client.post("/feedback", data=message.body, headers=headers)
        assert response.status == 200 and (await response.json())["status"] == "produced"
    for kind in ("request", "response"):
        message = event_message(kind, "puid-forged")
        response = await client.post(
            "/", data=message.body, headers={**message.headers, "Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status == 403
        assert (await response.json())["reason"] == "type_not_allowed"
    assert [key for key, _, _ in producer.records] == [b"puid-0", b"puid-1"]
    assert await metric(ops, "feedback_collector_events_produced_total") == 2
    assert await metric(ops, "feedback_collector_events_rejected_total") == 2
    assert await auth_refused(ops) == {}


async def test_without_a_producer_port_there_is_no_producer_listener(producer: MemoryProducer) -> None:
    assert create_apps(CollectorSettings.from_env(ENV), producer).producers is None
