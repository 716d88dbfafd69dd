"""The flow back on the cluster: our `flowback-workflow` chart, an Argo WorkflowTemplate (export -> train ->
evaluate -> register, with its ServiceAccount, Role and rule ConfigMap) and, with flowback:schedule, a
CronWorkflow that runs it over the latest window. Its datasets and model registry live in their own bucket
(flowback:bucket, made by the ObjectStore), read and written with the object store's credentials Secret by
reference; the export reads the capture index with the search credentials by reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import chart_path, chart_version, image_values
from infra.config import FlowbackSettings, Image, Mirrors

FLOWBACK_TEMPLATE = "flowback-workflow"
FLOWBACK_CHART = "flowback-workflow"
MODEL_NAME = "text-classifier"  # the registry's model name (registry/<model>/<version>/), the canary's too


@dataclass(frozen=True, kw_only=True)
class FlowbackSearch:
    """How the export step reads the capture index.

    url, engine: the search cluster ("elasticsearch" or "opensearch"); index: the capture index.
    username: the user name as a value (ECK's "elastic"); secret_name, password_key: the Secret holding its password.
    ca_secret_name: Secret with the HTTP CA certificate (key ca.crt) when search TLS is on, else None.
    """

    url: pulumi.Input[str]
    engine: pulumi.Input[str]
    index: pulumi.Input[str]
    username: pulumi.Input[str]
    secret_name: pulumi.Input[str]
    password_key: pulumi.Input[str]
    ca_secret_name: pulumi.Input[str] | None = None


@dataclass(frozen=True, kw_only=True)
class FlowbackWorkflowArgs:
    """Inputs of the flow back's WorkflowTemplate.

    settings: validated flowback:* config (schedule, lookback, rule, bucket).
    namespace: application namespace (watched by Argo; the capture documents' deployment lives there).
    deployment: the real-time SeldonDeployment whose documents are exported (its predictors: main and canary).
    search: the capture index and its credentials by reference.
    objectstore_endpoint: the S3 endpoint; bucket: the registry bucket (an Output of the ObjectStore, so the
        template waits for it); objectstore_secret_name: the credentials Secret (keys accessKey and secretKey).
    flowback_image: the feedback image (`python -m feedback.flowback`); classifier_image: retrain.py and score.py.
    mirrors: where the images come from (platform:imageRegistry).
    """

    settings: FlowbackSettings
    namespace: pulumi.Input[str]
    deployment: pulumi.Input[str]
    search: FlowbackSearch
    objectstore_endpoint: pulumi.Input[str]
    bucket: pulumi.Input[str]
    objectstore_secret_name: pulumi.Input[str]
    flowback_image: Image
    classifier_image: Image
    mirrors: Mirrors = field(default_factory=Mirrors)


def flowback_values(args: FlowbackWorkflowArgs) -> dict[str, Any]:
    s, search = args.settings, args.search
    values: dict[str, Any] = {
        "fullnameOverride": FLOWBACK_TEMPLATE,
        "model": {"name": MODEL_NAME},
        "export": {"deployment": args.deployment},
        "search": {
            "engine": search.engine,
            "url": search.url,
            "index": search.index,
            "existingSecret": search.secret_name,
            "username": search.username,
            "passwordKey": search.password_key,
            "caSecret": search.ca_secret_name if search.ca_secret_name is not None else "",
            "caCertKey": "ca.crt",
        },
        "objectStore": {
            "endpoint": args.objectstore_endpoint,
            "bucket": args.bucket,
            "existingSecret": args.objectstore_secret_name,
            "accessKeyKey": "accessKey",
            "secretKeyKey": "secretKey",
        },
        "images": {
            "flowback": image_values(args.flowback_image, args.mirrors),
            "classifier": image_values(args.classifier_image, args.mirrors),
        },
    }
    if s.rule:
        values["rule"] = dict(s.rule)
    if s.schedule:
        values["schedule"] = {"cron": s.schedule, "timezone": s.timezone, "lookback": s.lookback}
    return values


class FlowbackWorkflow(pulumi.ComponentResource):
    """The flowback-workflow chart: the WorkflowTemplate, its RBAC and rule ConfigMap, and the optional
    CronWorkflow."""

    chart: k8s.helm.v4.Chart
    template_name: pulumi.Output[str]
    cron_workflow_name: pulumi.Output[str]  # "" without flowback:schedule

    def __init__(self, name: str, args: FlowbackWorkflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:flowback:FlowbackWorkflow", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-workflow",
            name=FLOWBACK_TEMPLATE,
            chart=chart_path(FLOWBACK_CHART),
            version=chart_version(FLOWBACK_CHART),
            namespace=args.namespace,
            values=flowback_values(args),
            opts=child,
        )
        scheduled = bool(args.settings.schedule)
        self.template_name = self.chart.urn.apply(lambda _urn: FLOWBACK_TEMPLATE)
        self.cron_workflow_name = self.chart.urn.apply(lambda _urn: FLOWBACK_TEMPLATE if scheduled else "")
        self.register_outputs({"template_name": self.template_name, "cron_workflow_name": self.cron_workflow_name})
