"""The namespaces of the platform: one per operator plus the application namespace that holds the data plane."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True, kw_only=True)
class NamespacesArgs:
    """Namespaces to create.

    names: role (e.g. "app", "kafkaOperator") to namespace name (DNS label); several roles may share one name.
    labels: labels for every namespace (string to string).
    """

    names: Mapping[str, str]
    labels: Mapping[str, str]


class Namespaces(pulumi.ComponentResource):
    """Creates each distinct namespace once and exposes its name as an Output per role, so that everything placed
    in a namespace depends on it through data."""

    names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:namespaces:Namespaces", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        created: dict[str, k8s.core.v1.Namespace] = {}
        for namespace in sorted(set(args.names.values())):
            created[namespace] = k8s.core.v1.Namespace(
                f"{name}-{namespace}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels=dict(args.labels)),
                opts=child,
            )
        self.names = {role: created[namespace].metadata.name for role, namespace in args.names.items()}
        self.register_outputs({"names": self.names})
