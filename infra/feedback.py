"""Our charts, wired to the platform: the feedback pipeline (collector, indexer), the text classifier in
real-time and streaming mode, and the batch WorkflowTemplate.

The charts come from `charts/<name>` in this repository (a local path, pinned by the chart version in its
Chart.yaml). Only keys that exist in each chart's values.yaml are passed (a test checks this). Credentials are
passed as Secret names and keys, never as values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.config import BatchSettings, ClassifierSettings, FeedbackSettings, Image
from infra.refs import service_host

REPO_ROOT = Path(__file__).resolve().parent.parent
CHARTS_DIR = REPO_ROOT / "charts"

FEEDBACK_FULLNAME = "feedback-pipeline"
REALTIME_DEPLOYMENT = "text-classifier"
STREAMING_DEPLOYMENT = "text-classifier-streaming"
PREDICTOR = "default"
SELDON_REST_PORT = 8000  # the executor's HTTP port on the <deployment>-<predictor> Service
SELDON_GRPC_PORT = 5001  # the executor's gRPC port on the same Service


def chart_path(name: str) -> str:
    """Path of our chart `name`, relative to the working directory (Pulumi runs the program from infra/, the
    tests from the repository root), so the path in stack state is the same on every machine."""
    return os.path.relpath(CHARTS_DIR / name, Path.cwd())


def chart_version(name: str) -> str:
    """The `version` in charts/<name>/Chart.yaml: the pin of a local chart."""
    return str(yaml.safe_load((CHARTS_DIR / name / "Chart.yaml").read_text())["version"])


def image_values(image: Image) -> dict[str, str]:
    return {"repository": image.repository, "tag": image.tag, "digest": image.digest}


@dataclass(frozen=True, kw_only=True)
class KafkaClient:
    """How a client reaches Kafka.

    bootstrap_servers: "host:port" of the bootstrap Service.
    security_protocol: "PLAINTEXT", "SSL" or "SASL_SSL".
    ca_secret_name: Secret with the cluster CA certificate (key ca.crt) when TLS is on.
    credentials_secret_name: Secret with keys username and password when SCRAM is on.
    username: the SCRAM user name when SCRAM is on.
    cluster_name: the Kafka resource name (selects broker pods for NetworkPolicies).
    """

    bootstrap_servers: pulumi.Input[str]
    security_protocol: str
    cluster_name: pulumi.Input[str]
    ca_secret_name: pulumi.Input[str] | None = None
    credentials_secret_name: pulumi.Input[str] | None = None
    username: str = ""


# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FeedbackPipelineArgs:
    """Inputs of the feedback pipeline.

    settings: validated feedback:* config (image, replicas, index, sampling).
    namespace: application namespace.
    kafka: how the collector and indexer reach Kafka.
    capture_topic, dead_letter_topic: topic names (Outputs of the KafkaTopics).
    search_url: Elasticsearch URL; search_cluster_name selects its pods for NetworkPolicies.
    search_credentials_secret_name, search_credentials_secret_key, search_username: the ECK-managed user by reference.
    search_ca_secret_name: Secret with the HTTP CA certificate when search TLS is on.
    seldon_namespaces: namespaces whose Seldon pods may call the collector.
    pod_disruption_budgets: PodDisruptionBudgets for the collector and indexer.
    """

    settings: FeedbackSettings
    namespace: pulumi.Input[str]
    kafka: KafkaClient
    capture_topic: pulumi.Input[str]
    dead_letter_topic: pulumi.Input[str]
    search_url: pulumi.Input[str]
    search_cluster_name: pulumi.Input[str]
    search_credentials_secret_name: pulumi.Input[str]
    search_credentials_secret_key: str
    search_username: str
    search_ca_secret_name: pulumi.Input[str] | None
    seldon_namespaces: Sequence[pulumi.Input[str]]
    pod_disruption_budgets: bool = False


def feedback_values(args: FeedbackPipelineArgs) -> dict[str, Any]:
    s, kafka = args.settings, args.kafka
    kafka_values: dict[str, Any] = {
        "bootstrapServers": kafka.bootstrap_servers,
        "securityProtocol": kafka.security_protocol.lower(),
        "captureTopic": args.capture_topic,
        "deadLetterTopic": args.dead_letter_topic,
    }
    if kafka.credentials_secret_name is not None:
        kafka_values["sasl"] = {
            "mechanism": "SCRAM-SHA-512",
            "username": kafka.username,
            "existingSecret": kafka.credentials_secret_name,
            "passwordKey": "password",
        }
    if kafka.ca_secret_name is not None:
        kafka_values["tls"] = {"existingSecret": kafka.ca_secret_name, "caCertKey": "ca.crt"}
    return {
        "fullnameOverride": FEEDBACK_FULLNAME,
        "image": image_values(s.image),
        "kafka": kafka_values,
        "search": {
            "engine": "elasticsearch",
            "url": args.search_url,
            "index": s.index,
            "username": args.search_username,
            "existingSecret": args.search_credentials_secret_name,
            "passwordKey": args.search_credentials_secret_key,
            "tls": {
                "verify": True,
                "caSecret": args.search_ca_secret_name if args.search_ca_secret_name is not None else "",
                "caCertKey": "ca.crt",
            },
        },
        "collector": {
            "replicas": s.collector_replicas,
            "samplingRate": s.sampling_rate,
            "pdb": {"enabled": args.pod_disruption_budgets},
        },
        "indexer": {"replicas": s.indexer_replicas, "pdb": {"enabled": args.pod_disruption_budgets}},
        "networkPolicy": {
            "seldonNamespaces": list(args.seldon_namespaces),
            "kafka": {"namespace": args.namespace, "podLabels": {"strimzi.io/cluster": kafka.cluster_name}},
            "search": {
                "namespace": args.namespace,
                "podLabels": {"elasticsearch.k8s.elastic.co/cluster-name": args.search_cluster_name},
            },
        },
    }


class FeedbackPipeline(pulumi.ComponentResource):
    """The feedback-pipeline chart: collector (Deployment + Service) and indexer."""

    chart: k8s.helm.v4.Chart
    collector_url: pulumi.Output[str]
    index: str
    pod_selectors: dict[str, str]

    def __init__(self, name: str, args: FeedbackPipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:feedback:FeedbackPipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        values = feedback_values(args)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-pipeline",
            name=FEEDBACK_FULLNAME,
            chart=chart_path("feedback-pipeline"),
            version=chart_version("feedback-pipeline"),
            namespace=args.namespace,
            values=values,
            opts=child,
        )
        # The chart's collectorUrl helper: http://<fullname>-collector.<namespace>.svc.cluster.local:<port>/
        port = _chart_default("feedback-pipeline", "collector", "service", "port")
        service = self.chart.urn.apply(lambda _urn: f"{FEEDBACK_FULLNAME}-collector")
        self.collector_url = pulumi.Output.concat("http://", service_host(service, args.namespace), f":{port}/")
        self.index = args.settings.index
        self.pod_selectors = {
            component: f"app.kubernetes.io/instance={FEEDBACK_FULLNAME},app.kubernetes.io/component={component}"
            for component in ("collector", "indexer")
        }
        self.register_outputs(
            {"collector_url": self.collector_url, "index": self.index, "pod_selectors": self.pod_selectors}
        )


def _chart_default(chart: str, *path: str) -> Any:
    node: Any = yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text())
    for step in path:
        node = node[step]
    return node


# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClassifierArgs:
    """Inputs of the text classifier deployments.

    settings: validated classifier:* config (image, replicas, streaming, capture).
    namespace: application namespace.
    kafka: how the executors reach Kafka (streaming server and direct Kafka logging).
    model_input_topic, model_output_topic, capture_topic: topic names (Outputs of the KafkaTopics).
    collector_url: the collector Service URL the executor logger posts to.
    pod_disruption_budgets: a Seldon pdbSpec for the real-time model pods.
    """

    settings: ClassifierSettings
    namespace: pulumi.Input[str]
    kafka: KafkaClient
    model_input_topic: pulumi.Input[str]
    model_output_topic: pulumi.Input[str]
    capture_topic: pulumi.Input[str]
    collector_url: pulumi.Input[str]
    pod_disruption_budgets: bool = False


def classifier_values(args: ClassifierArgs, *, streaming: bool) -> dict[str, Any]:
    s, kafka = args.settings, args.kafka
    kafka_values: dict[str, Any] = {"broker": kafka.bootstrap_servers, "securityProtocol": kafka.security_protocol}
    if kafka.ca_secret_name is not None:
        kafka_values["tls"] = {"existingSecret": kafka.ca_secret_name, "caCertKey": "ca.crt"}
    if kafka.credentials_secret_name is not None:
        kafka_values["sasl"] = {
            "mechanism": "SCRAM-SHA-512",
            "existingSecret": kafka.credentials_secret_name,
            "usernameKey": "username",
            "passwordKey": "password",
        }
    values: dict[str, Any] = {
        "deploymentName": STREAMING_DEPLOYMENT if streaming else REALTIME_DEPLOYMENT,
        "mode": "streaming" if streaming else "realtime",
        "predictorName": PREDICTOR,
        "replicas": s.streaming_replicas if streaming else s.replicas,
        "image": image_values(s.image),
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
        super().__init__("feedback:feedback:Classifier", name, None, opts)
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


# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BatchWorkflowArgs:
    """Inputs of the batch WorkflowTemplate.

    settings: validated batch:* config (workers, retries).
    namespace: application namespace (watched by Argo).
    seldon_deployment: the real-time SeldonDeployment the batch processor calls; rest_host its "host:port".
    processor_image: an image with seldon-core installed (the classifier image) to run seldon-batch-processor.
    objectstore_endpoint, bucket, objectstore_secret_name: the object store and its credentials by reference
        (keys accessKey and secretKey).
    """

    settings: BatchSettings
    namespace: pulumi.Input[str]
    seldon_deployment: str
    rest_host: pulumi.Input[str]
    processor_image: Image
    objectstore_endpoint: pulumi.Input[str]
    bucket: pulumi.Input[str]
    objectstore_secret_name: pulumi.Input[str]


BATCH_TEMPLATE = "batch-workflow"


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
        "images": {"batchProcessor": image_values(args.processor_image)},
    }


class BatchWorkflow(pulumi.ComponentResource):
    """The batch-workflow chart: an Argo WorkflowTemplate with its ServiceAccount and Role."""

    chart: k8s.helm.v4.Chart
    template_name: pulumi.Output[str]

    def __init__(self, name: str, args: BatchWorkflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:feedback:BatchWorkflow", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-workflow",
            name=BATCH_TEMPLATE,
            chart=chart_path("batch-workflow"),
            version=chart_version("batch-workflow"),
            namespace=args.namespace,
            values=batch_values(args),
            opts=child,
        )
        self.template_name = self.chart.urn.apply(lambda _urn: BATCH_TEMPLATE)
        self.register_outputs({"template_name": self.template_name})
