"""The indexer's consumer watchdog (feedback/indexer/watchdog.py) as pure logic with a fake clock: it fires when the
consumer stays out of its group or stuck behind a backlog for the bound, never for a member without partitions, a
paused consumer or an unreachable broker, and fails liveness only when recreations keep failing. Then the loop
(fakes for Kafka and search): a recreation drops what was not written, keeps what was, subscribes a new consumer,
counts the reason, and /healthz fails after recreations that did not help. Settings and statistics parsing too."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
import requests
from feedback.config import SettingsError
from feedback.indexer import main as indexer_main
from feedback.indexer.kafka_io import consumer_stats
from feedback.indexer.metrics import serve_http
from feedback.indexer.settings import IndexerSettings
from feedback.indexer.watchdog import NO_ASSIGNMENT, NO_PROGRESS, ConsumerWatchdog, Observation
from feedback.seldon_protos import default_dir

from tests.unit.test_feedback_indexer_loop import TOPIC, FakeConsumer, ScriptedBackend, make_indexer, pair

STALL = 90.0
OUT = Observation(member=False, backlog=False, consumed=False)
IDLE = Observation(member=True, backlog=False, consumed=False)
BUSY = Observation(member=True, backlog=True, consumed=True)
STUCK = Observation(member=True, backlog=True, consumed=False)


def run(watchdog: ConsumerWatchdog, observation: Observation, start: float, end: float, step: float = 1.0) -> float:
    """Feed `observation` every `step` s from `start` to `end`; returns the first time a stall was due (or -1)."""
    now = start
    while now <= end:
        watchdog.observe(observation, now)
        if watchdog.due(now) is not None:
            return now
        now += step
    return -1.0


@pytest.mark.parametrize(
    ("observation", "reason"),
    [(OUT, NO_ASSIGNMENT), (STUCK, NO_PROGRESS)],
    ids=["out of its group", "a member stuck behind a backlog"],
)
def test_a_stall_is_due_just_after_the_bound_and_not_before(observation: Observation, reason: str) -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0)
    assert run(watchdog, observation, 0.0, STALL) == -1.0
    watchdog.observe(observation, STALL + 1)
    assert watchdog.due(STALL + 1) == reason
    assert watchdog.stalled_for(STALL + 1) == STALL + 1


@pytest.mark.parametrize(
    "observation",
    [IDLE, BUSY, Observation(member=True, backlog=False, consumed=True)],
    ids=["a member with nothing to consume (more indexers than partitions, or paused)", "consuming", "caught up"],
)
def test_a_healthy_consumer_is_never_due(observation: Observation) -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0)
    assert run(watchdog, observation, 0.0, 10 * STALL) == -1.0


def test_the_clocks_restart_when_a_stall_ends() -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0)
    assert run(watchdog, OUT, 0.0, STALL - 1) == -1.0
    watchdog.observe(IDLE, STALL)  # rejoined by itself just in time
    assert run(watchdog, OUT, STALL + 1, 2 * STALL) == -1.0
    assert run(watchdog, OUT, 2 * STALL + 1, 3 * STALL) == 2 * STALL + 1


def test_an_unreachable_broker_gives_the_consumer_the_whole_bound_again() -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0)
    due = run(watchdog, OUT, 0.0, 2 * STALL)
    assert due == STALL + 1
    watchdog.broker_unreachable(due)  # the probe failed: not the consumer's fault
    assert watchdog.due(due + 1) is None
    assert run(watchdog, OUT, due + 1, due + STALL) == -1.0
    assert run(watchdog, OUT, due + STALL + 1, due + 2 * STALL) == due + STALL + 1
    assert watchdog.liveness_problem() is None, "waiting for a broker is never a reason to restart"


def test_during_a_stall_the_broker_is_probed_every_interval_and_the_bound_counts_from_its_last_silence() -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0, probe_every_s=30.0)
    probes = []
    broker_back_at = 200.0
    now = 0.0
    while now <= 400.0:
        watchdog.observe(OUT, now)
        if watchdog.due(now) is not None and now >= broker_back_at:
            break
        if watchdog.due(now) is not None or watchdog.probe_due(now):
            probes.append(now)
            if now < broker_back_at:
                watchdog.broker_unreachable(now)
            else:
                watchdog.broker_answered(now)
        now += 1.0
    assert probes[:7] == [30.0, 60.0, 90.0, 120.0, 150.0, 180.0, 210.0]
    last_silence = max(p for p in probes if p < broker_back_at)
    assert now == last_silence + STALL + 1, "due a whole bound after the broker last failed to answer"
    assert watchdog.liveness_problem() is None


def test_a_healthy_consumer_is_never_probed() -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0, probe_every_s=10.0)
    for second in range(500):
        watchdog.observe(BUSY if second % 2 else IDLE, float(second))
        assert not watchdog.probe_due(float(second))


def test_a_recreation_that_helps_keeps_liveness_and_the_next_stall_needs_the_whole_bound() -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0)
    due = run(watchdog, OUT, 0.0, 2 * STALL)
    watchdog.recreated(due)
    assert watchdog.pending and watchdog.due(due + 1) is None
    watchdog.observe(IDLE, due + 5)  # the new consumer joined
    assert not watchdog.pending and watchdog.failures == 0
    assert run(watchdog, OUT, due + 6, due + 5 + STALL) == -1.0
    assert watchdog.liveness_problem() is None


def test_recreations_that_do_not_help_fail_liveness_after_three_and_recover_when_one_helps() -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0)
    now = 0.0
    problems = []
    for _ in range(4):  # the first recreation, then three that each found the consumer stuck again
        now = run(watchdog, OUT, now, now + 2 * STALL)
        assert now > 0
        watchdog.recreated(now)
        problems.append(watchdog.liveness_problem())
    assert problems[:3] == [None, None, None]
    assert problems[3] is not None and "3 recreations in a row" in problems[3]
    assert watchdog.failures == 3
    watchdog.observe(IDLE, now + 1)
    assert watchdog.liveness_problem() is None and watchdog.failures == 0


def test_a_recreation_that_fails_at_once_counts_once_with_its_error() -> None:
    watchdog = ConsumerWatchdog(STALL, now=0.0, failures_to_die=2)
    watchdog.recreated(STALL + 1, error="a new consumer could not be created: boom")
    assert watchdog.failures == 1 and not watchdog.pending
    assert watchdog.liveness_problem() is None
    watchdog.recreated(2 * STALL + 2, error="a new consumer could not be created: boom")
    problem = watchdog.liveness_problem()
    assert watchdog.failures == 2 and problem is not None and "boom" in problem


@pytest.mark.parametrize(
    ("stall", "probe", "failures"), [(0.0, None, 3), (-1.0, None, 3), (10.0, None, 0), (10.0, 11.0, 3), (10.0, 0.0, 3)]
)
def test_the_watchdog_refuses_bounds_that_make_no_sense(stall: float, probe: float | None, failures: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        ConsumerWatchdog(stall, now=0.0, probe_every_s=probe, failures_to_die=failures)


# --------------------------------------------------------------------------------------------- settings

BASE = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "SELDON_PROTOS_DIR": str(default_dir(os.environ)),
    "INDEXER_SEARCH_URL": "http://127.0.0.1:9200",
}


@pytest.mark.parametrize(
    ("env", "session", "stall"),
    [
        ({}, 30.0, 90.0),
        ({"INDEXER_SESSION_TIMEOUT_S": "10"}, 10.0, 30.0),
        ({"INDEXER_SESSION_TIMEOUT_S": "10", "INDEXER_CONSUMER_STALL_S": "20"}, 10.0, 20.0),
        ({"INDEXER_CONSUMER_STALL_S": "600"}, 30.0, 600.0),
    ],
)
def test_the_stall_bound_defaults_to_three_session_timeouts(env: dict[str, str], session: float, stall: float) -> None:
    settings = IndexerSettings.from_env({**BASE, **env})
    assert (settings.session_timeout_s, settings.consumer_stall_s) == (session, stall)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"INDEXER_CONSUMER_STALL_S": "45"},
            "INDEXER_CONSUMER_STALL_S=45 must be at least 2 session timeouts (60 s with INDEXER_SESSION_TIMEOUT_S=30)",
        ),
        ({"INDEXER_SESSION_TIMEOUT_S": "2"}, "INDEXER_SESSION_TIMEOUT_S='2' must be a number from 6 to 300"),
        ({"INDEXER_CONSUMER_STALL_S": "soon"}, "INDEXER_CONSUMER_STALL_S='soon' must be a number from 1 to 3600"),
    ],
)
def test_bad_watchdog_settings_name_the_variable_and_the_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        IndexerSettings.from_env({**BASE, **env})
    assert message in str(caught.value)


# --------------------------------------------------------------------------------------------- statistics


def stats(state: str, join_state: str, partitions: dict[str, dict[str, Any]]) -> str:
    return json.dumps(
        {"cgrp": {"state": state, "join_state": join_state}, "topics": {TOPIC: {"partitions": partitions}}}
    )


def test_statistics_say_whether_the_consumer_is_a_settled_member_and_what_waits_behind_its_position() -> None:
    active = {"fetch_state": "active", "hi_offset": 120, "app_offset": 100, "consumer_lag": 30}
    unconsumed = {"fetch_state": "active", "hi_offset": 50, "app_offset": -1001, "consumer_lag": 7}
    stopped = {"fetch_state": "none", "hi_offset": 500, "app_offset": 0, "consumer_lag": 500}
    parsed = consumer_stats(stats("up", "steady", {"0": active, "1": unconsumed, "2": stopped, "-1": active}), TOPIC)
    assert parsed.group_steady and parsed.group_state == "up/steady"
    assert parsed.backlog == 20 + 7
    assert parsed.lags == {0: 30, 1: 7}
    stuck = consumer_stats(stats("up", "wait-join", {}), TOPIC)
    assert not stuck.group_steady and stuck.group_state == "up/wait-join" and stuck.backlog == 0
    assert not consumer_stats(json.dumps({}), TOPIC).group_steady


# --------------------------------------------------------------------------------------------- the loop


class StuckConsumer(FakeConsumer):
    """A consumer out of its group: owns nothing, and its statistics say it waits to join."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed: list[str] = []
        self.closed = False

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.subscribed = topics

    def close(self) -> None:
        self.closed = True


