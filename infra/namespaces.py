"""The namespaces of the platform: one per operator plus the application namespace that holds the data plane.

Every namespace carries Pod Security Admission labels (decision 69): `enforce` at the strictest level every pod in
it can meet, `warn` and `audit` at `restricted` everywhere, so any pod below restricted is reported at `pulumi up`
(a warning) and in the API server's audit log, even where enforcement has to stay at baseline. The levels are
pinned to a policy version so a cluster upgrade cannot tighten them unannounced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

Level = Literal["privileged", "baseline", "restricted"]
STRICTNESS: dict[str, int] = {"privileged": 0, "baseline": 1, "restricted": 2}
POLICY_VERSION = "v1.31"  # the Pod Security Standards version tools/pod_security.py implements


@dataclass(frozen=True, kw_only=True)
class PodSecurity:
    """Pod Security Admission levels of one namespace role, and why enforcement is not `restricted` where not."""

    enforce: Level
    reason: str
    warn: Level = "restricted"
    audit: Level = "restricted"


# Levels by namespace role. `restricted` is enforced only where every pod's spec is ours and passes it
# (tests/charts/test_pod_security.py); each `baseline` names the pod we do not control and what it lacks.
POD_SECURITY: dict[str, PodSecurity] = {
    "app": PodSecurity(
        enforce="baseline",
        reason=(
            "the Seldon operator 1.17.1 adds the seldon-container-engine container to every SeldonDeployment pod "
            "with a securityContext of its own (runAsUser from executor.user and allowPrivilegeEscalation=false, "
            "operator/controllers/seldondeployment_engine.go createEngineContainer) that does not drop ALL "
            "capabilities, which restricted requires and no pod-level field can supply; our pod-level runAsNonRoot "
            "and RuntimeDefault seccomp cover the rest. Strimzi, ECK and Argo pods also run here."
        ),
    ),
    "kafkaOperator": PodSecurity(
        enforce="baseline",
        reason="the strimzi-kafka-operator 0.49.1 chart sets no pod or container securityContext at its defaults",
    ),
    "searchOperator": PodSecurity(
        enforce="baseline",
        reason="the eck-operator 3.5.0 chart drops ALL and forbids escalation, but sets no seccompProfile",
    ),
    "objectStore": PodSecurity(
        enforce="baseline",
        reason="the MinIO 5.4.0 chart runs as uid 1000 but neither drops capabilities nor sets a seccompProfile",
    ),
    "workflows": PodSecurity(
        enforce="baseline",
        reason="the argo-workflows 0.47.5 chart drops ALL in its containers, but its podSecurityContext is empty "
        "(no seccompProfile)",
    ),
    "seldonOperator": PodSecurity(
        enforce="baseline",
        reason="the seldon-core-operator 1.17.1 chart's manager.containerSecurityContext is empty",
    ),
}


def pod_security_labels(roles: list[str]) -> dict[str, str]:
    """The labels of a namespace that holds the pods of `roles`: per mode, the least strict level any role needs
    (one namespace serves them all); a role with no entry is an error naming the table."""
    unknown = sorted(set(roles) - set(POD_SECURITY))
    if unknown:
        raise ValueError(f"no Pod Security level for namespace role(s) {unknown}; add them to infra/namespaces.py")
    merged: dict[str, str] = {}
    for mode in ("enforce", "warn", "audit"):
        level = min((getattr(POD_SECURITY[role], mode) for role in roles), key=STRICTNESS.__getitem__)
        merged[f"pod-security.kubernetes.io/{mode}"] = level
        merged[f"pod-security.kubernetes.io/{mode}-version"] = POLICY_VERSION
    return merged


@dataclass(frozen=True, kw_only=True)
class NamespacesArgs:
    """Namespaces to create.

    names: role (e.g. "app", "kafkaOperator") to namespace name (DNS label); several roles may share one name.
        Every role needs an entry in POD_SECURITY (its Pod Security Admission levels).
    labels: labels for every namespace (string to string); the pod-security.kubernetes.io/* labels are added.
    """

    names: Mapping[str, str]
    labels: Mapping[str, str]


class Namespaces(pulumi.ComponentResource):
    """Creates each distinct namespace once and exposes its name as an Output per role, so that everything placed
    in a namespace depends on it through data."""

    names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("feedback:namespaces:Namespaces", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        created: dict[str, k8s.core.v1.Namespace] = {}
        for namespace in sorted(set(args.names.values())):
            roles = sorted(role for role, value in args.names.items() if value == namespace)
            labels = {**args.labels, **pod_security_labels(roles)}
            created[namespace] = k8s.core.v1.Namespace(
                f"{name}-{namespace}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels=labels),
                opts=child,
            )
        self.names = {role: created[namespace].metadata.name for role, namespace in args.names.items()}
        self.register_outputs({"names": self.names})
