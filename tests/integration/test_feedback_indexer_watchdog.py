"""The indexer's consumer watchdog on the real local Kafka and OpenSearch.

What: the defect it answers (librdkafka never rejoining the group after a broker restart, docs/feedback-pipeline.md
"Known defects") cannot be provoked on purpose, so this test keeps the indexer's consumer out of its group another
way that is just as real for the indexer: a consumer of the same group that only speaks the `range` assignor holds
the group, so the broker refuses the indexer's JoinGroup (INCONSISTENT_GROUP_PROTOCOL) while it answers everything
else. The indexer has capture traffic waiting on a 4-partition topic and a 6 s session timeout (stall bound 12 s).
Wait: until the watchdog recreated the consumer four times (the last three did not help) and /healthz failed; then
the blocking consumer leaves, and until the group committed every partition to its end.
Assert: nothing was indexed while out of the group; each recreation counted (reason no_assignment) and logged once;
/healthz said why it failed and recovered; then exactly one document per expected key, every field right, no
duplicates, every message indexed once (sent = indexed), no dead letters.
Cleanup: own topics, group and index; the blocking consumer is closed and the indexer stopped in `finally`.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from confluent_kafka import Consumer

from tests.fixtures.feedback import FeedbackPipeline, generate_traffic

pytestmark = pytest.mark.integration

HOLD_S = 240.0  # the blocking consumer never polls longer than this, whatever happens to the test


class RangeOnlyMember:
    """A member of `group` whose only assignor is `range`: while it holds the group, a cooperative-sticky member
    cannot join. Polls on its own thread (bounded by HOLD_S) until `leave()`."""

    def __init__(self, pipeline: FeedbackPipeline, group: str) -> None:
        self.consumer = Consumer(
            {
                **pipeline.kafka.client_config(),
                "group.id": group,
                "partition.assignment.strategy": "range",
                "session.timeout.ms": 6000,
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",  # it reads nothing it could take from the indexer anyway
            }
        )
        self.consumer.subscribe([pipeline.topic])
        self.stop = threading.Event()
        self.assigned = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="range-only-member", daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        deadline = time.monotonic() + HOLD_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.consumer.poll(0.2)
            if self.consumer.assignment():
                self.assigned.set()

    def leave(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.consumer.close()


def test_a_consumer_kept_out_of_its_group_is_recreated_until_it_is_back_and_indexes_everything_once(
    feedback_pipeline: FeedbackPipeline,
) -> None:
    group = f"{feedback_pipeline.name}-group"
    traffic = generate_traffic(ids=300, total_events=900, seed=47)
    feedback_pipeline.produce(traffic.records)
    blocker = RangeOnlyMember(feedback_pipeline, group)
    try:
        assert blocker.assigned.wait(60), "the range-only member never got its partitions"
        indexer = feedback_pipeline.indexer(group_id=group, session_timeout_s="6", consumer_stall_s="12")
        health = f"{indexer.ops_url}/healthz"
        feedback_pipeline.wait_for(
            lambda: requests.get(health, timeout=5).status_code == 503, 180, "/healthz failing after recreations"
        )
        recreated = indexer.metric("feedback_indexer_consumer_recreated_total", reason="no_assignment")
        assert recreated >= 4, f"liveness failed after {recreated:g} recreations; it takes 1 + 3 that did not help"
        assert indexer.metric("feedback_indexer_consumer_recreated_total", reason="no_progress") == 0
        assert indexer.metric("feedback_indexer_consumer_recreate_failures_total") >= 3
        answer = requests.get(health, timeout=5)
        assert answer.status_code == 503 and "stayed stuck through" in answer.text, answer.text
        assert indexer.running(), "a failing /healthz is for Kubernetes to act on; the process keeps trying"
        assert indexer.metric("feedback_indexer_messages_indexed_total") == 0
        assert not feedback_pipeline.committed_to_end(group)
    finally:
        blocker.leave()

    feedback_pipeline.wait_for(lambda: feedback_pipeline.committed_to_end(group), 120, "every offset committed")
    feedback_pipeline.wait_for(lambda: requests.get(health, timeout=5).status_code == 200, 30, "/healthz back")
    feedback_pipeline.assert_matches(traffic.expected)  # one document per key, fields right, no duplicates
    assert indexer.metric("feedback_indexer_messages_indexed_total") == len(traffic.records)
    assert indexer.metric("feedback_indexer_dead_lettered_total") == 0
    recreations = indexer.metric("feedback_indexer_consumer_recreated_total")
    logged = indexer.log_path.read_text(errors="replace").count("closing and recreating it")
    assert logged == recreations, f"{logged:g} log lines for {recreations:g} recreations"
