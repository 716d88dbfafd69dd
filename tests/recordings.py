"""The recordings of the real Seldon executor (`../shared/reference/seldon-executor-1.17.1/`) as replayable events,
and the documents each source must give, derived from the recordings themselves.

Sources (one folder or file each; every recorded logger event is one `RecordedEvent`):

- `rest` (POSTed to the collector): `rest/NN-*.json`, HTTP CloudEvents of REST predictions, a batch, strData,
  invalid JSON and feedbacks;
- `grpc` (POSTed to the collector): `grpc/logged-events-decoded.json`, the gRPC CloudEvents with protobuf bodies;
- `grpc-direct` (produced to the capture topic): the same gRPC events as direct Kafka logging writes them (README
  "Direct Kafka logging": value = raw payload, headers `type`, `content-type`, `modelid`, ...); derived, as no
  such recording exists;
- `kafka-log` (produced to the capture topic): `kafka-log/all-direct-log-messages.json` as recorded;
- `versions/<v>` (POSTed to the collector): `versions/<v>/NN-*.json`, executors 1.3.0 to 1.17.1, same traffic.

The Kafka server type's outputs (`kafka/`, `kafka-mode-all-outputs.json`) are model answers on `model_output`, not
logger events, so they are not replayed. A new recording file in these folders is a new event automatically.

Expected documents come from the payloads (the request texts, the response's names and probabilities, the truth
row) and headers (puid, node, deployment, times) with simple rules written here independently of the indexer; the
feedback join rule: a feedback whose puid names a prediction of the same source joins it; otherwise the
predictions of that source whose request and response data parts equal the feedback's (`==` on the parsed JSON,
meta and status left out) decide: one joins, none is `no_match`, several are `ambiguous`.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from feedback.indexer.core import iso_time

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORDINGS_ENV = "SELDON_FEEDBACK_RECORDINGS"
RELATIVE = Path("shared") / "reference" / "seldon-executor-1.17.1"
KINDS = {
    "io.seldon.serving.inference.request": "request",
    "io.seldon.serving.inference.response": "response",
    "io.seldon.serving.feedback": "feedback",
}
SKIPPED_HEADERS = {"host", "content-length", "accept-encoding", "user-agent"}  # transport details of the recorder


def recordings_dir() -> Path:
    """`$SELDON_FEEDBACK_RECORDINGS`, else `shared/reference/seldon-executor-1.17.1` beside the checkout or above."""
    override = os.environ.get(RECORDINGS_ENV)
    candidates = [Path(override)] if override else [parent / RELATIVE for parent in REPO_ROOT.parents]
    for path in candidates:
        if (path / "README.md").is_file():
            return path
    raise FileNotFoundError(
        f"the executor recordings are missing (looked for {RELATIVE} beside {REPO_ROOT} and above it): place the "
        f"project's shared/ folder beside the checkout or set {RECORDINGS_ENV}"
    )


@dataclass(frozen=True)
class RecordedEvent:
    id: str  # e.g. "rest/02-predict-1-response", "grpc/#3", "kafka-log/@222"
    source: str
    route: str  # "collector" (HTTP) or "topic" (direct Kafka logging)
    kind: str
    headers: tuple[tuple[str, str], ...]  # as sent (HTTP) or as Kafka headers (direct)
    body: bytes
    timestamp_ms: int | None  # Kafka timestamp (direct only)
    payload: Any  # the parsed payload (the recorded decoding for protobuf), None when the body is not JSON

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def request_id(self) -> str:
        return str(self.header("Ce-Requestid") or self.header("requestid"))

    @property
    def node(self) -> str:
        return str(self.header("Ce-Modelid") or self.header("modelid"))

    @property
    def grpc(self) -> bool:
        return (self.header("Content-Type") or self.header("content-type") or "").startswith("application/protobuf")

    def attribute(self, name: str) -> str | None:
        """An executor attribute in either format: `deployment` = Ce-Inferenceservicename / inferenceservicename."""
        names = {"deployment": "inferenceservicename", "predictor": "endpoint"}.get(name, name)
        return self.header(f"Ce-{names}") or self.header(names)

    @property
    def time_us(self) -> int:
        """The event time as the pipeline keeps it: Ce-Time at microseconds (nanoseconds truncated), else the Kafka
        timestamp."""
        ce_time = self.header("Ce-Time")
        if ce_time is None:
            return (self.timestamp_ms or 0) * 1000
        seconds, _, fraction = ce_time.rstrip("Z").partition(".")
        whole = datetime.fromisoformat(seconds + "+00:00")
        return int(whole.timestamp()) * 1_000_000 + int((fraction + "000000")[:6])


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _http_event(source: str, name: str, record: dict[str, Any], body: bytes, payload: Any) -> RecordedEvent:
    headers = tuple((key, value) for key, value in record["headers"] if key.lower() not in SKIPPED_HEADERS)
    kind = KINDS[dict(record["headers"])["Ce-Type"]]
    return RecordedEvent(f"{source}/{name}", source, "collector", kind, headers, body, None, payload)


def _numbered(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("[0-9][0-9]-*.json"))


@cache
def sources() -> dict[str, list[RecordedEvent]]:
    root = recordings_dir()
    result: dict[str, list[RecordedEvent]] = {}
    rest = []
    for path in _numbered(root / "rest"):
        record = json.loads(path.read_text())
        body = base64.b64decode(record["body_b64"])
        rest.append(_http_event("rest", path.stem, record, body, _json_or_none(body)))
    result["rest"] = rest
    grpc, grpc_direct = [], []
    for record in json.loads((root / "grpc" / "logged-events-decoded.json").read_text()):
        body = base64.b64decode(record["body_b64"])
        event = _http_event("grpc", f"#{record['seq']}", record, body, record["decoded_as_SeldonMessage"])
        grpc.append(event)
        grpc_direct.append(as_direct_logging(event))
    result["grpc"] = grpc
    result["grpc-direct"] = grpc_direct
    direct = []
    for record in json.loads((root / "kafka-log" / "all-direct-log-messages.json").read_text()):
        value = record["value"].encode("utf-8")
        headers = tuple((key, value_) for key, value_ in record["headers"])
        kind = KINDS[dict(headers)["type"]]
        timestamp = record["timestamp"][1]
        event_id = f"kafka-log/@{record['offset']}"
        direct.append(
            RecordedEvent(event_id, "kafka-log", "topic", kind, headers, value, timestamp, _json_or_none(value))
        )
    result["kafka-log"] = direct
    for folder in sorted((root / "versions").iterdir()):
        source = f"versions/{folder.name}"
        events = []
        for path in _numbered(folder):
            record = json.loads(path.read_text())
            body = base64.b64decode(record["body_b64"])
            events.append(_http_event(source, path.stem, record, body, _json_or_none(body)))
        result[source] = events
    return result


def as_direct_logging(event: RecordedEvent) -> RecordedEvent:
    """A recorded HTTP event as the executor's direct Kafka logging writes the same event (sendKafkaEvent)."""
    names = {
        "Ce-Type": "type",
        "Content-Type": "content-type",
        "Ce-Modelid": "modelid",
        "Ce-Requestid": "requestid",
        "Ce-Inferenceservicename": "inferenceservicename",
        "Ce-Namespace": "namespace",
        "Ce-Endpoint": "endpoint",
        "Ce-Protocol": "protocol",
    }
    headers = tuple((names[key], value) for key, value in event.headers if key in names)
    ordered = tuple(sorted(headers, key=lambda item: list(names.values()).index(item[0])))
    source = event.source + "-direct"
    event_id = event.id.replace(event.source, source, 1)
    timestamp_ms = event.time_us // 1000
    return RecordedEvent(event_id, source, "topic", event.kind, ordered, event.body, timestamp_ms, event.payload)


