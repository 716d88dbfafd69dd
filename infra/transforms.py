"""Cross-cutting policy as Pulumi resource transforms (the `transforms=[...]` resource option).

Each factory returns a pure function of `ResourceTransformArgs` that returns a `ResourceTransformResult` with new
props, or `None` to leave the resource alone. They are attached to every component in `infra/__main__.py`, so
they also reach the objects that `helm.v4.Chart` renders. Props arrive in the engine's (camelCase) spelling for
rendered objects; the snake_case spelling of the Python SDK is accepted too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi

Transform = Callable[[pulumi.ResourceTransformArgs], pulumi.ResourceTransformResult | None]

# Kinds that have no namespace: never give these a metadata.namespace.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "ClusterIssuer",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterWorkflowTemplate",
        "ComponentStatus",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)

# Workload kinds and the path from the object to its pod spec.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}

_SNAKE = {"jobTemplate": "job_template", "initContainers": "init_containers"}


def _kind(args: pulumi.ResourceTransformArgs) -> str | None:
    """The Kubernetes kind of a Kubernetes object, or None for anything else (components such as Chart v4 and
    ConfigGroup are not custom; a helm.v3.Release is custom but not an object)."""
    if not args.custom or not args.type_.startswith("kubernetes:") or args.type_.startswith("kubernetes:helm.sh"):
        return None
    kind = (args.props or {}).get("kind")
    return kind if isinstance(kind, str) else args.type_.rsplit(":", 1)[-1]


def _copy_tree(node: Any) -> Any:
    """A copy of the dicts and lists of `node`, sharing every other value. Under the real engine props hold
    `pulumi.Output`s (secrets, values not known yet), which refuse `copy.deepcopy`; they are leaves here."""
    if isinstance(node, dict):
        return {key: _copy_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy_tree(value) for value in node]
    return node


def _get(node: Mapping[str, Any], key: str) -> Any:
    value = node.get(key)
    if value is None and key in _SNAKE:
        value = node.get(_SNAKE[key])
    return value


def common_labels(labels: Mapping[str, str]) -> Transform:
    """Adds `labels` to metadata.labels of every Kubernetes object; labels the object already has win."""
    fixed = dict(labels)

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if _kind(args) is None or not fixed:
            return None
        props = _copy_tree(dict(args.props))
        metadata = dict(props.get("metadata") or {})
        existing = dict(metadata.get("labels") or {})
        merged = {**fixed, **existing}
        if merged == existing:
            return None
        metadata["labels"] = merged
        props["metadata"] = metadata
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def default_namespace(namespace: str) -> Transform:
    """Puts namespaced Kubernetes objects that name no namespace into `namespace`."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        kind = _kind(args)
        if kind is None or kind in CLUSTER_SCOPED_KINDS or kind.endswith("List"):
            return None
        props = _copy_tree(dict(args.props))
        metadata = dict(props.get("metadata") or {})
        if metadata.get("namespace"):
            return None
        metadata["namespace"] = namespace
        props["metadata"] = metadata
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def default_requests(cpu: str, memory: str) -> Transform:
    """Gives every container of a workload a cpu/memory request when it declares neither a request nor a limit
    for that resource (a declared limit already implies an equal request), so the scheduler can place it."""
    defaults = {"cpu": cpu, "memory": memory}

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        kind = _kind(args)
        if kind not in _POD_SPEC_PATHS:
            return None
        props = _copy_tree(dict(args.props))
        pod_spec: Any = props
        for step in _POD_SPEC_PATHS[kind]:
            pod_spec = _get(pod_spec, step) if isinstance(pod_spec, dict) else None
        if not isinstance(pod_spec, dict):
            return None
        changed = False
        for group in ("containers", "initContainers"):
            for container in _get(pod_spec, group) or []:
                resources = container.setdefault("resources", {}) if isinstance(container, dict) else None
                if resources is None:
                    continue
                requests = resources.setdefault("requests", {})
                limits = resources.get("limits") or {}
                for resource, value in defaults.items():
                    if resource not in requests and resource not in limits:
                        requests[resource] = value
                        changed = True
                if not requests:
                    resources.pop("requests")
        return pulumi.ResourceTransformResult(props=props, opts=args.opts) if changed else None

    return transform


def platform_transforms(*, labels: Mapping[str, str], namespace: str | None, cpu: str, memory: str) -> list[Transform]:
    """The transforms every component gets: common labels, default requests and, where the component owns one
    namespace, that namespace as the default."""
    transforms = [common_labels(labels), default_requests(cpu, memory)]
    if namespace:
        transforms.insert(1, default_namespace(namespace))
    return transforms
