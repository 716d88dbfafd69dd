"""The collector when its producer dies, when it is restarted under traffic, and when Kafka is away, on real Kafka.

What: (1) a fatal producer error (librdkafka's error callback, the one thing simulated) followed by a metadata
check that succeeds against the real broker; (2) the delivery thread dying; (3) a collector SIGTERMed while
traffic flows, the sender moving to a second collector when the first says 503 on /readyz (as a Service drops an
endpoint); (4) Kafka stopped while large events arrive.
Wait: on /healthz, /readyz and the answers.
Assert: (1) never ready again, /healthz 503; (2) requests answered 503 at once, not after 35 s; (3) every event
sent is answered 200 and is in the capture topic exactly once; (4) the collector's memory stays bounded (503
queue_full instead), and every event answered 200 is in the topic after Kafka is back, at the partition and offset
its answer named.
Cleanup: producers closed, processes stopped by the pipeline fixture, Kafka restarted.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import KafkaError
from feedback.collector.app import create_apps
from feedback.collector.kafka_io import KafkaCaptureProducer
from feedback.collector.settings import CollectorSettings

from devstack.capture_traffic import Answer
from tests.fixtures.feedback import FeedbackPipeline, http_event, post_events_answered

pytestmark = pytest.mark.integration


def settings_for(pipeline: FeedbackPipeline, **env: str) -> CollectorSettings:
    return CollectorSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": pipeline.kafka.bootstrap,
            "CAPTURE_TOPIC": pipeline.topic,
            "COLLECTOR_READINESS_INTERVAL_S": "0.5",
            **env,
        }
    )


async def wait_ready(producer: KafkaCaptureProducer, timeout: float = 30) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while not producer.is_ready():
        assert time.monotonic() < deadline, "the producer never became ready against the real broker"
        await asyncio.sleep(0.2)


async def test_a_fatal_producer_error_is_sticky_and_fails_liveness(feedback_pipeline: FeedbackPipeline) -> None:
    settings = settings_for(feedback_pipeline)
    apps = create_apps(settings)
    async with TestClient(TestServer(apps.ops)) as ops, TestClient(TestServer(apps.events)) as client:
        producer = apps.state.live_producer()
        assert isinstance(producer, KafkaCaptureProducer)
        await wait_ready(producer)
        producer._on_error(KafkaError(KafkaError._FATAL, "idempotent producer fenced", fatal=True))
        producer._check_broker()  # the real broker answers: this used to make the collector Ready again
        assert not producer.is_ready()
        assert (await ops.get("/readyz")).status == 503
        health = await ops.get("/healthz")
        assert health.status == 503 and "fatal" in (await health.json())["error"]
        event = http_event(
            "request", f"{feedback_pipeline.name}-f", {"data": {"ndarray": ["x"]}}, 1_714_564_800_000_000
        )
        answer = await client.post("/", data=event.body, headers=event.headers)
        assert answer.status == 503 and (await answer.json())["reason"] == "producer_unhealthy"


async def test_a_dead_delivery_thread_answers_503_at_once_instead_of_hanging(
    feedback_pipeline: FeedbackPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(feedback_pipeline)
    apps = create_apps(settings)
    async with TestClient(TestServer(apps.ops)) as ops, TestClient(TestServer(apps.events)) as client:
        producer = apps.state.live_producer()
        assert isinstance(producer, KafkaCaptureProducer)
        await wait_ready(producer)
        real_poll = producer._producer.poll

        def dies(timeout: float) -> int:
            raise RuntimeError("the delivery thread hit a bug")

        monkeypatch.setattr(producer, "_producer", _PollWrapper(producer._producer, dies))
        deadline = time.monotonic() + 10
        while producer.health_problem() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        event = http_event(
            "request", f"{feedback_pipeline.name}-d", {"data": {"ndarray": ["x"]}}, 1_714_564_800_000_000
        )
        started = time.monotonic()
        answer = await client.post("/", data=event.body, headers=event.headers)
        assert answer.status == 503 and (await answer.json())["reason"] == "producer_unhealthy"
        assert time.monotonic() - started < 3, "the request waited for a delivery that can never come"
        assert (await ops.get("/healthz")).status == 503
        monkeypatch.setattr(producer, "_producer", producer._producer._inner)
        assert real_poll is not None


class _PollWrapper:
    """The real librdkafka producer, except that poll() raises (a bug in the delivery thread)."""

    def __init__(self, inner: Any, poll: Any) -> None:
        self._inner, self._poll = inner, poll

    def poll(self, timeout: float) -> int:
        return self._poll(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __len__(self) -> int:
        return len(self._inner)


def test_traffic_through_a_collector_restart_loses_no_event(feedback_pipeline: FeedbackPipeline) -> None:
    first = feedback_pipeline.collector(drain_s="3")
    second = feedback_pipeline.collector()
    events = [
        http_event(
            "request", f"{feedback_pipeline.name}-r{i}", {"data": {"ndarray": [f"t {i}"]}}, 1_714_564_800_000_000 + i
        )
        for i in range(600)
    ]
    statuses: list[int] = []
    target = {"url": first.url}

    def watch() -> None:  # what a Service does: stop routing to an endpoint that is not ready
        while target["url"] == first.url:
            try:
                if requests.get(first.ops_url + "/readyz", timeout=1).status_code != 200:
                    target["url"] = second.url
            except requests.RequestException:
                target["url"] = second.url
            time.sleep(0.05)

    def send() -> None:
        session = requests.Session()
        for event in events:
            try:
                statuses.append(
                    session.post(target["url"], data=event.body, headers=event.headers, timeout=30).status_code
                )
            except requests.RequestException:
                statuses.append(-1)
            time.sleep(0.01)

    watcher, sender = threading.Thread(target=watch), threading.Thread(target=send)
    watcher.start()
    sender.start()
    feedback_pipeline.wait_for(lambda: len(statuses) >= 150, 60, "traffic flowing")
    first.stop()  # SIGTERM, as Kubernetes sends it (after the preStop sleep)
    sender.join(timeout=120)
    target["url"] = ""
    watcher.join(timeout=10)
    assert statuses.count(200) == len(events), sorted(set(statuses))
    messages = feedback_pipeline.read_topic(feedback_pipeline.topic)
    ids = [dict(message.headers())["ce_requestid"].decode() for message in messages]
    assert sorted(ids) == sorted(event.request_id for event in events)


def test_a_kafka_outage_keeps_the_collector_memory_bounded_and_loses_nothing_acknowledged(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    """librdkafka's own buffer limit is 1 GiB, twice the pod's memory limit: during an outage every event was taken
    into memory and waited. Bounded at 8 MiB here, the collector takes about 16 events of 500 KiB and answers the
    others 503 queue_full at once; what it took is delivered once Kafka is back.

    What a 200 promises: the broker wrote the event at the partition and offset the answer names. The restarted
    broker moves leadership while the first batches are in flight; a batch it refused then was once reported
    delivered by librdkafka without an offset (inferred from the next batch, which the broker took with a gap in
    the sequence numbers) and answered 200, though it was never written. Such a report is no longer taken as an
    acknowledgement: the event is produced again (docs/feedback-pipeline.md, "Known defects", closed)."""
    collector = feedback_pipeline.collector(
        producer_buffer_max_bytes=str(8 * 1024 * 1024), delivery_timeout_s="90", max_body_bytes=str(600 * 1024)
    )
    text = "y" * (500 * 1024)
    events = [
        http_event(
            "request", f"{feedback_pipeline.name}-m{i}", {"data": {"ndarray": [text]}}, 1_714_564_800_000_000 + i
        )
        for i in range(60)
    ]

    def refused_at_least(count: int) -> bool:
        try:
            return collector.metric("feedback_collector_events_failed_total", reason="queue_full") >= count
        except requests.RequestException:  # /metrics waits behind 30 MB of bodies on a loaded machine: ask again
            return False

    baseline = collector.rss_bytes()
    kafka = feedback_pipeline.kafka
    kafka.stop()
    answers: list[Answer] = []
    peak = baseline
    try:
        sender = threading.Thread(
            target=lambda: answers.extend(post_events_answered(collector.url, events, concurrency=60))
        )
        sender.start()
        feedback_pipeline.wait_for(lambda: refused_at_least(40), 120, "the events beyond the buffer refused at once")
        for _ in range(10):
            peak = max(peak, collector.rss_bytes())
            time.sleep(0.2)
    finally:
        kafka.start()
    sender.join(timeout=180)
    assert not sender.is_alive()
    statuses = [status for status, _ in answers]
    assert all(status in (200, 503) for status in statuses), sorted(set(statuses))
    acknowledged = {
        event.request_id: (body["partition"], body["offset"])
        for event, (status, body) in zip(events, answers, strict=True)
        if status == 200 and body is not None
    }
    assert len(acknowledged) == statuses.count(200), "a 200 without the partition and offset in its body"
    assert 0 < len(acknowledged) <= 20, f"{len(acknowledged)} events of 500 KiB taken into an 8 MiB buffer"
    grown = (peak - baseline) / 1024 / 1024
    assert grown < 120, f"the collector grew by {grown:.0f} MiB during the outage"
    messages = feedback_pipeline.read_topic(feedback_pipeline.topic)
    at = {
        (message.partition(), message.offset()): dict(message.headers())["ce_requestid"].decode()
        for message in messages
    }
    wrong = {request_id: place for request_id, place in acknowledged.items() if at.get(place) != request_id}
    assert not wrong, f"{len(wrong)} of {len(acknowledged)} acknowledged events are not where the 200 said: {wrong}"
