"""Small helpers that turn resources into the references other resources consume (names, in-cluster addresses)."""

from __future__ import annotations

import re
from typing import Any

import pulumi


def metadata_name(resource: Any) -> pulumi.Output[str]:
    """metadata.name of a Kubernetes resource as an Output, so that consumers depend on the resource itself."""

    def pick(metadata: Any) -> str:
        if isinstance(metadata, dict):
            return str(metadata["name"])
        return str(metadata.name)

    return resource.metadata.apply(pick)


def service_host(service: pulumi.Input[str], namespace: pulumi.Input[str]) -> pulumi.Output[str]:
    """In-cluster DNS name of a Service: <service>.<namespace>.svc.cluster.local."""
    return pulumi.Output.concat(service, ".", namespace, ".svc.cluster.local")


def dns_name(text: str) -> str:
    """A Kubernetes object name (DNS-1123) derived from free text such as a Kafka topic name."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "x"
