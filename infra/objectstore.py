"""Object store: MinIO (pinned chart and images) with the batch bucket and the flow back's registry bucket,
credentials from Pulumi secrets.

MinIO's server is AGPL-3.0: it runs as an unmodified service in the cluster, never inside our code or tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import upstream_release
from infra.config import Mirrors, ObjectStoreSettings
from infra.refs import metadata_name, service_host

MINIO_REPO = "https://charts.min.io/"
MINIO_IMAGE = "quay.io/minio/minio"
MC_IMAGE = "quay.io/minio/mc"
FULLNAME = "minio"
API_PORT = 9000


@dataclass(frozen=True, kw_only=True)
class ObjectStoreArgs:
    """Inputs of the object store.

    settings: validated objectstore:* config (versions, mode, sizing, bucket, root credentials).
    namespace: namespace of MinIO.
    client_namespace: namespace of the batch workflow, which gets its own copy of the credentials Secret.
    registry_bucket: the flow back's bucket (datasets/ and registry/, flowback:bucket), beside the batch bucket.
    protect: protect the MinIO release (and its volumes) from deletion.
    pod_disruption_budgets: let the chart create a PodDisruptionBudget (distributed mode).
    mirrors: where the MinIO chart and images come from (platform:chartSources, platform:imageRegistry).
    """

    settings: ObjectStoreSettings
    namespace: pulumi.Input[str] | None
    client_namespace: pulumi.Input[str]
    registry_bucket: str = "flowback"
    protect: bool = False
    pod_disruption_budgets: bool = False
    mirrors: Mirrors = field(default_factory=Mirrors)


class ObjectStore(pulumi.ComponentResource):
    """MinIO with the batch bucket, the registry bucket and a client credentials Secret in the application
    namespace; with objectstore:existing nothing but the wiring (the endpoint and the Secret the deployer made; both
    buckets must exist there)."""

    release: k8s.helm.v3.Release | None
    endpoint: pulumi.Output[str]
    bucket: pulumi.Output[str]
    registry_bucket: pulumi.Output[str]
    credentials_secret_name: pulumi.Output[str]
    pod_selector: str | None
    # Where clients' NetworkPolicies let them go: the MinIO pods (namespace, labels) and the S3 port; for
    # objectstore:existing no pods of ours (pod_labels None) and the endpoint's port.
    pod_namespace: pulumi.Input[str] | None
    pod_labels: dict[str, str] | None
    api_port: int

    def __init__(self, name: str, args: ObjectStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:objectstore:ObjectStore", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.release = None
        if s.existing is not None:
            self.endpoint = pulumi.Output.from_input(s.existing.endpoint)
            self.bucket = pulumi.Output.from_input(s.bucket)
            self.registry_bucket = pulumi.Output.from_input(args.registry_bucket)
            self.credentials_secret_name = pulumi.Output.from_input(s.existing.secret)
            self.pod_selector = None
            self.pod_namespace, self.pod_labels = None, None
            url = urlsplit(s.existing.endpoint)
            self.api_port = url.port or (443 if url.scheme == "https" else 80)
        else:
            self._install_minio(name, args, child)
        self.register_outputs(
            {
                "pod_selector": self.pod_selector,
                "endpoint": self.endpoint,
                "bucket": self.bucket,
                "registry_bucket": self.registry_bucket,
                "credentials_secret_name": self.credentials_secret_name,
            }
        )

    def _install_minio(self, name: str, args: ObjectStoreArgs, child: pulumi.ResourceOptions) -> None:
        s = args.settings
        mirrors = args.mirrors

        root = k8s.core.v1.Secret(
            f"{name}-root-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="minio-root-credentials", namespace=args.namespace),
            type="Opaque",
            string_data={"rootUser": s.root_user, "rootPassword": s.root_password},
            opts=child,
        )
        values: dict[str, object] = {
            "fullnameOverride": FULLNAME,
            "image": {"repository": mirrors.image(MINIO_IMAGE), "tag": s.image_tag},
            "mcImage": {"repository": mirrors.image(MC_IMAGE), "tag": s.mc_image_tag},
            "mode": s.mode,
            "replicas": s.replicas,
            "existingSecret": metadata_name(root),
            "persistence": {"enabled": True, "size": s.storage},
            "resources": {"requests": s.resources.requests()},
            # The registry keeps versions immutable itself (registration.json records every file's sha256); MinIO
            # object versioning stays off so that a re-upload of a partial version does not pile up old copies.
            "buckets": [
                {"name": s.bucket, "policy": "none", "purge": False},
                {"name": args.registry_bucket, "policy": "none", "purge": False},
            ],
            # The chart's default user list ships a fixed password ("console123"): create no extra users.
            "users": [],
            "podDisruptionBudget": {"enabled": args.pod_disruption_budgets},
        }
        # helm.v3.Release, not v4 Chart: the chart creates buckets in a post-install Helm hook Job, and Chart v4
        # drops hooks.
        self.release = k8s.helm.v3.Release(
            f"{name}-minio",
            name=FULLNAME,
            **upstream_release(mirrors, "minio", MINIO_REPO),
            version=s.chart_version,
            namespace=args.namespace,
            values=values,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=args.protect)),
        )
        self.endpoint = pulumi.Output.concat(
            "http://",
            service_host(self.release.status.apply(lambda st: st.name if st and st.name else FULLNAME), args.namespace),
            f":{API_PORT}",
        )
        self.bucket = self.release.status.apply(lambda _st: s.bucket)
        # An Output of the release: what uses the registry bucket waits for the hook Job that made it.
        self.registry_bucket = self.release.status.apply(lambda _st: args.registry_bucket)
        client = k8s.core.v1.Secret(
            f"{name}-client-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="objectstore-credentials", namespace=args.client_namespace),
            type="Opaque",
            string_data={
                "accessKey": s.root_user,
                "secretKey": s.root_password,
                "endpoint": self.endpoint,
                "bucket": s.bucket,
            },
            opts=child,
        )
        self.credentials_secret_name = metadata_name(client)
        self.pod_selector = f"app=minio,release={FULLNAME}"  # the minio chart's pod labels
        self.pod_namespace, self.pod_labels, self.api_port = (
            args.namespace,
            {"app": "minio", "release": FULLNAME},
            API_PORT,
        )
