"""Seldon Core's protobuf messages, for the gRPC payloads the executor logs (`Content-Type: application/protobuf`).

The definitions come from the `seldon-core` package on PyPI, by name and version, never from a copy in this tree:

    build   `pip download seldon-core==<version> --no-deps` (the wheel ships `seldon_core/proto/prediction.proto`
            and the TensorFlow protos it imports); grpcio-tools' protoc compiles them, with the well-known types
            they import, into one FileDescriptorSet: `<SELDON_PROTOS_DIR>/<version>/seldon-protos.binpb`.
    load    the collector and the indexer read that file at start into a private descriptor pool; the installed
            protobuf runtime (6.x) makes the message classes. No generated *_pb2.py and none of seldon-core's
            protobuf-3 pins are involved.

One decoder for both services: `SeldonProtos.decode(kind, body)` turns the bytes into the JSON shape the REST
protocol carries (`json_format.MessageToDict`: `data.ndarray`, `data.names`, `data.tensor`, `strData`,
`meta.tags`, ...), so redaction and documents are shared with REST. Requests and responses are `SeldonMessage`,
feedback is `Feedback` (`request`, `response`, `truth`, `reward`).

    python -m feedback.seldon_protos ensure [--version 1.17.1] [--dir DIR]   # build once, print the file
    python -m feedback.seldon_protos build  [--version 1.17.1] [--dir DIR]   # rebuild, print the file
    python -m feedback.seldon_protos path   [--version 1.17.1] [--dir DIR]   # print where it is (or would be)
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from feedback.config import SettingsError
from feedback.seldon import EventKind

DEFAULT_VERSION = "1.17.1"
FILE_NAME = "seldon-protos.binpb"
ROOT_PROTO = "prediction.proto"
MESSAGE_TYPES = {
    EventKind.REQUEST: "seldon.protos.SeldonMessage",
    EventKind.RESPONSE: "seldon.protos.SeldonMessage",
    EventKind.FEEDBACK: "seldon.protos.Feedback",
}
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
PROTOBUF_CONTENT_TYPES = ("application/protobuf", "application/x-protobuf")


class ProtoBuildError(RuntimeError):
    """The descriptor set could not be built; the message says which step failed and what to do."""


class InvalidProtobuf(ValueError):
    """Bytes that are not the Seldon message they claim to be (the reason says what is wrong)."""


def is_protobuf_content_type(content_type: str | None) -> bool:
    """True for `application/protobuf` (what the executor sets for gRPC traffic) and `application/x-protobuf`."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() in PROTOBUF_CONTENT_TYPES


def default_dir(env: Mapping[str, str]) -> Path:
    """`$SELDON_PROTOS_DIR`, else the project cache `$XDG_CACHE_HOME/seldon-feedback/seldon-protos` (~/.cache)."""
    configured = (env.get("SELDON_PROTOS_DIR") or "").strip()
    if configured:
        return Path(configured)
    cache = (env.get("XDG_CACHE_HOME") or "").strip() or str(Path.home() / ".cache")
    return Path(cache) / "seldon-feedback" / "seldon-protos"


def check_version(version: str, variable: str = "SELDON_PROTO_VERSION") -> str:
    match = VERSION.match(version.strip())
    if match is None or tuple(int(part) for part in match.groups()) < (1, 3, 0):
        raise SettingsError(f"{variable}={version!r} must be a Seldon Core release >= 1.3.0 such as {DEFAULT_VERSION}")
    return version.strip()


def descriptor_path(directory: Path, version: str) -> Path:
    return directory / version / FILE_NAME


