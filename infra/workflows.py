"""Argo Workflows (pinned chart and images), watching the application namespace where batch workflows run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import upstream_chart
from infra.config import Mirrors, WorkflowsSettings

ARGO_REPO = "https://argoproj.github.io/argo-helm"


@dataclass(frozen=True, kw_only=True)
class WorkflowsArgs:
    """Inputs of Argo Workflows.

    settings: validated workflows:* config (chart version, image tag, server on/off).
    namespace: namespace of the controller and server.
    watched_namespaces: namespaces whose Workflows the controller runs (gets RBAC there).
    mirrors: where the chart and the images come from (platform:chartSources, platform:imageRegistry).
    """

    settings: WorkflowsSettings
    namespace: pulumi.Input[str] | None
    watched_namespaces: Sequence[pulumi.Input[str]]
    mirrors: Mirrors = field(default_factory=Mirrors)


class Workflows(pulumi.ComponentResource):
    """The argo-workflows chart: CRDs, controller and (optionally) server; nothing with workflows:operator=existing
    (a controller that already watches the application namespace)."""

    chart: k8s.helm.v4.Chart | None
    watched_namespaces: pulumi.Output[list[str]]

    def __init__(self, name: str, args: WorkflowsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:workflows:Workflows", name, None, opts)
        s = args.settings
        mirrors = args.mirrors
        child = pulumi.ResourceOptions(parent=self)
        self.chart = None
        self.watched_namespaces = pulumi.Output.all(*args.watched_namespaces)
        if s.operator == "existing":
            self.register_outputs({"watched_namespaces": self.watched_namespaces})
            return
        # With a mirror, the controller, executor and server images are <registry>/argoproj/<image>.
        registry = {"image": {"registry": mirrors.image_registry}} if mirrors.image_registry else {}
        values: dict[str, object] = {
            "images": {"tag": s.image_tag},
            "crds": {"install": True, "keep": True},
            "singleNamespace": False,
            "controller": {"workflowNamespaces": list(args.watched_namespaces), **registry},
            # The batch-workflow chart brings its own ServiceAccount and least-privilege Role.
            "workflow": {"serviceAccount": {"create": False}, "rbac": {"create": False}},
            "server": {"enabled": s.server, **registry},
        }
        if registry:
            values["executor"] = registry
        self.chart = k8s.helm.v4.Chart(
            f"{name}-argo",
            **upstream_chart(mirrors, "argo-workflows", ARGO_REPO),
            version=s.chart_version,
            namespace=args.namespace,
            values=values,
            opts=child,
        )
        self.register_outputs({"watched_namespaces": self.watched_namespaces})
