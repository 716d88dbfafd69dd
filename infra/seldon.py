"""The Seldon Core v1 operator, with the executor's default request-logger endpoint set to the collector.

The version comes from `seldon:version` (validated in `infra.config`: >= 1.3.0, and >= 1.18.0 only with
`seldon:acceptBsl`). Only values whose keys exist in that version's chart are passed: the logger queue size and
write timeout arrived in 1.12.0, the rclone storage initializer in 1.8.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import SeldonSettings

SELDON_REPO = "https://storage.googleapis.com/seldon-charts"
RELEASE_NAME = "seldon-core"


@dataclass(frozen=True, kw_only=True)
class SeldonOperatorArgs:
    """Inputs of the Seldon Core operator.

    settings: validated seldon:* config (version, licence opt-in, cert-manager, logger queue).
    namespace: namespace of the operator (it watches every namespace).
    request_logger_endpoint: URL every executor sends its CloudEvents to unless a graph names another
        (the feedback collector Service URL).
    """

    settings: SeldonSettings
    namespace: pulumi.Input[str]
    request_logger_endpoint: pulumi.Input[str]


def operator_values(settings: SeldonSettings, endpoint: pulumi.Input[str]) -> dict[str, Any]:
    """Chart values for `settings.version`, with only keys that exist in that chart version."""
    version = settings.version_tuple
    request_logger: dict[str, Any] = {"defaultEndpoint": endpoint}
    if version >= (1, 12, 0):
        request_logger["workQueueSize"] = settings.logger_work_queue_size
        request_logger["writeTimeoutMs"] = settings.logger_write_timeout_ms
    values: dict[str, Any] = {
        "image": {"tag": settings.version},
        "executor": {"image": {"tag": settings.version}, "requestLogger": request_logger},
        "usageMetrics": {"enabled": False},
        "certManager": {"enabled": settings.cert_manager},
        "crd": {"create": True},
    }
    if version >= (1, 8, 0):
        values["storageInitializer"] = {"image": f"seldonio/rclone-storage-initializer:{settings.version}"}
    return values


class SeldonOperator(pulumi.ComponentResource):
    """The seldon-core-operator chart (CRD, webhook, controller manager)."""

    release: k8s.helm.v3.Release
    request_logger_endpoint: pulumi.Output[str]
    version: str

    def __init__(self, name: str, args: SeldonOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:seldon:SeldonOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # helm.v3.Release, not v4 Chart: without cert-manager the chart generates the webhook certificate with
        # genCA/genSignedCert on every render, which client-side rendering would turn into a diff on each `up`.
        self.release = k8s.helm.v3.Release(
            f"{name}-operator",
            name=RELEASE_NAME,
            chart="seldon-core-operator",
            version=args.settings.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=SELDON_REPO),
            namespace=args.namespace,
            values=operator_values(args.settings, args.request_logger_endpoint),
            opts=child,
        )
        self.request_logger_endpoint = pulumi.Output.from_input(args.request_logger_endpoint)
        self.version = args.settings.version
        self.register_outputs({"request_logger_endpoint": self.request_logger_endpoint, "version": self.version})
