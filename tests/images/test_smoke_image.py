"""The smoke-suite image, built here from smoke_tests/Dockerfile, runs the suite against the local stack and passes.

What: the image's own entrypoint (pytest over smoke_tests), run as smoke_tests/k8s/job.yaml runs it: its user,
environment (SMOKE_TARGET=/etc/smoke/target.yaml, HOME=/tmp), a read-only root filesystem with an empty writable
/tmp, the target file mounted read-only where the Job mounts its Secret, with a Secret volume's file mode. The
target is this session's local stack (tests/fixtures/local_stack.py) without two sections the Job never has: `batch`
runs `python -m devstack batch run` with this checkout's interpreter, which is not in the image (in a cluster the
suite runs the batch through Argo with kubectl); `local` lists the stack's host ports and processes for testinfra,
which reads them with `ss` and `ps`, commands the image does not ship (in a cluster the infra checks run in the
pods through kubectl). The host-side smoke run of `make test` covers both against the same stack.
Wait: the suite's own waits, the whole run bounded.
Assert: the suite exits 0 with no failure or error; the checks that need no executor ran and passed (real-time
REST and gRPC, the collector-to-index pipeline), and every skip is one the target explains (no executor in front
of the model, so no streaming deployment; no batch or local section; no cluster); kubectl is in the image.
Cleanup: the working container is removed; the stack is the session's.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import yaml

from devstack.images.build import BuildResult
from devstack.images.containers import Container, HostMount
from devstack.images.tools import Buildah
from devstack.loop import LoopStack
from devstack.runtime.paths import REPO_ROOT
from smoke_tests.target import write
from tests.images.chart_runs import container_of, options_from_pod

# the first image test builds the images when they changed (a cold build is minutes): its timeout covers that
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

JOB = REPO_ROOT / "smoke_tests" / "k8s" / "job.yaml"
RUN_TIMEOUT_S = 1500.0
# why a check may skip against this target: the reasons the suite gives (smoke_tests/skips.py, test_*.py)
EXPLAINED_SKIPS = (
    "no Seldon executor",
    "the bare model",
    "has no streaming deployment",
    "has no batch section",
    "need a cluster",
    "a local target",
    "no flow back WorkflowTemplate",  # the template runs only on a cluster (smoke_tests/test_flowback.py)
)
SECRET_DEFAULT_MODE = 0o644  # a Secret volume's file mode when the pod spec sets no defaultMode (Kubernetes API)


def job_pod() -> dict[str, object]:
    [job] = [doc for doc in yaml.safe_load_all(JOB.read_text()) if doc and doc["kind"] == "Job"]
    return dict(job["spec"]["template"]["spec"])


def secret_file_mode(pod: dict[str, object], volume_name: str) -> int:
    """The mode the kubelet gives the files of the pod's Secret volume `volume_name`."""
    [volume] = [volume for volume in pod["volumes"] if volume["name"] == volume_name]  # type: ignore[attr-defined]
    return int(volume["secret"].get("defaultMode", SECRET_DEFAULT_MODE))


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """{test id: (passed | skipped | failed | error, message)} from pytest's JUnit XML."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        state, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                state, message = {"failure": "failed"}.get(kind, kind), element.get("message", "")
        found[test_id] = (state, message)
    return found


def test_the_image_runs_the_suite_against_the_local_stack_and_passes(
    built_images: dict[str, BuildResult], container_tools: Buildah, loop_stack: LoopStack, run_dir: Path
) -> None:
    secret = run_dir / "images" / "smoke-target"
    secret.mkdir(parents=True, exist_ok=True)
    pod = job_pod()
    # write() keeps the file 0600 on the host (credentials); in the pod it is a Secret volume's file, with that mode
    written = write(dataclasses.replace(loop_stack.target(), batch=None, local=None), secret / "target.yaml")
    written.chmod(secret_file_mode(pod, "target"))
    spec = container_of(pod, "smoke")
    env = {item["name"]: item["value"] for item in spec["env"]}
    [target_mount] = [mount for mount in spec["volumeMounts"] if mount["name"] == "target"]
    options = options_from_pod(pod, spec, env, mounts=(HostMount(secret, target_mount["mountPath"]),))
    with Container(container_tools, built_images["smoke-tests"].reference, run_dir / "images", options) as box:
        assert box.exists("/usr/local/bin/kubectl")
        done = box.run([*box.config.command, "--junitxml=/tmp/results.xml"], timeout=RUN_TIMEOUT_S)
        junit = box.home / "volumes" / "tmp" / "results.xml"
        assert junit.is_file(), f"the suite wrote no report (exit {done.returncode}):\n{done.stdout[-3000:]}"
        results = outcomes(junit)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    problems = {test: message for test, (state, message) in results.items() if state in ("failed", "error")}
    assert problems == {}, f"{summary}\n{done.stdout[-4000:]}"
    assert done.returncode == 0, f"{summary}\n{done.stderr[-2000:]}"
    unexplained = {
        test: message
        for test, (state, message) in results.items()
        if state == "skipped" and not any(reason in message for reason in EXPLAINED_SKIPS)
    }
    assert unexplained == {}, "skips the target does not explain"
    passed = Counter(test.split("::")[0] for test, (state, _) in results.items() if state == "passed")
    for module in ("test_realtime", "test_pipeline"):
        assert any(module in name for name in passed), f"no check of {module} passed: {dict(passed)}"
