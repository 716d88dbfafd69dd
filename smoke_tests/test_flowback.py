"""The flow back's registry and workflow as deployed.

What: the registry bucket of the target's `flowback` section (Pulumi output `flowback`), in the object store with
the target's credentials; on a cluster, the flow back's WorkflowTemplate.
Wait: nothing (the bucket is made at deploy time; no workflow is submitted: a retrain takes minutes and needs
ground truth).
Assert: the bucket exists and is not the batch bucket; an object written under a run-unique key of the bucket
reads back byte for byte (the workflow's steps and the canary's init container use the same credentials); on a
cluster the WorkflowTemplate exists with the export -> train -> evaluate -> register steps and its steps write
FLOWBACK_BUCKET = that bucket.
Cleanup: the test object is deleted in `finally`.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest

from smoke_tests.target import FlowbackTarget, Target


@pytest.fixture(scope="module")
def flowback(target: Target) -> FlowbackTarget:
    if target.flowback is None:
        pytest.skip(f"target {target.name} has no flowback section (Pulumi output `flowback`)")
    return target.flowback


def test_the_registry_bucket_is_its_own_and_writable(target: Target, flowback: FlowbackTarget, object_store: Any):
    assert flowback.bucket != target.object_store.bucket, "the registry shares the batch bucket (decision 76)"
    object_store.head_bucket(Bucket=flowback.bucket)
    key = f"smoke/{uuid.uuid4().hex}.json"
    body = json.dumps({"smoke": key}).encode()
    try:
        object_store.put_object(Bucket=flowback.bucket, Key=key, Body=body)
        assert object_store.get_object(Bucket=flowback.bucket, Key=key)["Body"].read() == body
    finally:
        object_store.delete_object(Bucket=flowback.bucket, Key=key)


def test_the_workflow_template_writes_the_registry_bucket(target: Target, flowback: FlowbackTarget):
    if target.kind != "cluster" or not flowback.workflow_template:
        pytest.skip(f"target {target.name} has no flow back WorkflowTemplate (a cluster with flowback:enabled)")
    argv = ["kubectl"] + (["--context", target.cluster.context] if target.cluster and target.cluster.context else [])
    argv += ["get", "workflowtemplate", flowback.workflow_template, "-n", flowback.workflow_namespace, "-o", "json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"kubectl get workflowtemplate failed: {done.stderr.strip()[:500]}"
    template = json.loads(done.stdout)
    steps = {t["name"]: t for t in template["spec"]["templates"]}
    flow = [[step["template"] for step in group] for group in steps["flowback"]["steps"]]
    assert flow == [["export"], ["train"], ["evaluate"], ["register"]]
    env = {e["name"]: e.get("value") for e in steps["export"]["container"]["env"]}
    assert env["FLOWBACK_BUCKET"] == flowback.bucket and env["FLOWBACK_MODEL_NAME"] == flowback.model_name
