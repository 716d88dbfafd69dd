"""Batch: an input file of M texts in the object store comes back as M output lines and M tagged documents.

What: M texts (one JSON `["text"]` per line) uploaded to `<bucket>/<input_prefix><run>.jsonl`, then one batch run
(`seldon-batch-processor` against the classifier's REST endpoint, batch id `smoke-<run>`) that writes
`<bucket>/<output_prefix><run>.jsonl`.
Wait: for the batch run (at most `limits.batch_timeout_s`), then for the documents (`limits.index_timeout_s`).
Assert: exactly M output lines, none a failure, each tagged with our batch id, batch_index 0..M-1 each once;
exactly M documents carry that batch id, mode batch, batch_index 0..M-1 each once, input text = line
batch_index of the input; each of their request ids has one request and one response event on the capture topic.
Cleanup: the input and output objects are deleted in `finally`; documents stay as evidence.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from smoke_tests import batch_runner
from smoke_tests.capture import collect_events
from smoke_tests.sinks import Fields, SearchReader, TopicReader, answered, field, joined
from smoke_tests.skips import batch_needs_capture
from smoke_tests.target import Target
from smoke_tests.traffic import CLASS_NAMES, new_run_id, texts
from smoke_tests.waiting import poll


@dataclass
class BatchRun:
    batch_id: str
    texts: list[str]
    output_lines: list[dict[str, Any]]
    capture: TopicReader


@pytest.fixture(scope="module")
def batch_run(target: Target, object_store: Any) -> Iterator[BatchRun]:
    if target.batch is None:
        pytest.skip(f"target {target.name} has no batch section")
    run_id = new_run_id()
    batch_id = f"smoke-{run_id}"
    inputs = texts(run_id, target.limits.batch_count)
    bucket = target.object_store.bucket
    input_key = f"{target.batch.input_prefix}{run_id}.jsonl"
    output_key = f"{target.batch.output_prefix}{run_id}.jsonl"
    capture = TopicReader(target.kafka, target.kafka.capture_topic)
    try:
        body = "".join(json.dumps([text]) + "\n" for text in inputs).encode()
        object_store.put_object(Bucket=bucket, Key=input_key, Body=body)
        batch_runner.run(
            target,
            batch_runner.BatchRequest(
                input_key=input_key,
                output_key=output_key,
                batch_id=batch_id,
                workers=target.batch.workers,
                timeout_s=target.limits.batch_timeout_s,
            ),
        )
        text = object_store.get_object(Bucket=bucket, Key=output_key)["Body"].read().decode()
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        yield BatchRun(batch_id, inputs, lines, capture)
    finally:
        capture.close()
        for key in (input_key, output_key):
            with contextlib.suppress(Exception):
                object_store.delete_object(Bucket=bucket, Key=key)


def test_output_file_has_one_prediction_per_input_line(batch_run: BatchRun) -> None:
    lines = batch_run.output_lines
    failures = [line for line in lines if line.get("status", {}).get("status") == 1]
    assert failures == [], f"{len(failures)} failed lines, e.g. {failures[:2]}"
    assert len(lines) == len(batch_run.texts)
    tags = [line.get("meta", {}).get("tags", {}) for line in lines]
    assert {t.get("batch_id") for t in tags} == {batch_run.batch_id}
    assert sorted(int(t["batch_index"]) for t in tags) == list(range(len(batch_run.texts)))
    for line in lines:
        assert line["data"]["names"] == CLASS_NAMES
        assert len(line["data"]["ndarray"]) == 1 and len(line["data"]["ndarray"][0]) == 2


def test_each_input_line_is_one_batch_document(
    batch_run: BatchRun, target: Target, search_reader: SearchReader
) -> None:
    batch_needs_capture(target)
    size = len(batch_run.texts)
    docs = poll(
        lambda: search_reader.by_batch_id(batch_run.batch_id, size),
        lambda found: sum(1 for d in found if answered(d)) >= size,
        target.limits.index_timeout_s,
        "batch documents",
    )
    indexes = Counter(int(field(d, Fields.batch_index)) for d in docs if field(d, Fields.batch_index) is not None)
    assert sorted(indexes) == list(range(size)), f"missing batch_index {sorted(set(range(size)) - set(indexes))[:10]}"
    assert {i: n for i, n in indexes.items() if n > 1} == {}, "duplicate documents for one batch_index"
    assert len(docs) == size
    for doc in docs:
        index = int(field(doc, Fields.batch_index))
        assert field(doc, Fields.mode) == "batch", f"batch_index {index}: mode {field(doc, Fields.mode)}"
        assert field(doc, Fields.input_text) == batch_run.texts[index], f"batch_index {index}: text differs"
        assert joined(doc), f"batch_index {index} not joined"


def test_capture_topic_holds_the_batch_events(batch_run: BatchRun, target: Target, search_reader: SearchReader) -> None:
    batch_needs_capture(target)
    docs = search_reader.by_batch_id(batch_run.batch_id, len(batch_run.texts))
    request_ids = {str(field(d, Fields.request_id)) for d in docs}
    assert len(request_ids) == len(batch_run.texts), "run test_each_input_line_is_one_batch_document first"
    events = collect_events(batch_run.capture, request_ids, {"request", "response"}, target)
    counts = Counter((e.request_id, e.event_type) for e in events)
    missing = [(r, t) for r in sorted(request_ids) for t in ("request", "response") if counts[(r, t)] == 0]
    assert missing == [], f"events missing on {target.kafka.capture_topic}: {missing[:10]}"
    assert {k: n for k, n in counts.items() if n > 1} == {}, "duplicate capture events"
