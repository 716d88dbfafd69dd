"""The text classifier: our `text-classifier` chart twice, a real-time (REST/gRPC) SeldonDeployment and, optionally,
a streaming one (serverType kafka), both logging to the collector or straight to Kafka."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import (
    KafkaClient,
    chart_path,
    chart_version,
    classifier_tls_client_values,
    image_values,
    kafka_security_values,
)
from infra.config import ClassifierSettings, Image, Mirrors
from infra.refs import service_host

REALTIME_DEPLOYMENT = "text-classifier"
STREAMING_DEPLOYMENT = "text-classifier-streaming"
PREDICTOR = "default"
SELDON_REST_PORT = 8000  # the executor's HTTP port on the <deployment>-<predictor> Service
SELDON_GRPC_PORT = 5001  # the executor's gRPC port on the same Service
ALIAS = pulumi.Alias(type_="feedback:feedback:Classifier")


def streaming_deployments(settings: ClassifierSettings) -> list[str]:
    """The streaming SeldonDeployments this component creates for `settings` (the indexer labels their events
    mode "streaming"): the program hands this list to the feedback pipeline before the classifier exists."""
    return [STREAMING_DEPLOYMENT] if settings.streaming else []


@dataclass(frozen=True, kw_only=True)
class CanaryRegistry:
    """The flow back's registry in the object store, for the canary's fetch-model init container.

    endpoint, bucket, secret_name: the object store and its credentials by reference (keys accessKey, secretKey).
    image: the feedback image (it runs `python -m feedback.flowback fetch-model`).
    """

    endpoint: pulumi.Input[str]
    bucket: pulumi.Input[str]
    secret_name: pulumi.Input[str]
    image: Image


@dataclass(frozen=True, kw_only=True)
class ClassifierArgs:
    """Inputs of the text classifier deployments.

    settings: validated classifier:* config (image, replicas, streaming, capture).
    namespace: application namespace.
    kafka: how the executors reach Kafka (streaming server and direct Kafka logging).
    model_input_topic, model_output_topic, capture_topic: topic names (Outputs of the KafkaTopics).
    collector_url: the collector Service URL the executor logger posts to.
    pod_disruption_budgets: a Seldon pdbSpec for the real-time model pods.
    registry: where a canary predictor (settings.canary_model_version) fetches its model from.
    mirrors: where the image comes from (platform:imageRegistry).
    """

    settings: ClassifierSettings
    namespace: pulumi.Input[str]
    kafka: KafkaClient
    model_input_topic: pulumi.Input[str]
    model_output_topic: pulumi.Input[str]
    capture_topic: pulumi.Input[str]
    collector_url: pulumi.Input[str]
    pod_disruption_budgets: bool = False
    registry: CanaryRegistry | None = None
    mirrors: Mirrors = field(default_factory=Mirrors)


def classifier_values(args: ClassifierArgs, *, streaming: bool) -> dict[str, Any]:
    s, kafka = args.settings, args.kafka
    kafka_values: dict[str, Any] = {
        "broker": kafka.bootstrap_servers,
        "securityProtocol": kafka.security_protocol,
        **kafka_security_values(kafka),
    }
    if tls_client := classifier_tls_client_values(kafka):
        kafka_values["tls"] = {**kafka_values.get("tls", {}), **tls_client}
    values: dict[str, Any] = {
        "deploymentName": STREAMING_DEPLOYMENT if streaming else REALTIME_DEPLOYMENT,
        "mode": "streaming" if streaming else "realtime",
        "predictorName": PREDICTOR,
        "replicas": s.streaming_replicas if streaming else s.replicas,
        "image": image_values(s.image, args.mirrors),
        # memory limit = request: a request above the chart's default limit would be rejected
        "resources": {"requests": s.resources.requests(), "limits": {"memory": s.resources.memory}},
        "pdb": {"enabled": args.pod_disruption_budgets and not streaming},
        "kafka": kafka_values,
        "logger": {
            "mode": s.logger_mode,
            "sink": s.capture_sink,
            "url": args.collector_url,
            "kafka": {"broker": kafka.bootstrap_servers, "topic": args.capture_topic},
        },
    }
    if s.canary_model_version is not None and not streaming:
        if args.registry is None:
            raise ValueError(
                "classifier:canaryModelVersion needs the object store's registry (ClassifierArgs.registry)"
            )
        values["canary"] = {
            "enabled": True,
            "traffic": s.canary_traffic,
            "modelVersion": s.canary_model_version,
            "registry": {
                "endpoint": args.registry.endpoint,
                "bucket": args.registry.bucket,
                "existingSecret": args.registry.secret_name,
                "accessKeyKey": "accessKey",
                "secretKeyKey": "secretKey",
                "image": image_values(args.registry.image, args.mirrors),
            },
        }
    if streaming:
        values["streaming"] = {
            "inputTopic": args.model_input_topic,
            "outputTopic": args.model_output_topic,
            "workers": s.streaming_workers,
        }
    return values


class Classifier(pulumi.ComponentResource):
    """The text-classifier chart twice: real-time (REST/gRPC) and, optionally, streaming (serverType kafka)."""

    realtime: k8s.helm.v4.Chart
    streaming: k8s.helm.v4.Chart | None
    rest_url: pulumi.Output[str]
    grpc_address: pulumi.Output[str]
    realtime_deployment: str
    streaming_deployment: str | None
    pod_selectors: dict[str, str]

    def __init__(self, name: str, args: ClassifierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The component lived in infra/feedback.py as feedback:feedback:Classifier: the alias keeps existing URNs.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[ALIAS]))
        super().__init__("feedback:classifier:Classifier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        version = chart_version("text-classifier")
        self.realtime = k8s.helm.v4.Chart(
            f"{name}-realtime",
            name=REALTIME_DEPLOYMENT,
            chart=chart_path("text-classifier"),
            version=version,
            namespace=args.namespace,
            values=classifier_values(args, streaming=False),
            opts=child,
        )
        self.streaming = None
        self.streaming_deployment = None
        if args.settings.streaming:
            self.streaming = k8s.helm.v4.Chart(
                f"{name}-streaming",
                name=STREAMING_DEPLOYMENT,
                chart=chart_path("text-classifier"),
                version=version,
                namespace=args.namespace,
                values=classifier_values(args, streaming=True),
                opts=child,
            )
            self.streaming_deployment = STREAMING_DEPLOYMENT
        # Seldon names the predictor Service <deployment>-<predictor>; the executor serves REST on 8000, gRPC on 5001.
        service = self.realtime.urn.apply(lambda _urn: f"{REALTIME_DEPLOYMENT}-{PREDICTOR}")
        host = service_host(service, args.namespace)
        self.rest_url = pulumi.Output.concat("http://", host, f":{SELDON_REST_PORT}")
        self.grpc_address = pulumi.Output.concat(host, f":{SELDON_GRPC_PORT}")
        self.realtime_deployment = REALTIME_DEPLOYMENT
        # The Seldon operator labels every pod of a SeldonDeployment with seldon-deployment-id=<name>.
        self.pod_selectors = {"classifier": f"seldon-deployment-id={REALTIME_DEPLOYMENT}"}
        if self.streaming_deployment:
            self.pod_selectors["classifierStreaming"] = f"seldon-deployment-id={self.streaming_deployment}"
        self.register_outputs(
            {
                "pod_selectors": self.pod_selectors,
                "rest_url": self.rest_url,
                "grpc_address": self.grpc_address,
                "realtime_deployment": self.realtime_deployment,
                "streaming_deployment": self.streaming_deployment,
            }
        )
