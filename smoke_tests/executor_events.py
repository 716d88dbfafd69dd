"""CloudEvents exactly as Seldon Core v1's executor POSTs them to its logger URL (binary mode, HTTP): the one
place in the project that builds them.

The contract (recordings of the real v1.17.1 executor in ../shared/reference/seldon-executor-1.17.1/rest/*.json,
executor/logger/worker.go): headers `Ce-Specversion: 1.0`, `Ce-Type` (io.seldon.serving.inference.request|response,
io.seldon.serving.feedback), `Ce-Source`, `Ce-Id` (a fresh UUID per event), `Ce-Time`, `Ce-Modelid` (graph node),
`Ce-Requestid` (the puid: the join key), `Ce-Inferenceservicename` (SeldonDeployment), `Ce-Namespace`,
`Ce-Endpoint` (predictor), `Ce-Protocol`; body = the raw payload with its Content-Type. (The executor also sends
tracing headers, `Traceparent`, which nothing downstream reads.)

    event = executor_event("request", puid, {"data": {"ndarray": ["hi"]}}, Deployment())
    CollectorClient(collector_url).post(event)          # or .send("request", puid, body, deployment)

This is a client of the collector, used where no executor sends the events: the pipeline smoke check on any
target, the integration tests and the benchmarks. It is not an executor: it neither serves predictions nor sits
in their path (the local stack's executor is devstack/engine, docs/executor.md).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

EVENT_TYPES = {
    "request": "io.seldon.serving.inference.request",
    "response": "io.seldon.serving.inference.response",
    "feedback": "io.seldon.serving.feedback",
}


@dataclass(frozen=True)
class Deployment:
    """Who logged the event: the SeldonDeployment, its namespace, predictor and graph node."""

    name: str = "text-classifier"
    namespace: str = "seldon"
    predictor: str = "default"
    node: str = "classifier"
    source: str = "http://text-classifier-default:8000/"


@dataclass
class ExecutorEvent:
    """One CloudEvent as the executor POSTs it: `headers` (binary mode) and the raw `body`."""

    request_id: str
    kind: str
    headers: dict[str, str]
    body: bytes


def ce_time(when: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds, e.g. 2024-05-01T12:00:00.100000Z (the executor sends nanoseconds)."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def headers(kind: str, puid: str, deployment: Deployment, when: datetime | None = None) -> dict[str, str]:
    """The executor's headers for one event of `kind` (request, response or feedback) for request id `puid`."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event kind {kind!r}; use one of {sorted(EVENT_TYPES)}")
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Type": EVENT_TYPES[kind],
        "Ce-Id": str(uuid.uuid4()),
        "Ce-Requestid": puid,
        "Ce-Source": deployment.source,
        "Ce-Time": ce_time(when),
        "Ce-Modelid": deployment.node,
        "Ce-Inferenceservicename": deployment.name,
        "Ce-Namespace": deployment.namespace,
        "Ce-Endpoint": deployment.predictor,
        "Ce-Protocol": "seldon",
    }


def executor_event(
    kind: str, puid: str, payload: Any, deployment: Deployment | None = None, when: datetime | None = None
) -> ExecutorEvent:
    """The event the executor would POST for `payload` (JSON-encoded as the body)."""
    return ExecutorEvent(
        puid, kind, headers(kind, puid, deployment or Deployment(), when), json.dumps(payload).encode()
    )


class CollectorClient:
    """Posts executor-format CloudEvents to the collector; raises with the collector's reason on a non-2xx."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self.session = requests.Session()

    def post(self, event: ExecutorEvent) -> int:
        """POST one event; returns the HTTP status (2xx) or raises AssertionError with the collector's answer."""
        response = self.session.post(self.url, data=event.body, headers=event.headers, timeout=self.timeout)
        if response.status_code >= 300:
            raise AssertionError(
                f"collector answered {response.status_code} to {event.kind} {event.request_id}: {response.text[:300]}"
            )
        return response.status_code

    def send(self, kind: str, puid: str, body: Any, deployment: Deployment) -> None:
        self.post(executor_event(kind, puid, body, deployment))
