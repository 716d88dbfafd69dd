"""Search: the ECK operator chart, an Elasticsearch cluster and Kibana, with one user per service.

Credentials are never read: ECK writes the `elastic` user's password into the Secret `<name>-es-elastic-user`,
and consumers get that Secret's name and key (a `secretKeyRef`), not its value. Only the setup Job (and the Kibana
import) gets `elastic`: the indexer and the monitor log in as file-realm users of their own (`spec.auth.fileRealm`,
basic-auth Secrets with the passwords of search:indexerPassword and search:monitorPassword) whose roles
(`spec.auth.roles`, infra/search_roles.py) reach their indices only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import upstream_chart
from infra.config import ExistingSearch, Mirrors, SearchSettings
from infra.refs import metadata_name, service_host
from infra.search_roles import INDEXER_ROLE, INDEXER_USER, MONITOR_ROLE, MONITOR_USER, elasticsearch_roles, roles_yaml

ELASTIC_REPO = "https://helm.elastic.co"
ES_API_VERSION = "elasticsearch.k8s.elastic.co/v1"
KIBANA_API_VERSION = "kibana.k8s.elastic.co/v1"
ELASTIC_USER = "elastic"
ECK_OPERATOR_IMAGE = "docker.elastic.co/eck/eck-operator"  # the chart's image.repository
SERVICES = ("setup", "indexer", "monitor")  # who logs in to the search engine, each with its own credentials


@dataclass(frozen=True)
class SearchCredentials:
    """One service's user: its name and the Secret (and key) holding its password, by reference."""

    username: str
    secret_name: pulumi.Output[str]
    secret_key: str


@dataclass(frozen=True, kw_only=True)
class SearchPlatformArgs:
    """Inputs of the search platform.

    settings: validated search:* config (versions, sizing, TLS, Kibana).
    operator_namespace: namespace of the ECK operator.
    namespace: application namespace holding Elasticsearch and Kibana (and the clients of their Secrets).
    protect: protect the Elasticsearch cluster from deletion.
    pod_disruption_budgets: an explicit budget allowing one node down at a time; off means no budget at all.
    mirrors: where the operator chart and the images come from (platform:chartSources, platform:imageRegistry).
    capture_index, monitor_index: the indices the indexer's and the monitor's roles reach (feedback:index,
        feedback:monitorIndex).
    """

    settings: SearchSettings
    capture_index: str
    monitor_index: str
    operator_namespace: pulumi.Input[str] | None
    namespace: pulumi.Input[str]
    protect: bool = False
    pod_disruption_budgets: bool = False
    mirrors: Mirrors = field(default_factory=Mirrors)


