"""The indexer's loop with in-memory stand-ins for Kafka and the search cluster (no servers): events of one document
are joined in memory and written once with `create`; offsets are stored only up to the lowest message still
buffered or unacknowledged; 409 falls back to the scripted merge; late events overwrite this process's copy
exactly (`if_seq_no`); 429s are retried, never skipped; unknown refusals are bounded and then dead-lettered; 413
halves the request; a missing script is reinstalled; refusals that are the cluster's fault and auth failures make
readiness false and never dead-letter anything."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from feedback.indexer.core import TEMPLATE_VERSION
from feedback.indexer.main import Indexer
from feedback.indexer.metrics import IndexerMetrics
from feedback.indexer.search_io import RequestTooLarge, SearchAuthFailed, SearchTimeout, SearchUnavailable
from feedback.indexer.settings import IndexerSettings, SetupSettings
from feedback.indexer.setup import install

TOPIC = "seldon-capture"
TYPES = {
    "request": "io.seldon.serving.inference.request",
    "response": "io.seldon.serving.inference.response",
    "feedback": "io.seldon.serving.feedback",
}
RESPONSE = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.1, 0.9]]}}


class FakeMessage:
    def __init__(
        self, offset: int, headers: list[tuple[str, bytes]], value: bytes, partition: int = 0, time_ms: int = 0
    ) -> None:
        self._offset, self._headers, self._value, self._partition = offset, headers, value, partition
        self._time_ms = time_ms or 1_714_564_800_000 + offset

    def error(self) -> None:
        return None

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return None

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._time_ms)


class FakeConsumer:
    def __init__(self) -> None:
        self.queue: list[FakeMessage] = []
        self.stored: list[int] = []
        self.commits = 0
        self.paused = self.resumed = 0

    def consume(self, count: int, timeout: float) -> list[FakeMessage]:
        batch, self.queue = self.queue[:count], self.queue[count:]
        return batch

    def store_offsets(self, message: FakeMessage) -> None:
        self.stored.append(message.offset())

    def commit(self, asynchronous: bool = True) -> None:
        self.commits += 1

    def assignment(self) -> list[Any]:
        return []

    def pause(self, partitions: list[Any]) -> None:
        self.paused += 1

    def resume(self, partitions: list[Any]) -> None:
        self.resumed += 1

    def poll(self, timeout: float) -> None:
        return None

    def close(self) -> None:
        return None


class FakeDeadLetters:
    stubs = 0

    def __init__(self) -> None:
        self.records: list[Any] = []

    def send(self, records: list[Any], timeout: float) -> list[Any]:
        self.records.extend(records)
        return []

    def close(self) -> None:
        return None


def parse(body: bytes) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    ops = []
    for meta, source in zip(lines[::2], lines[1::2], strict=True):
        ((op, info),) = meta.items()
        ops.append((op, info, source))
    return ops


class ScriptedBackend:
    """Answers each bulk request with the next entry: an exception, or a function of the parsed items
    (op, metadata, body) -> status (with an error type for >= 300). Default: 201 for everything."""

    engine = "fake"

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[list[tuple[str, dict[str, Any], dict[str, Any]]]] = []
        self.scripts = 0
        self.seq = 0

    def bulk_ndjson(self, body: bytes) -> dict[str, Any]:
        items = parse(body)
        self.calls.append(items)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        result = []
        for op, info, source in items:
            status, error = (answer(op, info, source) if answer else (201, None)) or (201, None)
            self.seq += 1
            item: dict[str, Any] = {"_id": info["_id"], "_index": info["_index"], "status": status}
            if status < 300:
                item.update({"_seq_no": self.seq, "_primary_term": 1})
            else:
                item["error"] = error
            result.append({op: item})
        return {"errors": any(next(iter(i.values()))["status"] >= 300 for i in result), "items": result}

    def put_script(self, script_id: str, script: dict[str, Any]) -> None:
        self.scripts += 1

    def close(self) -> None:
        return None


def direct(kind: str, request_id: str, payload: Any) -> tuple[list[tuple[str, bytes]], bytes]:
    headers = [("type", TYPES[kind].encode()), ("requestid", request_id.encode()), ("modelid", b"classifier")]
    return headers, json.dumps(payload).encode()


def make_indexer(backend: ScriptedBackend, **env: str) -> tuple[Indexer, FakeConsumer, FakeDeadLetters]:
    settings = IndexerSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "INDEXER_SEARCH_URL": "http://127.0.0.1:9",
            "INDEXER_RETRY_INITIAL_S": "0.01",
            "INDEXER_RETRY_MAX_S": "0.02",
            "INDEXER_JOIN_WAIT_S": "30",
            **env,
        }
    )
    indexer = Indexer(settings, backend, IndexerMetrics(), threading.Event())  # type: ignore[arg-type]
    consumer, dead_letters = FakeConsumer(), FakeDeadLetters()
    indexer.consumer.close()
    indexer.consumer = consumer  # type: ignore[assignment]
    indexer.dead_letters = dead_letters  # type: ignore[assignment]
    indexer.rebalance.owned = {(TOPIC, 0)}
    indexer.metrics.set_problem("starting", None)
    return indexer, consumer, dead_letters


def feed(indexer: Indexer, consumer: FakeConsumer, *messages: FakeMessage, rounds: int = 6) -> None:
    consumer.queue.extend(messages)
    for _ in range(rounds):
        indexer.round()
        time.sleep(0.03)  # longer than the retry backoff: a retry is due in the next round
    indexer._settle()


def sample(indexer: Indexer, name: str, **labels: str) -> float:
    return indexer.metrics.registry.get_sample_value(name, labels or None) or 0.0


def pair(request_id: str, first: int) -> list[FakeMessage]:
    return [
        FakeMessage(first, *direct("request", request_id, {"data": {"ndarray": [f"text {request_id}"]}})),
        FakeMessage(first + 1, *direct("response", request_id, RESPONSE)),
    ]


def test_request_and_response_are_joined_in_memory_and_written_once_with_create() -> None:
    backend = ScriptedBackend()
    indexer, consumer, _ = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), *pair("b", 2))
    [items] = backend.calls
    assert [(op, info["_id"]) for op, info, _ in items] == [("create", "a:classifier:0"), ("create", "b:classifier:0")]
    document = items[0][2]  # the derived fields are computed in Python, exactly as the merge script would
    assert (document["outcome"], document["mode"], document["latency_ms"]) == ("ok", "realtime", 1.0)
    assert document["input_text"] == "text a" and document["predicted_label"] == "t:1"
    assert consumer.stored[-1] == 3
    assert sample(indexer, "feedback_indexer_messages_indexed_total") == 4
    assert sample(indexer, "feedback_indexer_document_writes_total", op="create") == 2


def test_the_lowest_buffered_offset_holds_the_commit_back_until_its_document_is_written() -> None:
    backend = ScriptedBackend()
    indexer, consumer, _ = make_indexer(backend)
    lonely = FakeMessage(0, *direct("request", "waits", {"data": {"ndarray": ["no response yet"]}}))
    feed(indexer, consumer, lonely, *pair("a", 1))
    assert [info["_id"] for call in backend.calls for _, info, _ in call] == ["a:classifier:0"]
    assert consumer.stored == []  # offset 0 is still buffered: nothing may be committed past it
    indexer._write_everything()  # its wait is over (or the indexer stops): written alone, outcome pending
    assert backend.calls[-1][0][2]["outcome"] == "pending"
    assert consumer.stored[-1] == 2


def test_a_create_that_finds_the_document_falls_back_to_the_scripted_merge() -> None:
    backend = ScriptedBackend(lambda op, info, source: (409, {"type": "version_conflict_engine_exception"}))
    indexer, consumer, _ = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0))
    create, merge = backend.calls[0][0], backend.calls[1][0]
    assert create[0] == "create"
    assert merge[0] == "update" and merge[2]["scripted_upsert"] is True
    assert merge[2]["script"]["params"]["doc"]["input_text"] == "text a"
    assert merge[2]["script"]["params"]["doc"]["predicted_label"] == "t:1"
    assert consumer.stored[-1] == 1
    assert sample(indexer, "feedback_indexer_document_writes_total", op="update") == 1


def test_a_late_feedback_overwrites_this_process_copy_exactly_with_if_seq_no() -> None:
    backend = ScriptedBackend()
    indexer, consumer, _ = make_indexer(backend, INDEXER_JOIN_WAIT_S="0")
    feed(indexer, consumer, *pair("a", 0))
    feedback = {"truth": {"data": {"ndarray": [1]}}, "reward": 1}
    feed(indexer, consumer, FakeMessage(2, *direct("feedback", "a", feedback)))
    op, info, document = backend.calls[-1][0]
    assert op == "index" and info["if_seq_no"] == 1 and info["if_primary_term"] == 1
    assert (document["truth_label"], document["correct"], document["feedback_join"]) == ("t:1", True, "puid")
    assert document["predicted_label"] == "t:1" and document["input_text"] == "text a"  # nothing lost
    assert consumer.stored[-1] == 2


def test_outages_and_429s_are_retried_until_acknowledged_and_only_then_committed() -> None:
    def refuse_a(op: str, info: dict[str, Any], source: Any) -> tuple[int, Any]:
        return (429, {"type": "es_rejected_execution_exception"}) if info["_id"] == "a:classifier:0" else (201, None)

    backend = ScriptedBackend(SearchUnavailable("down"), refuse_a)
    indexer, consumer, _ = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), *pair("b", 2), rounds=3)
    assert consumer.stored[-1:] != [3] or len(backend.calls) >= 3
    feed(indexer, consumer, rounds=10)
    assert [info["_id"] for _, info, _ in backend.calls[-1]] == ["a:classifier:0"]  # only the refused one again
    assert consumer.stored[-1] == 3
    assert sample(indexer, "feedback_indexer_retries_total", reason="search_unavailable") == 1
    assert sample(indexer, "feedback_indexer_retries_total", reason="item_rejected") == 1


def test_an_unknown_refusal_is_retried_a_bounded_number_of_times_then_dead_lettered() -> None:
    """Unknown per-item 4xx were retried forever, every partition paused: one document stopped the stream."""
    refuse = lambda op, info, source: (400, {"type": "some_new_exception", "reason": "?"})  # noqa: E731
    backend = ScriptedBackend(*[refuse] * 20)
    indexer, consumer, dead_letters = make_indexer(backend, INDEXER_ITEM_MAX_ATTEMPTS="3")
    request = FakeMessage(0, *direct("request", "a", {"data": {"ndarray": ["x"]}}))
    feed(indexer, consumer, request, rounds=1)
    indexer._write_everything()
    feed(indexer, consumer, rounds=10)
    assert [dict(record.headers)["dlq-reason"] for record in dead_letters.records] == [b"rejected_by_search"]
    assert len(backend.calls) == 3
    assert consumer.stored[-1] == 0


def test_a_refused_merged_document_dead_letters_only_the_bad_message() -> None:
    def refuse_predictions(op: str, info: dict[str, Any], source: Any) -> tuple[int, Any]:
        doc = source.get("script", {}).get("params", {}).get("doc", source)
        if "predicted_label" in doc:
            return 400, {"type": "mapper_parsing_exception", "reason": "failed to parse field [predicted_label]"}
        return 201, None

    backend = ScriptedBackend(*[refuse_predictions] * 5)
    indexer, consumer, dead_letters = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0))
    [record] = dead_letters.records
    assert json.loads(record.value) == RESPONSE
    headers = dict(record.headers)
    assert headers["dlq-reason"] == b"rejected_by_search" and headers["dlq-offset"] == b"1"
    assert b"mapper_parsing_exception" in headers["dlq-detail"]
    assert consumer.stored[-1] == 1
    assert sample(indexer, "feedback_indexer_messages_indexed_total") == 1


def test_413_halves_the_requests_and_a_message_too_large_alone_is_dead_lettered() -> None:
    # the request of "b" is the culprit: refused with both halves of "b", then alone
    backend = ScriptedBackend(RequestTooLarge("413"), None, RequestTooLarge("413"), RequestTooLarge("413"), None)
    indexer, consumer, dead_letters = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), *pair("b", 2), rounds=4)
    assert [len(call) for call in backend.calls] == [2, 1, 1, 1, 1]  # resent in halves, then one message each
    [record] = dead_letters.records
    assert dict(record.headers)["dlq-reason"] == b"too_large_for_search" and dict(record.headers)["dlq-offset"] == b"2"
    assert consumer.stored[-1] == 3
    assert indexer.chunk_items > 1  # each accepted request doubles the size again, up to the settings


def test_a_deleted_merge_script_is_not_reinstalled_by_the_indexer_but_names_the_setup() -> None:
    """The indexer has no right to store scripts: a deleted script makes it not ready with the setup command as the
    reason, and the document is retried (never dead-lettered) until the setup has run again."""
    missing = lambda op, info, source: (  # noqa: E731
        404,
        {"type": "resource_not_found_exception", "reason": "unable to find script [seldon-feedback-merge-x]"},
    )
    conflict = lambda op, info, source: (409, {"type": "version_conflict_engine_exception"})  # noqa: E731
    backend = ScriptedBackend(conflict, missing)
    indexer, consumer, dead_letters = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), rounds=6)
    assert backend.scripts == 0 and dead_letters.records == []
    assert backend.calls[-1][0][0] == "update" and consumer.stored[-1] == 1  # retried after the setup reran
    assert sample(indexer, "feedback_indexer_search_refusals_total", reason="script_missing") == 1
    assert "python -m feedback.indexer setup" in indexer.metrics.not_ready["search_refuses"]


def test_a_write_the_indexers_role_forbids_is_retried_never_dead_lettered() -> None:
    forbidden = lambda op, info, source: (  # noqa: E731
        403,
        {"type": "security_exception", "reason": "action [indices:data/write/bulk[s]] is unauthorized for user"},
    )
    backend = ScriptedBackend(*[forbidden] * 6)
    indexer, consumer, dead_letters = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), rounds=6)
    assert dead_letters.records == [] and consumer.stored == []
    assert sample(indexer, "feedback_indexer_search_refusals_total", reason="forbidden") >= 1
    assert "may not write" in indexer.metrics.not_ready["search_refuses"]


def test_a_cluster_that_refuses_scripts_is_not_ready_and_dead_letters_nothing() -> None:
    conflict = lambda op, info, source: (409, {"type": "version_conflict_engine_exception"})  # noqa: E731
    refused = lambda op, info, source: (  # noqa: E731
        400,
        {"type": "illegal_argument_exception", "reason": "cannot execute scripts using [update] context"},
    )
    backend = ScriptedBackend(conflict, *[refused] * 10)
    indexer, consumer, dead_letters = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), rounds=8)
    assert dead_letters.records == [] and consumer.stored == []
    assert indexer.metrics.ready._value.get() == 0
    assert "refuses" in " ".join(indexer.metrics.not_ready.values())


def test_refused_credentials_are_counted_and_make_readiness_false_until_accepted() -> None:
    backend = ScriptedBackend(SearchAuthFailed("401"), SearchAuthFailed("401"))
    indexer, consumer, _ = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), rounds=2)
    assert sample(indexer, "feedback_indexer_search_auth_failures_total") >= 1
    assert indexer.metrics.ready._value.get() == 0
    feed(indexer, consumer, rounds=10)
    assert indexer.metrics.ready._value.get() == 1 and consumer.stored[-1] == 1


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], b"{}", "missing_type"),
        ([("type", TYPES["request"].encode()), ("requestid", b"x")], b"{oops", "invalid_json"),
    ],
)
def test_poison_is_dead_lettered_and_the_rest_indexed(headers: Any, value: bytes, reason: str) -> None:
    backend = ScriptedBackend()
    indexer, consumer, dead_letters = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), FakeMessage(2, headers, value), *pair("b", 3))
    assert [dict(record.headers)["dlq-reason"].decode() for record in dead_letters.records] == [reason]
    assert consumer.stored[-1] == 4
    assert sample(indexer, "feedback_indexer_messages_consumed_total", format="invalid", kind="unknown") == 1
    assert sample(indexer, "feedback_indexer_messages_indexed_total") == 4


def test_an_event_time_in_the_far_future_does_not_pin_the_freshness_figures() -> None:
    """A Ce-Time in year 2999 pinned last_indexed_event_timestamp; the broker's timestamp is used instead."""
    backend = ScriptedBackend()
    indexer, consumer, _ = make_indexer(backend, INDEXER_JOIN_WAIT_S="0")
    headers = [
        ("ce_type", TYPES["request"].encode()),
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"http://pod/"),
        ("ce_requestid", b"future"),
        ("ce_time", b"2999-01-01T00:00:00Z"),
        ("content-type", b"application/json"),
    ]
    feed(indexer, consumer, FakeMessage(0, headers, b'{"data": {"ndarray": ["x"]}}', time_ms=1_714_564_800_000))
    document = backend.calls[0][0][2]
    assert document["request_time"].startswith("2024-05-01")
    assert sample(indexer, "feedback_indexer_event_time_adjusted_total") == 1
    assert sample(indexer, "feedback_indexer_last_indexed_event_timestamp_seconds") == 1_714_564_800.0


