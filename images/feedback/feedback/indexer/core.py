"""Pure logic of the indexer: decode a capture message (collector or direct executor format), turn it into
partial documents (one per request id, graph node and instance), and build idempotent bulk update actions.

No Kafka or search client here: inputs are headers, bytes and numbers; outputs are dicts.

Merge rule. Each event writes only the fields it knows (the request: input text, batch tags, request time; the
response: class names, probabilities, prediction, response time; the feedback: truth and reward). Fields that
depend on more than one event (mode, latency, timestamp, truth label, correctness) are recomputed by a painless
script from the stored fields after every merge, so the final document is the same for any order and any
number of repeats of the same events.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from feedback.indexer.fingerprint import fingerprint
from feedback.redaction import Redactor
from feedback.seldon import (
    ATTR_DEPLOYMENT,
    ATTR_MODEL_ID,
    ATTR_NAMESPACE,
    ATTR_PREDICTOR,
    ATTR_PROTOCOL,
    ATTR_REQUEST_ID,
    ATTR_TRANSPORT,
    DIRECT_TYPE_HEADER,
    EVENT_TYPES,
    TRANSPORT_GRPC,
    TRANSPORT_REST,
    EventKind,
    NotStrictJson,
    is_json_content_type,
    loads_json,
)
from feedback.seldon_protos import InvalidProtobuf, SeldonProtos, is_protobuf_content_type

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ID_BYTES = 400
MAX_TEXT_CHARS = 32_766 // 4  # a keyword/text term must stay below Lucene's 32 766-byte limit
DEFAULT_MAX_INSTANCES = 1000  # documents one message may become (INDEXER_MAX_INSTANCES)


class PoisonMessage(Exception):
    """A message that can never be indexed; `reason` is a short label (metric, dead-letter header)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CaptureEvent:
    kind: EventKind
    request_id: str
    node: str
    deployment: str | None
    namespace: str | None
    predictor: str | None
    protocol: str | None
    event_time_us: int  # microseconds since the epoch (0 when unknown)
    payload: Any
    capture_format: str  # "cloudevent" (collector) or "direct" (executor's LOGGER_KAFKA_BROKER)
    transport: str = TRANSPORT_REST  # "rest" (JSON payload) or "grpc" (protobuf payload, decoded)


# ---------------------------------------------------------------------------------------------- decoding


def _header_dict(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, bytes]:
    result: dict[str, bytes] = {}
    for name, value in headers or ():
        result.setdefault(name.lower(), value or b"")
    return result


def _text(headers: dict[str, bytes], name: str) -> str | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PoisonMessage("invalid_header", f"header {name!r} is not UTF-8") from None
    return value or None


