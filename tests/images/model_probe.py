"""Asks a running text classifier for predictions over REST and gRPC and prints what it answered, as JSON.

Run by the image tests with the model's virtualenv (it has seldon-core's protos), in whatever network namespace
the server is in: the local model service on the host, the image's in its own namespace (through nsenter). The
same client for both, so their answers can be compared as they are. Holds no assertions: the tests do.

    python model_probe.py ready HTTP_PORT                    exit 0 when GET /health/ping answers 200
    python model_probe.py predict HTTP_PORT GRPC_PORT < {"texts": [...]}
    python model_probe.py status PORT PATH                   print the HTTP status of GET http://127.0.0.1:PORT/PATH
    python model_probe.py listening                          the TCP ports listening in this namespace
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request


def ready(http_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health/ping", timeout=3) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return -1


def rest(http_port: int, texts: list[str]) -> dict[str, object]:
    body = json.dumps({"data": {"ndarray": texts}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/api/v1.0/predictions", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return dict(json.loads(answer.read()))


def grpc_predict(grpc_port: int, texts: list[str]) -> dict[str, object]:
    import grpc
    from google.protobuf import json_format
    from seldon_core.proto import prediction_pb2, prediction_pb2_grpc

    message = json_format.ParseDict({"data": {"ndarray": texts}}, prediction_pb2.SeldonMessage())
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        reply = prediction_pb2_grpc.ModelStub(channel).Predict(message, timeout=60)
    return dict(json_format.MessageToDict(reply))


def listening() -> list[int]:
    """Ports in LISTEN state (st 0A) in /proc/net/tcp and tcp6 of this network namespace."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as table:
                lines = table.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def main(argv: list[str]) -> int:
    command = argv[1]
    if command == "ready":
        return ready(int(argv[2]))
    if command == "predict":
        texts = json.load(sys.stdin)["texts"]
        print(json.dumps({"rest": rest(int(argv[2]), texts), "grpc": grpc_predict(int(argv[3]), texts)}))
        return 0
    if command == "status":
        print(status(int(argv[2]), argv[3]))
        return 0
    if command == "listening":
        print(json.dumps(listening()))
        return 0
    print(f"unknown command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