def test_a_timed_out_request_is_resent_in_smaller_requests() -> None:
    """A slow cluster: a request that times out is not resent whole forever (each copy times out again)."""
    backend = ScriptedBackend(SearchTimeout("read timed out"))
    indexer, consumer, _ = make_indexer(backend)
    feed(indexer, consumer, *pair("a", 0), *pair("b", 2), *pair("c", 4), *pair("d", 6), rounds=8)
    assert [len(call) for call in backend.calls[:3]] == [4, 2, 2]
    assert consumer.stored[-1] == 7


class TemplateBackend(ScriptedBackend):
    """The calls the setup makes; `meta` is the capture index's mapping `_meta` (None: no index)."""

    def __init__(self, installed: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.installed, self.puts, self.meta, self.mappings, self.created = installed, 0, meta, 0, 0

    def get_index_template(self, name: str) -> dict[str, Any] | None:
        return self.installed

    def put_index_template(self, name: str, template: dict[str, Any]) -> None:
        self.puts += 1

    def create_index(self, index: str) -> bool:
        self.created += 1
        if self.meta is None:
            self.meta = {}
            return True
        return False

    def mapping_meta(self, index: str) -> dict[str, Any] | None:
        return self.meta

    def put_mapping(self, index: str, properties: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.mappings += 1
        if meta is not None:
            self.meta = meta


SETUP = SetupSettings.from_env({"INDEXER_SEARCH_URL": "http://127.0.0.1:9"})


@pytest.mark.parametrize(
    ("version", "settings", "puts"),
    [
        (None, None, 1),  # none installed
        (TEMPLATE_VERSION - 1, None, 1),  # an older setup's
        (
            TEMPLATE_VERSION,
            {"index": {"number_of_shards": "1", "number_of_replicas": "1", "refresh_interval": "1s"}},
            0,
        ),
        (
            TEMPLATE_VERSION,
            {"index": {"number_of_shards": "3", "number_of_replicas": "1", "refresh_interval": "1s"}},
            1,
        ),
        (TEMPLATE_VERSION + 1, None, 0),  # a newer setup's: a rollback must not undo it
    ],
)
def test_the_setup_installs_the_template_only_over_an_older_or_different_one(
    version: int | None, settings: dict[str, Any] | None, puts: int
) -> None:
    installed = None if version is None else {"version": version, "template": {"settings": settings or {}}}
    backend = TemplateBackend(installed)
    install(SETUP, backend)
    assert backend.puts == puts
    assert backend.scripts == 1 and backend.created == 1  # the script every time, the index when missing


def test_the_indexer_starts_only_on_an_index_set_up_for_its_version_and_names_the_setup_command() -> None:
    backend = TemplateBackend(None, meta=None)
    indexer, _, _ = make_indexer(backend)
    assert "does not exist" in (indexer._check_setup() or "")
    backend.meta = {}  # made by an indexer of before the setup step
    assert "no setup marker" in (indexer._check_setup() or "")
    backend.meta = {"setup_version": TEMPLATE_VERSION - 1}
    problem = indexer._check_setup() or ""
    assert f"version {TEMPLATE_VERSION - 1}" in problem and "`python -m feedback.indexer setup`" in problem
    assert install(SETUP, backend)  # the setup writes the marker: the indexer may start
    assert indexer._check_setup() is None
    backend.meta = {"setup_version": TEMPLATE_VERSION + 1}  # a newer setup: an older indexer still runs
    assert indexer._check_setup() is None
    assert backend.puts == 1 and backend.mappings == 1 and backend.scripts == 1  # all by the setup, none by the indexer
