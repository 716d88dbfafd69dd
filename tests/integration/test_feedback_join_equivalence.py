"""The in-memory join writes the same document as the engine's scripted merge, for every arrival order.

What: the request, response (a FAILURE status too) and feedback of one request (two instances, batch tags), in
every order and with a repeat, are merged twice on the real OpenSearch: once by the stored painless script, one
scripted upsert per event in that order (the late-event path), and once by the indexer's Python join (`derive`),
written with `create`. Also: a document created from the request and response, then a late feedback merged into
this process's copy and written with `index` (the exact-overwrite path).
Wait: nothing (each write is acknowledged; the index is refreshed).
Assert: every `_source` is identical.
Cleanup: a fresh index per test.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import pytest
import requests
from feedback.indexer.core import (
    MERGE_SCRIPT_ID,
    decode_message,
    document_parts,
    index_template,
    mapping_properties,
    stored_script,
)
from feedback.indexer.join import merged

pytestmark = pytest.mark.integration

TYPES = {
    "request": "io.seldon.serving.inference.request",
    "response": "io.seldon.serving.inference.response",
    "feedback": "io.seldon.serving.feedback",
}


def parts_of(kind: str, payload: Any, time_ms: int) -> list[Any]:
    headers = [
        ("type", TYPES[kind].encode()),
        ("requestid", b"puid-eq"),
        ("modelid", b"classifier"),
        ("inferenceservicename", b"text-classifier"),
        ("namespace", b"seldon"),
        ("endpoint", b"default"),
    ]
    event = decode_message(headers, json.dumps(payload).encode(), time_ms)
    return document_parts(event, ())


EVENTS = {
    "request": parts_of(
        "request", {"data": {"ndarray": ["one", "two"]}, "meta": {"tags": {"batch_id": "b-1"}}}, 1_714_564_800_000
    ),
    "response": parts_of(
        "response", {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.2, 0.8], [0.7, 0.3]]}}, 1_714_564_800_012
    ),
    "failure": parts_of(
        "response", {"status": {"status": "FAILURE", "code": 500, "reason": "MICROSERVICE_INTERNAL_ERROR"}}, 1
    ),
    "feedback": parts_of("feedback", {"truth": {"data": {"ndarray": [[1], [1]]}}, "reward": 1.0}, 1_714_564_805_000),
}
ORDERS = [
    *itertools.permutations(["request", "response", "feedback"]),
    ("feedback", "request", "feedback", "response"),
    ("response", "response", "request"),
    ("request", "failure"),
    ("feedback",),
    ("request",),
]


class Engine:
    def __init__(self, url: str, index: str) -> None:
        self.url, self.index = url, index
        template = index_template(index, 1, 0)
        requests.put(f"{url}/_index_template/{index}-template", json=template, timeout=30).raise_for_status()
        requests.put(
            f"{url}/_scripts/{MERGE_SCRIPT_ID}", json={"script": stored_script()}, timeout=30
        ).raise_for_status()
        requests.put(f"{url}/{index}", timeout=30).raise_for_status()
        requests.put(f"{url}/{index}/_mapping", json={"properties": mapping_properties()}, timeout=30)

    def bulk(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = "".join(json.dumps(line) + "\n" for line in lines)
        answer = requests.post(
            f"{self.url}/_bulk", data=body, headers={"Content-Type": "application/x-ndjson"}, timeout=60
        ).json()
        assert not answer["errors"], answer
        return [next(iter(item.values())) for item in answer["items"]]

    def sources(self) -> dict[str, dict[str, Any]]:
        requests.post(f"{self.url}/{self.index}/_refresh", timeout=30).raise_for_status()
        hits = requests.post(f"{self.url}/{self.index}/_search", json={"size": 1000}, timeout=30).json()
        return {hit["_id"]: hit["_source"] for hit in hits["hits"]["hits"]}


def test_python_join_equals_the_scripted_merge_for_every_order(search: Any) -> None:
    engine = Engine(search.url, f"eq-{uuid.uuid4().hex[:8]}")
    scripted, created, expected = [], [], {}
    for number, order in enumerate(ORDERS):
        for instance in range(2):
            fields = [EVENTS[name][instance].fields for name in order if instance < len(EVENTS[name])]
            if not fields:
                continue
            hint = EVENTS[order[0]][0].mode_hint
            for part in fields:
                scripted.append({"update": {"_index": engine.index, "_id": f"s{number}-{instance}"}})
                scripted.append(
                    {
                        "script": {"id": MERGE_SCRIPT_ID, "params": {"doc": part, "mode_hint": hint}},
                        "scripted_upsert": True,
                        "upsert": {},
                    }
                )
            created.append({"create": {"_index": engine.index, "_id": f"p{number}-{instance}"}})
            created.append(merged({}, fields, hint))
            expected[number, instance] = True
    engine.bulk(scripted)
    engine.bulk(created)
    sources = engine.sources()
    for number, instance in expected:
        by_script, by_python = sources[f"s{number}-{instance}"], sources[f"p{number}-{instance}"]
        assert by_python == by_script, (ORDERS[number], instance)
    assert len(sources) == 2 * len(expected)


def test_a_late_event_merged_into_the_recent_copy_equals_the_scripted_merge(search: Any) -> None:
    engine = Engine(search.url, f"eq-{uuid.uuid4().hex[:8]}")
    first = [EVENTS["request"][0].fields, EVENTS["response"][0].fields]
    late = [EVENTS["feedback"][0].fields]
    document = merged({}, first, "realtime")
    [answer] = engine.bulk([{"create": {"_index": engine.index, "_id": "late"}}, document])
    overwrite = {
        "index": {
            "_index": engine.index,
            "_id": "late",
            "if_seq_no": answer["_seq_no"],
            "if_primary_term": answer["_primary_term"],
        }
    }
    lines = [overwrite, merged(document, late, "realtime")]
    for part in [*first, *late]:
        lines.append({"update": {"_index": engine.index, "_id": "scripted"}})
        lines.append(
            {
                "script": {"id": MERGE_SCRIPT_ID, "params": {"doc": part, "mode_hint": "realtime"}},
                "scripted_upsert": True,
                "upsert": {},
            }
        )
    engine.bulk(lines)
    sources = engine.sources()
    assert sources["late"] == sources["scripted"]
    assert sources["late"]["truth_label"] == "t:1" and sources["late"]["correct"] is True
