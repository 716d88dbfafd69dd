"""What Seldon Core v1's executor sends when it logs a request, a response or a feedback.

HTTP logging (to the collector) is a CloudEvent in binary mode: ``Ce-Type``, ``Ce-Id`` (a fresh UUID per event,
never a join key), ``Ce-Requestid`` (the request puid: the join key), ``Ce-Modelid`` (graph node),
``Ce-Inferenceservicename`` (SeldonDeployment), ``Ce-Namespace``, ``Ce-Endpoint`` (predictor), ``Ce-Protocol``,
``Ce-Source``, ``Ce-Time``. Direct Kafka logging (``LOGGER_KAFKA_BROKER``) carries the same values as plain
Kafka headers ``type``, ``requestid``, ``modelid``, ``inferenceservicename``, ``namespace``, ``endpoint``,
``protocol``, ``content-type``, with the raw payload as value and no key.
"""

from __future__ import annotations

import json
import math
import re
from enum import StrEnum
from typing import Any

import orjson


class EventKind(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"
    FEEDBACK = "feedback"


EVENT_TYPES: dict[str, EventKind] = {
    "io.seldon.serving.inference.request": EventKind.REQUEST,
    "io.seldon.serving.inference.response": EventKind.RESPONSE,
    "io.seldon.serving.feedback": EventKind.FEEDBACK,
}

# CloudEvent extension attributes the executor sets (lower-case, as the SDK names them).
ATTR_REQUEST_ID = "requestid"
ATTR_MODEL_ID = "modelid"
ATTR_DEPLOYMENT = "inferenceservicename"
ATTR_NAMESPACE = "namespace"
ATTR_PREDICTOR = "endpoint"
ATTR_PROTOCOL = "protocol"
# Added by the collector (not the executor): how the executor received the call, `rest` (JSON payloads: the REST
# API and the Kafka server type) or `grpc` (protobuf payloads, decoded to the same JSON shape by the collector).
ATTR_TRANSPORT = "transport"
TRANSPORT_REST = "rest"
TRANSPORT_GRPC = "grpc"

# Header names of the executor's direct Kafka logging.
DIRECT_TYPE_HEADER = "type"
DIRECT_HEADERS = (ATTR_REQUEST_ID, ATTR_MODEL_ID, ATTR_DEPLOYMENT, ATTR_NAMESPACE, ATTR_PREDICTOR, ATTR_PROTOCOL)

JSON_CONTENT_TYPES = ("application/json", "text/json")


def is_json_content_type(content_type: str | None) -> bool:
    """True for JSON media types (``application/json``, ``...+json``, with or without parameters); None counts
    as JSON because the executor's direct Kafka logging may omit the header for REST payloads."""
    if content_type is None or content_type.strip() == "":
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_CONTENT_TYPES or media.endswith("+json")


class NotStrictJson(ValueError):
    """Text Python's json module accepts but JSON (RFC 8259) and the search engines do not: NaN, Infinity,
    -Infinity, or a lone UTF-16 surrogate escape (e.g. \\ud800) that cannot be encoded as UTF-8."""


# Python parses integers of any length (up to 4300 digits, then ValueError); float() of one above 10**308 raises
# OverflowError, and the search engine refuses a whole bulk request with a number longer than 1000 characters.
MAX_INT_DIGITS = 100


def _bounded_int(token: str) -> int:
    if len(token.lstrip("-")) > MAX_INT_DIGITS:
        raise NotStrictJson(
            f"an integer of {len(token.lstrip('-'))} digits is too long (at most {MAX_INT_DIGITS}); send it as a string"
        )
    return int(token)


def _finite_float(token: str) -> float:
    number = float(token)
    if math.isinf(number):  # 1e400 parses to inf, which the client writes as Infinity
        raise NotStrictJson(f"the number {token[:40]} is out of the float range; send it as a string")
    return number


def _refuse_constant(token: str) -> Any:
    raise NotStrictJson(f"{token} is not a JSON number (RFC 8259); send null or a finite number instead")


# Seldon payloads nest a few levels; Python's json raises RecursionError near 1000 and the search engine's parser
# refuses a whole bulk request above 1000 (the document wraps the payload in a few more levels).
MAX_JSON_DEPTH = 200


def _deeper_than(value: Any, limit: int) -> bool:
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


# orjson turns integers above 64 bits into floats; such payloads (rare) take the exact standard-library path.
_LONG_DIGIT_RUN = re.compile(rb"\d{19}")


def loads_json(data: str | bytes) -> Any:
    """Parse strict JSON: refuses NaN, Infinity, huge integers, lone surrogates and deep nesting. The search engine
    rejects a whole bulk request holding a NaN, a 1000-digit number or deep nesting, the client cannot even encode
    a lone surrogate, and recursion or overflow errors crash, so such a payload must be refused at the door
    (collector) or dead-lettered (indexer). Bytes must be UTF-8 (else UnicodeDecodeError).

    orjson parses (several times faster than `json`); what it refuses, or numbers it would round, go through the
    standard library with the checks above, which also says precisely what is wrong."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _LONG_DIGIT_RUN.search(raw) is None:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard library below finds the precise reason
        else:
            if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
                raise NotStrictJson(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels; flatten the payload")
            return value
    return _loads_strict(data if isinstance(data, str) else data.decode("utf-8"))


def _loads_strict(text: str) -> Any:
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_finite_float)
    except RecursionError:
        raise NotStrictJson(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels; flatten the payload") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
        raise NotStrictJson(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels; flatten the payload")
    if "\\ud" in text or "\\uD" in text:  # only \\u escapes can produce a lone surrogate
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NotStrictJson(
                "a \\u escape encodes a lone UTF-16 surrogate, which is not Unicode text; "
                "escape characters outside the BMP as surrogate pairs"
            ) from exc
    return value
