"""REST: the recorded client exchanges, replayed through the executor in front of the real model, give the
recorded answers and the recorded logged events, field by field (rest/client-exchanges-receiver.json, rest/NN-*).

What: an executor (the local engine; a real binary when configured) in front of the real model microservice,
logging to a recording receiver; each recorded exchange sent as the recorder sent it (urllib: Connection: close),
a puid the recording generated replaced by the one this run got for the same exchange.
Wait: until the receiver holds as many events as the recording.
Assert: per exchange, status, response header names in order and values (Date, generated puids, and a
Content-Length the model's timing changes excepted), body as JSON with the timing masked; per logged event, path,
method, header names in order and values (Ce-Id, Ce-Time, trace context, ports, generated puids excepted),
request bodies byte for byte, response bodies as JSON with the timing masked and byte-equal to what the client got.
Cleanup: the engines fixture stops the executor.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devstack.servers.model import ModelServer
from tests.conformance.compare import has_timing, header_problems, json_problems
from tests.conformance.conftest import Executor
from tests.conformance.recorded import LoggedEvent, load, logged_events
from tests.fixtures.engine import Received, RecordingReceiver, predictor_for

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def send(url: str, exchange: dict[str, Any], headers: dict[str, str]) -> Answer:
    """One exchange as the recorder's client sent it (urllib, so `Connection: close` as recorded)."""
    request = urllib.request.Request(url + exchange["path"], data=exchange["sent_body"].encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return Answer(answer.status, list(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, list(error.headers.items()), error.read())


@dataclass(frozen=True)
class Replayed:
    exchange: dict[str, Any]  # as recorded
    sent_headers: dict[str, str]  # as sent this time
    answer: Answer

    @property
    def puid(self) -> str:
        return dict(self.answer.headers).get("Seldon-Puid", "")

    @property
    def recorded_puid(self) -> str:
        return str(self.exchange["response_headers"].get("Seldon-Puid"))


def replay(url: str, exchanges: list[dict[str, Any]]) -> list[Replayed]:
    """Send every exchange; a Seldon-Puid the recording's executor generated for an earlier exchange (feedback
    "with the puid of predict-2") is replaced by the puid this executor answered for that exchange."""
    ours: dict[str, str] = {}
    replayed = []
    for exchange in exchanges:
        headers = {k: ours.get(v, v) if k == "Seldon-Puid" else v for k, v in exchange["sent_headers"].items()}
        done = Replayed(exchange, headers, send(url, exchange, headers))
        replayed.append(done)
        if "Seldon-Puid" not in exchange["sent_headers"]:
            ours[done.recorded_puid] = done.puid
    return replayed


def exchange_problems(replayed: Replayed) -> list[str]:
    exchange, answer = replayed.exchange, replayed.answer
    where = exchange["label"]
    recorded_headers = exchange.get("response_headers_ordered") or list(exchange["response_headers"].items())
    sent_puid = replayed.sent_headers.get("Seldon-Puid")
    problems = (
        [] if answer.status == exchange["status"] else [f"{where}: status {answer.status} != {exchange['status']}"]
    )
    problems += header_problems(
        answer.headers,
        recorded_headers,
        where,
        puid=None if sent_puid is None else dict(answer.headers).get("Seldon-Puid"),
        generated_puid=sent_puid is None,
        body_length_varies=has_timing(exchange["response_body"].encode()),
    )
    if sent_puid is not None and dict(answer.headers).get("Seldon-Puid") not in (sent_puid,):
        problems.append(
            f"{where}: answered Seldon-Puid {dict(answer.headers).get('Seldon-Puid')!r}, sent {sent_puid!r}"
        )
    problems += json_problems(answer.body, exchange["response_body"].encode(), f"{where}: answer")
    if dict(answer.headers).get("Content-Length") != str(len(answer.body)):
        problems.append(f"{where}: Content-Length {dict(answer.headers).get('Content-Length')} != {len(answer.body)}")
    return problems


def event_problems(got: Received, want: LoggedEvent, puid: str, client_body: bytes | None) -> list[str]:
    where = f"{want.name} (ours: {got.header('Ce-Type')} {got.header('Ce-Requestid')})"
    problems = []
    if (got.method, got.path) != (want.method, want.path):
        problems.append(f"{where}: {got.method} {got.path} != recorded {want.method} {want.path}")
    problems += header_problems(got.headers, want.headers, where, puid=puid, body_length_varies=has_timing(want.body))
    if want.kind == "response":
        problems += json_problems(got.body, want.body, f"{where}: body")
        if client_body is not None and got.body != client_body:
            problems.append(f"{where}: the logged answer differs from the bytes the client got")
    elif got.body != want.body:
        problems.append(f"{where}: body {got.body[:120]!r} != recorded {want.body[:120]!r}")
    return problems


def drain_model_counters(model: ModelServer) -> None:
    """The model reports some counters (rejected requests) with its next feedback answer: start from zero, as
    the recording did, by sending one feedback straight to it first."""
    body = json.loads(load("rest/client-exchanges-receiver.json")[-1]["sent_body"])
    requests.post(f"{model.url}/api/v1.0/feedback", json=body, timeout=30).raise_for_status()


def counterparts(
    replayed: list[Replayed], recorded: list[LoggedEvent], received: list[Received], problems: list[str]
) -> list[tuple[LoggedEvent, str, Received]]:
    """(recorded event, the puid this run used in its place, our event of that type and puid) for every recorded
    event that has exactly one counterpart; a missing or doubled one is added to `problems`."""
    ours = {r.recorded_puid: r.puid for r in replayed}
    found = []
    for want in recorded:
        puid = ours.get(want.request_id, want.request_id)
        matching = [
            r for r in received if r.header("Ce-Requestid") == puid and r.header("Ce-Type") == want.header("Ce-Type")
        ]
        if len(matching) == 1:
            found.append((want, puid, matching[0]))
        else:
            problems.append(f"{want.name}: {len(matching)} events of this type for puid {puid}, expected 1")
    return found


def test_recorded_rest_exchanges_give_the_recorded_answers_and_events(
    executor: Executor, model_server: ModelServer, recording_receiver: RecordingReceiver
) -> None:
    exchanges = load("rest/client-exchanges-receiver.json")
    recorded_events = logged_events("rest")
    engine = executor.start(predictor_for(model_server.http_port, model_server.grpc_port, recording_receiver.url))
    drain_model_counters(model_server)
    replayed = replay(engine.url, exchanges)

    problems = [p for r in replayed for p in exchange_problems(r)]
    received = recording_receiver.wait_for(len(recorded_events))
    assert len(recording_receiver.settle()) == len(recorded_events), "no event more than recorded"
    client_body = {r.puid: r.answer.body for r in replayed if r.exchange["path"].endswith("/predictions")}
    for want, puid, got in counterparts(replayed, recorded_events, received, problems):
        problems += event_problems(got, want, puid, client_body.get(puid) if want.kind == "response" else None)
    assert problems == [], "\n".join(problems)
