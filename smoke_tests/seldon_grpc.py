"""A minimal Seldon protocol gRPC client (no seldon-core import: its pins clash with ours).

It declares the subset of `seldon.protos` (Seldon Core v1 `proto/prediction.proto`) the smoke tests need,
with the upstream field numbers, so the bytes on the wire are the same as SeldonClient's:
`SeldonMessage{meta=2, data=3}`, `DefaultData{names=1, ndarray=3 (google.protobuf.ListValue)}`,
`Meta{puid=1}`. Fields we do not declare (tags, metrics, ...) are skipped when parsing answers.
The puid travels as the `seldon-puid` metadata entry, as SeldonClient and the batch processor send it, and the
executor answers with the puid it used as `seldon-puid` initial (reply) metadata; no body carries it
(../shared/reference/seldon-executor-1.17.1/grpc/client-calls.json).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2
from google.protobuf.json_format import MessageToDict

PREDICT_METHOD = "/seldon.protos.Seldon/Predict"
PUID_METADATA = "seldon-puid"

_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, type_name: str = "", repeated: bool = False) -> Any:
    spec = _F(
        name=name,
        number=number,
        type=kind,
        label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
        json_name=name,
    )
    if type_name:
        spec.type_name = type_name
    return spec


@cache
def _classes() -> tuple[type, type]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(
        name="smoke_tests/seldon_prediction_subset.proto",
        package="seldon.protos",
        syntax="proto3",
        dependency=["google/protobuf/struct.proto"],
    )
    proto.message_type.add(
        name="Meta",
        field=[_field("puid", 1, _F.TYPE_STRING)],
    )
    proto.message_type.add(
        name="DefaultData",
        field=[
            _field("names", 1, _F.TYPE_STRING, repeated=True),
            _field("ndarray", 3, _F.TYPE_MESSAGE, ".google.protobuf.ListValue"),
        ],
    )
    proto.message_type.add(
        name="SeldonMessage",
        field=[
            _field("meta", 2, _F.TYPE_MESSAGE, ".seldon.protos.Meta"),
            _field("data", 3, _F.TYPE_MESSAGE, ".seldon.protos.DefaultData"),
        ],
    )
    pool.Add(proto)
    message = message_factory.GetMessageClass(pool.FindMessageTypeByName("seldon.protos.SeldonMessage"))
    return message, message


@dataclass(frozen=True)
class GrpcAnswer:
    response: dict[str, Any]  # the SeldonMessage as the dict shape REST returns (`data`, `meta`)
    puid: str | None  # the `seldon-puid` reply metadata


def answered_puid(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    """The puid in a call's reply (initial) metadata, or None."""
    for key, value in metadata or ():
        if key == PUID_METADATA:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def request_bytes(text: str) -> bytes:
    """The SeldonMessage `{"data": {"ndarray": [text]}}` on the wire."""
    request_cls, _ = _classes()
    request = request_cls()
    request.data.ndarray.values.add().string_value = text
    return bytes(request.SerializeToString())


def parse_answer(payload: bytes) -> dict[str, Any]:
    """A SeldonMessage's bytes as the dict shape REST returns (undeclared fields skipped)."""
    _, response_cls = _classes()
    return MessageToDict(response_cls.FromString(payload), preserving_proto_field_name=True)


def predict(address: str, text: str, puid: str, timeout: float) -> GrpcAnswer:
    """One prediction over gRPC with `seldon-puid` metadata; the answer and the puid the executor replied with."""
    import grpc

    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(PREDICT_METHOD)
        answer, state = call.with_call(request_bytes(text), metadata=[(PUID_METADATA, puid)], timeout=timeout)
        return GrpcAnswer(parse_answer(answer), answered_puid(state.initial_metadata()))
