"""Reading what a container of our rendered charts finally gets: its environment (ConfigMap references resolved),
the executor's environment of a SeldonDeployment, WorkflowTemplate containers, and values at a dotted path."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Objects = list[dict[str, Any]]


def container_env(objects: Objects, container: Mapping[str, Any]) -> dict[str, Any]:
    """A container's environment with ConfigMap references resolved against the rendered ConfigMaps."""
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps.get(source["configMapRef"]["name"], {}))
    for item in container.get("env", []):
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef")
        if ref:
            env[item["name"]] = config_maps.get(ref["name"], {}).get(ref["key"])
        else:
            env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def workload_containers(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    """(workload name, container) of every Deployment and StatefulSet."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                yield obj["metadata"]["name"], container


def only(objects: Objects, kind: str, name_suffix: str = "") -> dict[str, Any]:
    """The one object of `kind` whose name ends with `name_suffix`."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def deployment_container(objects: Objects, component: str) -> dict[str, Any]:
    """The container of the feedback-pipeline Deployment `<fullname>-<component>`."""
    return only(objects, "Deployment", f"-{component}")["spec"]["template"]["spec"]["containers"][0]


def executor_env(objects: Objects) -> dict[str, Any]:
    """The Seldon executor's environment (svcOrchSpec.env) of the one SeldonDeployment's one predictor."""
    (predictor,) = only(objects, "SeldonDeployment")["spec"]["predictors"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in predictor["svcOrchSpec"].get("env", [])}


def workflow_container(objects: Objects, template: str) -> dict[str, Any]:
    """The container of WorkflowTemplate step `template`."""
    spec = only(objects, "WorkflowTemplate")["spec"]
    return next(t["container"] for t in spec["templates"] if t["name"] == template)


def at(node: Any, path: str) -> Any:
    """`node` at a dotted path ("spec.predictors.0.replicas"); None when a step is missing."""
    for step in path.split("."):
        if isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return None
    return node
