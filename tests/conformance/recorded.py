"""The recordings of the real Seldon executor, read for replay: client exchanges, logged events, Kafka messages.

Everything comes from ../shared/reference/seldon-executor-1.17.1/ (README = the contract). A logged HTTP event is
`LoggedEvent` (method, path, headers in wire order, body); a client exchange is the dict the recorder wrote
(label, path, sent_headers, sent_body, status, response_headers[_ordered], response_body).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.recordings import recordings_dir


@dataclass(frozen=True)
class LoggedEvent:
    name: str  # e.g. "rest/01-predict-1-request"
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def kind(self) -> str:
        return str(self.header("Ce-Type")).rsplit(".", 1)[-1]

    @property
    def request_id(self) -> str:
        return str(self.header("Ce-Requestid"))


@cache
def load(relative: str) -> Any:
    return json.loads((recordings_dir() / relative).read_text())


def logged_events(folder: str) -> list[LoggedEvent]:
    """The HTTP events of `folder` (rest, versions/v1.3.0, ...) in their recorded sequence."""
    root = recordings_dir() / folder
    events = []
    for path in sorted(root.glob("[0-9][0-9]-*.json")):
        record = json.loads(path.read_text())
        body = base64.b64decode(record["body_b64"]) if "body_b64" in record else record["body"].encode()
        events.append(
            LoggedEvent(
                f"{folder}/{path.stem}", record["method"], record["path"], [tuple(h) for h in record["headers"]], body
            )
        )
    return events


def grpc_logged_events() -> list[LoggedEvent]:
    return [
        LoggedEvent(
            f"grpc/#{e['seq']}", "POST", e["path"], [tuple(h) for h in e["headers"]], base64.b64decode(e["body_b64"])
        )
        for e in load("grpc/logged-events-decoded.json")
    ]


def version_folders() -> list[str]:
    return sorted(p.name for p in (recordings_dir() / "versions").iterdir() if p.is_dir())


def version_of(folder: str) -> str:
    """The Seldon version a versions/ folder recorded: v1.17.1-samesetup -> 1.17.1."""
    return folder.removeprefix("v").split("-", 1)[0]


def recordings_root() -> Path:
    return recordings_dir()
