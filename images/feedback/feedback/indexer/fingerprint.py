"""Fingerprints of Seldon messages: how a feedback without the prediction's puid finds its prediction.

Seldon's own `SeldonClient.feedback` sends no `Seldon-Puid`, so the executor logs that feedback under a fresh
id. Its body still holds the request and the response the client got, so the indexer stores, per document:

    request_data_hash   = fingerprint(request payload)           (from the request event)
    response_data_hash  = fingerprint(response payload)          (from the response event)
    feedback_request_hash, feedback_response_hash = fingerprint(feedback.request), fingerprint(feedback.response)

fingerprint(message) = SHA-256 (hex) of the canonical JSON of the message's data part, where
  - the data part is the message without `meta` and `status` (Seldon protocol: `data`, `strData`, `jsonData`,
    `binData` or `customData`; other protocols: their whole body minus those two keys), so timings, metrics,
    tags and the puid, which differ between the logged message and what a client sends back, do not count;
  - canonical JSON = keys sorted, no whitespace, UTF-8 (not ASCII-escaped), and every number written as the
    float it is (`1`, `1.0` and `1e0` are one number: JSON from REST clients and protobuf doubles from gRPC
    differ only there), integral values without a fraction.
Both sides go through the same (deterministic) redaction first, so redacted payloads still match.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

EXCLUDED_KEYS = ("meta", "status")
EXACT_INTEGERS = 2**53


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number) and number.is_integer() and abs(number) < EXACT_INTEGERS:
            return int(number)
        return number
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return str(value)


def data_part(message: Any) -> Any:
    """The message without `meta` and `status` (a non-object message is its own data part)."""
    if isinstance(message, dict):
        return {key: value for key, value in message.items() if key not in EXCLUDED_KEYS}
    return message


def canonical_json(value: Any) -> str:
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(message: Any) -> str | None:
    """SHA-256 hex of the canonical data part; None when there is nothing to fingerprint (no message, or only
    meta/status)."""
    part = data_part(message)
    if part is None or part == {}:
        return None
    return hashlib.sha256(canonical_json(part).encode("utf-8")).hexdigest()
