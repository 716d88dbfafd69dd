"""CloudEvents exactly as Seldon Core v1's executor POSTs them to its logger URL (binary mode, HTTP).

The contract (../shared/reference/seldon-core-v1.md section 3.3, executor/logger/worker.go at v1.17.1): headers
`Ce-Specversion: 1.0`, `Ce-Type` (io.seldon.serving.inference.request|response, io.seldon.serving.feedback),
`Ce-Id` (a fresh UUID per event), `Ce-Requestid` (the puid: the join key), `Ce-Source`, `Ce-Time`,
`Ce-Modelid` (graph node), `Ce-Inferenceservicename` (SeldonDeployment), `Ce-Namespace`, `Ce-Endpoint`
(predictor), `Ce-Protocol`; body = the raw payload with its Content-Type.

This is a client of the collector, used where no executor sends the events: the pipeline smoke check on any
target, and the local stack while the executor cannot be built (docs/executor.md). It is not an executor: it
neither serves predictions nor sits in their path.
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


def headers(kind: str, puid: str, deployment: Deployment, when: datetime | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Type": EVENT_TYPES[kind],
        "Ce-Id": str(uuid.uuid4()),
        "Ce-Requestid": puid,
        "Ce-Source": deployment.source,
        "Ce-Time": (when or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "Ce-Modelid": deployment.node,
        "Ce-Inferenceservicename": deployment.name,
        "Ce-Namespace": deployment.namespace,
        "Ce-Endpoint": deployment.predictor,
        "Ce-Protocol": "seldon",
    }


class CollectorClient:
    """Posts executor-format CloudEvents to the collector; raises with the collector's reason on a non-2xx."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, kind: str, puid: str, body: Any, deployment: Deployment) -> None:
        response = self.session.post(
            self.url,
            data=json.dumps(body).encode(),
            headers=headers(kind, puid, deployment),
            timeout=self.timeout,
        )
        if response.status_code >= 300:
            raise AssertionError(f"collector answered {response.status_code} to {kind} {puid}: {response.text[:300]}")