def all_events() -> list[RecordedEvent]:
    return [event for events in sources().values() for event in events]


# ------------------------------------------------------------------------------------------ expectations


def rows_of(message: Any) -> tuple[list[Any], list[str] | None]:
    """Instances and class names of a Seldon message: `data.ndarray`, `data.tensor` (reshaped) or `strData`."""
    if not isinstance(message, dict):
        return [], None
    if "strData" in message:
        return [message["strData"]], None
    data = message.get("data") or {}
    names = data.get("names")
    if "ndarray" in data:
        return list(data["ndarray"]), names
    tensor = data.get("tensor") or {}
    shape, values = tensor.get("shape") or [len(tensor.get("values", []))], tensor.get("values", [])
    width = len(values) // shape[0] if shape and shape[0] else len(values)
    return [values[i * width : (i + 1) * width] for i in range(shape[0])], names


def data_part(message: Any) -> Any:
    return {key: value for key, value in message.items() if key not in ("meta", "status")}


@dataclass
class Expected:
    """What one source must give: documents by (request id, instance), orphans, and counts."""

    documents: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    rejected: list[RecordedEvent] = field(default_factory=list)  # invalid payloads: 400 or dead-lettered
    joins: dict[str, int] = field(default_factory=dict)  # fingerprint sweep outcomes
    feedback_targets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # event id -> documents


