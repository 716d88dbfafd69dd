"""Seldon's protobuf definitions: built from the seldon-core package, loaded into a private pool, decoding the
executor's recorded gRPC payloads exactly as the recording decoded them; garbage and foreign messages refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from feedback.config import SettingsError
from feedback.seldon import EventKind
from feedback.seldon_protos import (
    DEFAULT_VERSION,
    FILE_NAME,
    InvalidProtobuf,
    ProtoBuildError,
    SeldonProtos,
    build,
    check_version,
    default_dir,
    descriptor_path,
    is_protobuf_content_type,
    load,
    load_from_env,
)

from tests.recordings import recordings_dir, sources

KINDS = {"request": EventKind.REQUEST, "response": EventKind.RESPONSE, "feedback": EventKind.FEEDBACK}


@pytest.mark.parametrize("event", sources()["grpc"], ids=lambda event: event.id)
def test_every_recorded_grpc_event_decodes_to_the_recorded_message(seldon_protos: SeldonProtos, event: object) -> None:
    assert seldon_protos.decode(KINDS[event.kind], event.body) == event.payload  # type: ignore[attr-defined]


def test_recorded_client_calls_decode_to_the_json_the_client_sent(seldon_protos: SeldonProtos) -> None:
    calls = json.loads((recordings_dir() / "grpc" / "client-calls.json").read_text())
    decoded = 0
    for call in calls:
        if "request_proto_b64" not in call:
            continue
        kind = EventKind.FEEDBACK if call["kind"] == "send_feedback" else EventKind.REQUEST
        assert seldon_protos.decode(kind, base64.b64decode(call["request_proto_b64"])) == call["request_json"]
        decoded += 1
    assert decoded == 7  # 5 ndarray and 1 strData Predict, 1 SendFeedback


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"data": {"ndarray": ["sent as JSON"]}}', "not a protobuf SeldonMessage"),
        (b"\xff\xff\xff\xff", "not a protobuf SeldonMessage"),
        (b"\x1a\x05abc", "not a protobuf SeldonMessage"),  # truncated: 5 bytes announced, 3 sent
        (b"\xf8\x01\x01", "field #31 is not defined"),  # a well-formed varint field SeldonMessage does not have
        (b"\x1a\x03\xf8\x01\x01", "field data.#31 is not defined"),  # unknown inside DefaultData
    ],
)
def test_malformed_protobuf_is_refused_with_a_reason(seldon_protos: SeldonProtos, body: bytes, words: str) -> None:
    with pytest.raises(InvalidProtobuf, match=words.replace(".", r"\.").replace("#", "#")):
        seldon_protos.decode(EventKind.REQUEST, body)


def test_nan_in_a_value_cannot_become_json(seldon_protos: SeldonProtos) -> None:
    message = seldon_protos.message_class(EventKind.REQUEST)()
    message.data.ndarray.values.add().number_value = float("nan")
    with pytest.raises(InvalidProtobuf, match="cannot be represented as JSON"):
        seldon_protos.decode(EventKind.REQUEST, message.SerializeToString())


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/protobuf", True),
        ("application/x-protobuf; charset=binary", True),
        ("Application/Protobuf", True),
        ("application/json", False),
        (None, False),
        ("", False),
    ],
)
def test_protobuf_content_types(content_type: str | None, expected: bool) -> None:
    assert is_protobuf_content_type(content_type) is expected


@pytest.mark.parametrize("version", ["1.2.0", "latest", "1.17", "v1.17.1", ""])
def test_a_version_out_of_range_is_refused_by_name(version: str) -> None:
    with pytest.raises(SettingsError, match=r"SELDON_PROTO_VERSION=.* must be a Seldon Core release >= 1\.3\.0"):
        check_version(version)


def test_a_missing_descriptor_set_stops_the_service_with_the_build_command(tmp_path: Path) -> None:
    env = {"SELDON_PROTOS_DIR": str(tmp_path), "SELDON_PROTO_VERSION": "1.17.1"}
    with pytest.raises(SettingsError) as caught:
        load_from_env(env)
    message = str(caught.value)
    assert "python -m feedback.seldon_protos ensure --version 1.17.1" in message and str(tmp_path) in message


def test_a_broken_descriptor_set_is_refused(tmp_path: Path) -> None:
    path = descriptor_path(tmp_path, DEFAULT_VERSION)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a descriptor set")
    with pytest.raises(SettingsError, match="is not a usable Seldon descriptor set"):
        load(path, DEFAULT_VERSION)


def test_the_default_folder_is_the_project_cache_keyed_by_version(tmp_path: Path) -> None:
    assert default_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "seldon-feedback" / "seldon-protos"
    assert default_dir({"SELDON_PROTOS_DIR": "/app/seldon-protos"}) == Path("/app/seldon-protos")
    assert descriptor_path(Path("/x"), "1.17.1") == Path("/x/1.17.1") / FILE_NAME


def test_build_downloads_seldon_core_by_name_and_compiles_a_loadable_set(tmp_path: Path) -> None:
    path = build(DEFAULT_VERSION, tmp_path)
    assert path == descriptor_path(tmp_path, DEFAULT_VERSION)
    protos = load(path, DEFAULT_VERSION)
    files = {file.name for file in protos.pool.FindFileByName("prediction.proto").dependencies}
    assert "tensorflow/core/framework/tensor.proto" in files and "google/protobuf/struct.proto" in files
    assert not list(tmp_path.rglob("*.proto")), "only the compiled set is kept, no copy of the .proto files"


def test_build_of_a_version_pypi_does_not_have_says_so(tmp_path: Path) -> None:
    with pytest.raises(ProtoBuildError, match=r"pip could not download seldon-core==1\.3\.99"):
        build("1.3.99", tmp_path)
