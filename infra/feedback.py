"""The feedback pipeline: our `feedback-pipeline` chart (collector Deployment + Service, indexer), wired to Kafka,
the search cluster and the Seldon namespaces whose executors log to the collector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import (
    KafkaClient,
    chart_path,
    chart_version,
    feedback_client_values,
    image_values,
    kafka_security_values,
)
from infra.config import FeedbackSettings, Mirrors
from infra.refs import service_host
from infra.search import SearchCredentials

FEEDBACK_FULLNAME = "feedback-pipeline"  # release name and fullnameOverride: object names, the instance label
COLLECTOR_SERVICE = f"{FEEDBACK_FULLNAME}-collector"  # collector.service.name: the Service executors log to
COLLECTOR_SERVICE_PORT = 8080  # collector.service.port
PRODUCER_TOKEN_SECRET = f"{FEEDBACK_FULLNAME}-producer-token"  # collector.producers.existingSecret
PRODUCER_TOKEN_KEY = "token"  # collector.producers.tokenKey


@dataclass(frozen=True, kw_only=True)
class MonitorRegistry:
    """The flow back's registry, where the monitor finds the profiles of registered versions (a canary's).

    endpoint, bucket, secret_name: the object store, the registry bucket and the credentials Secret by reference
        (keys accessKey and secretKey).
    pod_namespace, pod_labels: the object store's pods for the monitor's NetworkPolicy egress; pod_labels None: a
        store outside the cluster (any address on `port`).
    port: the S3 port.
    """

    endpoint: pulumi.Input[str]
    bucket: pulumi.Input[str]
    secret_name: pulumi.Input[str]
    pod_namespace: pulumi.Input[str] | None
    pod_labels: Mapping[str, str] | None
    port: int


@dataclass(frozen=True, kw_only=True)
class FeedbackPipelineArgs:
    """Inputs of the feedback pipeline.

    settings: validated feedback:* config (image, replicas, index, sampling).
    namespace: application namespace.
    kafka: how the services reach Kafka (address, protocol, CA, mechanism), shared by all three.
    kafka_clients: each service's own login by component (collector, indexer, monitor): its credentials Secret, user
        name and client certificate (infra/kafka_access.py says what each user may do).
    capture_topic, dead_letter_topic: topic names (Outputs of the KafkaTopics).
    search_url: the search engine's URL; search_engine "elasticsearch" or "opensearch" (the indexer's client).
    search_cluster_name: selects the Elasticsearch pods for NetworkPolicies (None: an engine we do not make).
    search_credentials: per service ("setup", "indexer", "monitor") its user and password Secret, by reference: the
        admin user only reaches the chart's setup Job (and the Kibana import), each service logs in as its own.
    search_ca_secret_name: Secret with the HTTP CA certificate when search TLS is on.
    seldon_namespaces: namespaces whose Seldon pods may call the collector.
    streaming_deployments: exact names of the streaming SeldonDeployments (their events get mode "streaming").
    seldon_version: the Seldon Core version the executors run (seldon:version); both services decode gRPC payloads
        with that version's protos (seldonProtoVersion -> SELDON_PROTO_VERSION).
    profile_images: name -> pinned model image whose reference profile the monitor copies (the classifier's).
    registry: the flow back's registry, for the profiles of registered versions (None: folder profiles only).
    kibana_url, kibana_ca_secret_name: Kibana, when there is one: a Job imports the dashboards there.
    pod_disruption_budgets: PodDisruptionBudgets for the collector and indexer.
    mirrors: where the image comes from (platform:imageRegistry).
    mesh: "none" or "istio" (platform:mesh); mesh_trust_domain: the first part of every principal.
    """

    settings: FeedbackSettings
    namespace: pulumi.Input[str]
    kafka: KafkaClient
    capture_topic: pulumi.Input[str]
    dead_letter_topic: pulumi.Input[str]
    search_url: pulumi.Input[str]
    search_cluster_name: pulumi.Input[str] | None
    search_credentials: Mapping[str, SearchCredentials]
    search_ca_secret_name: pulumi.Input[str] | None
    seldon_namespaces: Sequence[pulumi.Input[str]]
    streaming_deployments: Sequence[str]
    seldon_version: str
    kafka_clients: Mapping[str, KafkaClient] = field(default_factory=dict)
    profile_images: Mapping[str, str] = field(default_factory=dict)
    registry: MonitorRegistry | None = None
    kibana_url: pulumi.Input[str] | None = None
    kibana_ca_secret_name: pulumi.Input[str] | None = None
    pod_disruption_budgets: bool = False
    search_engine: str = "elasticsearch"
    mirrors: Mirrors = field(default_factory=Mirrors)
    mesh: str = "none"
    mesh_trust_domain: str = "cluster.local"


def feedback_values(args: FeedbackPipelineArgs) -> dict[str, Any]:
    s, kafka = args.settings, args.kafka
    kafka_values: dict[str, Any] = {
        "bootstrapServers": kafka.bootstrap_servers,
        "securityProtocol": kafka.security_protocol.lower(),
        "captureTopic": args.capture_topic,
        "deadLetterTopic": args.dead_letter_topic,
        **kafka_security_values(kafka),
    }
    clients = {role: feedback_client_values(client) for role, client in args.kafka_clients.items()}
    if any(clients.values()):
        kafka_values["clients"] = {role: values for role, values in clients.items() if values}
    return {
        "fullnameOverride": FEEDBACK_FULLNAME,
        "image": image_values(s.image, args.mirrors),
        "seldonProtoVersion": args.seldon_version,
        "kafka": kafka_values,
        "search": {
            "engine": args.search_engine,
            "url": args.search_url,
            "index": s.index,
            # Only when set: the chart and the indexer own the defaults.
            **({} if s.index_shards is None else {"indexShards": s.index_shards}),
            **({} if s.retention_days is None else {"retentionDays": s.retention_days}),
            **{
                service: {"username": c.username, "existingSecret": c.secret_name, "passwordKey": c.secret_key}
                for service, c in args.search_credentials.items()
            },
            "tls": {
                "verify": True,
                "caSecret": args.search_ca_secret_name if args.search_ca_secret_name is not None else "",
                "caCertKey": "ca.crt",
            },
        },
        "collector": {
            "replicas": s.collector_replicas,
            "service": {"name": COLLECTOR_SERVICE, "port": COLLECTOR_SERVICE_PORT},
            # Only when set: the collector owns the default (feedback:samplingRate -> collector.samplingRate ->
            # COLLECTOR_SAMPLING_RATE).
            **({} if s.sampling_rate is None else {"samplingRate": s.sampling_rate}),
            # feedback:redaction: one setting for both services, so a redacted request id gets the same pseudonym
            **({"redact": dict(s.redaction)} if s.redaction else {}),
            "pdb": {"enabled": args.pod_disruption_budgets},
            **producer_values(s),
        },
        "indexer": {
            "replicas": s.indexer_replicas,
            "streamingDeployments": list(args.streaming_deployments),
            **indexer_sweep_values(s),
            **({"redact": dict(s.redaction)} if s.redaction else {}),
            "pdb": {"enabled": args.pod_disruption_budgets},
        },
        "monitor": monitor_values(args),
        **({} if args.kibana_url is None else {"dashboard": {"kibana": kibana_values(args)}}),
        "alerts": {"enabled": s.alerts},
        "networkPolicy": network_policy_values(args),
        "mesh": mesh_values(args),
    }


def producer_values(s: FeedbackSettings) -> dict[str, Any]:
    """feedback:producerToken -> the collector's producer port, its token in the Secret the component makes."""
    if s.producer_token is None:
        return {}
    return {
        "producers": {
            "enabled": True,
            "existingSecret": PRODUCER_TOKEN_SECRET,
            "tokenKey": PRODUCER_TOKEN_KEY,
            "namespaces": list(s.producer_namespaces),
        }
    }


def mesh_values(args: FeedbackPipelineArgs) -> dict[str, Any]:
    """platform:mesh=istio -> AuthorizationPolicies: the Seldon pods' ServiceAccounts (in every Seldon namespace) on
    the event port, feedback:metricsPrincipals on the metrics ports."""
    if args.mesh != "istio":
        return {"type": "none"}
    s = args.settings
    principals = [
        pulumi.Output.concat(args.mesh_trust_domain, "/ns/", namespace, "/sa/", account)
        for namespace in args.seldon_namespaces
        for account in s.seldon_service_accounts
    ]
    return {"type": "istio", "seldonPrincipals": principals, "metricsPrincipals": list(s.metrics_principals)}


def indexer_sweep_values(s: FeedbackSettings) -> dict[str, float]:
    """feedback:noResponseAfterSeconds, ... -> indexer.noResponseAfterSeconds, ...; only when set (the indexer owns
    the defaults)."""
    values = {
        "noResponseAfterSeconds": s.no_response_after_seconds,
        "feedbackJoinDelaySeconds": s.feedback_join_delay_seconds,
        "feedbackJoinWindowSeconds": s.feedback_join_window_seconds,
        "sweepIntervalSeconds": s.sweep_interval_seconds,
    }
    return {name: value for name, value in values.items() if value is not None}


def network_policy_values(args: FeedbackPipelineArgs) -> dict[str, Any]:
    """The chart's NetworkPolicies know the pods of the Kafka and Elasticsearch the platform makes; for an existing
    Kafka or search engine (kafka:existing, search:existing), which may live anywhere, they are off."""
    if args.kafka.cluster_name is None or args.search_cluster_name is None:
        return {"enabled": False}
    s = args.settings
    return {
        "seldonNamespaces": list(args.seldon_namespaces),
        "metricsNamespace": s.metrics_namespace,
        "metricsPodLabels": dict(s.metrics_pod_labels),  # never empty (checked): Helm would merge {} with the default
        "kafka": {"namespace": args.namespace, "podLabels": {"strimzi.io/cluster": args.kafka.cluster_name}},
        "search": {
            "namespace": args.namespace,
            "podLabels": {"elasticsearch.k8s.elastic.co/cluster-name": args.search_cluster_name},
        },
        **object_store_policy_values(args.registry),
    }


def object_store_policy_values(registry: MonitorRegistry | None) -> dict[str, Any]:
    """The monitor's egress to the registry: the MinIO pods the platform makes, or any address on the endpoint's port
    for objectstore:existing."""
    if registry is None:
        return {}
    if registry.pod_labels is None:
        return {"objectStore": {"port": registry.port, "anywhere": True}}
    return {
        "objectStore": {
            "namespace": registry.pod_namespace,
            "podLabels": dict(registry.pod_labels),
            "port": registry.port,
        }
    }


def kibana_values(args: FeedbackPipelineArgs) -> dict[str, Any]:
    values: dict[str, Any] = {"url": args.kibana_url}
    if args.kibana_ca_secret_name is not None:
        values["caSecret"] = args.kibana_ca_secret_name
    return values


def monitor_values(args: FeedbackPipelineArgs) -> dict[str, Any]:
    """feedback:monitor* -> the chart's monitor values; the window, settle time and thresholds only when set (the
    monitor owns their defaults)."""
    s = args.settings
    values: dict[str, Any] = {
        "enabled": s.monitor,
        "index": s.monitor_index,
        "profileImages": dict(args.profile_images),
    }
    if s.monitor_window_seconds is not None:
        values["windowSeconds"] = s.monitor_window_seconds
    if s.monitor_settle_seconds is not None:
        values["settleSeconds"] = s.monitor_settle_seconds
    if s.monitor_thresholds:
        values["thresholds"] = dict(s.monitor_thresholds)
    if args.registry is not None:
        values["registry"] = {
            "bucket": args.registry.bucket,
            "endpoint": args.registry.endpoint,
            "existingSecret": args.registry.secret_name,
            "accessKeyKey": "accessKey",
            "secretKeyKey": "secretKey",
        }
    return values


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
        chart_opts = child
        if args.settings.producer_token is not None:
            self.producer_token_secret = k8s.core.v1.Secret(
                f"{name}-producer-token",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=PRODUCER_TOKEN_SECRET, namespace=args.namespace),
                string_data=pulumi.Output.secret({PRODUCER_TOKEN_KEY: args.settings.producer_token}),
                opts=child,
            )
            chart_opts = pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[self.producer_token_secret])
            )
        self.chart = k8s.helm.v4.Chart(
            f"{name}-pipeline",
            name=FEEDBACK_FULLNAME,
            chart=chart_path("feedback-pipeline"),
            version=chart_version("feedback-pipeline"),
            namespace=args.namespace,
            values=values,
            opts=chart_opts,
        )
        # The chart names the collector Service and its port from the values passed above (collector.service.*), so
        # the URL is built from those values; the Output waits for the chart.
        service = values["collector"]["service"]
        host = service_host(self.chart.urn.apply(lambda _urn: str(service["name"])), args.namespace)
        self.collector_url = pulumi.Output.concat("http://", host, f":{service['port']}/")
        self.index = args.settings.index
        self.pod_selectors = {
            component: f"app.kubernetes.io/instance={FEEDBACK_FULLNAME},app.kubernetes.io/component={component}"
            for component in ("collector", "indexer")
        }
        self.register_outputs(
            {"collector_url": self.collector_url, "index": self.index, "pod_selectors": self.pod_selectors}
        )
