"""Infrastructure checks with testinfra: the right things run, where they should, as they should.

What: on a local target, the listening sockets and processes the local stack reported; on a cluster target, the
pods of each component (through testinfra's kubectl backend for the in-container checks).
Wait: nothing (the other smoke modules already waited for the data path); pods are read once.
Assert: local: every expected port listens on 127.0.0.1 and on no other address, every process is running;
cluster: each component has at least one pod, every pod is Running with all containers ready, and every
container runs as a non-root user (uid != 0, checked inside the container, or runAsNonRoot/runAsUser in its
security context when it has no shell).
Cleanup: nothing is created.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
import testinfra

from smoke_tests.target import ClusterComponent, Target


@pytest.fixture(scope="module")
def local_host(target: Target) -> Any:
    if target.kind != "local" or target.local is None:
        pytest.skip(f"target {target.name} is a {target.kind} target: local socket/process checks do not apply")
    return testinfra.get_host("local://")


@pytest.fixture(scope="module")
def cluster_components(target: Target) -> dict[str, ClusterComponent]:
    if target.kind != "cluster" or target.cluster is None:
        pytest.skip(f"target {target.name} is a {target.kind} target: pod checks need a cluster")
    if not target.cluster.components:
        pytest.skip(f"target {target.name} names no cluster components to check (cluster.components)")
    return dict(target.cluster.components)


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}  # Java servers report the IPv4-mapped form
WILDCARD = {"0.0.0.0", "::", "*", "::ffff:0.0.0.0"}


def test_local_ports_listen_on_loopback_only(local_host: Any, target: Target) -> None:
    assert target.local is not None
    assert target.local.listeners, f"target {target.name} lists no local listeners to check (local.listeners)"
    by_port: dict[int, set[str]] = {}
    for url in local_host.socket.get_listening_sockets():
        if url.startswith("tcp://"):
            address, _, port = url[len("tcp://") :].rpartition(":")
            by_port.setdefault(int(port), set()).add(address.strip("[]"))
    problems = []
    for name, port in sorted(target.local.listeners.items()):
        addresses = by_port.get(port, set())
        if not addresses & LOOPBACK:
            problems.append(f"{name}: nothing listens on 127.0.0.1:{port}")
        if addresses & WILDCARD:
            problems.append(f"{name}: port {port} listens on all interfaces ({sorted(addresses & WILDCARD)})")
        if addresses - LOOPBACK - WILDCARD:
            problems.append(f"{name}: port {port} listens on {sorted(addresses - LOOPBACK - WILDCARD)}")
    assert problems == []


def test_local_processes_run(local_host: Any, target: Target) -> None:
    assert target.local is not None
    assert target.local.processes, f"target {target.name} lists no local processes to check (local.processes)"
    dead = []
    for name, pid in sorted(target.local.processes.items()):
        found = local_host.process.filter(pid=pid)
        if not found:
            dead.append(f"{name} (pid {pid})")
    assert dead == [], f"local stack processes not running: {dead}"


def _pods(target: Target, component: ClusterComponent) -> list[dict[str, Any]]:
    host = testinfra.get_host("local://")  # kubectl runs here; in-container checks use the kubectl backend
    context = f"--context {shlex.quote(target.cluster.context)} " if target.cluster and target.cluster.context else ""
    out = host.check_output(
        f"kubectl {context}get pods -n {shlex.quote(component.namespace)} -l {shlex.quote(component.selector)} -o json"
    )
    return json.loads(out)["items"]


def test_cluster_pods_are_running_and_ready(cluster_components: dict[str, ClusterComponent], target: Target) -> None:
    problems = []
    for name, component in sorted(cluster_components.items()):
        pods = _pods(target, component)
        if not pods:
            problems.append(f"{name}: no pod in {component.namespace} matches {component.selector}")
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            phase = pod.get("status", {}).get("phase")
            if phase != "Running":
                problems.append(f"{name}: pod {pod_name} is {phase}")
            for status in pod.get("status", {}).get("containerStatuses", []):
                if not status.get("ready"):
                    problems.append(f"{name}: container {status['name']} of {pod_name} is not ready")
    assert problems == []


def _declares_non_root(pod: dict[str, Any], container: dict[str, Any]) -> bool:
    pod_ctx = pod["spec"].get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    return (uid is not None and uid != 0) or (non_root is True and uid != 0)


def test_cluster_containers_run_as_non_root(cluster_components: dict[str, ClusterComponent], target: Target) -> None:
    problems = []
    for name, component in sorted(cluster_components.items()):
        for pod in _pods(target, component):
            pod_name = pod["metadata"]["name"]
            for container in pod["spec"]["containers"]:
                url = f"kubectl://{pod_name}?container={container['name']}&namespace={component.namespace}"
                if target.cluster and target.cluster.context:
                    url += f"&context={target.cluster.context}"
                inside = testinfra.get_host(url)
                result = inside.run("id -u")
                if result.rc == 0:
                    if result.stdout.strip() == "0":
                        problems.append(f"{name}: {pod_name}/{container['name']} runs as root (id -u = 0)")
                elif not _declares_non_root(pod, container):
                    problems.append(
                        f"{name}: {pod_name}/{container['name']} has no shell to check and does not declare "
                        "runAsNonRoot/runAsUser"
                    )
    assert problems == []
