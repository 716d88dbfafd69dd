"""Kafka: the Strimzi operator chart, a KRaft cluster with KafkaNodePools, the KafkaTopics and, with SCRAM, users.

The cluster lives in the application namespace so that clients can reference the Secrets Strimzi makes (the
cluster CA certificate) and the credentials Secrets made here; the operator lives in its own namespace and
watches the application namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import upstream_chart
from infra.config import ExistingKafka, KafkaSettings, Mirrors, Topic
from infra.refs import dns_name, metadata_name, service_host

STRIMZI_REPO = "https://strimzi.io/charts/"
API_VERSION = "kafka.strimzi.io/v1"
CLIENT_ROLES = ("feedback", "executor")  # feedback: the collector and indexer share one user
SASL_MECHANISM = "SCRAM-SHA-512"  # the listener's authentication type, as clients name the mechanism
USERNAME_KEY, PASSWORD_KEY = "username", "password"  # keys of the credentials Secrets made here


@dataclass(frozen=True, kw_only=True)
class KafkaPlatformArgs:
    """Inputs of the Kafka platform.

    settings: validated kafka:* config (versions, sizing, topics, TLS, SCRAM).
    operator_namespace: namespace of the Strimzi operator (Output of the Namespace).
    namespace: application namespace that holds the cluster, topics, users and client Secrets.
    protect: protect the cluster, node pools and topics from deletion.
    pod_disruption_budgets: set an explicit PodDisruptionBudget (maxUnavailable 1) on the brokers.
    mirrors: where the operator chart and the images come from (platform:chartSources, platform:imageRegistry).
    """

    settings: KafkaSettings
    operator_namespace: pulumi.Input[str] | None
    namespace: pulumi.Input[str]
    protect: bool = False
    pod_disruption_budgets: bool = False
    mirrors: Mirrors = field(default_factory=Mirrors)


class KafkaPlatform(pulumi.ComponentResource):
    """Strimzi operator + KRaft Kafka cluster + topics (+ SCRAM users); with kafka:operator=existing the operator
    chart is left out, with kafka:existing everything (clients are wired to that cluster instead)."""

    operator: k8s.helm.v4.Chart | None
    cluster: k8s.apiextensions.CustomResource | None
    cluster_name: pulumi.Output[str] | None
    bootstrap_servers: pulumi.Output[str]
    topic_names: dict[str, pulumi.Output[str]]
    security_protocol: str
    sasl_mechanism: str
    ca_secret_name: pulumi.Output[str] | None
    credentials_secret_names: dict[str, pulumi.Output[str]]
    username_key: str
    password_key: str
    usernames: dict[str, str]
    pod_selector: pulumi.Output[str] | None

    def __init__(self, name: str, args: KafkaPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:kafka:KafkaPlatform", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.operator = None
        self.cluster = None
        self.credentials_secret_names = {}
        self.usernames = {}
        self.users: dict[str, k8s.apiextensions.CustomResource] = {}
        self.node_pools: list[k8s.apiextensions.CustomResource] = []
        self.topics: dict[str, k8s.apiextensions.CustomResource] = {}
        self.username_key, self.password_key = USERNAME_KEY, PASSWORD_KEY
        if s.existing is not None:
            self._use_existing(s.existing, s)
        else:
            self._make_cluster(name, args, child)
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "bootstrap_servers": self.bootstrap_servers,
                "topic_names": self.topic_names,
                "security_protocol": self.security_protocol,
                "sasl_mechanism": self.sasl_mechanism,
                "ca_secret_name": self.ca_secret_name,
                "credentials_secret_names": self.credentials_secret_names,
                "usernames": self.usernames,
                "pod_selector": self.pod_selector,
            }
        )

    def _use_existing(self, existing: ExistingKafka, s: KafkaSettings) -> None:
        """Wire clients to a cluster the platform does not make: its address, CA Secret and credentials Secret."""
        self.cluster_name = None
        self.pod_selector = None
        self.bootstrap_servers = pulumi.Output.from_input(existing.bootstrap)
        self.topic_names = {role: pulumi.Output.from_input(topic.name) for role, topic in s.topics.items()}
        self.security_protocol = ("SASL_SSL" if existing.sasl_secret else "SSL") if existing.tls_secret else "PLAINTEXT"
        self.sasl_mechanism = existing.sasl_mechanism
        self.ca_secret_name = pulumi.Output.from_input(existing.tls_secret) if existing.tls_secret else None
        if existing.sasl_secret:  # one user for every client role: the existing cluster's credentials
            self.credentials_secret_names = {
                role: pulumi.Output.from_input(existing.sasl_secret) for role in CLIENT_ROLES
            }

    def _make_cluster(self, name: str, args: KafkaPlatformArgs, child: pulumi.ResourceOptions) -> None:
        s = args.settings
        mirrors = args.mirrors
        waits_for: list[pulumi.Resource] = []
        if s.operator == "install":
            values: dict[str, object] = {
                "watchNamespaces": [args.namespace],
                "defaultImageTag": s.operator_chart_version,
            }
            if mirrors.image_registry:  # operator, Kafka and entity operator images: <registry>/strimzi/<image>
                values["defaultImageRegistry"] = mirrors.image_registry
            self.operator = k8s.helm.v4.Chart(
                f"{name}-operator",
                **upstream_chart(mirrors, "strimzi-kafka-operator", STRIMZI_REPO),
                version=s.operator_chart_version,
                namespace=args.operator_namespace,
                values=values,
                opts=child,
            )
            waits_for.append(self.operator)
        # Custom resources wait for the operator chart: its CRDs and a ready operator.
        after_operator = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=waits_for, protect=args.protect)
        )

        listener: dict[str, object] = {
            "name": "tls" if s.tls else "plain",
            "port": s.listener_port,
            "type": "internal",
            "tls": s.tls,
        }
        if s.scram:
            listener["authentication"] = {"type": "scram-sha-512"}
        kafka_spec: dict[str, object] = {
            "version": s.version,
            "listeners": [listener],
            "config": {
                "auto.create.topics.enable": False,
                "default.replication.factor": s.replication_factor,
                "min.insync.replicas": s.min_insync_replicas,
                "offsets.topic.replication.factor": s.replication_factor,
                "transaction.state.log.replication.factor": s.replication_factor,
                "transaction.state.log.min.isr": s.min_insync_replicas,
            },
        }
        if args.pod_disruption_budgets:
            kafka_spec["template"] = {"podDisruptionBudget": {"maxUnavailable": 1}}
        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=API_VERSION,
            kind="Kafka",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=s.cluster_name,
                namespace=args.namespace,
                annotations={"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"},
            ),
            spec={
                "kafka": kafka_spec,
                "entityOperator": {"topicOperator": {}, "userOperator": {}},
            },
            opts=after_operator,
        )
        cluster_name = metadata_name(self.cluster)
        self.cluster_name = cluster_name
        self.pod_selector = pulumi.Output.concat("strimzi.io/cluster=", cluster_name)
        cluster_label = {"strimzi.io/cluster": cluster_name}

        self.node_pools = [
            self._node_pool(
                name,
                "controllers",
                "controller",
                s.controllers,
                s.controller_storage,
                s.controller_resources.cpu,
                s.controller_resources.memory,
                args,
                cluster_label,
                after_operator,
            ),
            self._node_pool(
                name,
                "brokers",
                "broker",
                s.brokers,
                s.broker_storage,
                s.broker_resources.cpu,
                s.broker_resources.memory,
                args,
                cluster_label,
                after_operator,
            ),
        ]

        self.topics = {
            role: self._topic(name, role, topic, args, cluster_label, after_operator)
            for role, topic in s.topics.items()
        }
        self.topic_names = {
            role: self.topics[role].metadata.apply(lambda _m, t=topic.name: t) for role, topic in s.topics.items()
        }

        if s.scram:
            # Users are stateless (credentials come from our Secrets): no protect, so rotating them stays easy.
            users_opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=waits_for))
            for role in CLIENT_ROLES:
                self._user(name, role, s.passwords[role], args, cluster_label, child, users_opts)

        self.security_protocol = ("SASL_SSL" if s.scram else "SSL") if s.tls else "PLAINTEXT"
        self.sasl_mechanism = SASL_MECHANISM if s.scram else ""
        self.ca_secret_name = pulumi.Output.concat(cluster_name, "-cluster-ca-cert") if s.tls else None
        self.bootstrap_servers = pulumi.Output.concat(
            service_host(pulumi.Output.concat(cluster_name, "-kafka-bootstrap"), args.namespace),
            ":",
            str(s.listener_port),
        )

    def _node_pool(
        self,
        name: str,
        pool: str,
        role: str,
        replicas: int,
        size: str,
        cpu: str,
        memory: str,
        args: KafkaPlatformArgs,
        cluster_label: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ) -> k8s.apiextensions.CustomResource:
        volume: dict[str, object] = {
            "id": 0,
            "type": "persistent-claim",
            "size": size,
            "deleteClaim": False,
            "kraftMetadata": "shared",
        }
        if args.settings.storage_class:
            volume["class"] = args.settings.storage_class
        return k8s.apiextensions.CustomResource(
            f"{name}-{pool}",
            api_version=API_VERSION,
            kind="KafkaNodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=pool, namespace=args.namespace, labels=cluster_label),
            spec={
                "replicas": replicas,
                "roles": [role],
                "storage": {"type": "jbod", "volumes": [volume]},
                "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
            },
            opts=opts,
        )

    def _topic(
        self,
        name: str,
        role: str,
        topic: Topic,
        args: KafkaPlatformArgs,
        cluster_label: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ) -> k8s.apiextensions.CustomResource:
        s = args.settings
        return k8s.apiextensions.CustomResource(
            f"{name}-topic-{dns_name(role)}",
            api_version=API_VERSION,
            kind="KafkaTopic",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=dns_name(topic.name), namespace=args.namespace, labels=cluster_label
            ),
            spec={
                "topicName": topic.name,
                "partitions": topic.partitions,
                "replicas": s.replication_factor,
                "config": {
                    "retention.ms": topic.retention_ms,
                    "min.insync.replicas": s.min_insync_replicas,
                },
            },
            opts=opts,
        )

    def _user(
        self,
        name: str,
        role: str,
        password: pulumi.Output[str],
        args: KafkaPlatformArgs,
        cluster_label: Mapping[str, pulumi.Input[str]],
        child: pulumi.ResourceOptions,
        opts: pulumi.ResourceOptions,
    ) -> None:
        """A SCRAM user whose password comes from a Pulumi secret, and a Secret with username and password keys
        that the clients reference (Strimzi's own user Secret has no username key)."""
        username = f"seldon-feedback-{role}"
        secret = k8s.core.v1.Secret(
            f"{name}-credentials-{role}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{username}-credentials", namespace=args.namespace),
            type="Opaque",
            string_data={USERNAME_KEY: username, PASSWORD_KEY: password},
            opts=child,
        )
        secret_name = metadata_name(secret)
        self.users[role] = k8s.apiextensions.CustomResource(
            f"{name}-user-{role}",
            api_version=API_VERSION,
            kind="KafkaUser",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=username, namespace=args.namespace, labels=cluster_label),
            spec={
                "authentication": {
                    "type": "scram-sha-512",
                    "password": {"valueFrom": {"secretKeyRef": {"name": secret_name, "key": PASSWORD_KEY}}},
                }
            },
            opts=opts,
        )
        self.credentials_secret_names[role] = secret_name
        self.usernames[role] = username
