"""The gRPC server (executor/api/grpc/seldon): the Seldon service, passed through to the model's gRPC port.

A generic pass-through: requests and replies stay raw bytes (no message definitions needed), so what the model
answers is what the client gets. What each rule follows:
- `/seldon.protos.Seldon/Predict` goes to the model's `/seldon.protos.Model/Predict` and `SendFeedback` to
  `/seldon.protos.Model/SendFeedback` on the node's grpcPort, whatever `--transport` says (README "gRPC"), with
  the call's metadata and its puid;
- puid: the `seldon-puid` metadata, else a new UUID v4, returned as `seldon-puid` initial (reply) metadata
  (grpc/client-calls.json: `response_initial_metadata`, no trailing metadata, no puid in any body);
- logged events carry the raw protobuf bytes with `Content-Type: application/protobuf`, request and response
  (grpc/logged-events-decoded.json: seq 1-14, the request's 24 bytes for one ndarray text);
- SendFeedback logs nothing without `seldon-puid` metadata (README: "Error retrieving uuid for feedback"), yet
  the model's feedback is still called and the reply still carries a fresh `seldon-puid`
  (grpc/client-calls.json `send_feedback`).
A model that cannot be reached gives UNAVAILABLE with the reason; a model error keeps its status and details.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import grpc

from devstack.engine.logger import loggable_puid
from devstack.engine.metrics import EngineMetrics
from devstack.engine.predictor import ModelAnswer, ModelRefused, ModelUnavailable, Payload, Predictor, skips_logging
from devstack.engine.spec import Endpoint

log = logging.getLogger(__name__)

PROTOBUF = "application/protobuf"
PUID_METADATA = "seldon-puid"
SELDON_PREDICT = "/seldon.protos.Seldon/Predict"
SELDON_FEEDBACK = "/seldon.protos.Seldon/SendFeedback"
MODEL_PREDICT = "/seldon.protos.Model/Predict"
MODEL_FEEDBACK = "/seldon.protos.Model/SendFeedback"
MODEL_TIMEOUT_S = 120.0
_NOT_FORWARDED = frozenset(
    {"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout"}
)


class ModelGrpcClient:
    """One channel to the model's gRPC port; unary calls with raw bytes in and out."""

    def __init__(self, endpoint: Endpoint, max_message_bytes: int, timeout_s: float = MODEL_TIMEOUT_S) -> None:
        self.address = f"{endpoint.host}:{endpoint.grpc_port}"
        self.timeout_s = timeout_s
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self.channel = grpc.aio.insecure_channel(self.address, options=options)
        self._predict = self.channel.unary_unary(MODEL_PREDICT)
        self._feedback = self.channel.unary_unary(MODEL_FEEDBACK)

    async def call(self, method: str, body: bytes, metadata: Sequence[tuple[str, str]]) -> ModelAnswer:
        stub = self._predict if method == MODEL_PREDICT else self._feedback
        try:
            reply = await stub(body, metadata=tuple(metadata), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise ModelUnavailable(f"the model at {self.address} cannot be reached ({exc.details()})") from None
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ModelUnavailable(
                    f"the model at {self.address} did not answer within {self.timeout_s:.0f} s", True
                ) from None
            raise ModelError(exc.code(), exc.details() or "") from None
        return ModelAnswer(200, reply, PROTOBUF)

    async def close(self) -> None:
        await self.channel.close()


class ModelError(Exception):
    """The model's gRPC call failed with a status other than UNAVAILABLE or DEADLINE_EXCEEDED."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class SeldonService(grpc.GenericRpcHandler):
    """Routes the Seldon service's two calls; anything else is UNIMPLEMENTED (grpc's answer to unknown methods)."""

    def __init__(self, predictor: Predictor, model: ModelGrpcClient, metrics: EngineMetrics) -> None:
        self.predictor = predictor
        self.model = model
        self.metrics = metrics
        self._handlers = {
            SELDON_PREDICT: grpc.unary_unary_rpc_method_handler(self.predict),
            SELDON_FEEDBACK: grpc.unary_unary_rpc_method_handler(self.send_feedback),
        }

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        return self._handlers.get(handler_call_details.method)

    async def predict(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._serve("grpc-predict", MODEL_PREDICT, request, context)

    async def send_feedback(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._serve("grpc-feedback", MODEL_FEEDBACK, request, context)

    async def _serve(self, route: str, method: str, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        began = time.perf_counter()
        incoming = [(k, v) for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)]
        sent_puid = next((v for k, v in incoming if k == PUID_METADATA and v), None)
        puid = sent_puid or str(uuid.uuid4())
        await context.send_initial_metadata(((PUID_METADATA, puid),))
        metadata = [(k, v) for k, v in incoming if k not in _NOT_FORWARDED and k != PUID_METADATA]
        metadata.append((PUID_METADATA, puid))
        skip = skips_logging({k.title(): v for k, v in incoming}, self.predictor.behaviour)
        payload = Payload(request, PROTOBUF)

        async def call(p: Payload) -> ModelAnswer:
            return await self.model.call(method, p.body, metadata)

        code = grpc.StatusCode.OK
        try:
            if method == MODEL_PREDICT:
                answer = await self.predictor.predict(payload, puid, skip, call)
            else:
                answer = await self.predictor.feedback(payload, sent_puid, skip, call)
            return answer.body
        except ModelUnavailable as exc:
            code = grpc.StatusCode.DEADLINE_EXCEEDED if exc.timed_out else grpc.StatusCode.UNAVAILABLE
            log.error("%s %s: %s", route, loggable_puid(puid), exc.reason)
            await context.abort(code, exc.reason)
        except ModelError as exc:
            code = exc.code
            await context.abort(exc.code, exc.details)
        except ModelRefused as exc:  # not reached: gRPC answers are 200 or raise
            code = grpc.StatusCode.INTERNAL
            await context.abort(code, f"the model answered {exc.answer.status}")
        finally:
            self.metrics.requests.labels(route, code.name).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - began)
        raise AssertionError("unreachable: context.abort raises")


async def start_server(service: SeldonService, host: str, port: int, max_message_bytes: int) -> grpc.aio.Server:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers((service,))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound != port:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    return server
