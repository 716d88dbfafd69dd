"""Ways one message or one setting used to stop the indexer, on the real local Kafka and OpenSearch.

What: a poison message too large for the dead-letter topic (the indexer crash-looped on it); a missing dead-letter
topic (the indexer looked ready and looped forever on its first poison); an outage longer than the capture
topic's retention (offsets reset silently); the stored merge script deleted behind the indexer's back (every late
event failed forever); a request of 5,000 rows (one message became that many bulk items).
Wait: on the indexer's metrics, readiness and committed offsets.
Assert: each case is dead-lettered, reported or repaired with a reason and a metric, and the stream goes on.
Cleanup: own topics and index per test; processes stopped by the pipeline fixture.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from feedback.indexer.core import MERGE_SCRIPT_ID

from devstack.names import STREAMING_DEPLOYMENT
from devstack.servers.feedback import ensure_seldon_protos
from tests.fixtures.feedback import FeedbackPipeline, direct_record, generate_traffic

pytestmark = pytest.mark.integration


def readiness(indexer: Any) -> tuple[int, str]:
    try:
        answer = requests.get(indexer.base_url + "/readyz", timeout=5)
    except requests.ConnectionError:
        return 0, "not listening"
    return answer.status_code, answer.text


def allow_large_messages(pipeline: FeedbackPipeline, topic: str, max_bytes: int, timeout: float = 60) -> None:
    """Raise `topic`'s max.message.bytes and wait until the broker itself applies it: the controller accepts the
    change first and the broker publishes it later (over a second on a loaded machine), and a record produced in
    between is refused as too large."""
    admin = AdminClient({"bootstrap.servers": pipeline.kafka.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"max.message.bytes": str(max_bytes)})
    for future in admin.alter_configs([resource]).values():
        future.result(30)

    def applied() -> bool:
        [described] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
        return described.result(30)["max.message.bytes"].value == str(max_bytes)

    pipeline.wait_for(applied, timeout, f"the broker applying max.message.bytes={max_bytes} to {topic}")


def test_a_poison_message_too_large_for_the_dead_letter_topic_becomes_a_stub(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    allow_large_messages(feedback_pipeline, feedback_pipeline.topic, 4_000_000)
    producer = Producer({"bootstrap.servers": feedback_pipeline.kafka.bootstrap, "message.max.bytes": 4_000_000})
    poison = direct_record("request", f"{feedback_pipeline.name}-big", {}, 1).with_value(b"{" + b"x" * 1_500_000)
    good = direct_record("request", f"{feedback_pipeline.name}-ok", {"data": {"ndarray": ["fine"]}}, 1)
    refused: list[Any] = []
    for record in (poison, good):
        producer.produce(
            feedback_pipeline.topic,
            record.value,
            headers=record.headers,
            timestamp=1,
            on_delivery=lambda error, _message: refused.append(error) if error is not None else None,
        )
    assert producer.flush(60) == 0 and not refused, f"Kafka refused a test record: {refused}"
    indexer = feedback_pipeline.indexer()
    feedback_pipeline.wait_for(feedback_pipeline.committed_to_end, 120, "both messages committed")
    assert indexer.running(), "the indexer must not crash on a dead letter it cannot send whole"
    [dead] = feedback_pipeline.read_topic(feedback_pipeline.dead_letter_topic)
    headers = dict(dead.headers())
    assert headers["dlq-reason"] == b"invalid_json" and int(headers["dlq-offset"]) == 0
    assert dead.value() in (b"", None) and b"1500001 bytes" in headers["dlq-stub"]
    assert indexer.metric("feedback_indexer_dead_letter_stubs_total") == 1
    assert feedback_pipeline.by_key()[(good.request_id, 0)]["input_text"] == "fine"


def test_a_missing_dead_letter_topic_keeps_the_indexer_not_ready_with_the_reason(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    missing = f"{feedback_pipeline.name}-no-such-dead-letter"
    server = feedback_pipeline.indexer_server(dead_letter_topic=missing, streaming_deployments=STREAMING_DEPLOYMENT)
    ensure_seldon_protos(server.process.env)
    server.setup()  # what the chart's setup Job does first
    server.process.start()  # not .start(): that waits for readiness, which must not come yet
    deadline = time.monotonic() + 90
    status, text = 0, ""
    while time.monotonic() < deadline:
        status, text = readiness(server)
        if status == 503 and "dead-letter topic" in text:
            break
        time.sleep(0.5)
    assert status == 503 and missing in text, text
    feedback_pipeline.kafka.create_topics([missing])
    feedback_pipeline.wait_for(lambda: readiness(server)[0] == 200, 90, "ready once the topic exists")
    feedback_pipeline.produce([direct_record("request", f"{feedback_pipeline.name}-p", {}, 1).with_value(b"{x")])
    feedback_pipeline.wait_for(lambda: len(feedback_pipeline.read_topic(missing)) == 1, 90, "the poison dead-lettered")


def test_an_offset_the_topic_no_longer_has_is_counted_as_an_offset_reset(feedback_pipeline: FeedbackPipeline) -> None:
    traffic = generate_traffic(ids=20, seed=41)
    feedback_pipeline.produce(traffic.records[:20])
    indexer = feedback_pipeline.indexer()
    feedback_pipeline.wait_for(feedback_pipeline.committed_to_end, 120, "the first part committed")
    indexer.stop()
    feedback_pipeline.produce(traffic.records[20:])
    admin = AdminClient({"bootstrap.servers": feedback_pipeline.kafka.bootstrap})
    ends = []
    metadata = admin.list_topics(feedback_pipeline.topic, timeout=10)
    reader = Consumer({"bootstrap.servers": feedback_pipeline.kafka.bootstrap, "group.id": "ends"})
    for partition in metadata.topics[feedback_pipeline.topic].partitions:
        high = reader.get_watermark_offsets(TopicPartition(feedback_pipeline.topic, partition), timeout=10)[1]
        ends.append(TopicPartition(feedback_pipeline.topic, partition, high))
    reader.close()
    # retention passed the committed offsets while the indexer was down (delete_records does what retention does)
    for future in admin.delete_records(ends, request_timeout=30).values():
        future.result(30)
    indexer.start()
    feedback_pipeline.wait_for(
        lambda: indexer.metric("feedback_indexer_offset_resets_total") >= 1, 120, "the offset reset counted"
    )
    later = direct_record("request", f"{feedback_pipeline.name}-after", {"data": {"ndarray": ["after"]}}, 1)
    feedback_pipeline.produce([later])
    feedback_pipeline.wait_for(lambda: (later.request_id, 0) in feedback_pipeline.by_key(), 120, "new events indexed")
    assert "lag_seconds" in requests.get(indexer.metrics_url, timeout=5).text


def test_a_deleted_merge_script_names_the_setup_and_late_events_land_once_it_reran(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    """The indexer may not store scripts (the setup step does): a script deleted under a running indexer makes it
    not ready, naming `python -m feedback.indexer setup`, and the late feedback waits (retried, not dead-lettered)
    until the setup has run again."""
    request_id = f"{feedback_pipeline.name}-s"
    pair = [
        direct_record("request", request_id, {"data": {"ndarray": ["text"]}}, 1_714_564_800_000),
        direct_record(
            "response", request_id, {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.2, 0.8]]}}, 1_714_564_800_010
        ),
    ]
    feedback_pipeline.produce(pair)
    indexer = feedback_pipeline.indexer()
    feedback_pipeline.wait_for(feedback_pipeline.committed_to_end, 120, "the prediction written")
    indexer.stop()  # the restarted indexer has no copy of the document: the late feedback takes the scripted merge
    indexer.start()  # (its devstack start runs the setup first, as the chart's Job does before the rollout)
    requests.delete(f"{feedback_pipeline.search.url}/_scripts/{MERGE_SCRIPT_ID}", timeout=30).raise_for_status()
    feedback = {"truth": {"data": {"ndarray": [1]}}, "reward": 1}
    feedback_pipeline.produce([direct_record("feedback", request_id, feedback, 1_714_564_805_000)])

    def names_the_setup() -> bool:
        answer = requests.get(f"{indexer.base_url}/readyz", timeout=5)
        return answer.status_code == 503 and "python -m feedback.indexer setup" in answer.text

    feedback_pipeline.wait_for(names_the_setup, 120, "readiness naming the setup")
    assert feedback_pipeline.by_key()[(request_id, 0)].get("truth") is None
    indexer.setup()  # the setup step again: the script is back
    feedback_pipeline.wait_for(
        lambda: feedback_pipeline.by_key()[(request_id, 0)].get("truth") == "1", 120, "the feedback merged"
    )
    document = feedback_pipeline.by_key()[(request_id, 0)]
    assert document["correct"] is True and document["predicted_label"] == "t:1"
    assert indexer.metric("feedback_indexer_search_refusals_total", reason="script_missing") >= 1
    assert indexer.metric("feedback_indexer_dead_lettered_total") == 0


def test_a_request_of_thousands_of_rows_is_dead_lettered_instead_of_exhausting_memory(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    rows = {"data": {"tensor": {"shape": [5000, 1], "values": [0] * 5000}}}
    wide = direct_record("request", f"{feedback_pipeline.name}-wide", rows, 1)
    good = direct_record("request", f"{feedback_pipeline.name}-ok", {"data": {"ndarray": ["fine"]}}, 1)
    feedback_pipeline.produce([wide, good])
    indexer = feedback_pipeline.indexer(max_instances="1000")
    feedback_pipeline.wait_for(feedback_pipeline.committed_to_end, 120, "both messages committed")
    [dead] = feedback_pipeline.read_topic(feedback_pipeline.dead_letter_topic)
    assert dict(dead.headers())["dlq-reason"] == b"too_many_instances"
    assert json.loads(dead.value()) == rows  # the whole message, to be replayed after raising the limit
    assert set(feedback_pipeline.by_key()) == {(good.request_id, 0)}
    assert indexer.running()


def test_documents_older_than_the_retention_are_deleted_and_newer_ones_kept(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    now_ms = int(time.time() * 1000)
    old = direct_record(
        "request", f"{feedback_pipeline.name}-old", {"data": {"ndarray": ["old"]}}, now_ms - 3 * 86_400_000
    )
    new = direct_record("request", f"{feedback_pipeline.name}-new", {"data": {"ndarray": ["new"]}}, now_ms)
    feedback_pipeline.produce([old, new])
    indexer = feedback_pipeline.indexer(retention_days="2", sweep_interval_s="1")
    feedback_pipeline.wait_for(
        lambda: indexer.metric("feedback_indexer_retention_deleted_total") >= 1, 120, "the old document deleted"
    )
    assert set(feedback_pipeline.by_key()) == {(new.request_id, 0)}
