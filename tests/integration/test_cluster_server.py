"""The local control plane is a real one: workloads get Running and Ready pods on kwok's fake nodes, Jobs
complete, RBAC refuses what it should, deleted namespaces are finalized, and a failed start names its cause and
leaves no process behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devstack.runtime import go_build
from devstack.runtime.errors import DevstackError
from devstack.runtime.process import wait_until
from devstack.servers.cluster import ClusterServer, cluster_binaries

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

LABELS = {"app": "probe"}
POD_TEMPLATE = {
    "metadata": {"labels": LABELS},
    "spec": {"containers": [{"name": "probe", "image": "registry.example/probe:1.0.0"}]},
}


def workload(kind: str, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": POD_TEMPLATE}
    if kind in ("Deployment", "StatefulSet"):
        spec.update(replicas=2, selector={"matchLabels": LABELS})
    if kind == "StatefulSet":
        spec["serviceName"] = "probe"
    if kind == "Job":
        spec["template"] = {**POD_TEMPLATE, "spec": {**POD_TEMPLATE["spec"], "restartPolicy": "Never"}}
    api = "batch/v1" if kind == "Job" else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "probe", "namespace": namespace}, "spec": spec}


def pods(cluster: ClusterServer, namespace: str) -> list[dict[str, Any]]:
    return list((cluster.get(f"/api/v1/namespaces/{namespace}/pods") or {}).get("items", []))


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
def test_workloads_get_running_and_ready_pods_on_fake_nodes(
    cluster: ClusterServer, cluster_namespace: str, kind: str
) -> None:
    cluster.apply([workload(kind, cluster_namespace)])
    plural = kind.lower() + "s"
    path = f"/apis/apps/v1/namespaces/{cluster_namespace}/{plural}/probe"
    wait_until(lambda: (cluster.get(path) or {}).get("status", {}).get("readyReplicas") == 2, 90, f"{kind} ready")
    found = pods(cluster, cluster_namespace)
    assert len(found) == 2
    for pod in found:
        assert pod["status"]["phase"] == "Running" and ready(pod), pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] in cluster.node_names
        assert pod["status"]["podIP"].startswith("10.0.1."), "pod IPs come from kwok's --cidr"


def test_a_job_completes(cluster: ClusterServer, cluster_namespace: str) -> None:
    cluster.apply([workload("Job", cluster_namespace)])
    path = f"/apis/batch/v1/namespaces/{cluster_namespace}/jobs/probe"
    wait_until(lambda: (cluster.get(path) or {}).get("status", {}).get("succeeded") == 1, 90, "the Job succeeded")
    assert [pod["status"]["phase"] for pod in pods(cluster, cluster_namespace)] == ["Succeeded"]


def test_rbac_refuses_a_service_account_without_bindings(cluster: ClusterServer, cluster_namespace: str) -> None:
    user = f"system:serviceaccount:{cluster_namespace}:default"
    allowed = cluster.kubectl("auth", "can-i", "list", "secrets", "-n", cluster_namespace, "--as", user, check=False)
    assert allowed.stdout.strip() == "no"
    assert cluster.kubectl("auth", "can-i", "list", "secrets", "-A").stdout.strip() == "yes"  # admin


def test_a_deleted_namespace_is_finalized_with_its_objects(cluster: ClusterServer) -> None:
    cluster.create_namespace("finalize-me")
    cluster.apply([workload("Deployment", "finalize-me"), workload("Job", "finalize-me")])
    cluster.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "finalize-me"}}])
    wait_until(lambda: len(pods(cluster, "finalize-me")) == 3, 90, "three pods")
    cluster.delete_namespace("finalize-me")
    assert cluster.get("/api/v1/namespaces/finalize-me") is None
    assert pods(cluster, "finalize-me") == []


def test_the_kubeconfig_works_for_a_plain_kubectl(cluster: ClusterServer) -> None:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert [n["metadata"]["name"] for n in nodes] == cluster.node_names
    assert cluster.server.startswith("https://127.0.0.1:")
    assert f"server: '{cluster.server}'" in cluster.kubeconfig.read_text()


class BrokenApiserver(ClusterServer):
    """A cluster whose apiserver gets a flag it does not know."""

    def _apiserver_argv(self, binaries: Any) -> list[str]:
        return [*super()._apiserver_argv(binaries), "--no-such-flag=1"]


def test_a_failed_start_names_the_cause_and_leaves_nothing_running(tmp_path: Path, cluster: ClusterServer) -> None:
    broken = BrokenApiserver(tmp_path)
    with pytest.raises(DevstackError) as failure:
        broken.start(timeout=120)
    first_line = str(failure.value).splitlines()[0]
    assert first_line.startswith("kube-apiserver exited with code 1 while starting")
    assert "unknown flag: --no-such-flag" in first_line
    assert "python -m devstack logs kube-apiserver" in first_line
    assert [p.name for p in broken.processes] == ["etcd", "kube-apiserver"]
    assert not any(p.running() for p in broken.processes), "etcd must be stopped too"


def test_missing_binaries_fail_with_the_build_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_build, "built_bin_dir", lambda part: None if part.name == "kwok" else Path("/bin"))
    with pytest.raises(DevstackError, match=r"binaries are not built: kwok; build them once with `make go-tools`"):
        cluster_binaries()
