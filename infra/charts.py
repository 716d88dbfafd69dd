"""What our three charts (`charts/<name>`) share when the program installs them: where a chart is, its pinned
version, image values, and how a client reaches Kafka (one shape of Kafka TLS and SASL values for both charts).

The charts come from this repository (a local path, pinned by the chart version in its Chart.yaml). Only keys that
exist in each chart's values.yaml are passed (a test checks this). Credentials are passed as Secret names and keys,
never as values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.config import Image, Mirrors

REPO_ROOT = Path(__file__).resolve().parent.parent
CHARTS_DIR = REPO_ROOT / "charts"


def chart_path(name: str) -> str:
    """Path of our chart `name`, relative to the working directory (Pulumi runs the program from infra/, the
    tests from the repository root), so the path in stack state is the same on every machine."""
    return os.path.relpath(CHARTS_DIR / name, Path.cwd())


def chart_version(name: str) -> str:
    """The `version` in charts/<name>/Chart.yaml: the pin of a local chart."""
    return str(yaml.safe_load((CHARTS_DIR / name / "Chart.yaml").read_text())["version"])


def chart_default(name: str, path: str) -> Any:
    """The default at dotted `path` of charts/<name>/values.yaml (for images the program does not otherwise set)."""
    node: Any = yaml.safe_load((CHARTS_DIR / name / "values.yaml").read_text())
    for part in path.split("."):
        node = node[part]
    return node


def image_values(image: Image, mirrors: Mirrors) -> dict[str, str]:
    """Our charts' `image` values, the repository moved to platform:imageRegistry when one is set."""
    return {"repository": mirrors.image(image.repository), "tag": image.tag, "digest": image.digest}


def upstream_chart(mirrors: Mirrors, chart: str, repository: str) -> dict[str, Any]:
    """`chart` and `repository_opts` of a `helm.v4.Chart` for upstream chart `chart`, from its mirror source
    (platform:chartSources / platform:chartRepository) or else its own `repository`: a Helm repository URL, an OCI
    registry path (the chart is then `oci://.../<chart>`) or a local chart archive."""
    source = mirrors.chart_source(chart, repository)
    if source.archive:
        return {"chart": source.archive}
    if source.oci:
        return {"chart": f"{source.repository}/{chart}"}
    return {"chart": chart, "repository_opts": k8s.helm.v4.RepositoryOptsArgs(repo=source.repository)}


def upstream_release(mirrors: Mirrors, chart: str, repository: str) -> dict[str, Any]:
    """The same for a `helm.v3.Release`."""
    args = upstream_chart(mirrors, chart, repository)
    if "repository_opts" in args:
        source = mirrors.chart_source(chart, repository)
        args["repository_opts"] = k8s.helm.v3.RepositoryOptsArgs(repo=source.repository)
    return args


@dataclass(frozen=True, kw_only=True)
class KafkaClient:
    """How a client reaches Kafka.

    bootstrap_servers: "host:port" of the bootstrap Service.
    security_protocol: "PLAINTEXT", "SSL" or "SASL_SSL".
    cluster_name: the Kafka resource name (selects broker pods for NetworkPolicies); None for kafka:existing.
    ca_secret_name: Secret with the cluster CA certificate (key ca.crt) when TLS is on.
    sasl_mechanism: the SASL mechanism ("SCRAM-SHA-512") when SASL is on, else "".
    credentials_secret_name: Secret with the SASL password (and user name) of this client when SASL is on; None for
        the shared part of several clients' settings (each client's own login is then given separately).
    username_key, password_key: the keys of the user name and the password in that Secret.
    username: the user name itself (Strimzi's KafkaUser Secrets hold only the password); wins over username_key.
    client_cert_secret_name: Secret with this client's TLS certificate and key (keys user.crt, user.key: Strimzi's
        KafkaUser Secret with kafka:authentication=tls); None without client certificates.
    """

    bootstrap_servers: pulumi.Input[str]
    security_protocol: str
    cluster_name: pulumi.Input[str] | None
    ca_secret_name: pulumi.Input[str] | None = None
    sasl_mechanism: str = ""
    credentials_secret_name: pulumi.Input[str] | None = None
    username_key: str = ""
    password_key: str = ""
    username: str = ""
    client_cert_secret_name: pulumi.Input[str] | None = None


CLIENT_CERT_KEY, CLIENT_KEY_KEY = "user.crt", "user.key"  # Strimzi's TLS KafkaUser Secret


def kafka_security_values(kafka: KafkaClient) -> dict[str, Any]:
    """`kafka.tls` and `kafka.sasl` in the one shape both charts take (`tls.{existingSecret, caCertKey}`,
    `sasl.{mechanism, existingSecret, username, usernameKey, passwordKey}`), each only when it is on; the client's
    own login (Secret, user name) only when this client has one."""
    values: dict[str, Any] = {}
    if kafka.ca_secret_name is not None:
        values["tls"] = {"existingSecret": kafka.ca_secret_name, "caCertKey": "ca.crt"}
    if kafka.sasl_mechanism:
        sasl: dict[str, Any] = {"mechanism": kafka.sasl_mechanism, "passwordKey": kafka.password_key}
        if kafka.username_key:
            sasl["usernameKey"] = kafka.username_key
        if kafka.credentials_secret_name is not None:
            sasl["existingSecret"] = kafka.credentials_secret_name
        if kafka.username:
            sasl["username"] = kafka.username
        values["sasl"] = sasl
    return values


def classifier_tls_client_values(kafka: KafkaClient) -> dict[str, Any]:
    """The text-classifier chart's `kafka.tls` client-certificate fields (empty without a client certificate)."""
    if kafka.client_cert_secret_name is None:
        return {}
    return {
        "clientSecret": kafka.client_cert_secret_name,
        "clientCertKey": CLIENT_CERT_KEY,
        "clientKeyKey": CLIENT_KEY_KEY,
    }


def feedback_client_values(kafka: KafkaClient) -> dict[str, Any]:
    """One entry of the feedback-pipeline chart's `kafka.clients` (existingSecret, username, certSecret)."""
    values: dict[str, Any] = {}
    if kafka.credentials_secret_name is not None:
        values["existingSecret"] = kafka.credentials_secret_name
    if kafka.username:
        values["username"] = kafka.username
    if kafka.client_cert_secret_name is not None:
        values["certSecret"] = kafka.client_cert_secret_name
    return values
