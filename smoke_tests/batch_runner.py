"""Run one batch job on the target: the local steps (devstack.servers.batch) or the Argo WorkflowTemplate on a cluster.

Both do the same thing: fetch the input file from the object store, run `seldon-batch-processor` against the
classifier's REST endpoint with the batch id, and store the output file in the object store.
"""

from __future__ import annotations

import json
import subprocess
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


def _run_local(target: Target, request: BatchRequest) -> None:
    from devstack.servers.batch import BatchJob, ObjectStoreConfig, run_batch

    assert target.batch is not None
    store = target.object_store
    run_batch(
        BatchJob(
            store=ObjectStoreConfig(
                endpoint=store.endpoint,
                bucket=store.bucket,
                access_key=store.access_key,
                secret_key=store.secret_key,
                region=store.region,
            ),
            input_key=request.input_key,
            output_key=request.output_key,
            host=target.batch.rest_host,
            deployment=target.batch.deployment,
            namespace=target.batch.namespace,
            batch_id=request.batch_id,
            workers=request.workers,
        ),
        timeout_s=request.timeout_s,
    )


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
