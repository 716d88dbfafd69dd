"""The classifier image, built here from images/text-classifier/Dockerfile, serves the trained model.

What: the image's own command (`seldon-core-microservice TextClassifier --service-type MODEL`) with its default
configuration (REST 9000, gRPC 5000, metrics 6000), run with buildah in a network namespace of its own that holds
only a loopback interface. The clients run in that namespace too (nsenter), with the model's virtualenv.
Wait: until GET /health/ping answers 200 (bounded).
Assert: REST and gRPC answer the same probabilities and model version as the local model service (the same
client asks both, for the same texts from the shipped data); every process of the server runs as uid 8888, the
user the chart runs it as; the namespace it served from has no interface but loopback and no route out, so the
model needed no network at run time (spaCy's data ship in the image).
Cleanup: the server is stopped and its working container removed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textclf.dataset import read_labelled_csv

from devstack.images.build import BuildResult
from devstack.images.containers import Container, RunOptions
from devstack.images.tools import Buildah
from devstack.runtime.process import descendants
from devstack.servers.model import BUILD_CONTEXT, ModelServer

# the first image test builds the images when they changed (a cold build is minutes): its timeout covers that
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

PROBE = Path(__file__).with_name("model_probe.py")
# seldon-core-microservice's own defaults, which the Dockerfile EXPOSEs
HTTP_PORT, GRPC_PORT, METRICS_PORT = 9000, 5000, 6000
START_TIMEOUT_S = 180.0
TEXTS = [text for text, _ in read_labelled_csv(BUILD_CONTEXT / "data" / "comments.csv")[:40]]


def probe(argv: list[str], stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def classifier(
    built_images: dict[str, BuildResult], container_tools: Buildah, run_dir: Path, model_venv_python: Path
) -> Iterator[Container]:
    box = Container(
        container_tools, built_images["text-classifier"].reference, run_dir / "images", RunOptions(network="isolated")
    )
    ping = [str(model_venv_python), str(PROBE), "ready", str(HTTP_PORT)]
    try:
        box.start(ready=lambda: probe(box.in_network(ping), timeout=10).returncode == 0, timeout=START_TIMEOUT_S)
        yield box
    finally:
        box.stop()


def answers(argv: list[str]) -> dict[str, Any]:
    done = probe(argv, json.dumps({"texts": TEXTS}))
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


def test_the_image_exposes_the_microservice_defaults_it_serves_on(classifier: Container) -> None:
    assert set(classifier.config.exposed) == {HTTP_PORT, GRPC_PORT, METRICS_PORT}
    assert classifier.config.command == ["seldon-core-microservice", "TextClassifier", "--service-type", "MODEL"]


def test_rest_and_grpc_answer_as_the_local_model_service(
    classifier: Container, model_server: ModelServer, model_venv_python: Path
) -> None:
    python = str(model_venv_python)
    image = answers(classifier.in_network([python, str(PROBE), "predict", str(HTTP_PORT), str(GRPC_PORT)]))
    local = answers([python, str(PROBE), "predict", str(model_server.http_port), str(model_server.grpc_port)])
    for transport in ("rest", "grpc"):
        data = image[transport]["data"]
        assert data["names"] == ["t:0", "t:1"], transport
        assert len(data["ndarray"]) == len(TEXTS), transport
        for got, want in zip(data["ndarray"], local[transport]["data"]["ndarray"], strict=True):
            assert got == pytest.approx(want, abs=1e-9), transport
        assert image[transport]["meta"]["tags"] == local[transport]["meta"]["tags"], transport
    assert image["rest"]["meta"]["tags"]["model_version"].startswith("1.0.0+")


def _uid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])  # the real uid
    except OSError:
        return None
    return None


def _argv0(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return ""


def test_every_server_process_runs_as_uid_8888(classifier: Container) -> None:
    assert classifier.process is not None and classifier.process.pid is not None
    tree = descendants(classifier.process.pid)
    servers = [pid for pid in tree if "seldon-core-microservice" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()]
    servers = [pid for pid in servers if not _argv0(pid).startswith(("buildah", "unshare", "sh"))]
    assert len(servers) >= 2, f"expected the gunicorn master and a worker in {tree}"  # REST master + worker at least
    assert {pid: _uid(pid) for pid in servers} == {pid: 8888 for pid in servers}
    assert classifier.config.user == "8888"


def test_it_served_from_a_namespace_with_loopback_only(classifier: Container) -> None:
    links = probe(classifier.in_network(["ip", "-o", "link", "show"]))
    assert links.returncode == 0, links.stderr
    names = [line.split(":")[1].strip().split("@")[0] for line in links.stdout.splitlines()]
    assert names == ["lo"]
    for family in ("-4", "-6"):
        routes = probe(classifier.in_network(["ip", family, "route", "show", "table", "all"]))
        assert routes.returncode == 0, routes.stderr
        devices = {line.split(" dev ")[1].split()[0] for line in routes.stdout.splitlines() if " dev " in line}
        assert devices <= {"lo"}, routes.stdout
        assert not [line for line in routes.stdout.splitlines() if line.startswith("default")], routes.stdout
