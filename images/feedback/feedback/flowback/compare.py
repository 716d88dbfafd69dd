"""Compare the predictors of one deployment side by side (main and canary) from the capture index.

    python -m feedback.flowback compare --deployment text-classifier --start T --end T

The executor names the predictor in `Ce-Endpoint`, the indexer stores it as `predictor`, so one aggregation per
predictor gives what a canary decision needs: requests, outcomes (ok, error, no_response, pending), the label mix
of the predictions, latency percentiles, and accuracy from the documents with ground truth with its Wilson
interval. Counts are exact (aggregations over every document of the range, not a sample).
"""

from __future__ import annotations

from typing import Any

from feedback.flowback.export import iso
from feedback.flowback.statistics import accuracy_interval
from feedback.indexer.search_io import SearchBackend

MAX_PREDICTORS = 20
PERCENTS = (50.0, 95.0, 99.0)


def compare_body(deployment: str, start: Any, end: Any) -> dict[str, Any]:
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {
            "bool": {
                "filter": [
                    {"term": {"deployment": deployment}},
                    {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
                    {"exists": {"field": "request_time"}},
                ]
            }
        },
        "aggs": {
            "predictors": {
                "terms": {"field": "predictor", "size": MAX_PREDICTORS, "order": {"_key": "asc"}},
                "aggs": {
                    "outcomes": {"terms": {"field": "outcome", "size": 10}},
                    "labels": {"terms": {"field": "predicted_label", "size": 50}},
                    "versions": {"terms": {"field": "model_version", "size": 10}},
                    "latency": {"percentiles": {"field": "latency_ms", "percents": list(PERCENTS)}},
                    "labelled": {
                        "filter": {"exists": {"field": "correct"}},
                        "aggs": {"correct": {"filter": {"term": {"correct": True}}}},
                    },
                },
            }
        },
    }


def _buckets(aggregation: dict[str, Any]) -> dict[str, int]:
    return {str(b["key"]): int(b["doc_count"]) for b in aggregation.get("buckets", [])}


def summarise(response: dict[str, Any], confidence: float) -> dict[str, Any]:
    """Per predictor: requests, outcomes, label mix (shares), latency percentiles (ms), accuracy with interval."""
    out: dict[str, Any] = {}
    for bucket in response.get("aggregations", {}).get("predictors", {}).get("buckets", []):
        requests = int(bucket["doc_count"])
        labels = _buckets(bucket["labels"])
        labelled = int(bucket["labelled"]["doc_count"])
        correct = int(bucket["labelled"]["correct"]["doc_count"])
        values = bucket["latency"].get("values", {})
        outcomes = _buckets(bucket["outcomes"])
        out[str(bucket["key"])] = {
            "requests": requests,
            "outcomes": outcomes,
            "errors": outcomes.get("error", 0) + outcomes.get("no_response", 0),
            "label_mix": {label: round(count / requests, 4) for label, count in sorted(labels.items())},
            "model_versions": _buckets(bucket["versions"]),
            "latency_ms": {
                f"p{percent:g}": (None if values.get(f"{percent}") is None else round(float(values[f"{percent}"]), 2))
                for percent in PERCENTS
            },
            "accuracy": accuracy_interval(labelled, correct, confidence),
        }
    return out


def compare(
    backend: SearchBackend, index: str, deployment: str, start: Any, end: Any, confidence: float = 0.95
) -> dict[str, Any]:
    return {
        "deployment": deployment,
        "time_range": {"start": iso(start), "end": iso(end)},
        "predictors": summarise(backend.search(index, compare_body(deployment, start, end)), confidence),
    }
