"""gRPC: the recorded calls (grpc/client-calls.json), replayed through the executor in front of the real model,
give the recorded replies, reply metadata and logged events (grpc/logged-events-decoded.json).

What: an executor (local engine; a real binary when configured) in front of the real model microservice, logging
to a recording receiver; each recorded call sent with its recorded request bytes and no metadata, as recorded (the
SeldonClient call sends the same SeldonMessage, so it is replayed as that Predict).
Wait: until the receiver holds the recorded 14 events (and a second more, to see that SendFeedback adds none).
Assert: replies decode (Seldon's protos) to the recorded answers, timing masked; the reply's initial metadata is
exactly `seldon-puid` with a fresh UUID, no trailing metadata; per logged event, the recorded headers in order
(`Content-Type: application/protobuf`), the request bytes exactly, the response decoding to the recorded message and
equal to the bytes the client got; SendFeedback without `seldon-puid` logs nothing, with it one feedback event.
Cleanup: the engines fixture stops the executor.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from feedback.seldon import EventKind
from feedback.seldon_protos import SeldonProtos

from devstack.servers.model import ModelServer
from tests.conformance.compare import TIMING_METRICS, UUID4, close_enough, header_problems, mask_timing
from tests.conformance.conftest import Executor
from tests.conformance.recorded import LoggedEvent, grpc_logged_events, load
from tests.fixtures.engine import Received, RecordingReceiver, predictor_for

pytestmark = pytest.mark.integration

METHODS = {
    "predict_ndarray": "/seldon.protos.Seldon/Predict",
    "predict_strData": "/seldon.protos.Seldon/Predict",
    "seldonclient_grpc_predict": "/seldon.protos.Seldon/Predict",
    "send_feedback": "/seldon.protos.Seldon/SendFeedback",
}


@dataclass(frozen=True)
class Call:
    recorded: dict[str, Any]
    request: bytes
    reply: bytes
    initial: list[tuple[str, str]]
    trailing: list[tuple[str, str]]

    @property
    def puid(self) -> str:
        return dict(self.initial).get("seldon-puid", "")


def request_bytes(recorded: dict[str, Any], protos: SeldonProtos) -> bytes:
    if "request_proto_b64" in recorded:
        return base64.b64decode(recorded["request_proto_b64"])
    from google.protobuf import json_format

    message = protos.message_class(EventKind.REQUEST)()
    json_format.ParseDict(recorded["request"], message, descriptor_pool=protos.pool)
    return bytes(message.SerializeToString())


def call(address: str, method: str, body: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> tuple[bytes, Any]:
    with grpc.insecure_channel(address) as channel:
        reply, state = channel.unary_unary(method).with_call(body, metadata=metadata, timeout=60)
    return reply, state


def replay(address: str, protos: SeldonProtos) -> list[Call]:
    calls = []
    for recorded in load("grpc/client-calls.json"):
        body = request_bytes(recorded, protos)
        reply, state = call(address, METHODS[recorded["kind"]], body)
        calls.append(
            Call(recorded, body, reply, list(state.initial_metadata() or ()), list(state.trailing_metadata() or ()))
        )
    return calls


def decoded_close(protos: SeldonProtos, kind: EventKind, body: bytes, want: Any, where: str) -> list[str]:
    got = protos.decode(kind, body)
    if not close_enough(mask_timing(got, TIMING_METRICS), mask_timing(want, TIMING_METRICS), 1e-6):
        return [f"{where}: decoded {got} != recorded {want}"]
    return []


def reply_problems(done: Call, protos: SeldonProtos) -> list[str]:
    where = done.recorded["kind"]
    recorded_reply = done.recorded.get("response_json", done.recorded.get("response"))
    problems = decoded_close(protos, EventKind.RESPONSE, done.reply, recorded_reply, f"{where}: reply")
    if [k for k, _ in done.initial] != ["seldon-puid"] or not UUID4.match(done.puid):
        problems.append(f"{where}: reply metadata {done.initial}, expected one fresh seldon-puid (client-calls.json)")
    if done.trailing:
        problems.append(f"{where}: trailing metadata {done.trailing}, recorded none")
    return problems


def event_problems(got: Received, want: LoggedEvent, puid: str, client_reply: bytes, protos: SeldonProtos) -> list[str]:
    where = f"{want.name} ({want.kind})"
    problems = header_problems(got.headers, want.headers, where, puid=puid, body_length_varies=want.kind == "response")
    if want.kind == "request" and got.body != want.body:
        problems.append(f"{where}: body {got.body.hex()} != recorded {want.body.hex()}")
    if want.kind == "response":
        recorded = next(e for e in load("grpc/logged-events-decoded.json") if f"grpc/#{e['seq']}" == want.name)
        problems += decoded_close(protos, EventKind.RESPONSE, got.body, recorded["decoded_as_SeldonMessage"], where)
        if got.body != client_reply:
            problems.append(f"{where}: the logged reply differs from the bytes the client got")
    return problems


def test_recorded_grpc_calls_give_the_recorded_replies_and_events(
    executor: Executor, model_server: ModelServer, recording_receiver: RecordingReceiver, seldon_protos: SeldonProtos
) -> None:
    engine = executor.start(predictor_for(model_server.http_port, model_server.grpc_port, recording_receiver.url))
    calls = replay(engine.grpc_address, seldon_protos)
    problems = [p for done in calls for p in reply_problems(done, seldon_protos)]

    recorded = grpc_logged_events()
    received = recording_receiver.wait_for(len(recorded))
    assert len(recording_receiver.settle()) == len(recorded), "SendFeedback without seldon-puid logs nothing"
    predictions = [c for c in calls if c.recorded["kind"] != "send_feedback"]
    recorded_pairs = [recorded[i : i + 2] for i in range(0, len(recorded), 2)]  # request, response per call
    assert len(recorded_pairs) == len(predictions)
    for done, pair in zip(predictions, recorded_pairs, strict=True):
        for want in pair:
            matching = [
                r
                for r in received
                if r.header("Ce-Requestid") == done.puid and r.header("Ce-Type") == want.header("Ce-Type")
            ]
            if len(matching) != 1:
                problems.append(f"{want.name}: {len(matching)} events for puid {done.puid}, expected 1")
                continue
            problems += event_problems(matching[0], want, done.puid, done.reply, seldon_protos)
    assert problems == [], "\n".join(problems)


def test_send_feedback_is_logged_only_with_a_seldon_puid(
    executor: Executor, model_server: ModelServer, recording_receiver: RecordingReceiver, seldon_protos: SeldonProtos
) -> None:
    """README "gRPC": without `seldon-puid` metadata nothing is logged (yet the model gets the feedback); with it,
    one feedback event under that puid, protobuf bytes as sent."""
    engine = executor.start(predictor_for(model_server.http_port, model_server.grpc_port, recording_receiver.url))
    feedback = next(c for c in load("grpc/client-calls.json") if c["kind"] == "send_feedback")
    body = base64.b64decode(feedback["request_proto_b64"])
    _reply, state = call(engine.grpc_address, METHODS["send_feedback"], body)
    assert UUID4.match(dict(state.initial_metadata())["seldon-puid"]), "a fresh puid comes back all the same"
    assert recording_receiver.settle() == []
    _reply, state = call(engine.grpc_address, METHODS["send_feedback"], body, (("seldon-puid", "grpc-fb-1"),))
    assert dict(state.initial_metadata())["seldon-puid"] == "grpc-fb-1"
    [event] = recording_receiver.wait_for(1)
    assert (event.header("Ce-Type"), event.header("Ce-Requestid")) == ("io.seldon.serving.feedback", "grpc-fb-1")
    assert (event.header("Content-Type"), event.body) == ("application/protobuf", body)
    assert seldon_protos.decode(EventKind.FEEDBACK, event.body)["reward"] == 1.0