def _download_wheel(version: str, into: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"seldon-core=={version}",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(into),
        "--quiet",
        "--disable-pip-version-check",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    wheels = sorted(into.glob("seldon_core-*.whl"))
    if result.returncode != 0 or not wheels:
        raise ProtoBuildError(
            f"pip could not download seldon-core=={version} (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-600:]}; check the version and the package index"
        )
    return wheels[0]


def _extract_protos(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for name in [name for name in names if name.startswith("seldon_core/proto/") and name.endswith(".proto")]:
            archive.extract(name, into)
    root = into / "seldon_core" / "proto"
    if not (root / ROOT_PROTO).is_file():
        raise ProtoBuildError(
            f"{wheel.name} ships no seldon_core/proto/{ROOT_PROTO}; choose another SELDON_PROTO_VERSION"
        )
    return root


def build(version: str, directory: Path) -> Path:
    """Download seldon-core==`version`, compile its protos into a FileDescriptorSet, write it atomically."""
    version = check_version(version)
    try:
        from grpc_tools import protoc
    except ImportError:
        raise ProtoBuildError(
            "grpcio-tools is not installed: it compiles Seldon's .proto files (pip install grpcio-tools); "
            "the project environment (make env) and the image's build stage have it"
        ) from None
    target = descriptor_path(directory, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seldon-protos-") as tmp:
        work = Path(tmp)
        proto_root = _extract_protos(_download_wheel(version, work / "wheel"), work / "src")
        well_known = importlib.resources.files("grpc_tools") / "_proto"
        partial = target.parent / f".{FILE_NAME}.{os.getpid()}.tmp"
        arguments = [
            "protoc",
            f"--proto_path={proto_root}",
            f"--proto_path={well_known}",
            "--include_imports",
            f"--descriptor_set_out={partial}",
            ROOT_PROTO,
        ]
        if protoc.main(arguments) != 0 or not partial.is_file():
            partial.unlink(missing_ok=True)
            raise ProtoBuildError(
                f"protoc could not compile {ROOT_PROTO} of seldon-core=={version} (see its output above)"
            )
        os.replace(partial, target)  # atomic: concurrent builds each write their own file, the last one wins
    load(target, version)  # a set that does not load is an error now, not at the services' start
    return target


def ensure(version: str, directory: Path) -> Path:
    target = descriptor_path(directory, check_version(version))
    return target if target.is_file() else build(version, directory)


class SeldonProtos:
    """Message classes of one Seldon version's protos, made from a FileDescriptorSet in a private pool."""

    def __init__(self, descriptor_set: bytes, version: str) -> None:
        self.version = version
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
        self.pool = descriptor_pool.DescriptorPool()
        for file in files.file:  # protoc writes dependencies before the files that import them
            self.pool.Add(file)
        self._classes = {
            kind: message_factory.GetMessageClass(self.pool.FindMessageTypeByName(name))
            for kind, name in MESSAGE_TYPES.items()
        }

    def message_class(self, kind: EventKind) -> type[Message]:
        return self._classes[kind]

    def decode(self, kind: EventKind, body: bytes) -> dict[str, Any]:
        """The payload as the REST protocol's JSON shape, or InvalidProtobuf saying why it is not one."""
        name = MESSAGE_TYPES[kind].rsplit(".", 1)[1]
        message = self._classes[kind]()
        try:
            message.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:  # RuntimeError: recursion limit of nested values
            raise InvalidProtobuf(f"the {len(body)} bytes are not a protobuf {name} ({exc})") from None
        unknown = _unknown_field_path(message)
        if unknown is not None:
            raise InvalidProtobuf(
                f"the body is not a protobuf {name}: field {unknown} is not defined in seldon-core {self.version}'s "
                "prediction.proto (is it another message, or JSON sent as application/protobuf?)"
            )
        try:
            return json_format.MessageToDict(message, descriptor_pool=self.pool)
        except (ValueError, TypeError, json_format.Error) as exc:  # NaN in a Value, an Any of an unknown type
            raise InvalidProtobuf(f"the {name} cannot be represented as JSON: {exc}") from None


def _unknown_field_path(message: Message, prefix: str = "") -> str | None:
    """The first field number that the message's definition does not know (garbage or another message type)."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    unknown = UnknownFieldSet(message)
    if len(unknown):
        return f"{prefix}#{unknown[0].field_number}"
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        children = value.values() if field.message_type.GetOptions().map_entry else None
        items = children if children is not None else (value if field.is_repeated else [value])
        for item in items:
            if isinstance(item, Message):
                found = _unknown_field_path(item, f"{prefix}{field.name}.")
                if found is not None:
                    return found
    return None


def load(path: Path, version: str) -> SeldonProtos:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(
            f"the Seldon protobuf definitions for seldon-core {version} are missing ({path}); build them once with "
            f"`python -m feedback.seldon_protos ensure --version {version} --dir {path.parent.parent}` "
            "(the image builds them at docker build time), or point SELDON_PROTOS_DIR at the folder that has them"
        ) from None
    try:
        return SeldonProtos(data, version)
    except Exception as exc:  # a truncated or foreign file: say so instead of failing later on every event
        raise SettingsError(f"{path} is not a usable Seldon descriptor set ({exc}); rebuild it with build") from None


def load_from_env(env: Mapping[str, str]) -> SeldonProtos:
    """The decoder both services build at start from SELDON_PROTO_VERSION and SELDON_PROTOS_DIR."""
    version = check_version((env.get("SELDON_PROTO_VERSION") or "").strip() or DEFAULT_VERSION)
    return load(descriptor_path(default_dir(env), version), version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m feedback.seldon_protos", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("ensure", "build", "path"))
    parser.add_argument("--version", default=os.environ.get("SELDON_PROTO_VERSION") or DEFAULT_VERSION)
    parser.add_argument("--dir", type=Path, default=None, help="default: SELDON_PROTOS_DIR or the project cache")
    args = parser.parse_args(argv)
    directory = args.dir or default_dir(os.environ)
    try:
        if args.command == "path":
            print(descriptor_path(directory, check_version(args.version)))
        elif args.command == "ensure":
            print(ensure(args.version, directory))
        else:
            print(build(args.version, directory))
    except (ProtoBuildError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
