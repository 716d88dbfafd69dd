"""The export on a real OpenSearch and a real S3 server (s3proxy): documents shaped like the indexer's, under its
own index template, become a dataset in the object store.

What: each test writes its own index and bucket. Waits for: nothing but the refresh after the bulk write. Asserts:
exported rows = documents with ground truth and text in the range (exact ids, per-label and per-split counts),
the same range gives the same bytes and hash, bad ranges and labels fail with a message that says what to do and
leave the bucket empty, sampling keeps whole requests, redaction applies. Cleanup: the servers are the session's;
indices and buckets have random names and go with the run folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from feedback.collector.core import sampled_in
from feedback.flowback import dataset
from feedback.flowback.errors import FlowbackError
from feedback.flowback.export import PAGE_SIZE, ExportRequest, build, export
from feedback.indexer.search_io import SearchBackend
from feedback.redaction import Redactor, build_redactor
from opensearchpy import OpenSearch, helpers

from tests.flowback_data import (
    DEPLOYMENT,
    SERVING_VERSION,
    at,
    backend,
    document,
    env_for,
    index_documents,
    new_store,
)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
NO_REDACTION = Redactor()


def request(start: float = 0, end: float = 60, **kwargs: Any) -> ExportRequest:
    return ExportRequest(start=at(start), end=at(end), deployment=DEPLOYMENT, **kwargs)


def label_for(i: int) -> int:
    return 1 if i % 3 == 0 else 0


def scenario() -> tuple[list[dict[str, Any]], set[tuple[str, int]]]:
    """Documents around the range [minute 0, minute 60) and the (request id, instance) pairs the export must give."""
    docs: list[dict[str, Any]] = []
    expected: set[tuple[str, int]] = set()
    for i in range(60):  # in range, with truth; minute 0 is the inclusive start
        docs.append(document(f"in-{i:03d}", i * 0.9, f"comment number {i} about sleep", label_for(i)))
        expected.add((f"in-{i:03d}", 0))
    for i in range(15):  # in range, no feedback
        docs.append(document(f"no-truth-{i:03d}", 30 + i, f"unlabelled comment {i}"))
    for i in range(5):  # before the range
        docs.append(document(f"before-{i:03d}", -10 - i, f"old comment {i}", 1))
    for i in range(3):  # at the exclusive end
        docs.append(document(f"at-end-{i:03d}", 60, f"late comment {i}", 0))
    for i in range(7):  # another deployment
        docs.append(document(f"other-{i:03d}", 10 + i, f"other model's comment {i}", 1, deployment="another"))
    for i in range(2):  # orphan feedback: truth, but no text
        docs.append(document(f"orphan-{i:03d}", 20 + i, None, 1))
    for instance in range(2):  # a batch request: one document per row, same request id
        docs.append(document("batch-000", 40, f"batch row {instance}", instance, instance=instance))
        expected.add(("batch-000", instance))
    return docs, expected


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


@pytest.fixture
def index(search: Any) -> str:
    return f"flowback-{secrets.token_hex(4)}-feedback"


def test_exported_rows_are_exactly_the_documents_with_truth_and_text_in_the_range(search: Any, s3: Any, index: str):
    docs, expected = scenario()
    assert index_documents(search.url, index, docs) == len(docs)
    store = new_store(s3)
    result = export(backend(search.url), store, index, request(), NO_REDACTION)

    manifest = result.manifest
    assert result.written
    assert result.prefix == f"datasets/{DEPLOYMENT}/{manifest['content_hash'][:16]}"
    assert store.keys(result.prefix) == sorted(
        f"{result.prefix}/{name}" for name in ("held_out.csv", "manifest.json", "train.csv")
    )
    train = rows_of(store.get(f"{result.prefix}/train.csv") or b"")
    held_out = rows_of(store.get(f"{result.prefix}/held_out.csv") or b"")
    exported = [(row["request_id"], int(row["instance"])) for row in train + held_out]
    assert len(exported) == len(set(exported)) == len(expected) == 62  # no duplicates, nothing missing
    assert set(exported) == expected
    assert all(dataset.is_held_out(row["text"], 20) for row in held_out)
    assert not any(dataset.is_held_out(row["text"], 20) for row in train)
    truth = {d["request_id"] + f":{d['instance']}": d["truth_index"] for d in docs if "truth_index" in d}
    assert all(int(row["label"]) == truth[f"{row['request_id']}:{row['instance']}"] for row in train + held_out)

    counts = manifest["counts"]
    assert counts["documents_with_truth"] == 64  # 62 rows + 2 orphans without text
    assert counts["rows"] == 62
    removed = sum(label_for(i) for i in range(60)) + 1  # the batch's second row has truth 1
    assert counts["per_label"] == {"t:0": 62 - removed, "t:1": removed}
    assert counts["per_split"]["train"]["rows"] == len(train)
    assert counts["per_split"]["held_out"]["rows"] == len(held_out)
    assert counts["per_split"]["held_out"]["per_label"]["t:1"] == sum(int(row["label"]) for row in held_out)
    assert counts["skipped"] == {"no_text": 2, "unknown_label": 0, "sampled_out": 0}
    assert manifest["source_model_versions"] == {SERVING_VERSION: 62}
    assert manifest["provenance"]["time_range"] == {
        "start": "2026-11-30T12:00:00.000Z",
        "end": "2026-11-30T13:00:00.000Z",
    }
    for name, info in manifest["files"].items():
        data = store.get(f"{result.prefix}/{name}") or b""
        assert (info["sha256"], info["bytes"]) == (dataset.sha256(data), len(data))
    assert manifest["files"]["train.csv"]["rows"] == len(train)


def test_the_same_range_exported_twice_gives_the_same_dataset_and_hash(search: Any, s3: Any, index: str):
    docs, _ = scenario()
    index_documents(search.url, index, docs[::-1])  # write order does not matter
    first_store, second_store = new_store(s3), new_store(s3)
    first = export(backend(search.url), first_store, index, request(), NO_REDACTION)
    again = export(backend(search.url), first_store, index, request(), NO_REDACTION)
    elsewhere = export(backend(search.url), second_store, index, request(), NO_REDACTION)

    assert first.content_hash == again.content_hash == elsewhere.content_hash
    assert (first.written, again.written, elsewhere.written) == (True, False, True)
    for name in ("train.csv", "held_out.csv", "manifest.json"):
        assert first_store.get(f"{first.prefix}/{name}") == second_store.get(f"{elsewhere.prefix}/{name}"), name
    other_range = export(backend(search.url), first_store, index, request(end=53), NO_REDACTION)
    assert other_range.content_hash != first.content_hash  # one document fewer (the last, at minute 53.1)
    assert other_range.manifest["counts"]["rows"] == 61


@pytest.mark.parametrize(
    ("start", "end", "docs", "message"),
    [
        (100, 160, "scenario", "no documents at all in index"),
        (30, 45, "no-truth-only", "none of the 15 documents in index"),
        (60, 0, "scenario", "must be after --start"),
    ],
)
def test_an_empty_range_or_no_ground_truth_is_a_clear_error_and_writes_nothing(
    search: Any, s3: Any, index: str, start: float, end: float, docs: str, message: str
):
    all_docs, _ = scenario()
    chosen = all_docs if docs == "scenario" else [d for d in all_docs if d["request_id"].startswith("no-truth")]
    index_documents(search.url, index, chosen)
    store = new_store(s3)
    with pytest.raises(FlowbackError, match=message) as raised:
        export(backend(search.url), store, index, request(start, end), NO_REDACTION)
    if "none of" in message:
        assert "send feedback (POST /api/v1.0/feedback" in str(raised.value)
    assert store.keys("") == []


def test_a_label_the_model_does_not_know_fails_unless_dropped_and_then_is_counted(search: Any, s3: Any, index: str):
    docs, _ = scenario()
    docs += [document("unknown-000", 5, "a comment with a third label", 2)]
    docs += [document("unknown-001", 6, "a comment labelled in words", truth="spam")]
    index_documents(search.url, index, docs)
    store = new_store(s3)
    with pytest.raises(FlowbackError) as raised:
        export(backend(search.url), store, index, request(), NO_REDACTION)
    message = str(raised.value)
    assert "2 of 66 documents" in message and "not one of the classes t:0,t:1" in message
    assert "unknown-000 truth='2'" in message and "--drop-unknown-labels" in message
    assert store.keys("") == []

    result = export(backend(search.url), store, index, request(drop_unknown_labels=True), NO_REDACTION)
    assert result.manifest["counts"]["skipped"]["unknown_label"] == 2
    assert result.manifest["counts"]["rows"] == 62


def test_sampling_keeps_whole_requests_by_the_collectors_rule(search: Any, s3: Any, index: str):
    docs, expected = scenario()
    index_documents(search.url, index, docs)
    store = new_store(s3)
    result = export(backend(search.url), store, index, request(sample_rate=0.5), NO_REDACTION)
    rows = rows_of(store.get(f"{result.prefix}/train.csv") or b"") + rows_of(
        store.get(f"{result.prefix}/held_out.csv") or b""
    )
    kept = {(row["request_id"], int(row["instance"])) for row in rows}
    assert kept == {(rid, instance) for rid, instance in expected if sampled_in(rid, 0.5)}
    assert 15 < len(kept) < 47  # about half of 62
    per_request = Counter(rid for rid, _ in kept)
    assert per_request.get("batch-000", 2) == 2  # both rows of the batch request, or neither
    in_range = [d for d in docs if d["request_id"].startswith(("in-", "orphan-", "batch-"))]
    skipped = result.manifest["counts"]["skipped"]
    assert skipped["sampled_out"] == sum(1 for d in in_range if not sampled_in(d["request_id"], 0.5))
    assert skipped["no_text"] == sum(1 for d in in_range if "input_text" not in d and sampled_in(d["request_id"], 0.5))
    assert result.manifest["query"]["sample_rate"] == 0.5


def test_a_model_version_and_a_predictor_select_their_documents_only(search: Any, s3: Any, index: str):
    docs = [document(f"v1-{i:03d}", i, f"served by v1 {i}", i % 2) for i in range(20)]
    docs += [document(f"v2-{i:03d}", i, f"served by v2 {i}", i % 2, model_version="1.0.0+v2") for i in range(12)]
    docs += [
        document(f"c-{i:03d}", i, f"canary {i}", 1, model_version="1.0.0+v2", predictor="canary") for i in range(5)
    ]
    index_documents(search.url, index, docs)
    store = new_store(s3)
    by_version = export(backend(search.url), store, index, request(model_version="1.0.0+v2"), NO_REDACTION)
    assert by_version.manifest["counts"]["rows"] == 17
    assert by_version.manifest["source_model_versions"] == {"1.0.0+v2": 17}
    by_predictor = export(
        backend(search.url), store, index, request(model_version="1.0.0+v2", predictor="canary"), NO_REDACTION
    )
    assert by_predictor.manifest["counts"]["rows"] == 5
    assert by_predictor.content_hash != by_version.content_hash


def test_texts_are_redacted_again_and_counted(search: Any, s3: Any, index: str):
    docs = [
        document("mail-000", 1, "write to jane.doe@example.org for the data", 0),
        document("mail-001", 2, "a comment without personal data", 1),
    ]
    index_documents(search.url, index, docs)
    store = new_store(s3)
    redactor = build_redactor([], ["email"], [], patterns_variable="FLOWBACK_REDACT_PATTERNS")
    result = export(backend(search.url), store, index, request(), redactor)
    texts = [
        row["text"]
        for name in ("train.csv", "held_out.csv")
        for row in rows_of(store.get(f"{result.prefix}/{name}") or b"")
    ]
    assert sorted(texts) == ["a comment without personal data", "write to [REDACTED:email] for the data"]
    assert result.manifest["counts"]["redacted_texts"] == 1
    assert result.manifest["provenance"]["redaction"] == {"active": True, "fields": [], "patterns": ["email"]}


def test_the_command_line_prints_the_dataset_and_fails_with_the_reason(
    search: Any, s3: Any, index: str, tmp_path: Path
):
    docs, _ = scenario()
    index_documents(search.url, index, docs)
    store = new_store(s3)
    env = {
        **os.environ,
        **env_for(search.url, store, s3, FLOWBACK_INDEX=index),
        "PYTHONPATH": str(REPO / "images" / "feedback"),
    }
    argv = [sys.executable, "-m", "feedback.flowback", "export", "--deployment", DEPLOYMENT]
    window = ["--start", "2026-11-30T12:00:00Z", "--end", "2026-11-30T13:00:00Z"]
    parameter = tmp_path / "dataset.txt"
    done = subprocess.run(
        [*argv, *window, "--output-parameter", str(parameter)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["counts"]["rows"] == 62 and printed["dataset"] == parameter.read_text()

    empty = ["--start", "2026-12-01T00:00:00Z", "--end", "2026-12-01T01:00:00Z"]
    failed = subprocess.run([*argv, *empty], env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("error: no documents at all in index")
    naive = subprocess.run(
        [*argv, "--start", "2026-12-01T00:00:00", "--end", "2026-12-01T01:00:00Z"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "has no time zone; add Z (UTC)" in naive.stderr


class WritesBetweenPages:
    """The export's search backend, with the indexer's kind of writes done between its first and second page."""

    def __init__(self, inner: SearchBackend, write: Any) -> None:
        self.inner, self.write, self.pages = inner, write, 0
        self.engine = inner.engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def search_point_in_time(self, pit_id: str, keep_alive: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.inner.search_point_in_time(pit_id, keep_alive, body)
        if "search_after" not in body and body.get("size") == PAGE_SIZE:  # the first page has been read
            self.write()
        self.pages += 1
        return answer


def test_documents_written_during_an_export_do_not_change_it(search: Any, s3: Any, index: str):
    """The indexer keeps writing while an export pages through the range: new documents with truth, new truth on
    old documents, deletions (retention). The export reads one point in time, so its rows, counts and hash are the
    range as it was when it began; the next export sees the writes."""
    count = 2 * PAGE_SIZE + 300  # three pages
    docs = [document(f"req-{i:05d}", i * 59 / count, f"comment {i} on the topic", i % 2) for i in range(count)]
    assert index_documents(search.url, index, docs) == count
    before, _ = build(backend(search.url), index, request(), NO_REDACTION)
    assert before["counts"]["rows"] == count

    client = OpenSearch(hosts=[search.url], timeout=120)
    written: list[int] = []

    def indexer_writes() -> None:
        actions: list[dict[str, Any]] = [  # new documents sorting before and after the first page's last id
            {"_index": index, "_id": f"{d['request_id']}:classifier:0", "_source": d}
            for d in (document(f"req-{i:05d}x", 30, f"late comment {i}", 1) for i in range(0, count, 10))
        ]
        actions += [  # a ground truth changed on a document of a later page
            {
                "_op_type": "update",
                "_index": index,
                "_id": f"req-{i:05d}:classifier:0",
                "doc": {"truth": "1", "truth_index": 1},
            }
            for i in range(PAGE_SIZE + 1, count, 7)
        ]
        actions += [  # deleted (retention) on a later page
            {"_op_type": "delete", "_index": index, "_id": f"req-{i:05d}:classifier:0"}
            for i in range(count - 50, count)
        ]
        ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh="true")
        assert not errors, errors[:3]
        written.append(ok)

    try:
        store = new_store(s3)
        during = WritesBetweenPages(backend(search.url), indexer_writes)
        result = export(during, store, index, request(), NO_REDACTION)  # type: ignore[arg-type]
        assert written and written[0] > 0 and during.pages == 3, "the writes happened between the pages"
        assert result.content_hash == before["content_hash"]
        assert result.manifest["counts"] == before["counts"]
        assert result.manifest["counts"]["rows"] == count
        # the writes are real: the next export (a new point in time) sees them
        after, _ = build(backend(search.url), index, request(), NO_REDACTION)
        assert after["counts"]["rows"] == count + len(range(0, count, 10)) - 50
        assert after["content_hash"] != before["content_hash"]
        assert not client.transport.perform_request("GET", "/_search/point_in_time/_all").get("pits"), (
            "every point in time the exports opened is closed"
        )
    finally:
        client.close()