class Probe:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self, topic: str, timeout: float) -> str | None:
        self.calls += 1
        return self.answer


def watched_indexer(
    monkeypatch: pytest.MonkeyPatch, probe: Probe, join_wait: str = "0"
) -> tuple[Any, list[StuckConsumer]]:
    created: list[StuckConsumer] = []

    def create(settings: Any, stats_cb: Any) -> StuckConsumer:
        created.append(StuckConsumer())
        return created[-1]

    backend = ScriptedBackend()
    indexer, _consumer, dead_letters = make_indexer(
        backend, INDEXER_SESSION_TIMEOUT_S="6", INDEXER_CONSUMER_STALL_S="12", INDEXER_JOIN_WAIT_S=join_wait
    )
    monkeypatch.setattr(indexer_main, "create_consumer", create)
    indexer.consumer = StuckConsumer()
    dead_letters.broker_problem = probe  # type: ignore[attr-defined]
    indexer.watchdog = ConsumerWatchdog(indexer.settings.consumer_stall_s, time.monotonic(), probe_every_s=6.0)
    return indexer, created


def age(indexer: Any, seconds: float) -> None:
    """Let `seconds` pass for the watchdog's clocks (the loop itself runs on the real clock)."""
    indexer.watchdog.member_since -= seconds
    indexer.watchdog.progress_since -= seconds


