"""Who may send events, under Pulumi mocks: platform:mesh and the feedback:* access keys are validated before the
first resource, with messages naming the key and the fix, and reach the feedback-pipeline chart's values (mesh
principals built from the Seldon namespace and ServiceAccounts, the scraper, the producer port with its token kept
in a Secret the program makes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.harness import OPTIONAL_TEST_SECRETS, TEST_SECRETS, run_program
from tests.infra.test_config import config_error
from tests.infra.test_program import SECRET, SECRET_SIG, values

TOKEN = {**TEST_SECRETS, "feedback:producerToken": OPTIONAL_TEST_SECRETS["feedback:producerToken"]}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"platform:mesh": "linkerd"}, "platform:mesh='linkerd' is not allowed; use one of none, istio"),
        (
            {"platform:mesh": "istio", "platform:meshTrustDomain": "Cluster Local"},
            "platform:meshTrustDomain='Cluster Local' is not a trust domain",
        ),
        (
            {"feedback:metricsPrincipals": ["cluster.local/ns/monitoring/sa/prometheus"]},
            "feedback:metricsPrincipals is set but platform:mesh=none",
        ),
        (
            {"platform:mesh": "istio", "feedback:metricsPrincipals": ["monitoring/prometheus"]},
            "feedback:metricsPrincipals: 'monitoring/prometheus' is not an Istio principal; write "
            "<trust domain>/ns/<namespace>/sa/<service account>",
        ),
        (
            {"platform:mesh": "istio", "feedback:seldonServiceAccounts": []},
            "platform:mesh=istio needs feedback:seldonServiceAccounts (at least one)",
        ),
        ({"feedback:seldonServiceAccounts": ["Default"]}, "feedback:seldonServiceAccounts"),
        ({"feedback:seldonServiceAccounts": "default"}, "feedback:seldonServiceAccounts='default' is not a list"),
        ({"feedback:metricsNamespace": "Monitoring"}, "feedback:metricsNamespace"),
        ({"feedback:metricsPodLabels": {}}, "feedback:metricsPodLabels={} would admit every pod"),
        (
            {"feedback:producerNamespaces": ["labelling"]},
            "feedback:producerNamespaces is set but feedback:producerToken is not",
        ),
    ],
    ids=[
        "mesh-enum",
        "trust-domain",
        "principals-without-mesh",
        "principal-shape",
        "mesh-without-accounts",
        "account-name",
        "accounts-not-a-list",
        "metrics-namespace",
        "metrics-pod-labels-empty",
        "producer-namespaces-without-token",
    ],
)
def test_bad_access_config_is_refused_before_any_resource(overrides: dict[str, Any], expected: str) -> None:
    assert expected in config_error(overrides=overrides)


def test_the_producer_token_must_be_a_secret() -> None:
    message = config_error(plain={"feedback:producerToken": "x" * 40})
    assert "feedback:producerToken is stored in plain text" in message
    assert "pulumi config set --secret feedback:producerToken" in message


def test_defaults_no_mesh_no_scraper_no_producer_port() -> None:
    run = run_program("dev")
    feedback = values(run, "feedback-pipeline")
    assert feedback["mesh"] == {"type": "none"}
    assert "producers" not in feedback["collector"]
    assert feedback["networkPolicy"]["metricsNamespace"] == ""
    assert feedback["networkPolicy"]["metricsPodLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert not [r for r in run.of_type(SECRET) if r.name == "feedback-producer-token"]


def test_istio_admits_the_seldon_namespaces_service_accounts_and_the_scraper() -> None:
    scraper = "mesh.example/ns/monitoring/sa/prometheus"
    run = run_program(
        "dev",
        overrides={
            "platform:mesh": "istio",
            "platform:meshTrustDomain": "mesh.example",
            "feedback:seldonServiceAccounts": ["default", "text-classifier"],
            "feedback:metricsNamespace": "monitoring",
            "feedback:metricsPodLabels": {"prometheus": "k8s"},
            "feedback:metricsPrincipals": [scraper],
        },
    )
    feedback = values(run, "feedback-pipeline")
    assert feedback["mesh"] == {
        "type": "istio",
        "seldonPrincipals": ["mesh.example/ns/seldon/sa/default", "mesh.example/ns/seldon/sa/text-classifier"],
        "metricsPrincipals": [scraper],
    }
    # the Seldon namespaces of the NetworkPolicy and of the principals are the same (platform:appNamespace)
    assert feedback["networkPolicy"]["seldonNamespaces"] == ["seldon"]
    assert feedback["networkPolicy"]["metricsNamespace"] == "monitoring"
    assert feedback["networkPolicy"]["metricsPodLabels"] == {"prometheus": "k8s"}


def test_a_producer_token_opens_the_producer_port_with_the_token_in_a_secret() -> None:
    run = run_program("dev", overrides={"feedback:producerNamespaces": ["labelling"]}, secrets=TOKEN)
    producers = values(run, "feedback-pipeline")["collector"]["producers"]
    [secret] = [r for r in run.of_type(SECRET) if r.name == "feedback-producer-token"]
    assert secret.inputs["metadata"] == {"name": "feedback-pipeline-producer-token", "namespace": "seldon"}
    assert producers == {
        "enabled": True,
        "existingSecret": secret.inputs["metadata"]["name"],
        "tokenKey": "token",
        "namespaces": ["labelling"],
    }
    assert set(secret.inputs["stringData"]) == {SECRET_SIG, "value"}, "the token must stay a Pulumi secret"
    token = OPTIONAL_TEST_SECRETS["feedback:producerToken"]
    assert json.loads(json.dumps(secret.inputs["stringData"]["value"])) == {"token": token}
    chart = run.registration("feedback-pipeline")
    assert any(getattr(d, "_name", None) == "feedback-producer-token" for d in chart.opts.depends_on or [])
    leaked = [r.name for r in run.resources if r.typ != SECRET and token in json.dumps(r.inputs)]
    assert not leaked, f"the token appears outside its Secret: {leaked}"
