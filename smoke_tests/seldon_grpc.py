"""A minimal Seldon protocol gRPC client (no seldon-core import: its pins clash with ours).

It declares the subset of `seldon.protos` (Seldon Core v1 `proto/prediction.proto`) the smoke tests need,
with the upstream field numbers, so the bytes on the wire are the same as SeldonClient's:
`SeldonMessage{meta=2, data=3}`, `DefaultData{names=1, ndarray=3 (google.protobuf.ListValue)}`,
`Meta{puid=1}`. Fields we do not declare (tags, metrics, ...) are skipped when parsing answers.
The puid travels as the `seldon-puid` metadata entry, as SeldonClient and the batch processor send it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2
from google.protobuf.json_format import MessageToDict

PREDICT_METHOD = "/seldon.protos.Seldon/Predict"

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


def predict(address: str, text: str, puid: str, timeout: float) -> dict[str, Any]:
    """One prediction over gRPC; the answer as the same dict shape REST returns (`data`, `meta.puid`)."""
    import grpc

    request_cls, response_cls = _classes()
    request = request_cls()
    request.data.ndarray.values.add().string_value = text
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        answer = call(request, metadata=[("seldon-puid", puid)], timeout=timeout)
    return MessageToDict(answer, preserving_proto_field_name=True)