class SearchPlatform(pulumi.ComponentResource):
    """ECK operator + Elasticsearch + Kibana; with search:operator=existing the operator chart is left out, with
    search:existing everything (the indexer is wired to that engine instead)."""

    operator: k8s.helm.v4.Chart | None
    elasticsearch: k8s.apiextensions.CustomResource | None
    kibana: k8s.apiextensions.CustomResource | None
    cluster_name: pulumi.Output[str] | None
    pod_selector: pulumi.Output[str] | None
    engine: str
    url: pulumi.Output[str]
    kibana_url: pulumi.Output[str] | None
    username: str
    credentials_secret_name: pulumi.Output[str]
    credentials_secret_key: str
    credentials: dict[str, SearchCredentials]
    ca_secret_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: SearchPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:search:SearchPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.operator = None
        self.elasticsearch = None
        self.kibana = None
        self.kibana_url = None
        self.kibana_ca_secret_name: pulumi.Output[str] | None = None
        if args.settings.existing is not None:
            self._use_existing(args.settings.existing)
        else:
            self._make_cluster(name, args, child)
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "pod_selector": self.pod_selector,
                "url": self.url,
                "kibana_url": self.kibana_url,
                "username": self.username,
                "credentials_secret_name": self.credentials_secret_name,
                "credentials_secret_key": self.credentials_secret_key,
                "credentials": {
                    service: {"username": c.username, "secret": c.secret_name, "secretKey": c.secret_key}
                    for service, c in self.credentials.items()
                },
                "ca_secret_name": self.ca_secret_name,
            }
        )

    def _use_existing(self, existing: ExistingSearch) -> None:
        """Wire the indexer to an engine the platform does not make: its URL and its Secrets, by reference."""
        self.engine = existing.engine
        self.cluster_name = None
        self.pod_selector = None
        self.url = pulumi.Output.from_input(existing.url)
        self.username = existing.username
        self.credentials_secret_name = pulumi.Output.from_input(existing.secret)
        self.credentials_secret_key = existing.secret_key
        self.ca_secret_name = pulumi.Output.from_input(existing.ca_secret) if existing.ca_secret else None
        key = existing.secret_key
        self.credentials = {
            "setup": SearchCredentials(existing.username, self.credentials_secret_name, key),
            "indexer": SearchCredentials(
                existing.indexer_username, pulumi.Output.from_input(existing.indexer_secret), key
            ),
            "monitor": SearchCredentials(
                existing.monitor_username, pulumi.Output.from_input(existing.monitor_secret), key
            ),
        }

    def _make_cluster(self, name: str, args: SearchPlatformArgs, child: pulumi.ResourceOptions) -> None:
        s = args.settings
        mirrors = args.mirrors
        self.engine = "elasticsearch"
        waits_for: list[pulumi.Resource] = []
        if s.operator == "install":
            values: dict[str, object] = {
                "installCRDs": True,
                "managedNamespaces": [args.namespace],
                "image": {"tag": s.operator_chart_version},
                "telemetry": {"disabled": True},
            }
            if mirrors.image_registry:  # the operator's image, and where it pulls Elasticsearch and Kibana from
                values["image"] = {"repository": mirrors.image(ECK_OPERATOR_IMAGE), "tag": s.operator_chart_version}
                values["config"] = {"containerRegistry": mirrors.image_registry}
            self.operator = k8s.helm.v4.Chart(
                f"{name}-operator",
                **upstream_chart(mirrors, "eck-operator", ELASTIC_REPO),
                version=s.operator_chart_version,
                namespace=args.operator_namespace,
                values=values,
                opts=child,
            )
            waits_for.append(self.operator)
        after_operator = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=waits_for))
        http = {"tls": {"selfSignedCertificate": {"disabled": True}}} if not s.tls else {}
        volume_spec: dict[str, object] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": s.storage}},
        }
        if s.storage_class:
            volume_spec["storageClassName"] = s.storage_class
        es_spec: dict[str, object] = {
            "version": s.version,
            "nodeSets": [
                {
                    "name": "default",
                    "count": s.nodes,
                    "config": {"node.store.allow_mmap": False},
                    "podTemplate": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "elasticsearch",
                                    "resources": {
                                        "requests": s.resources.requests(),
                                        "limits": {"memory": s.resources.memory},
                                    },
                                }
                            ]
                        }
                    },
                    "volumeClaimTemplates": [{"metadata": {"name": "elasticsearch-data"}, "spec": volume_spec}],
                }
            ],
            # An empty budget turns ECK's default off (it blocks drains of a single-node cluster).
            "podDisruptionBudget": (
                {
                    "spec": {
                        "maxUnavailable": 1,
                        "selector": {"matchLabels": {"elasticsearch.k8s.elastic.co/cluster-name": s.cluster_name}},
                    }
                }
                if args.pod_disruption_budgets
                else {}
            ),
        }
        if http:
            es_spec["http"] = http
        users = self._make_users(name, args, child)
        es_spec["auth"] = {
            "roles": [{"secretName": users["roles"]}],
            "fileRealm": [{"secretName": users["indexer"]}, {"secretName": users["monitor"]}],
        }
        self.elasticsearch = k8s.apiextensions.CustomResource(
            f"{name}-elasticsearch",
            api_version=ES_API_VERSION,
            kind="Elasticsearch",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=s.cluster_name, namespace=args.namespace),
            spec=es_spec,
            opts=pulumi.ResourceOptions.merge(after_operator, pulumi.ResourceOptions(protect=args.protect)),
        )
        es_name = metadata_name(self.elasticsearch)
        self.cluster_name = es_name
        self.pod_selector = pulumi.Output.concat("elasticsearch.k8s.elastic.co/cluster-name=", es_name)
        scheme = "https" if s.tls else "http"
        if s.kibana:
            kibana_spec: dict[str, object] = {
                "version": s.version,
                "count": s.kibana_replicas,
                "elasticsearchRef": {"name": es_name},
            }
            if http:
                kibana_spec["http"] = http
            self.kibana = k8s.apiextensions.CustomResource(
                f"{name}-kibana",
                api_version=KIBANA_API_VERSION,
                kind="Kibana",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=s.cluster_name, namespace=args.namespace),
                spec=kibana_spec,
                opts=after_operator,
            )
            kibana_name = metadata_name(self.kibana)
            self.kibana_url = pulumi.Output.concat(
                scheme, "://", service_host(pulumi.Output.concat(kibana_name, "-kb-http"), args.namespace), ":5601"
            )
            if s.tls:
                self.kibana_ca_secret_name = pulumi.Output.concat(kibana_name, "-kb-http-certs-public")

        self.url = pulumi.Output.concat(
            scheme, "://", service_host(pulumi.Output.concat(es_name, "-es-http"), args.namespace), ":9200"
        )
        self.username = ELASTIC_USER
        self.credentials_secret_name = pulumi.Output.concat(es_name, "-es-elastic-user")
        self.credentials_secret_key = ELASTIC_USER
        self.ca_secret_name = pulumi.Output.concat(es_name, "-es-http-certs-public") if s.tls else None
        self.credentials = {
            "setup": SearchCredentials(ELASTIC_USER, self.credentials_secret_name, ELASTIC_USER),
            "indexer": SearchCredentials(INDEXER_USER, users["indexer"], "password"),
            "monitor": SearchCredentials(MONITOR_USER, users["monitor"], "password"),
        }

    def _make_users(
        self, name: str, args: SearchPlatformArgs, child: pulumi.ResourceOptions
    ) -> dict[str, pulumi.Output[str]]:
        """The roles Secret (`roles.yml`) and one basic-auth Secret per service user (ECK's file realm reads
        username, password and roles from it); returns their names, which the Elasticsearch resource references."""
        s = args.settings
        names: dict[str, pulumi.Output[str]] = {}
        roles = k8s.core.v1.Secret(
            f"{name}-roles",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{s.cluster_name}-feedback-roles", namespace=args.namespace),
            string_data={"roles.yml": roles_yaml(elasticsearch_roles(args.capture_index, args.monitor_index))},
            opts=child,
        )
        names["roles"] = metadata_name(roles)
        for service, user, role, password in (
            ("indexer", INDEXER_USER, INDEXER_ROLE, s.indexer_password),
            ("monitor", MONITOR_USER, MONITOR_ROLE, s.monitor_password),
        ):
            secret = k8s.core.v1.Secret(
                f"{name}-{service}-user",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{s.cluster_name}-feedback-{service}-user", namespace=args.namespace
                ),
                type="kubernetes.io/basic-auth",
                string_data={
                    "username": user,
                    "password": password if password is not None else pulumi.Output.secret(""),
                    "roles": role,
                },
                opts=child,
            )
            names[service] = metadata_name(secret)
        return names
