"""Real-time: REST (and gRPC where the target has it) predictions come back as joined documents.

What: N REST predictions through the executor, each with its own puid (`<run>-rt-<i>`), and, when the
target names a gRPC address, G gRPC predictions (`<run>-grpc-<i>`).
Wait: until the search index holds a joined document for every REST puid (and every gRPC puid), at most
`limits.index_timeout_s`.
Assert: every answer (REST and gRPC) carries the class names and one probability row, and comes back with our puid
where the executor returns it: the `Seldon-Puid` response header (REST) or `seldon-puid` reply metadata (gRPC),
never the body (../shared/reference/seldon-executor-1.17.1/README.md); exactly N documents with the REST request
ids, no duplicates, each with request and response joined (input text = the text sent, predicted label one of the
class names), mode realtime, transport rest; exactly G documents with the gRPC request ids, likewise, transport grpc
(the executor logs gRPC payloads as application/protobuf); the capture topic holds exactly one request and one
response event per REST puid.
Cleanup: nothing is created besides the documents and records under this run's ids (kept as evidence);
Kafka readers are closed in `finally`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from smoke_tests import seldon_grpc
from smoke_tests.capture import collect_events
from smoke_tests.sinks import Fields, SearchReader, TopicReader, field, joined
from smoke_tests.skips import needs_capture
from smoke_tests.target import Target
from smoke_tests.traffic import CLASS_NAMES, Prediction, RestClient, check_prediction, new_run_id, texts
from smoke_tests.waiting import poll


@dataclass
class RealtimeRun:
    run_id: str
    rest: list[Prediction]
    grpc: list[Prediction]
    capture: TopicReader

    @property
    def puids(self) -> list[str]:
        """The REST puids."""
        return [p.puid for p in self.rest]


@pytest.fixture(scope="module")
def realtime_run(target: Target) -> Iterator[RealtimeRun]:
    run_id = new_run_id()
    capture = TopicReader(target.kafka, target.kafka.capture_topic)
    try:
        client = RestClient(target.realtime.rest_url, target.limits.request_timeout_s)
        rest = [
            client.predict(text, f"{run_id}-rt-{i}")
            for i, text in enumerate(texts(run_id, target.limits.realtime_count))
        ]
        grpc: list[Prediction] = []
        if target.realtime.grpc_address:
            for i, text in enumerate(texts(run_id + "g", target.limits.grpc_count)):
                puid = f"{run_id}-grpc-{i}"
                answer = seldon_grpc.predict(target.realtime.grpc_address, text, puid, target.limits.request_timeout_s)
                grpc.append(
                    Prediction(puid=puid, text=text, request={}, response=answer.response, answered_puid=answer.puid)
                )
        yield RealtimeRun(run_id, rest, grpc, capture)
    finally:
        capture.close()


def test_every_prediction_is_answered_with_its_puid(realtime_run: RealtimeRun, target: Target) -> None:
    expected = target.limits.realtime_count + (target.limits.grpc_count if target.realtime.grpc_address else 0)
    assert len(realtime_run.rest) + len(realtime_run.grpc) == expected
    for prediction in realtime_run.rest + realtime_run.grpc:
        check_prediction(prediction, through_executor=target.realtime.executor)


def test_each_prediction_is_one_joined_document(
    realtime_run: RealtimeRun, target: Target, search_reader: SearchReader
) -> None:
    needs_capture(target)
    puids = realtime_run.puids

    def all_joined(docs: list[dict]) -> bool:
        return sum(1 for d in docs if joined(d)) >= len(puids)

    docs = poll(
        lambda: search_reader.by_request_ids(puids),
        all_joined,
        target.limits.index_timeout_s,
        "joined real-time documents",
    )
    per_id = Counter(field(d, Fields.request_id) for d in docs)
    assert set(per_id) == set(puids), f"missing {sorted(set(puids) - set(per_id))[:10]}"
    assert [pid for pid, n in per_id.items() if n > 1] == [], "duplicate documents"
    assert len(docs) == len(puids)
    by_id = {field(d, Fields.request_id): d for d in docs}
    for prediction in realtime_run.rest:
        doc = by_id[prediction.puid]
        assert joined(doc), f"{prediction.puid} not joined"
        assert field(doc, Fields.mode) == "realtime", f"{prediction.puid}: mode {field(doc, Fields.mode)}"
        assert field(doc, Fields.transport) == "rest", f"{prediction.puid}: transport {field(doc, Fields.transport)}"
        assert field(doc, Fields.input_text) == prediction.text
        assert field(doc, Fields.predicted_label) in CLASS_NAMES


def test_each_grpc_prediction_is_one_joined_document(
    realtime_run: RealtimeRun, target: Target, search_reader: SearchReader
) -> None:
    needs_capture(target)
    if not realtime_run.grpc:
        pytest.skip(f"target {target.name} names no gRPC address (realtime.grpc_address)")
    puids = [p.puid for p in realtime_run.grpc]
    docs = poll(
        lambda: search_reader.by_request_ids(puids),
        lambda found: sum(1 for d in found if joined(d)) >= len(puids),
        target.limits.index_timeout_s,
        "joined gRPC documents",
    )
    per_id = Counter(field(d, Fields.request_id) for d in docs)
    assert set(per_id) == set(puids), f"missing {sorted(set(puids) - set(per_id))[:10]}"
    assert len(docs) == len(puids), "duplicate documents"
    by_id = {field(d, Fields.request_id): d for d in docs}
    for prediction in realtime_run.grpc:
        doc = by_id[prediction.puid]
        assert joined(doc), f"{prediction.puid} not joined"
        assert field(doc, Fields.transport) == "grpc", f"{prediction.puid}: transport {field(doc, Fields.transport)}"
        assert field(doc, Fields.mode) == "realtime"
        assert field(doc, Fields.input_text) == prediction.text
        assert field(doc, Fields.predicted_label) in CLASS_NAMES


def test_capture_topic_holds_request_and_response_per_puid(realtime_run: RealtimeRun, target: Target) -> None:
    needs_capture(target)
    events = collect_events(realtime_run.capture, set(realtime_run.puids), {"request", "response"}, target)
    counts = Counter((e.request_id, e.event_type) for e in events if e.event_type in {"request", "response"})
    missing = [(p, t) for p in realtime_run.puids for t in ("request", "response") if counts[(p, t)] == 0]
    assert missing == [], f"events missing on {target.kafka.capture_topic}: {missing[:10]}"
    duplicated = {key: n for key, n in counts.items() if n > 1}
    assert duplicated == {}, f"events duplicated on {target.kafka.capture_topic}: {list(duplicated.items())[:10]}"
