"""The batch workflow: our `batch-workflow` chart, an Argo WorkflowTemplate (with its ServiceAccount and Role) whose
runs feed object-store input through `seldon-batch-processor` to the real-time SeldonDeployment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import chart_default, chart_path, chart_version, image_values
from infra.classifier import PREDICTOR
from infra.config import BatchSettings, Image, Mirrors

ALIAS = pulumi.Alias(type_="feedback:feedback:BatchWorkflow")


@dataclass(frozen=True, kw_only=True)
class BatchWorkflowArgs:
    """Inputs of the batch WorkflowTemplate.

    settings: validated batch:* config (workers, retries).
    namespace: application namespace (watched by Argo).
    seldon_deployment: the real-time SeldonDeployment the batch processor calls; rest_host its "host:port".
    processor_image: an image with seldon-core installed (the classifier image) to run seldon-batch-processor.
    objectstore_endpoint, bucket, objectstore_secret_name: the object store and its credentials by reference
        (keys accessKey and secretKey).
    mirrors: where the processor image comes from (platform:imageRegistry).
    """

    settings: BatchSettings
    namespace: pulumi.Input[str]
    seldon_deployment: str
    rest_host: pulumi.Input[str]
    processor_image: Image
    objectstore_endpoint: pulumi.Input[str]
    bucket: pulumi.Input[str]
    objectstore_secret_name: pulumi.Input[str]
    mirrors: Mirrors = field(default_factory=Mirrors)


BATCH_TEMPLATE = "batch-workflow"
BATCH_CHART = "batch-workflow"


def batch_values(args: BatchWorkflowArgs) -> dict[str, Any]:
    return {
        "fullnameOverride": BATCH_TEMPLATE,
        "seldonDeployment": {
            "name": args.seldon_deployment,
            "namespace": args.namespace,
            "predictorName": PREDICTOR,
            "gatewayType": "seldon",
            "host": args.rest_host,
        },
        "batch": {"workers": args.settings.workers, "retries": args.settings.retries},
        "objectStore": {
            "endpoint": args.objectstore_endpoint,
            "provider": "Minio",
            "bucket": args.bucket,
            "existingSecret": args.objectstore_secret_name,
            "accessKeyKey": "accessKey",
            "secretKeyKey": "secretKey",
        },
        "images": {"batchProcessor": image_values(args.processor_image, args.mirrors), **mirrored_images(args.mirrors)},
    }


def mirrored_images(mirrors: Mirrors) -> dict[str, Any]:
    """The chart's own image (rclone, for the download and upload steps) moved to platform:imageRegistry."""
    if not mirrors.image_registry:
        return {}
    return {"rclone": {"repository": mirrors.image(chart_default(BATCH_CHART, "images.rclone.repository"))}}


class BatchWorkflow(pulumi.ComponentResource):
    """The batch-workflow chart: an Argo WorkflowTemplate with its ServiceAccount and Role."""

    chart: k8s.helm.v4.Chart
    template_name: pulumi.Output[str]

    def __init__(self, name: str, args: BatchWorkflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The component lived in infra/feedback.py as feedback:feedback:BatchWorkflow: the alias keeps existing URNs.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[ALIAS]))
        super().__init__("feedback:batch:BatchWorkflow", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-workflow",
            name=BATCH_TEMPLATE,
            chart=chart_path(BATCH_CHART),
            version=chart_version(BATCH_CHART),
            namespace=args.namespace,
            values=batch_values(args),
            opts=child,
        )
        self.template_name = self.chart.urn.apply(lambda _urn: BATCH_TEMPLATE)
        self.register_outputs({"template_name": self.template_name})