def recreated(indexer: Any, reason: str) -> float:
    value = indexer.metrics.registry.get_sample_value("feedback_indexer_consumer_recreated_total", {"reason": reason})
    return value or 0.0


def test_the_loop_recreates_a_consumer_out_of_its_group_and_fails_liveness_when_that_never_helps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = Probe(None)
    indexer, created = watched_indexer(monkeypatch, probe)
    first = indexer.consumer
    age(indexer, 60)
    indexer.round()
    assert created == [] and probe.calls == 0, "a member (it owns partition 0) is left alone"

    # a document is written and its offsets stored; then the group is lost (on_lost: nothing owned any more)
    first.queue.extend(pair("written", 0))
    indexer.round()
    indexer._write_everything()
    assert first.stored == [1]
    indexer.rebalance.owned = set()
    indexer._group_steady, indexer._stats_at = False, time.monotonic()
    indexer.round()
    age(indexer, 11)
    indexer.round()
    assert created == [] and probe.calls == 0, "not before the bound"
    age(indexer, 2)
    indexer.round()
    assert len(created) == 1 and probe.calls == 1
    assert first.closed and created[0].subscribed == [TOPIC] and indexer.consumer is created[0]
    assert recreated(indexer, NO_ASSIGNMENT) == 1
    assert not indexer.metrics.not_alive

    # the new consumers never join either: three more recreations that did not help fail liveness
    for _ in range(3):
        age(indexer, 13)
        indexer.round()
    assert len(created) == 4 and all(consumer.closed for consumer in created[:3])
    assert indexer.metrics.registry.get_sample_value("feedback_indexer_consumer_recreate_failures_total") == 3
    assert "3 recreations in a row" in indexer.metrics.not_alive["consumer"]
    server = serve_http(indexer.metrics, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 503 and "stayed stuck through 3 recreations" in answer.text
        indexer.rebalance.owned = {(TOPIC, 0)}  # the latest consumer finally got its partitions
        indexer.round()
        assert requests.get(url, timeout=5).status_code == 200
    finally:
        server.shutdown()


def test_a_recreation_drops_what_was_not_written_and_keeps_what_was(monkeypatch: pytest.MonkeyPatch) -> None:
    indexer, created = watched_indexer(monkeypatch, Probe(None), join_wait="30")
    first = indexer.consumer
    first.queue.extend(pair("done", 0))
    indexer.round()
    indexer._write_everything()  # offsets 0 and 1 written and stored
    first.queue.extend(pair("waiting", 2)[:1])  # a request whose response has not come: buffered, not written
    indexer.round()
    assert len(indexer.buffer) == 1 and indexer.tracker.total() == 1
    indexer.rebalance.owned = set()
    age(indexer, 13)
    indexer.round()
    assert len(created) == 1
    assert first.stored == [1], "only what the search engine acknowledged was stored"
    assert len(indexer.buffer) == 0 and indexer.tracker.total() == 0 and not indexer.messages
    assert indexer._held_bytes == 0
    written = [info["_id"].split(":")[0] for call in indexer.backend.calls for _, info, _ in call]
    assert written == ["done"], "the buffered request is replayed by the new consumer, neither written nor lost"


def test_no_recreation_while_the_broker_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Probe("no broker answered a metadata request within 5 s")
    indexer, created = watched_indexer(monkeypatch, probe)
    indexer.rebalance.owned = set()
    for _ in range(4):
        age(indexer, 13)
        indexer.round()
        indexer.round()  # the clocks restarted: not due again at once
    assert created == [] and probe.calls == 4
    assert not indexer.metrics.not_alive and recreated(indexer, NO_ASSIGNMENT) == 0


def test_a_paused_member_behind_a_backlog_is_waiting_for_search_not_stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Probe(None)
    indexer, created = watched_indexer(monkeypatch, probe)
    indexer._paused = True
    indexer._backlog, indexer._group_steady, indexer._stats_at = 500, True, time.monotonic()
    age(indexer, 60)
    indexer._watch_consumer(0)
    assert created == [] and probe.calls == 0
    indexer._paused = False  # consuming again, yet nothing arrives for the bound: stuck
    indexer._watch_consumer(0)
    age(indexer, 13)
    indexer._watch_consumer(0)
    assert len(created) == 1 and recreated(indexer, NO_PROGRESS) == 1
    assert recreated(indexer, NO_ASSIGNMENT) == 0


def test_statistics_of_a_replaced_consumer_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    indexer, _ = watched_indexer(monkeypatch, Probe(None))
    old = indexer._stats_callback(indexer._generation)
    indexer._generation += 1
    old(stats("up", "steady", {}))
    assert not indexer._group_steady
    indexer._stats_callback(indexer._generation)(stats("up", "steady", {}))
    assert indexer._group_steady
