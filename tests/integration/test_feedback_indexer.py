"""The indexer against the real local Kafka and OpenSearch.

What: capture traffic in both formats (the collector's CloudEvent headers and the executor's direct Kafka
logging), request, response and feedback mixed, shuffled and partly repeated, written to a 4-partition capture
topic; then the indexer is crashed (SIGKILL) or the search engine is stopped mid-stream.
Wait: until the indexer's metrics say every message was consumed and the index holds the expected count.
Assert: exactly one document per request id and instance, every field right, zero duplicates; no dead letters;
retries counted during the outage.
Cleanup: each test has its own topics and index; the indexer processes are stopped in `finally`.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.fixtures.feedback import FeedbackPipeline, generate_traffic

pytestmark = pytest.mark.integration


def consumed(indexer) -> float:
    return indexer.metric("feedback_indexer_messages_consumed_total")


def test_ten_thousand_mixed_shuffled_repeated_events(feedback_pipeline: FeedbackPipeline) -> None:
    traffic = generate_traffic(ids=2800, total_events=10_000)
    assert len(traffic.records) == 10_000 and len(traffic.expected) == 3500
    feedback_pipeline.produce(traffic.records)
    indexer = feedback_pipeline.indexer()
    # Wait on what is counted after the search engine acknowledged (consumed is counted before the write).
    feedback_pipeline.wait_for(
        lambda: indexer.metric("feedback_indexer_messages_indexed_total") >= 10_000, 240, "10,000 events indexed"
    )
    feedback_pipeline.wait_for(lambda: feedback_pipeline.count() >= 3500, 60, "3,500 documents searchable")
    feedback_pipeline.assert_matches(traffic.expected)
    assert indexer.metric("feedback_indexer_messages_indexed_total") == 10_000
    assert indexer.metric("feedback_indexer_dead_lettered_total") == 0
    assert indexer.metric("feedback_indexer_messages_consumed_total", format="direct") > 0
    assert indexer.metric("feedback_indexer_messages_consumed_total", format="cloudevent") > 0
    assert indexer.metric("feedback_indexer_freshness_seconds_count") == 10_000
    feedback_pipeline.wait_for(
        lambda: (
            "feedback_indexer_consumer_lag{" in requests.get(indexer.metrics_url, timeout=5).text
            and indexer.metric("feedback_indexer_consumer_lag") == 0
        ),
        30,
        "consumer lag reported and 0",
    )


def test_indexer_killed_mid_stream_and_restarted_gives_the_same_documents(feedback_pipeline: FeedbackPipeline) -> None:
    traffic = generate_traffic(ids=1600, total_events=5_000, seed=11)
    # The responses of every eighth request arrive only after the kill: their requests wait in the indexer's join
    # buffer (join_wait_s; no sweep is due, which would first write everything buffered), so offsets stay
    # uncommitted at the kill however fast the machine is, and the restart must read those requests again and join
    # them with their late responses.
    late_ids = {record.request_id for record in traffic.records if record.kind == "request"}
    late_ids = set(sorted(late_ids)[::8])
    late = [r for r in traffic.records if r.kind == "response" and r.request_id in late_ids]
    feedback_pipeline.produce([r for r in traffic.records if not (r.kind == "response" and r.request_id in late_ids)])
    indexer = feedback_pipeline.indexer(batch_size="25", join_wait_s="30", sweep_interval_s="3600")
    feedback_pipeline.wait_for(
        lambda: indexer.metric("feedback_indexer_messages_indexed_total") >= 500,
        120,
        "the indexer acknowledging 500 events",
    )
    indexer.kill()
    # mid-stream = not every offset committed yet (the restart resumes from the committed ones); the document count
    # is no measure since the indexer creates each document at its first event
    assert not feedback_pipeline.committed_to_end(), "the kill must happen mid-stream"
    feedback_pipeline.produce(late)
    indexer.start()  # same consumer group: resumes from the last committed offsets
    # Offsets are committed only after the search engine acknowledged: committed up to the end of every partition
    # means every message (replays included) is written, whatever the machine's load.
    feedback_pipeline.wait_for(feedback_pipeline.committed_to_end, 180, "every offset committed after the restart")
    feedback_pipeline.assert_matches(traffic.expected)
    assert indexer.metric("feedback_indexer_dead_lettered_total") == 0


def test_search_engine_down_for_thirty_seconds_loses_and_duplicates_nothing(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    traffic = generate_traffic(ids=1200, seed=23)
    half = len(traffic.records) // 2
    indexer = feedback_pipeline.indexer(batch_size="200", retry_max_s="2")
    feedback_pipeline.produce(traffic.records[:half])
    feedback_pipeline.wait_for(lambda: consumed(indexer) >= half, 120, "the first half consumed")
    search = feedback_pipeline.search
    search.stop()
    try:
        feedback_pipeline.produce(traffic.records[half:])
        time.sleep(30)
        assert indexer.running(), "the indexer must wait for the search engine, not exit"
        assert indexer.metric("feedback_indexer_retries_total", reason="search_unavailable") > 0
    finally:
        search.start()
    feedback_pipeline.wait_for(
        lambda: indexer.metric("feedback_indexer_messages_indexed_total") >= len(traffic.records),
        240,
        "every event indexed after the outage",
    )
    feedback_pipeline.assert_matches(traffic.expected)
    assert indexer.metric("feedback_indexer_messages_indexed_total") == len(traffic.records)
    assert indexer.metric("feedback_indexer_dead_lettered_total") == 0