def _parse_payload(
    value: bytes | None,
    content_type: str | None,
    redactor: Redactor | None,
    kind: EventKind,
    protos: SeldonProtos | None,
) -> tuple[Any, str]:
    """The payload as JSON (decoded from protobuf for gRPC traffic), redacted, and its transport."""
    grpc = is_protobuf_content_type(content_type)
    if not grpc and not is_json_content_type(content_type):
        raise PoisonMessage(
            "unsupported_content_type", f"content type {content_type!r} is neither JSON nor Seldon protobuf"
        )
    if not value:
        raise PoisonMessage("empty_payload", "the message has no payload")
    if grpc:
        if protos is None:
            raise PoisonMessage("unsupported_content_type", "no Seldon protobuf definitions loaded to decode it")
        try:
            payload = protos.decode(kind, value)
        except InvalidProtobuf as exc:
            raise PoisonMessage("invalid_protobuf", str(exc)) from None
        if redactor is not None and redactor.active:
            payload = redactor.redact(payload)
        return payload, TRANSPORT_GRPC
    try:
        payload = loads_json(value)
    except UnicodeDecodeError as exc:
        raise PoisonMessage("not_utf8", f"payload is not UTF-8 (byte {exc.start})") from None
    except NotStrictJson as exc:
        raise PoisonMessage("invalid_json", f"payload is not JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PoisonMessage("invalid_json", f"payload is not JSON ({exc.msg} at char {exc.pos})") from None
    if redactor is not None and redactor.active:
        payload = redactor.redact(payload)
    return payload, TRANSPORT_REST


def _kind(event_type: str | None) -> EventKind:
    if not event_type:
        raise PoisonMessage("missing_type", "no event type header (expected ce_type or type)")
    kind = EVENT_TYPES.get(event_type)
    if kind is None:
        raise PoisonMessage("unknown_type", f"unknown event type {event_type!r}")
    return kind


def _time_us(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)  # exact, no float rounding


def iso_time(time_us: int) -> str:
    """RFC 3339 UTC with microseconds, e.g. 2024-05-01T12:00:00.100000Z (what date fields parse exactly)."""
    return datetime.fromtimestamp(time_us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decode_message(
    headers: Sequence[tuple[str, bytes | None]] | None,
    value: bytes | None,
    kafka_timestamp_ms: int | None,
    redactor: Redactor | None = None,
    protos: SeldonProtos | None = None,
) -> CaptureEvent:
    """Decode either capture format, JSON or Seldon protobuf payloads (`protos` decodes the latter). Raises
    PoisonMessage when the message can never be indexed. `redactor` applies to the payload (values and keys)
    and to the selected headers, the request id included (INDEXER_REDACT_*)."""
    if redactor is not None and redactor.text_active and redactor.headers and headers:
        headers = redactor.redact_kafka_headers(headers)  # the request id (join key) and the selected headers
    lowered = _header_dict(headers)
    if "ce_type" in lowered or "ce_specversion" in lowered:
        return _decode_cloudevent(lowered, value, redactor, protos)
    if DIRECT_TYPE_HEADER in lowered:
        return _decode_direct(lowered, value, kafka_timestamp_ms, redactor, protos)
    raise PoisonMessage(
        "missing_type", "no event type header (expected ce_type from the collector or type from Seldon)"
    )


def _require_request_id(request_id: str | None) -> str:
    if not request_id:
        raise PoisonMessage("missing_request_id", "no request id (ce_requestid or requestid header)")
    return request_id


def _cloudevent_time(headers: dict[str, bytes]) -> int:
    """`ce_time` (RFC 3339) in microseconds since the epoch; 0 when absent."""
    text = _text(headers, "ce_time")
    if text is None:
        return 0
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except ValueError:
        raise PoisonMessage("invalid_cloudevent", f"ce_time {text[:60]!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return _time_us(value)


def _decode_cloudevent(
    headers: dict[str, bytes], value: bytes | None, redactor: Redactor | None, protos: SeldonProtos | None
) -> CaptureEvent:
    """Kafka binary mode read straight from the `ce_*` headers (CloudEvents 1.0: `ce_specversion`, `ce_id`,
    `ce_source` and `ce_type` required; extensions as `ce_<name>`): no SDK parse and re-encode per message."""
    kind = _kind(_text(headers, "ce_type"))
    specversion = _text(headers, "ce_specversion")
    if specversion != "1.0":
        raise PoisonMessage("invalid_cloudevent", f"ce_specversion is {specversion!r}, expected '1.0'")
    missing = [name for name in ("ce_id", "ce_source") if _text(headers, name) is None]
    if missing:
        raise PoisonMessage("invalid_cloudevent", f"missing required CloudEvent attribute(s): {', '.join(missing)}")
    request_id = _require_request_id(_text(headers, "ce_" + ATTR_REQUEST_ID))
    time_us = _cloudevent_time(headers)
    content_type = _text(headers, "content-type") or _text(headers, "ce_datacontenttype")
    payload, transport = _parse_payload(value, content_type, redactor, kind, protos)
    declared = _text(headers, "ce_" + ATTR_TRANSPORT)  # set by the collector: gRPC payloads arrive decoded, as JSON
    return CaptureEvent(
        kind=kind,
        request_id=request_id,
        node=_text(headers, "ce_" + ATTR_MODEL_ID) or "unknown",
        deployment=_text(headers, "ce_" + ATTR_DEPLOYMENT),
        namespace=_text(headers, "ce_" + ATTR_NAMESPACE),
        predictor=_text(headers, "ce_" + ATTR_PREDICTOR),
        protocol=_text(headers, "ce_" + ATTR_PROTOCOL),
        event_time_us=time_us,
        payload=payload,
        capture_format="cloudevent",
        transport=declared if declared in (TRANSPORT_REST, TRANSPORT_GRPC) else transport,
    )


def _decode_direct(
    headers: dict[str, bytes],
    value: bytes | None,
    kafka_timestamp_ms: int | None,
    redactor: Redactor | None,
    protos: SeldonProtos | None,
) -> CaptureEvent:
    kind = _kind(_text(headers, DIRECT_TYPE_HEADER))
    request_id = _require_request_id(_text(headers, ATTR_REQUEST_ID))
    payload, transport = _parse_payload(value, _text(headers, "content-type"), redactor, kind, protos)
    return CaptureEvent(
        kind=kind,
        request_id=request_id,
        node=_text(headers, ATTR_MODEL_ID) or "unknown",
        deployment=_text(headers, ATTR_DEPLOYMENT),
        namespace=_text(headers, ATTR_NAMESPACE),
        predictor=_text(headers, ATTR_PREDICTOR),
        protocol=_text(headers, ATTR_PROTOCOL),
        event_time_us=kafka_timestamp_ms * 1000 if kafka_timestamp_ms and kafka_timestamp_ms > 0 else 0,
        payload=payload,
        capture_format="direct",
        transport=transport,
    )


# ------------------------------------------------------------------------------- payload interpretation


def _reshape(values: list[Any], shape: list[Any]) -> list[Any]:
    if not isinstance(shape, list) or len(shape) < 2 or not all(isinstance(dim, int) and dim > 0 for dim in shape):
        return list(values)
    rows, width = shape[0], math.prod(shape[1:])
    if rows * width != len(values):  # a shape the values do not fill (e.g. [10**9, 1]) must not make 10**9 rows
        return list(values)
    return [values[i * width : (i + 1) * width] for i in range(rows)]


def _seldon_rows(message: Any) -> tuple[list[Any], list[str] | None]:
    """Instances (rows) and column names of a Seldon, TensorFlow or V2 protocol message."""
    if not isinstance(message, dict):
        return ([message] if message is not None else []), None
    data = message.get("data")
    if isinstance(data, dict):
        names = data.get("names")
        names = [str(name) for name in names] if isinstance(names, list) else None
        if isinstance(data.get("ndarray"), list):
            return list(data["ndarray"]), names
        tensor = data.get("tensor")
        if isinstance(tensor, dict) and isinstance(tensor.get("values"), list):
            return _reshape(tensor["values"], tensor.get("shape") or []), names
        return [], names
    if "strData" in message:
        return [message["strData"]], None
    if "jsonData" in message:
        return [message["jsonData"]], None
    for key in ("instances", "predictions"):
        if isinstance(message.get(key), list):
            return list(message[key]), None
    for key in ("inputs", "outputs"):
        tensors = message.get(key)
        if isinstance(tensors, list) and tensors and isinstance(tensors[0], dict):
            first = tensors[0]
            values = first.get("data") if isinstance(first.get("data"), list) else []
            return _reshape(values, first.get("shape") or []), None
    return [], None


def _cut_tensor(tensor: dict[str, Any], values_key: str, instance: int, rows: int) -> dict[str, Any] | None:
    """A Seldon tensor (`values`) or V2 tensor (`data`) of `rows` rows cut to row `instance`; None if not cuttable."""
    values, shape = tensor.get(values_key), tensor.get("shape") or []
    if not isinstance(values, list) or not isinstance(shape, list) or len(shape) < 1 or shape[0] != rows:
        return None
    width = len(values) // rows
    return {**tensor, "shape": [1, *shape[1:]], values_key: values[instance * width : (instance + 1) * width]}


def _without_meta(message: dict[str, Any], instance: int) -> dict[str, Any]:
    """`meta` (tags, metrics, request path) is the same for every row: stored once, with instance 0."""
    return message if instance == 0 or "meta" not in message else {k: v for k, v in message.items() if k != "meta"}


def instance_payload(message: Any, instance: int, rows: int) -> Any:
    """The raw payload of one instance: a multi-row Seldon ndarray/tensor, TensorFlow or V2 message cut down to its
    row `instance` (names kept, `meta` only with instance 0), so a batch of n rows stores n rows in total, not n
    times n. A multi-row payload that cannot be cut is stored whole with instance 0 only (`{"stored_with": 0}`)."""
    if rows <= 1 or not isinstance(message, dict):
        return message
    data = message.get("data")
    if isinstance(data, dict):
        if isinstance(data.get("ndarray"), list) and len(data["ndarray"]) == rows:
            return _without_meta({**message, "data": {**data, "ndarray": [data["ndarray"][instance]]}}, instance)
        tensor = data.get("tensor")
        if isinstance(tensor, dict) and (cut := _cut_tensor(tensor, "values", instance, rows)) is not None:
            return _without_meta({**message, "data": {**data, "tensor": cut}}, instance)
    for key in ("instances", "predictions"):
        if isinstance(message.get(key), list) and len(message[key]) == rows:
            return _without_meta({**message, key: [message[key][instance]]}, instance)
    for key in ("inputs", "outputs"):
        tensors = message.get(key)
        if isinstance(tensors, list) and tensors and all(isinstance(item, dict) for item in tensors):
            cuts = [_cut_tensor(item, "data", instance, rows) for item in tensors]
            if all(cut is not None for cut in cuts):
                return _without_meta({**message, key: cuts}, instance)
    return message if instance == 0 else {"stored_with": 0}


def feedback_payload(message: Any, instance: int, rows: int) -> Any:
    """A feedback's raw payload for one instance: its truth, request and response each cut to that row."""
    if rows <= 1 or not isinstance(message, dict):
        return message
    cut = {key: value for key, value in message.items() if key not in ("truth", "request", "response")}
    for key in ("truth", "request", "response"):
        if message.get(key) is not None:
            cut[key] = instance_payload(message[key], instance, rows)
    return cut


def _row_text(row: Any) -> str | None:
    if isinstance(row, str):
        return row[:MAX_TEXT_CHARS]
    if isinstance(row, list) and row and all(isinstance(item, str) for item in row):
        return " ".join(row)[:MAX_TEXT_CHARS]
    if isinstance(row, dict):
        for key in ("text", "input", "content"):
            if isinstance(row.get(key), str):
                return row[key][:MAX_TEXT_CHARS]
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _prediction(row: Any, names: list[str] | None) -> dict[str, Any]:
    if isinstance(row, list) and len(row) == 1 and not isinstance(row[0], list):
        row = row[0] if not (names and len(names) == 1) else row
    if isinstance(row, list) and row:
        numbers = [_number(item) for item in row]
        if all(number is not None for number in numbers):
            index = max(range(len(numbers)), key=lambda i: numbers[i])  # type: ignore[arg-type,return-value]
            fields: dict[str, Any] = {
                "probabilities": numbers,
                "predicted_index": index,
                "predicted_score": numbers[index],
                "predicted_label": names[index] if names and len(names) == len(numbers) else str(index),
            }
            if names:
                fields["class_names"] = names
            return fields
        return {}
    if isinstance(row, str):
        return {"predicted_label": row[:1024]}
    number = _number(row)
    if number is not None:
        return {"predicted_score": number}
    return {}


def _truth(row: Any) -> dict[str, Any]:
    if isinstance(row, list) and len(row) == 1:
        row = row[0]
    if isinstance(row, list) and row:
        numbers = [_number(item) for item in row]
        if all(number is not None for number in numbers):
            index = max(range(len(numbers)), key=lambda i: numbers[i])  # type: ignore[arg-type,return-value]
            return {"truth": str(index), "truth_index": index}
        return {"truth": json.dumps(row)[:1024]}
    if isinstance(row, str):
        return {"truth": row[:1024]}
    number = _number(row)
    if number is not None:
        if number.is_integer():
            return {"truth": str(int(number)), "truth_index": int(number)}
        return {"truth": repr(number)}
    return {}


def _tags(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        return {}
    meta = message.get("meta")
    tags = meta.get("tags") if isinstance(meta, dict) else None
    if not isinstance(tags, dict):
        return {}
    fields: dict[str, Any] = {}
    version = tags.get("model_version")  # the Seldon wrapper's tags(): our classifier reports its version there
    if isinstance(version, (str, int, float)) and not isinstance(version, bool) and str(version).strip():
        fields["model_version"] = str(version).strip()[:256]
    if isinstance(tags.get("tags"), dict) and "batch_id" not in tags:  # Seldon <= 1.9 nested the batch tags
        tags = tags["tags"]
    if tags.get("batch_id") is not None:
        fields["batch_id"] = str(tags["batch_id"])
    if tags.get("batch_instance_id") is not None:
        fields["batch_instance_id"] = str(tags["batch_instance_id"])
    index = _number(tags.get("batch_index"))
    if index is not None:
        fields["batch_index"] = int(index)  # Seldon <= 1.9 sent it as a float
    return fields


# --------------------------------------------------------------------------------------- documents


@dataclass
class DocumentPart:
    """Fields one event contributes to one document, plus the deployment-derived mode hint."""

    doc_id: str
    fields: dict[str, Any]
    mode_hint: str
    sources: list[int] = field(default_factory=list)  # positions of the messages that contributed
    kind: EventKind | None = None  # the event kind it came from (None for merges made by the sweeps)


def _escape_id_part(value: str) -> str:
    return value.replace("%", "%25").replace(":", "%3A")


def document_id(request_id: str, node: str, instance: int) -> str:
    """Deterministic, unambiguous id: request id, graph node and instance index joined by ':' with '%' and ':'
    percent-escaped inside each part (so `a:b` + `c` and `a` + `b:c` differ; ids without either are unchanged),
    hashed when too long for an _id."""
    doc_id = f"{_escape_id_part(request_id)}:{_escape_id_part(node)}:{instance}"
    if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        return "sha256-" + hashlib.sha256(doc_id.encode("utf-8")).hexdigest()
    return doc_id


def mode_hint(deployment: str | None, streaming_deployments: Iterable[str]) -> str:
    """`streaming` when the SeldonDeployment is one of the configured streaming deployments (exact names), else
    `realtime`. Batch is decided later, from the batch tags, by the merge script."""
    if deployment and deployment in set(streaming_deployments):
        return "streaming"
    return "realtime"


def _common(event: CaptureEvent, instance: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": event.request_id,
        "instance": instance,
        "node": event.node,
        "transport": event.transport,
    }
    for name, value in (
        ("deployment", event.deployment),
        ("namespace", event.namespace),
        ("predictor", event.predictor),
        ("protocol", event.protocol),
    ):
        if value is not None:
            fields[name] = value
    return fields


def _times(kind: str, time_us: int) -> dict[str, Any]:
    if time_us <= 0:
        return {}
    return {f"{kind}_time": iso_time(time_us), f"{kind}_time_us": time_us}


def response_error(message: Any) -> str | None:
    """The error a Seldon response reports (`status.status` FAILURE), e.g. `MICROSERVICE_BAD_DATA (400): ...`."""
    if not isinstance(message, dict) or not isinstance(message.get("status"), dict):
        return None
    status = message["status"]
    if status.get("status") not in ("FAILURE", 1):
        return None
    reason = str(status.get("reason") or "FAILURE")
    code = status.get("code")
    text = f"{reason} ({code})" if code not in (None, 0, "") else reason
    info = status.get("info")
    return (f"{text}: {info}" if info else text)[:1024]


def _hashes(**messages: Any) -> dict[str, str]:
    return {name: value for name, message in messages.items() if (value := fingerprint(message)) is not None}


def _check_fan_out(rows: int, max_instances: int) -> None:
    if rows > max_instances:
        raise PoisonMessage(
            "too_many_instances",
            f"the payload has {rows} instances (rows), more than INDEXER_MAX_INSTANCES={max_instances} documents one "
            "message may become; split such requests, or raise INDEXER_MAX_INSTANCES (and the indexer's memory)",
        )


def _per_instance(event: CaptureEvent, max_instances: int) -> list[dict[str, Any]]:
    payload = event.payload
    if event.kind is EventKind.REQUEST:
        rows, _ = _seldon_rows(payload)
        _check_fan_out(len(rows), max_instances)
        tags = _tags(payload)
        shared = _hashes(request_data_hash=payload)
        parts = []
        for row in rows or [None]:
            fields = {**tags, **shared}
            text = _row_text(row)
            if text is not None:
                fields["input_text"] = text
            parts.append(fields)
        for instance, fields in enumerate(parts):
            fields.update(_times("request", event.event_time_us))
            fields["request_raw"] = instance_payload(payload, instance, len(parts))
        return parts
    if event.kind is EventKind.RESPONSE:
        rows, names = _seldon_rows(payload)
        _check_fan_out(len(rows), max_instances)
        tags = _tags(payload)
        shared = _hashes(response_data_hash=payload)
        error = response_error(payload)
        if error is not None:
            shared["error"] = error
        parts = []
        for instance, row in enumerate(rows or [None]):
            fields = {**tags, **shared}
            fields.update(_prediction(row, names))
            fields.update(_times("response", event.event_time_us))
            fields["response_raw"] = instance_payload(payload, instance, len(rows))
            parts.append(fields)
        return parts
    # feedback: {"request": ..., "response": ..., "truth": ..., "reward": ...}
    message = payload if isinstance(payload, dict) else {}
    truth_rows, _ = _seldon_rows(message.get("truth")) if message.get("truth") is not None else ([], None)
    response_rows, _ = _seldon_rows(message.get("response")) if message.get("response") is not None else ([], None)
    count = len(truth_rows) or len(response_rows) or 1
    _check_fan_out(count, max_instances)
    reward = _number(message.get("reward"))
    hashes = _hashes(feedback_request_hash=message.get("request"), feedback_response_hash=message.get("response"))
    parts = []
    for index in range(count):
        fields = _truth(truth_rows[index]) if index < len(truth_rows) else {}
        fields.update(hashes)
        if reward is not None:
            fields["reward"] = reward
        fields.update(_times("feedback", event.event_time_us))
        fields["feedback_raw"] = feedback_payload(payload, index, count)
        parts.append(fields)
    return parts


def document_parts(
    event: CaptureEvent, streaming_deployments: Iterable[str], max_instances: int = DEFAULT_MAX_INSTANCES
) -> list[DocumentPart]:
    """One part per instance (row) of the event; more than `max_instances` rows is poison (`too_many_instances`):
    one 391 KiB request of 200,000 rows once became 200,000 bulk items and ran the indexer out of memory."""
    hint = mode_hint(event.deployment, streaming_deployments)
    parts = []
    for instance, fields in enumerate(_per_instance(event, max_instances)):
        merged = _common(event, instance)
        merged.update(fields)
        doc_id = document_id(event.request_id, event.node, instance)
        parts.append(DocumentPart(doc_id, merged, hint, kind=event.kind))
    return parts


def coalesce(parts: Iterable[tuple[int, DocumentPart]]) -> list[DocumentPart]:
    """Merge the parts of one poll batch that target the same document (in message order), remembering which
    messages contributed, so that one bulk item stands for all of them."""
    merged: dict[str, DocumentPart] = {}
    for position, part in parts:
        current = merged.get(part.doc_id)
        if current is None:
            current = merged[part.doc_id] = DocumentPart(part.doc_id, {}, part.mode_hint)
        current.fields.update(part.fields)
        if position not in current.sources:
            current.sources.append(position)
    return list(merged.values())


# Runs for both insert (scripted upsert from {}) and update: merge the partial doc, then derive fields.
MERGE_SCRIPT = """
for (entry in params.doc.entrySet()) { ctx._source[entry.getKey()] = entry.getValue(); }
def s = ctx._source;
s.mode = s.batch_id != null ? 'batch' : params.mode_hint;
if (s.request_time_us != null && s.response_time_us != null) {
  s.latency_ms = (((Number) s.response_time_us).longValue() - ((Number) s.request_time_us).longValue()) / 1000.0;
}
if (s.request_time != null) { s['@timestamp'] = s.request_time; }
else if (s.response_time != null) { s['@timestamp'] = s.response_time; }
else if (s.feedback_time != null) { s['@timestamp'] = s.feedback_time; }
if (s.truth_index != null && s.class_names != null) {
  int t = ((Number) s.truth_index).intValue();
  if (t >= 0 && t < s.class_names.size()) { s.truth_label = s.class_names.get(t); }
}
if (s.truth_index != null && s.predicted_index != null) {
  s.correct = ((Number) s.truth_index).longValue() == ((Number) s.predicted_index).longValue();
}
if (s.response_raw != null) { s.outcome = s.error != null ? 'error' : 'ok'; s.remove('response_overdue'); }
else if (s.request_raw != null) { s.outcome = s.response_overdue == true ? 'no_response' : 'pending'; }
if (s.request_raw != null || s.response_raw != null) { s.remove('orphan_reason'); s.remove('orphan_candidates'); }
if (s.feedback_raw != null && s.request_raw != null && s.feedback_join == null) { s.feedback_join = 'puid'; }
""".strip()


# Stored once by the indexer (PUT _scripts/<id>) so that bulk actions carry only the id and the parameters; the id
# changes with the source, so indexers of different versions never overwrite each other's script.
MERGE_SCRIPT_ID = "seldon-feedback-merge-" + hashlib.sha256(MERGE_SCRIPT.encode()).hexdigest()[:12]


def stored_script() -> dict[str, Any]:
    return {"lang": "painless", "source": MERGE_SCRIPT}


def bulk_action(part: DocumentPart, index: str, *, create: bool = True) -> dict[str, Any]:
    """A scripted merge of `part` into its document; with `create=False` a missing document stays missing (the
    sweeps update documents they found, and must not resurrect one deleted meanwhile)."""
    action: dict[str, Any] = {
        "_op_type": "update",
        "_index": index,
        "_id": part.doc_id,
        "retry_on_conflict": 5,
        "script": {"id": MERGE_SCRIPT_ID, "params": {"doc": part.fields, "mode_hint": part.mode_hint}},
    }
    if create:
        action.update({"scripted_upsert": True, "upsert": {}})
    return action


# -------------------------------------------------------------------------------------- index template

# The template's version: an indexer installs its template only over an older version (or none), never over a
# newer one (a rollback must not undo the mapping of the newer indexer that is still writing). Bump it with every
# change of `index_template` or `mapping_properties`.
# 4: two branches each made a version 3 (the monitor's model_version; the write path's shards, refresh, retention);
# 4 has both, so an indexer of either replaces it.
# 5: the mapping carries the setup's marker (`_meta.setup_version`), which the indexer checks at start instead of
# installing anything itself (`python -m feedback.indexer setup` installs).
TEMPLATE_VERSION = 5
SETUP_MANAGED_BY = "seldon-feedback-indexer"


def setup_meta() -> dict[str, Any]:
    """The mapping's `_meta` the setup writes (template and existing index alike); the indexer reads it back with
    only the right to view its index's metadata."""
    return {"managed_by": SETUP_MANAGED_BY, "setup_version": TEMPLATE_VERSION, "merge_script": MERGE_SCRIPT_ID}


def mapping_properties() -> dict[str, Any]:
    """Every field the indexer writes (the template's mapping; also added to an existing index at start)."""
    keyword = {"type": "keyword"}
    date = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
    not_indexed = {"type": "object", "enabled": False}
    return {
        "@timestamp": date,
        "request_id": keyword,
        "instance": {"type": "integer"},
        "node": keyword,
        "deployment": keyword,
        "namespace": keyword,
        "predictor": keyword,
        "protocol": keyword,
        "transport": keyword,
        "mode": keyword,
        "outcome": keyword,
        "error": {"type": "keyword", "ignore_above": 1024},
        "response_overdue": {"type": "boolean"},
        "input_text": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
        "class_names": keyword,
        "probabilities": {"type": "float"},
        "predicted_index": {"type": "integer"},
        "predicted_label": keyword,
        "predicted_score": {"type": "float"},
        "batch_id": keyword,
        "batch_instance_id": keyword,
        "batch_index": {"type": "long"},
        "model_version": keyword,
        "truth": keyword,
        "truth_index": {"type": "integer"},
        "truth_label": keyword,
        "reward": {"type": "float"},
        "correct": {"type": "boolean"},
        "feedback_join": keyword,
        "feedback_request_id": keyword,
        "orphan_reason": keyword,
        "orphan_candidates": {"type": "integer"},
        "request_data_hash": keyword,
        "response_data_hash": keyword,
        "feedback_request_hash": keyword,
        "feedback_response_hash": keyword,
        "request_time": date,
        "response_time": date,
        "feedback_time": date,
        "request_time_us": {"type": "long"},
        "response_time_us": {"type": "long"},
        "feedback_time_us": {"type": "long"},
        "latency_ms": {"type": "double"},
        "request_raw": not_indexed,
        "response_raw": not_indexed,
        "feedback_raw": not_indexed,
    }


def index_template(index: str, shards: int, replicas: int, refresh_interval: str = "1s") -> dict[str, Any]:
    """Composable index template for `<index>*`: keyword and date mappings, raw payloads stored but not indexed;
    `refresh_interval` is how soon an acknowledged write becomes searchable."""
    return {
        "index_patterns": [index, f"{index}-*"],
        "priority": 200,
        "version": TEMPLATE_VERSION,
        "_meta": {"managed_by": SETUP_MANAGED_BY},
        "template": {
            "settings": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                "refresh_interval": refresh_interval,
            },
            "mappings": {"dynamic": False, "_meta": setup_meta(), "properties": mapping_properties()},
        },
    }
