"""Main vs canary side by side on a real OpenSearch: documents of two predictors (as the executor's Ce-Endpoint names
them) under the indexer's template give exact per-predictor counts, outcomes, label mix, accuracy from ground
truth and latency percentiles.

What: one index of its own. Waits for: the refresh after the bulk write. Asserts: exact counts per predictor,
accuracy with its interval, documents outside the range or of another deployment ignored. Cleanup: none needed
(random index name on the session's server).
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from feedback.flowback.compare import compare

from tests.flowback_data import at, backend, document, index_documents

pytestmark = pytest.mark.integration


def test_each_predictor_gets_exact_counts_accuracy_and_latency(search: Any) -> None:
    index = f"flowback-{secrets.token_hex(4)}-feedback"
    docs = []
    for i in range(90):  # main: 90 requests, 60 with truth, 45 of them right
        doc = document(f"main-{i:03d}", i * 0.5, f"text {i}", (0 if i % 4 else 1) if i < 60 else None, predictor="main")
        if i < 60:
            doc["correct"] = i < 45
        doc["latency_ms"] = float(10 + i % 10)
        docs.append(doc)
    for i in range(30):  # canary: 30 requests, 20 with truth, 19 right, 2 errors
        doc = document(f"canary-{i:03d}", i, f"text {i}", 1 if i < 20 else None, predictor="canary", predicted_index=1)
        if i < 20:
            doc["correct"] = i != 0
        if i >= 28:
            doc["outcome"] = "error"
        doc["latency_ms"] = 20.0
        docs.append(doc)
    docs.append(document("late-000", 90, "outside the range", 1, predictor="canary"))
    docs.append(document("other-000", 5, "another deployment", 1, predictor="main", deployment="another"))
    index_documents(search.url, index, docs)

    result = compare(backend(search.url), index, "text-classifier", at(0), at(60))["predictors"]

    assert sorted(result) == ["canary", "main"]
    main, canary = result["main"], result["canary"]
    assert (main["requests"], canary["requests"]) == (90, 30)
    assert main["outcomes"] == {"ok": 90} and canary["outcomes"] == {"ok": 28, "error": 2}
    assert (main["errors"], canary["errors"]) == (0, 2)
    assert main["label_mix"] == {"t:0": 1.0} and canary["label_mix"] == {"t:1": 1.0}
    assert (main["accuracy"]["rows"], main["accuracy"]["correct"], main["accuracy"]["accuracy"]) == (60, 45, 0.75)
    assert (canary["accuracy"]["rows"], canary["accuracy"]["correct"]) == (20, 19)
    assert canary["accuracy"]["low"] < 0.95 < canary["accuracy"]["high"]
    assert canary["latency_ms"]["p50"] == 20.0 and 10.0 <= main["latency_ms"]["p50"] <= 19.0
