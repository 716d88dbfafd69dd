"""What the charts rely on is what the images hold: paths, ports, user and group ids, read-only root, temp dirs.

What: `helm template` of our charts (and smoke_tests/k8s/job.yaml) on one side, the images built here on the
other: their config (`buildah inspect`), their files (/etc/passwd, /etc/group, the working folder) and the image
run the way the pod spec runs it (its user, command, read-only root and emptyDir folders) in a network namespace
of its own, configured only as the chart or the Seldon operator configures it.
Wait: each server until the chart's liveness probe path answers on the chart's port (bounded).
Assert: the image's USER is the pod's runAsUser (and runAsGroup), both ids exist in the image, the chart's
fsGroup is the image user's group; the ports the server listens on are the chart's containerPorts; the probe paths
answer on them; with readOnlyRootFilesystem the server starts and serves with only its emptyDir folders writable.
Cleanup: every container is stopped and removed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.images.build import BuildResult
from devstack.images.containers import Container
from devstack.images.tools import Buildah
from devstack.runtime.paths import REPO_ROOT
from tests.fixtures.charts import RenderFn
from tests.images.chart_runs import container_of, options_from_pod, pod_of, stopped_at_the_end, user_of

# the first image test builds the images when they changed (a cold build is minutes): its timeout covers that
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

PROBE = Path(__file__).with_name("model_probe.py")
START_TIMEOUT_S = 180.0
# What the Seldon operator (1.17.1) sets on a Python-wrapper container from its named ports (predictiveUnit
# httpPort 9000 / grpcPort 9500; the metrics port by name): ../shared/reference/seldon-core-v1.md
OPERATOR_PORT_VARIABLES = {
    "http": ("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", "PREDICTIVE_UNIT_SERVICE_PORT"),
    "grpc": ("PREDICTIVE_UNIT_GRPC_SERVICE_PORT",),
    "metrics": ("PREDICTIVE_UNIT_METRICS_SERVICE_PORT",),
}
NOWHERE = {  # required addresses, pointing at nothing in the container's own namespace
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    "INDEXER_SEARCH_ENGINE": "opensearch",
    "INDEXER_SEARCH_URL": "http://127.0.0.1:9",
}


def users(passwd: str) -> dict[int, tuple[str, int]]:
    """{uid: (name, primary gid)} of an /etc/passwd text."""
    found = {}
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 4:
            found[int(fields[2])] = (fields[0], int(fields[3]))
    return found


def groups(group: str) -> set[int]:
    return {int(line.split(":")[2]) for line in group.splitlines() if line.count(":") >= 3}


def probe(box: Container, *args: str) -> str:
    done = subprocess.run(
        box.in_network([sys.executable, str(PROBE), *args]), capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr[-1000:]
    return done.stdout.strip()


def answers(box: Container, port: int, path: str) -> bool:
    return probe(box, "status", str(port), path) == "200"


def assert_user_matches(box: Container, pod: dict[str, Any], container: dict[str, Any]) -> None:
    declared = user_of(pod, container)
    assert declared is not None, "the pod spec must name its user"
    assert box.config.user == declared, f"image USER {box.config.user!r}, pod runs as {declared!r}"
    uid, _, gid = declared.partition(":")
    accounts = users(box.read_file("/etc/passwd"))
    assert int(uid) in accounts, f"uid {uid} has no account in the image"
    if gid:
        assert int(gid) in groups(box.read_file("/etc/group")), f"gid {gid} has no group in the image"
    fs_group = (pod.get("securityContext") or {}).get("fsGroup")
    if fs_group is not None:
        assert accounts[int(uid)][1] == fs_group, f"fsGroup {fs_group} is not the image user's group"


def ports_of(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: int(port["containerPort"]) for port in container.get("ports", [])}


@pytest.fixture
def started(container_tools: Buildah, run_dir: Path) -> Iterator[Any]:
    boxes: list[Container] = []

    def start(reference: str, pod: dict[str, Any], container: dict[str, Any], env: dict[str, str]) -> Container:
        options = options_from_pod(pod, container, env, network="isolated")
        box = Container(container_tools, reference, run_dir / "images", options)
        boxes.append(box)
        port = ports_of(container)[container["livenessProbe"]["httpGet"]["port"]]
        path = container["livenessProbe"]["httpGet"]["path"]
        box.start(container.get("command"), ready=lambda: answers(box, port, path), timeout=START_TIMEOUT_S)
        return box

    with stopped_at_the_end(boxes):
        yield start


def test_the_classifier_image_is_what_the_seldondeployment_expects(
    built_images: dict[str, BuildResult], chart_render: RenderFn, started: Any
) -> None:
    [deployment] = [obj for obj in chart_render("text-classifier") if obj["kind"] == "SeldonDeployment"]
    pod = deployment["spec"]["predictors"][0]["componentSpecs"][0]["spec"]
    container = container_of(pod, deployment["spec"]["predictors"][0]["graph"]["name"])
    ports = ports_of(container)
    env = {name: str(ports[port]) for port, names in OPERATOR_PORT_VARIABLES.items() for name in names}
    box = started(built_images["text-classifier"].reference, pod, container, env)

    assert_user_matches(box, pod, container)
    assert box.config.workdir == "/microservice"
    artifacts = box.config.env["MODEL_ARTIFACTS_DIR"]
    assert box.exists(f"{artifacts}/model.joblib") and box.exists(f"{artifacts}/metadata.json")
    assert json.loads(probe(box, "listening")) == sorted(ports.values())
    for probe_kind in ("readinessProbe", "livenessProbe"):
        get = container[probe_kind]["httpGet"]
        assert answers(box, ports[get["port"]], get["path"]), f"{probe_kind} {get} does not answer"


@pytest.mark.parametrize("component", ["collector", "indexer"])
def test_the_feedback_image_is_what_the_feedback_pipeline_chart_expects(
    component: str, built_images: dict[str, BuildResult], chart_render: RenderFn, started: Any
) -> None:
    pod = pod_of(chart_render("feedback-pipeline"), "Deployment", f"feedback-pipeline-{component}")
    container = container_of(pod, component)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and "/tmp" in [m["mountPath"] for m in container["volumeMounts"]]
    box = started(built_images["feedback"].reference, pod, container, NOWHERE)  # read-only root, /tmp writable

    assert_user_matches(box, pod, container)
    assert box.config.workdir == "/app" and box.exists("/app/feedback/__init__.py")
    assert set(ports_of(container).values()) <= set(box.config.exposed), "the image must EXPOSE the chart's ports"
    assert json.loads(probe(box, "listening")) == sorted(ports_of(container).values())
    readiness = container["readinessProbe"]["httpGet"]
    status = probe(box, "status", str(ports_of(container)[readiness["port"]]), readiness["path"])
    assert status == "503", f"readiness must say not ready without Kafka/search, got {status}"


def test_the_smoke_image_is_what_the_job_expects(
    built_images: dict[str, BuildResult], container_tools: Buildah, run_dir: Path
) -> None:
    [job] = [
        doc
        for doc in yaml.safe_load_all((REPO_ROOT / "smoke_tests" / "k8s" / "job.yaml").read_text())
        if doc and doc["kind"] == "Job"
    ]
    pod = job["spec"]["template"]["spec"]
    container = container_of(pod, "smoke")
    with Container(container_tools, built_images["smoke-tests"].reference, run_dir / "images") as box:
        assert_user_matches(box, pod, container)
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["HOME"] in [mount["mountPath"] for mount in container["volumeMounts"]], "HOME must be writable"
        assert box.config.workdir == "/app" and box.config.env.get("PYTHONPATH") == "/app"
        assert box.exists("/app/smoke_tests/conftest.py") and box.exists("/usr/local/bin/kubectl")
        assert box.config.entrypoint[:4] == ("python", "-m", "pytest", "smoke_tests")
