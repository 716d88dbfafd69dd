"""Pure logic of the indexer's sweeps: the queries they run on the index and what they write back.

Two things cannot be decided when an event arrives, only later, so the indexer sweeps the index periodically
(state lives in the index, so a restart loses nothing and a replay changes nothing):

1. **No response.** The executor logs a request before it calls the model and the response only when the call
   succeeded. A document whose request is older than `INDEXER_NO_RESPONSE_AFTER_S` and has no response
   (`outcome: pending`) gets `response_overdue: true`, and the merge script makes that `outcome: no_response`;
   a response arriving later repairs it to `ok` (or `error` when the response reports a Seldon FAILURE status).
2. **Feedback without the prediction's puid.** A feedback event whose request id matches no document leaves a
   document with feedback fields only (a placeholder). Once it is older than `INDEXER_FEEDBACK_JOIN_DELAY_S`
   (time for its request and response to arrive in any order), the sweep looks for predictions with the same
   fingerprint (`fingerprint.py`): same `request_data_hash` and `response_data_hash`, same deployment,
   namespace, predictor, node and instance, request time within `INDEXER_FEEDBACK_JOIN_WINDOW_S` of the
   feedback time, another request id. Exactly one prediction: the truth is merged into it (`feedback_join:
   fingerprint`, `feedback_request_id` = the feedback's own id) and the placeholder is deleted. None or
   several: the placeholder stays as an orphan with `orphan_reason` (`no_match`, `ambiguous` with
   `orphan_candidates`, or `no_fingerprint` when the feedback names no request and response).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from feedback.indexer.core import DocumentPart, mode_hint

PLACEHOLDER_FIELDS = (
    "request_id",
    "node",
    "instance",
    "deployment",
    "namespace",
    "predictor",
    "truth",
    "truth_index",
    "reward",
    "feedback_time",
    "feedback_time_us",
    "feedback_raw",
    "feedback_request_hash",
    "feedback_response_hash",
)
# What a fingerprint join carries from the placeholder into the prediction's document (the script derives the rest).
CARRIED_FIELDS = PLACEHOLDER_FIELDS[6:]


class JoinOutcome(StrEnum):
    JOINED = "joined"  # exactly one prediction matched: truth merged into it, placeholder deleted
    DUPLICATE = "duplicate"  # the prediction already holds this feedback (a replayed event): placeholder deleted
    NO_MATCH = "no_match"
    AMBIGUOUS = "ambiguous"
    NO_FINGERPRINT = "no_fingerprint"


def overdue_query(now_us: int, after_s: float, size: int) -> dict[str, Any]:
    """Documents with a request and no response (`outcome: pending`) whose request is older than `after_s`."""
    return {
        "size": size,
        "sort": [{"request_time_us": "asc"}],
        "_source": ["deployment"],
        "query": {
            "bool": {
                "filter": [
                    {"term": {"outcome": "pending"}},
                    {"range": {"request_time_us": {"lte": now_us - int(after_s * 1_000_000)}}},
                ]
            }
        },
    }


def overdue_part(hit: dict[str, Any], streaming_patterns: Iterable[str]) -> DocumentPart:
    source = hit.get("_source") or {}
    return DocumentPart(hit["_id"], {"response_overdue": True}, mode_hint(source.get("deployment"), streaming_patterns))


def placeholder_query(now_us: int, delay_s: float, size: int) -> dict[str, Any]:
    """Feedback-only documents (no request, no response, not yet an orphan) older than `delay_s`."""
    return {
        "size": size,
        "sort": [{"feedback_time_us": "asc"}],
        "_source": list(PLACEHOLDER_FIELDS),
        "query": {
            "bool": {
                "filter": [{"range": {"feedback_time_us": {"lte": now_us - int(delay_s * 1_000_000)}}}],
                "must_not": [
                    {"exists": {"field": "request_time"}},
                    {"exists": {"field": "response_time"}},
                    {"exists": {"field": "orphan_reason"}},
                ],
            }
        },
    }


@dataclass(frozen=True)
class Placeholder:
    doc_id: str
    source: dict[str, Any]

    @property
    def request_id(self) -> str:
        return str(self.source.get("request_id"))

    def carried(self) -> dict[str, Any]:
        return {name: self.source[name] for name in CARRIED_FIELDS if self.source.get(name) is not None}


def placeholder(hit: dict[str, Any]) -> Placeholder:
    return Placeholder(hit["_id"], dict(hit.get("_source") or {}))


def _term_or_missing(name: str, value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if value is None:
        return [], [{"exists": {"field": name}}]
    return [{"term": {name: value}}], []


def candidates_query(item: Placeholder, window_s: float) -> dict[str, Any] | None:
    """Predictions with the placeholder's fingerprint, one hit per request id (at most 2: 0, 1 or several), and
    the number of distinct request ids; None when the feedback carries no request and response to match."""
    source = item.source
    request_hash, response_hash = source.get("feedback_request_hash"), source.get("feedback_response_hash")
    feedback_us = source.get("feedback_time_us")
    if not request_hash or not response_hash or feedback_us is None:
        return None
    window_us = int(window_s * 1_000_000)
    filters: list[dict[str, Any]] = [
        {"term": {"request_data_hash": request_hash}},
        {"term": {"response_data_hash": response_hash}},
        {"term": {"node": source.get("node")}},
        {"term": {"instance": source.get("instance", 0)}},
        {"range": {"request_time_us": {"gte": int(feedback_us) - window_us, "lte": int(feedback_us) + window_us}}},
    ]
    must_not: list[dict[str, Any]] = [{"term": {"request_id": item.request_id}}]
    for name in ("deployment", "namespace", "predictor"):
        present, missing = _term_or_missing(name, source.get(name))
        filters += present
        must_not += missing
    return {
        "size": 2,
        "_source": ["request_id", "deployment", "feedback_request_id"],
        "collapse": {"field": "request_id"},
        "query": {"bool": {"filter": filters, "must_not": must_not}},
        "aggs": {"request_ids": {"cardinality": {"field": "request_id"}}},
    }


@dataclass
class Resolution:
    """What the sweep does for one placeholder: merge writes (never creating a document), then maybe a delete."""

    placeholder: Placeholder
    outcome: JoinOutcome
    writes: list[DocumentPart] = field(default_factory=list)
    delete: str | None = None


def resolve(item: Placeholder, answer: dict[str, Any] | None, streaming_patterns: Iterable[str]) -> Resolution:
    """Decide from the candidates search `answer` (None: the feedback had no fingerprint)."""
    patterns = tuple(streaming_patterns)
    hint = mode_hint(item.source.get("deployment"), patterns)
    if answer is None:
        orphan = DocumentPart(item.doc_id, _orphan("no_fingerprint"), hint)
        return Resolution(item, JoinOutcome.NO_FINGERPRINT, [orphan])
    hits = answer.get("hits", {}).get("hits", [])
    distinct = max(len(hits), int(answer.get("aggregations", {}).get("request_ids", {}).get("value", 0)))
    if distinct == 0:
        return Resolution(item, JoinOutcome.NO_MATCH, [DocumentPart(item.doc_id, _orphan("no_match", 0), hint)])
    if distinct > 1:
        orphan = _orphan("ambiguous", distinct)
        return Resolution(item, JoinOutcome.AMBIGUOUS, [DocumentPart(item.doc_id, orphan, hint)])
    target = hits[0]
    target_source = target.get("_source") or {}
    if target_source.get("feedback_request_id") == item.request_id:
        return Resolution(item, JoinOutcome.DUPLICATE, [], delete=item.doc_id)
    fields = {**item.carried(), "feedback_join": "fingerprint", "feedback_request_id": item.request_id}
    part = DocumentPart(target["_id"], fields, mode_hint(target_source.get("deployment"), patterns))
    return Resolution(item, JoinOutcome.JOINED, [part], delete=item.doc_id)


def _orphan(reason: str, candidates: int | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"orphan_reason": reason}
    if candidates is not None:
        fields["orphan_candidates"] = candidates
    return fields
