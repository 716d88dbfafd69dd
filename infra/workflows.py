"""Argo Workflows (pinned chart and images), watching the application namespace where batch workflows run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.config import WorkflowsSettings

ARGO_REPO = "https://argoproj.github.io/argo-helm"


@dataclass(frozen=True, kw_only=True)
class WorkflowsArgs:
    """Inputs of Argo Workflows.

    settings: validated workflows:* config (chart version, image tag, server on/off).
    namespace: namespace of the controller and server.
    watched_namespaces: namespaces whose Workflows the controller runs (gets RBAC there).
    """

    settings: WorkflowsSettings
    namespace: pulumi.Input[str]
    watched_namespaces: Sequence[pulumi.Input[str]]


class Workflows(pulumi.ComponentResource):
    """The argo-workflows chart: CRDs, controller and (optionally) server."""

    chart: k8s.helm.v4.Chart
    watched_namespaces: pulumi.Output[list[str]]

    def __init__(self, name: str, args: WorkflowsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:workflows:Workflows", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-argo",
            chart="argo-workflows",
            version=s.chart_version,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=ARGO_REPO),
            namespace=args.namespace,
            values={
                "images": {"tag": s.image_tag},
                "crds": {"install": True, "keep": True},
                "singleNamespace": False,
                "controller": {"workflowNamespaces": list(args.watched_namespaces)},
                # The batch-workflow chart brings its own ServiceAccount and least-privilege Role.
                "workflow": {"serviceAccount": {"create": False}, "rbac": {"create": False}},
                "server": {"enabled": s.server},
            },
            opts=child,
        )
        self.watched_namespaces = pulumi.Output.all(*args.watched_namespaces)
        self.register_outputs({"watched_namespaces": self.watched_namespaces})
