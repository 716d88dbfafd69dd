"""Field-by-field comparison of what an executor sent (or answered) with what the real one did.

Every difference is returned as one readable line, so a test asserts `problems == []` and its failure lists them
all. What may differ, and only that:
- values made fresh per event or run: `Ce-Id` (a UUID), `Ce-Time` (RFC 3339 nanoseconds), the trace context
  (`Ce-Traceparent`, `Traceparent`: W3C, one trace id for both), a generated puid (a UUID v4), `Date`;
- ports: in `Host` and `Ce-Source` (`http://127.0.0.1:<port>/`);
- where the model's timing metric changes the body: its value, and the `Content-Length` that follows from it;
- the model's own version (`1.0.0+<12 hex>` in `meta.tags.model_version` and `meta.requestPath`): a hash of the
  classifier's training inputs, so any change to its training code gives a new one; the executor passes it through
  and it has the same length, so nothing else moves with it.
Everything else (header names, their order, the other values, paths, methods, request bodies byte for byte,
response bodies as JSON) must be the same.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$")
HTTP_DATE = re.compile(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")
LOCAL_URL = re.compile(r"^http://(127\.0\.0\.1|):\d+/$")
LOCAL_HOST = re.compile(r"^127\.0\.0\.1:\d+$")
TIMING_METRICS = frozenset({"text_classifier_predict_seconds"})
MODEL_VERSION = re.compile(r"\b\d+\.\d+\.\d+\+[0-9a-f]{12}\b")


def mask_timing(value: Any, masked_metrics: frozenset[str]) -> Any:
    """`value` with the values of the named metrics (in meta.metrics) and the model's version replaced by markers."""
    if isinstance(value, str):
        return MODEL_VERSION.sub("<model-version>", value)
    if isinstance(value, dict):
        out = {key: mask_timing(item, masked_metrics) for key, item in value.items()}
        if out.get("key") in masked_metrics and "value" in out:
            out["value"] = "<timing>"
        return out
    if isinstance(value, list):
        return [mask_timing(item, masked_metrics) for item in value]
    return value


def close_enough(got: Any, want: Any, rel: float) -> bool:
    """Equal JSON, floats within `rel` (the recording's machine computed the last digits of the probabilities
    with another BLAS: 0.5465233474325003 there, 0.5465233474324986 here)."""
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, float) or isinstance(got, float):
        return isinstance(got, int | float) and isinstance(want, int | float) and math.isclose(got, want, rel_tol=rel)
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(close_enough(got[k], want[k], rel) for k in want)
        )
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(close_enough(g, w, rel) for g, w in zip(got, want, strict=True))
        )
    return bool(got == want) and type(got) is type(want)


def json_problems(
    actual: bytes, recorded: bytes, where: str, masked: Iterable[str] = TIMING_METRICS, rel: float = 1e-9
) -> list[str]:
    """Both bodies parse as JSON and are equal once the timing metrics are masked (floats within `rel`)."""
    try:
        got, want = json.loads(actual), json.loads(recorded)
    except ValueError as exc:
        return [f"{where}: not JSON ({exc}): {actual[:200]!r}"]
    mask = frozenset(masked)
    if not close_enough(mask_timing(got, mask), mask_timing(want, mask), rel):
        return [f"{where}: body {mask_timing(got, mask)} != recorded {mask_timing(want, mask)}"]
    return []


def has_timing(body: bytes) -> bool:
    return any(name.encode() in body for name in TIMING_METRICS)


def header_problems(
    actual: Sequence[tuple[str, str]],
    recorded: Sequence[tuple[str, str]],
    where: str,
    *,
    puid: str | None = None,
    generated_puid: bool = False,
    body_length_varies: bool = False,
    skip: Iterable[str] = (),
) -> list[str]:
    """Names in the same order, values equal except the fresh ones, ports and (if `body_length_varies`)
    Content-Length. `puid`: the value Ce-Requestid / Seldon-Puid must have; `generated_puid`: it is a fresh UUID."""
    skipped = {name.lower() for name in skip}
    got = [(k, v) for k, v in actual if k.lower() not in skipped]
    want = [(k, v) for k, v in recorded if k.lower() not in skipped]
    problems = []
    if [k for k, _ in got] != [k for k, _ in want]:
        return [f"{where}: header names {[k for k, _ in got]} != recorded {[k for k, _ in want]}"]
    traces = set()
    for (name, value), (_, recorded_value) in zip(got, want, strict=True):
        lower = name.lower()
        if lower in ("ce-requestid", "seldon-puid"):
            if puid is not None and value != puid:
                problems.append(f"{where}: {name} {value!r}, expected {puid!r}")
            elif puid is None and generated_puid and not UUID4.match(value):
                problems.append(f"{where}: {name} {value!r} is not a fresh UUID v4")
            elif puid is None and not generated_puid and value != recorded_value:
                problems.append(f"{where}: {name} {value!r} != recorded {recorded_value!r}")
        elif lower == "ce-id":
            if not UUID4.match(value):
                problems.append(f"{where}: Ce-Id {value!r} is not a UUID v4")
        elif lower == "ce-time":
            if not CE_TIME.match(value):
                problems.append(f"{where}: Ce-Time {value!r} is not RFC 3339 UTC")
        elif lower in ("traceparent", "ce-traceparent"):
            match = TRACEPARENT.match(value)
            if match is None:
                problems.append(f"{where}: {name} {value!r} is not W3C trace context")
            else:
                traces.add(match[1])
        elif lower == "date":
            if not HTTP_DATE.match(value):
                problems.append(f"{where}: Date {value!r} is not an HTTP date")
        elif lower == "host":
            if not LOCAL_HOST.match(value):
                problems.append(f"{where}: Host {value!r}")
        elif lower == "ce-source":
            if not LOCAL_URL.match(value) or LOCAL_URL.match(recorded_value) is None:
                problems.append(f"{where}: Ce-Source {value!r} vs recorded {recorded_value!r}")
            elif value.split(":")[1] != recorded_value.split(":")[1]:
                problems.append(f"{where}: Ce-Source host {value!r} vs recorded {recorded_value!r}")
        elif lower == "content-length" and body_length_varies:
            continue
        elif value != recorded_value:
            problems.append(f"{where}: {name} {value!r} != recorded {recorded_value!r}")
    if len(traces) > 1:
        problems.append(f"{where}: Ce-Traceparent and Traceparent carry different trace ids {sorted(traces)}")
    return problems
