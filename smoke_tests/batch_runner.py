"""Run one batch job on the target: the local stack's command line or the Argo WorkflowTemplate on a cluster.

Both do the same thing: fetch the input file from the object store, run `seldon-batch-processor` against the
classifier's REST endpoint with the batch id, and store the output file in the object store. Both are other
processes: `python -m devstack batch run` (interpreter and folder from the target's batch section) or kubectl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

from smoke_tests.target import Target


@dataclass(frozen=True)
class BatchRequest:
    input_key: str
    output_key: str
    batch_id: str
    workers: int
    timeout_s: float


def run(target: Target, request: BatchRequest) -> None:
    """Run the batch job and return when the output object has been written (raise with the reason otherwise)."""
    if target.batch is None:
        raise AssertionError(f"target {target.name} has no batch section")
    if target.batch.runner == "local":
        _run_local(target, request)
    else:
        _run_argo(target, request)


def local_command(target: Target, request: BatchRequest) -> list[str]:
    """The devstack command line of one local batch run (credentials go in the environment, never in argv)."""
    batch, store = target.batch, target.object_store
    assert batch is not None
    return [
        batch.python or sys.executable,
        "-m",
        "devstack",
        "batch",
        "run",
        "--endpoint",
        store.endpoint,
        "--bucket",
        store.bucket,
        "--region",
        store.region,
        "--input-key",
        request.input_key,
        "--output-key",
        request.output_key,
        "--batch-id",
        request.batch_id,
        "--workers",
        str(request.workers),
        "--host",
        batch.rest_host,
        "--deployment",
        batch.deployment,
        "--namespace",
        batch.namespace,
        "--timeout",
        f"{request.timeout_s:g}",
    ]


def _run_local(target: Target, request: BatchRequest) -> None:
    """`python -m devstack batch run ...` as a subprocess, as the suite calls kubectl on a cluster: the suite
    imports nothing of the local stack."""
    assert target.batch is not None
    argv = local_command(target, request)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": target.object_store.access_key,
        "AWS_SECRET_ACCESS_KEY": target.object_store.secret_key,
    }
    where = target.batch.workdir or None
    try:
        result = subprocess.run(
            argv, cwd=where, env=env, capture_output=True, text=True, timeout=request.timeout_s + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"local batch run {request.batch_id} still running after {request.timeout_s + 60:.0f} s and was stopped; "
            f"last lines:\n{_last_lines(exc.stdout, exc.stderr)}"
        ) from None
    except OSError as exc:
        raise AssertionError(
            f"local batch run: cannot start {argv[0]} in {where or os.getcwd()} ({exc.strerror}); set batch.python "
            "and batch.workdir in the target to an interpreter and checkout that have devstack"
        ) from None
    if result.returncode != 0:
        raise AssertionError(
            f"local batch run {request.batch_id} failed (exit {result.returncode}) in {where or os.getcwd()}: "
            f"{' '.join(argv[:5])} ...; last lines:\n{_last_lines(result.stdout, result.stderr)}"
        )


def _last_lines(stdout: str | bytes | None, stderr: str | bytes | None, count: int = 20) -> str:
    text = "\n".join(
        part.decode("utf-8", "replace") if isinstance(part, bytes) else part for part in (stdout, stderr) if part
    )
    return "\n".join(text.splitlines()[-count:])


def _kubectl(target: Target, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    argv = ["kubectl"]
    if target.cluster and target.cluster.context:
        argv += ["--context", target.cluster.context]
    result = subprocess.run([*argv, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()[:500]}")
    return result.stdout


def workflow_manifest(target: Target, request: BatchRequest, name: str) -> dict:
    """A Workflow that runs the batch WorkflowTemplate with this request's parameters."""
    assert target.batch is not None
    parameters = {
        "input-path": request.input_key,
        "output-path": request.output_key,
        "batch-id": request.batch_id,
        "workers": str(request.workers),
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": target.batch.workflow_namespace,
            "labels": {"app.kubernetes.io/part-of": "seldon-feedback", "seldon-feedback/smoke": "true"},
        },
        "spec": {
            "workflowTemplateRef": {"name": target.batch.workflow_template},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in parameters.items()]},
        },
    }


def _run_argo(target: Target, request: BatchRequest) -> None:
    assert target.batch is not None
    name = f"smoke-batch-{uuid.uuid4().hex[:8]}"
    namespace = target.batch.workflow_namespace
    _kubectl(target, "create", "-f", "-", stdin=json.dumps(workflow_manifest(target, request, name)))
    deadline = time.monotonic() + request.timeout_s
    phase = ""
    sleep = 2.0
    try:
        while time.monotonic() < deadline:
            phase = _kubectl(target, "get", "workflow", name, "-n", namespace, "-o", "jsonpath={.status.phase}").strip()
            if phase == "Succeeded":
                return
            if phase in {"Failed", "Error"}:
                message = _kubectl(target, "get", "workflow", name, "-n", namespace, "-o", "jsonpath={.status.message}")
                raise AssertionError(f"batch workflow {namespace}/{name} {phase}: {message}")
            time.sleep(sleep)
            sleep = min(sleep * 1.5, 10.0)
        raise AssertionError(
            f"batch workflow {namespace}/{name} still {phase or 'pending'} after {request.timeout_s:.0f} s"
        )
    finally:  # best effort, in the target's context (the workflow must not be left behind in the cluster)
        context = ["--context", target.cluster.context] if target.cluster and target.cluster.context else []
        subprocess.run(
            ["kubectl", *context, "delete", "workflow", name, "-n", namespace, "--ignore-not-found", "--wait=false"],
            capture_output=True,
            timeout=60,
            check=False,
        )
