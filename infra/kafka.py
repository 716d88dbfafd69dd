"""Kafka: the Strimzi operator chart, a KRaft cluster with KafkaNodePools, the KafkaTopics and, with client
authentication, one KafkaUser per client with the ACLs of infra/kafka_access.py (Strimzi simple authorization).

The cluster lives in the application namespace so that clients can reference the Secrets Strimzi makes (the
cluster CA certificate, and per KafkaUser a Secret of the same name with its generated password or certificate);
the operator lives in its own namespace and watches the application namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import upstream_chart
from infra.config import ExistingKafka, KafkaSettings, Mirrors, Topic
from infra.kafka_access import COMPONENT_USERS, KafkaNames, strimzi_acls
from infra.refs import dns_name, metadata_name, service_host

STRIMZI_REPO = "https://strimzi.io/charts/"
API_VERSION = "kafka.strimzi.io/v1"
CLIENT_ROLES = tuple(COMPONENT_USERS)  # collector, indexer, monitor, executor, smoke: one KafkaUser each
SASL_MECHANISM = "SCRAM-SHA-512"  # the listener's authentication type, as clients name the mechanism
USERNAME_KEY, PASSWORD_KEY = "username", "password"  # keys of a kafka:existing credentials Secret
STRIMZI_PASSWORD_KEY = "password"  # Strimzi's SCRAM user Secret: password and sasl.jaas.config, no user name
DEFAULT_INDEXER_GROUP = "seldon-feedback-indexer"  # the feedback-pipeline chart's indexer.groupId


@dataclass(frozen=True, kw_only=True)
class KafkaPlatformArgs:
    """Inputs of the Kafka platform.

    settings: validated kafka:* config (versions, sizing, topics, TLS, SCRAM).
    operator_namespace: namespace of the Strimzi operator (Output of the Namespace).
    namespace: application namespace that holds the cluster, topics, users and client Secrets.
    protect: protect the cluster, node pools and topics from deletion.
    pod_disruption_budgets: set an explicit PodDisruptionBudget (maxUnavailable 1) on the brokers.
    mirrors: where the operator chart and the images come from (platform:chartSources, platform:imageRegistry).
    indexer_group: the indexer's consumer group (its KafkaUser may read and commit in it; the monitor describes it).
    executor_groups: consumer groups of the streaming SeldonDeployments, `<predictor>.<deployment>.<namespace>`.
    """

    settings: KafkaSettings
    operator_namespace: pulumi.Input[str] | None
    namespace: pulumi.Input[str]
    protect: bool = False
    pod_disruption_budgets: bool = False
    mirrors: Mirrors = field(default_factory=Mirrors)
    indexer_group: str = DEFAULT_INDEXER_GROUP
    executor_groups: Sequence[str] = ()


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
    client_certificates: bool
    shared_secret_name: pulumi.Output[str] | None
    own_logins: tuple[str, ...]
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
        self.client_certificates = False
        self.shared_secret_name = None  # kafka:existing.saslSecret: the login of every client without its own
        self.own_logins: tuple[str, ...] = ()  # the client roles with a login of their own
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
                "client_certificates": self.client_certificates,
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
        if existing.sasl_secret:  # a client's own Secret when given, else the shared one (users and ACLs are yours)
            self.credentials_secret_names = {
                role: pulumi.Output.from_input(existing.client_secrets.get(role, existing.sasl_secret))
                for role in CLIENT_ROLES
            }
            self.shared_secret_name = pulumi.Output.from_input(existing.sasl_secret)
            self.own_logins = tuple(role for role in CLIENT_ROLES if role in existing.client_secrets)

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
        elif s.tls_client_auth:
            listener["authentication"] = {"type": "tls"}
        kafka_spec: dict[str, object] = {
            "version": s.version,
            "listeners": [listener],
            # with authentication every client is a KafkaUser limited to its ACLs (infra/kafka_access.py)
            **({"authorization": {"type": "simple"}} if s.authorization else {}),
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

        if s.authorization:
            # Users are stateless (Strimzi generates and rotates their credentials): no protect.
            users_opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=waits_for))
            names = KafkaNames(
                capture_topic=s.capture.name,
                dead_letter_topic=s.dead_letter.name,
                input_topic=s.model_input.name,
                output_topic=s.model_output.name,
                indexer_group=args.indexer_group,
                executor_groups=tuple(args.executor_groups),
            )
            for role in CLIENT_ROLES:
                self._user(name, role, names, args, cluster_label, users_opts)
            self.username_key = ""  # the user name is the KafkaUser's name, passed as it is
            self.password_key = STRIMZI_PASSWORD_KEY
            self.client_certificates = s.tls_client_auth
            self.own_logins = CLIENT_ROLES

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
        names: KafkaNames,
        args: KafkaPlatformArgs,
        cluster_label: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ) -> None:
        """The KafkaUser of one client with its ACLs from infra/kafka_access.py. Strimzi's User Operator generates
        its credentials into a Secret named after the user (SCRAM: key password; TLS: user.crt and user.key), which
        the client's pods reference: no password passes through the stack's state."""
        username = COMPONENT_USERS[role]
        authentication = "tls" if args.settings.tls_client_auth else "scram-sha-512"
        user = k8s.apiextensions.CustomResource(
            f"{name}-user-{role}",
            api_version=API_VERSION,
            kind="KafkaUser",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=username, namespace=args.namespace, labels=cluster_label),
            spec={
                "authentication": {"type": authentication},
                "authorization": {"type": "simple", "acls": strimzi_acls(username, names)},
            },
            opts=opts,
        )
        self.users[role] = user
        self.credentials_secret_names[role] = metadata_name(user)  # Strimzi's Secret has the user's name
        self.usernames[role] = username
