"""The Seldon Core v1 operator, with the executor's default request-logger endpoint set to the collector.

The version comes from `seldon:version` (validated in `infra.config`: >= 1.3.0, and >= 1.18.0 only with
`seldon:acceptBsl`). Only values whose keys exist in that version's chart are passed: the logger queue size and
write timeout arrived in 1.12.0, the rclone storage initializer in 1.8.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.charts import upstream_release
from infra.config import Mirrors, SeldonSettings

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
    namespace: pulumi.Input[str] | None
    request_logger_endpoint: pulumi.Input[str]
    mirrors: Mirrors = field(default_factory=Mirrors)


def operator_values(settings: SeldonSettings, endpoint: pulumi.Input[str], mirrors: Mirrors) -> dict[str, Any]:
    """Chart values for `settings.version`, with only keys that exist in that chart version."""
    version = settings.version_tuple
    request_logger: dict[str, Any] = {"defaultEndpoint": endpoint}
    if version >= (1, 12, 0):
        request_logger["workQueueSize"] = settings.logger_work_queue_size
        request_logger["writeTimeoutMs"] = settings.logger_write_timeout_ms
    # With a mirror, the operator and executor images are <registry>/seldonio/<image> (the chart's image.registry).
    registry = {"registry": mirrors.image_registry} if mirrors.image_registry else {}
    values: dict[str, Any] = {
        "image": {"tag": settings.version, **registry},
        "executor": {"image": {"tag": settings.version, **registry}, "requestLogger": request_logger},
        "usageMetrics": {"enabled": False},
        "certManager": {"enabled": settings.cert_manager},
        "crd": {"create": True},
    }
    if version >= (1, 8, 0):
        image = mirrors.image(f"seldonio/rclone-storage-initializer:{settings.version}")
        values["storageInitializer"] = {"image": image}
    return values


class SeldonOperator(pulumi.ComponentResource):
    """The seldon-core-operator chart (CRD, webhook, controller manager); nothing with seldon:operator=existing
    (the operator's default logger endpoint is then the deployer's to set: the collector.url output)."""

    release: k8s.helm.v3.Release | None
    request_logger_endpoint: pulumi.Output[str]
    version: str

    def __init__(self, name: str, args: SeldonOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:seldon:SeldonOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.release = None
        if args.settings.operator == "install":
            # helm.v3.Release, not v4 Chart: without cert-manager the chart generates the webhook certificate with
            # genCA/genSignedCert on every render, which client-side rendering would turn into a diff on each `up`.
            self.release = k8s.helm.v3.Release(
                f"{name}-operator",
                name=RELEASE_NAME,
                **upstream_release(args.mirrors, "seldon-core-operator", SELDON_REPO),
                version=args.settings.version,
                namespace=args.namespace,
                values=operator_values(args.settings, args.request_logger_endpoint, args.mirrors),
                opts=child,
            )
        self.request_logger_endpoint = pulumi.Output.from_input(args.request_logger_endpoint)
        self.version = args.settings.version
        self.register_outputs({"request_logger_endpoint": self.request_logger_endpoint, "version": self.version})
