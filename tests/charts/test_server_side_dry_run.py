"""Every chart profile, as `helm template` renders it, is admitted by a real kube-apiserver: a server-side apply
with `--dry-run=server` into a namespace of the local control plane that has the upstream CRDs installed, so
built-in validation, the CRDs' own schemas (SeldonDeployment, WorkflowTemplate, ServiceMonitor) and admission
all run. The offline JSON-schema check (test_chart_validity.py) cannot see what only the server enforces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devstack.servers.cluster import ClusterServer
from tests.fixtures.charts import RenderFn, chart_profiles, profile_id

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

CASES = chart_profiles()


def dry_run_apply(cluster: ClusterServer, objects: list[dict[str, Any]]) -> tuple[int, str]:
    """(exit code, kubectl's report) of a server-side apply that persists nothing."""
    text = "\n---\n".join(json.dumps(obj) for obj in objects)
    result = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=chart-test", "-f", "-",
        input_text=text, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(("chart", "profile"), CASES, ids=[f"{c}-{profile_id(p)}" for c, p in CASES])
def test_the_api_server_admits_every_rendered_object(
    cluster: ClusterServer,
    cluster_crds: list[str],
    cluster_namespace: str,
    chart_render: RenderFn,
    chart: str,
    profile: Path | None,
) -> None:
    objects = chart_render(chart, profile=profile, namespace=cluster_namespace)
    code, report = dry_run_apply(cluster, objects)
    assert code == 0, f"{chart} {profile_id(profile)} rejected by the API server:\n{report}"
    admitted = [line for line in report.splitlines() if "serverside-applied (server dry run)" in line]
    assert len(admitted) == len(objects), report
    assert cluster.kubectl("get", "all", "-n", cluster_namespace, "-o", "name").stdout.strip() == ""  # dry run


@pytest.mark.parametrize(
    ("kind", "breakage"),
    [("Deployment", ("spec", "replicas", "two")), ("SeldonDeployment", ("spec", "predictors", "not-a-list"))],
)
def test_a_broken_object_is_rejected(
    cluster: ClusterServer,
    cluster_crds: list[str],
    cluster_namespace: str,
    chart_render: RenderFn,
    kind: str,
    breakage: tuple[str, str, str],
) -> None:
    """The check can fail: one wrong field in an otherwise admitted object, built-in and CRD-validated alike."""
    objects = chart_render("text-classifier", namespace=cluster_namespace) + chart_render(
        "feedback-pipeline", namespace=cluster_namespace
    )
    broken = next(obj for obj in objects if obj["kind"] == kind)
    section, field, value = breakage
    broken[section][field] = value
    code, report = dry_run_apply(cluster, [broken])
    assert code != 0, f"a {kind} with {section}.{field}={value!r} was admitted:\n{report}"
    assert field in report, report