def _base(event: RecordedEvent, instance: int) -> dict[str, Any]:
    return {
        "request_id": event.request_id,
        "instance": instance,
        "node": event.node,
        "deployment": event.attribute("deployment"),
        "namespace": event.attribute("namespace"),
        "predictor": event.attribute("predictor"),
        "protocol": event.attribute("protocol"),  # absent before Seldon 1.14: must be absent in the document too
        "transport": "grpc" if event.grpc else "rest",
        "mode": "realtime",  # no recording carries batch tags or a *-streaming deployment name
    }


def _truth(row: Any) -> dict[str, Any]:
    row = row[0] if isinstance(row, list) and len(row) == 1 and isinstance(row[0], list) else row
    index = max(range(len(row)), key=lambda i: row[i]) if isinstance(row, list) else int(row)
    return {"truth": str(index), "truth_index": index}


def expected_documents(events: list[RecordedEvent]) -> Expected:
    expected = Expected()
    predictions: dict[str, dict[str, RecordedEvent]] = {}  # request id -> {"request": ..., "response": ...}
    for event in events:
        if event.payload is None:
            expected.rejected.append(event)
        elif event.kind in ("request", "response"):
            predictions.setdefault(event.request_id, {})[event.kind] = event
    for request_id, pair in predictions.items():
        request, response = pair.get("request"), pair.get("response")
        texts, _ = rows_of(request.payload) if request else ([], None)
        probabilities, names = rows_of(response.payload) if response else ([], None)
        for instance in range(max(len(texts), len(probabilities), 1)):
            doc = _base(request or response, instance)  # type: ignore[arg-type]
            if request is not None:
                doc.update(input_text=texts[instance], request_time=iso_time(request.time_us))
            if response is not None:
                row = probabilities[instance]
                best = max(range(len(row)), key=lambda i: row[i])
                doc.update(
                    class_names=names,
                    probabilities=row,
                    predicted_index=best,
                    predicted_label=names[best],
                    response_time=iso_time(response.time_us),
                    outcome="ok",
                )
            else:
                doc["outcome"] = "no_response"
            expected.documents[(request_id, instance)] = doc
    for event in events:
        if event.kind != "feedback" or event.payload is None:
            continue
        body = event.payload
        truth_rows, _ = rows_of(body.get("truth"))
        fields = {**_truth(truth_rows[0]), "reward": float(body["reward"]), "feedback_time": iso_time(event.time_us)}
        if event.request_id in predictions:
            targets = [key for key in expected.documents if key[0] == event.request_id]
            for key in targets:
                expected.documents[key].update(fields, feedback_join="puid")
            expected.feedback_targets[event.id] = targets
            continue
        same = [
            rid
            for rid, pair in predictions.items()
            if "request" in pair
            and "response" in pair
            and data_part(pair["request"].payload) == data_part(body["request"])
            and data_part(pair["response"].payload) == data_part(body["response"])
            and pair["request"].node == event.node
            and all(
                pair["request"].attribute(a) == event.attribute(a) for a in ("deployment", "namespace", "predictor")
            )
        ]
        if len(same) == 1:
            key = (same[0], 0)
            expected.documents[key].update(fields, feedback_join="fingerprint", feedback_request_id=event.request_id)
            expected.joins["joined"] = expected.joins.get("joined", 0) + 1
            expected.feedback_targets[event.id] = [key]
        else:
            reason = "no_match" if not same else "ambiguous"
            orphan = {**_base(event, 0), **fields, "orphan_reason": reason, "orphan_candidates": len(same)}
            expected.documents[(event.request_id, 0)] = orphan
            expected.joins[reason] = expected.joins.get(reason, 0) + 1
            expected.feedback_targets[event.id] = [(event.request_id, 0)]
    return expected
