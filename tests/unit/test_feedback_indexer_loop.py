"""The indexer's batch loop with in-memory stand-ins for Kafka and the search cluster (no servers): offsets are
stored only after every document is acknowledged, 429s are retried (never skipped), poison and refused documents
are dead-lettered with a reason, and a refused merged document does not take its good companions down with it."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from feedback.indexer.main import Indexer
from feedback.indexer.metrics import IndexerMetrics
from feedback.indexer.search_io import ItemResult, SearchUnavailable
from feedback.indexer.settings import IndexerSettings

TOPIC = "seldon-capture"


class FakeMessage:
    def __init__(self, offset: int, headers: list[tuple[str, bytes]], value: bytes, partition: int = 0) -> None:
        self._offset, self._headers, self._value, self._partition = offset, headers, value, partition

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
        return (1, 1_714_564_800_000 + self._offset)


class FakeConsumer:
    def __init__(self) -> None:
        self.stored: list[int] = []
        self.commits = 0
        self.paused = self.resumed = 0

    def store_offsets(self, message: FakeMessage) -> None:
        self.stored.append(message.offset())

    def commit(self, asynchronous: bool = True) -> None:
        assert asynchronous is False
        self.commits += 1

    def assignment(self) -> list[Any]:
        return []

    def pause(self, partitions: list[Any]) -> None:
        self.paused += 1

    def resume(self, partitions: list[Any]) -> None:
        self.resumed += 1

    def poll(self, timeout: float) -> None:
        return None


class FakeDeadLetters:
    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def send_all(self, records: list[Any], timeout: float) -> int:
        self.records.extend(records)
        return 0


class ScriptedBackend:
    """Answers each bulk call with the next entry: an exception, or a function of the actions."""

    engine = "fake"

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[list[dict[str, Any]]] = []

    def bulk(self, actions: list[dict[str, Any]]) -> list[ItemResult]:
        self.calls.append(actions)
        answer = self.answers.pop(0) if self.answers else ok
        if isinstance(answer, Exception):
            raise answer
        return answer(actions)


def ok(actions: list[dict[str, Any]]) -> list[ItemResult]:
    return [ItemResult(action["_id"], 200, None) for action in actions]


def statuses(by_id: dict[str, int]) -> Any:
    def answer(actions: list[dict[str, Any]]) -> list[ItemResult]:
        results = []
        for action in actions:
            status = by_id.get(action["_id"], 200)
            error = None if status < 300 else {"type": "mapper_parsing_exception" if status == 400 else "x"}
            results.append(ItemResult(action["_id"], status, error))
        return results

    return answer


def direct(kind: str, request_id: str, payload: Any) -> tuple[list[tuple[str, bytes]], bytes]:
    types = {"request": "io.seldon.serving.inference.request", "response": "io.seldon.serving.inference.response"}
    headers = [("type", types[kind].encode()), ("requestid", request_id.encode()), ("modelid", b"classifier")]
    return headers, json.dumps(payload).encode()


def make_indexer(backend: ScriptedBackend) -> tuple[Indexer, FakeConsumer, FakeDeadLetters]:
    settings = IndexerSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "INDEXER_SEARCH_URL": "http://127.0.0.1:9",
            "INDEXER_RETRY_INITIAL_S": "0.01",
            "INDEXER_RETRY_MAX_S": "0.02",
        }
    )
    indexer = Indexer(settings, backend, IndexerMetrics(), threading.Event())  # type: ignore[arg-type]
    consumer, dead_letters = FakeConsumer(), FakeDeadLetters()
    indexer.consumer.close()
    indexer.consumer = consumer  # type: ignore[assignment]
    indexer.dead_letters = dead_letters  # type: ignore[assignment]
    indexer.rebalance.owned = {(TOPIC, 0)}
    return indexer, consumer, dead_letters


def messages() -> list[FakeMessage]:
    return [
        FakeMessage(0, *direct("request", "a", {"data": {"ndarray": ["text a"]}})),
        FakeMessage(1, *direct("response", "a", {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.1, 0.9]]}})),
        FakeMessage(2, *direct("request", "b", {"data": {"ndarray": ["text b"]}})),
    ]


def sample(indexer: Indexer, name: str, **labels: str) -> float:
    return indexer.metrics.registry.get_sample_value(name, labels or None) or 0.0


def test_offsets_are_stored_and_committed_after_the_bulk_is_acknowledged() -> None:
    backend = ScriptedBackend(ok)
    indexer, consumer, dead_letters = make_indexer(backend)
    indexer.process(messages())
    assert len(backend.calls) == 1
    assert sorted(action["_id"] for action in backend.calls[0]) == ["a:classifier:0", "b:classifier:0"]  # merged
    assert consumer.stored == [0, 1, 2] and consumer.commits == 1
    assert dead_letters.records == []
    assert sample(indexer, "feedback_indexer_messages_indexed_total") == 3


def test_outage_and_429_are_retried_until_acknowledged_then_committed() -> None:
    backend = ScriptedBackend(SearchUnavailable("down"), statuses({"a:classifier:0": 429}), ok)
    indexer, consumer, _ = make_indexer(backend)
    indexer.process(messages())
    assert len(backend.calls) == 3
    assert [action["_id"] for action in backend.calls[2]] == ["a:classifier:0"]  # only the refused one again
    assert consumer.stored == [0, 1, 2] and consumer.commits == 1
    assert consumer.paused >= 1 and consumer.resumed == 1
    assert sample(indexer, "feedback_indexer_retries_total", reason="search_unavailable") == 1
    assert sample(indexer, "feedback_indexer_retries_total", reason="item_rejected") == 1


def test_stop_during_an_outage_commits_nothing() -> None:
    backend = ScriptedBackend(SearchUnavailable("down"), SearchUnavailable("down"))
    indexer, consumer, _ = make_indexer(backend)
    indexer.stop.set()
    indexer.process(messages())
    assert consumer.stored == [] and consumer.commits == 0  # replayed after the restart


def test_refused_merged_document_dead_letters_only_the_bad_message() -> None:
    def refuse_response(actions: list[dict[str, Any]]) -> list[ItemResult]:
        results = []
        for action in actions:
            has_prediction = "predicted_label" in action["script"]["params"]["doc"]
            results.append(
                ItemResult(action["_id"], 400, {"type": "mapper_parsing_exception"})
                if has_prediction
                else ItemResult(action["_id"], 200, None)
            )
        return results

    backend = ScriptedBackend(refuse_response, refuse_response, refuse_response)
    indexer, consumer, dead_letters = make_indexer(backend)
    indexer.process(messages())
    assert len(dead_letters.records) == 1
    _, value, headers = dead_letters.records[0]
    assert json.loads(value) == {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.1, 0.9]]}}
    header_map = dict(headers)
    assert header_map["dlq-reason"] == b"rejected_by_search" and header_map["dlq-offset"] == b"1"
    assert b"mapper_parsing_exception" in header_map["dlq-detail"]
    assert consumer.stored == [0, 1, 2]
    assert sample(indexer, "feedback_indexer_dead_lettered_total", reason="rejected_by_search") == 1
    assert sample(indexer, "feedback_indexer_messages_indexed_total") == 2


def test_a_message_refused_for_several_instances_is_dead_lettered_once() -> None:
    def refuse_predictions(actions: list[dict[str, Any]]) -> list[ItemResult]:
        return [
            ItemResult(action["_id"], 400, {"type": "mapper_parsing_exception"})
            if "predicted_label" in action["script"]["params"]["doc"]
            else ItemResult(action["_id"], 200, None)
            for action in actions
        ]

    two_rows = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.1, 0.9], [0.8, 0.2]]}}
    batch = [
        FakeMessage(0, *direct("request", "c", {"data": {"ndarray": ["one", "two"]}})),
        FakeMessage(1, *direct("response", "c", two_rows)),
        FakeMessage(2, *direct("response", "d", two_rows)),
    ]
    indexer, consumer, dead_letters = make_indexer(ScriptedBackend(*[refuse_predictions] * 4))
    indexer.process(batch)
    assert sorted(dict(record[2])["dlq-offset"] for record in dead_letters.records) == [b"1", b"2"]
    assert consumer.stored == [0, 1, 2]
    assert sample(indexer, "feedback_indexer_dead_lettered_total", reason="rejected_by_search") == 2
    assert sample(indexer, "feedback_indexer_messages_indexed_total") == 1


def test_an_unforeseen_decoding_error_dead_letters_the_message_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from feedback.indexer import main

    real = main.document_parts

    def fails_for_b(event: Any, patterns: Any) -> Any:
        if event.request_id == "b":
            raise TypeError("an input nobody foresaw")
        return real(event, patterns)

    monkeypatch.setattr(main, "document_parts", fails_for_b)
    indexer, consumer, dead_letters = make_indexer(ScriptedBackend(ok))
    indexer.process(messages())
    [(_, _, headers)] = dead_letters.records
    assert dict(headers)["dlq-reason"] == b"decode_error" and dict(headers)["dlq-offset"] == b"2"
    assert b"TypeError: an input nobody foresaw" in dict(headers)["dlq-detail"]
    assert consumer.stored == [0, 1, 2]
    assert sample(indexer, "feedback_indexer_messages_indexed_total") == 2


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], b"{}", "missing_type"),
        ([("type", b"io.seldon.serving.inference.request"), ("requestid", b"x")], b"{oops", "invalid_json"),
    ],
)
def test_poison_is_dead_lettered_and_the_rest_indexed(headers: Any, value: bytes, reason: str) -> None:
    backend = ScriptedBackend(ok)
    indexer, consumer, dead_letters = make_indexer(backend)
    batch = [*messages(), FakeMessage(3, headers, value)]
    indexer.process(batch)
    assert [dict(record[2])["dlq-reason"].decode() for record in dead_letters.records] == [reason]
    assert consumer.stored == [0, 1, 2, 3]
    assert sample(indexer, "feedback_indexer_messages_consumed_total", format="invalid", kind="unknown") == 1
