"""feedback-pipeline chart, who may send events and read metrics (docs/feedback-pipeline.md, "Who may send events"):
each NetworkPolicy rule, the collector's separate metrics port and optional producer port, the Istio
AuthorizationPolicies, and the values that must be refused. Every assertion is on rendered objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from feedback.collector.settings import CollectorSettings

from tests.charts.test_feedback_pipeline import SCHEMA_ERRORS, container_env
from tests.fixtures.charts import RenderFn, by_kind, one

CHART = "feedback-pipeline"
FULLNAME = "feedback-pipeline"
COMPONENTS = ("collector", "indexer", "monitor")
SELDON_POD = {
    "matchLabels": {"app.kubernetes.io/managed-by": "seldon-core"},
    "matchExpressions": [{"key": "seldon-deployment-id", "operator": "Exists"}],
}
SCRAPER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
PRODUCERS_ON = {"collector": {"producers": {"enabled": True, "existingSecret": "labelling-token"}}}
PRINCIPAL = "cluster.local/ns/seldon/sa/text-classifier"
ISTIO = {"mesh": {"type": "istio", "seldonPrincipals": [PRINCIPAL]}}


def policy(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return one(objects, "NetworkPolicy", f"{FULLNAME}-{component}")["spec"]


def rules_by_port(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """{port name: the peers admitted there}; each rule names exactly one port."""
    found: dict[str, list[dict[str, Any]]] = {}
    for rule in spec["ingress"]:
        [port] = rule["ports"]
        assert port["protocol"] == "TCP"
        assert port["port"] not in found, f"two rules for port {port['port']}"
        found[port["port"]] = rule["from"]
    return found


def container(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    deployment = one(objects, "Deployment", f"{FULLNAME}-{component}")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_the_event_port_admits_only_pods_the_seldon_operator_made(chart_render: RenderFn) -> None:
    spec = policy(chart_render(CHART), "collector")
    assert rules_by_port(spec) == {
        "http": [
            {
                "namespaceSelector": {
                    "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["seldon"]}]
                },
                "podSelector": SELDON_POD,
            }
        ]
    }, "without networkPolicy.metricsNamespace only Seldon pods may connect, and only to the event port"


def test_the_event_port_can_be_narrowed_to_named_seldon_deployments_or_widened_for_a_separate_executor_pod(
    chart_render: RenderFn,
) -> None:
    values = {
        "networkPolicy": {
            "seldonNamespaces": ["models-a", "models-b"],
            "seldonDeploymentIds": ["text-classifier", "text-classifier-streaming"],
        }
    }
    [peer] = rules_by_port(policy(chart_render(CHART, values), "collector"))["http"]
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["models-a", "models-b"]
    assert peer["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "seldon-core"},
        "matchExpressions": [
            {
                "key": "seldon-deployment-id",
                "operator": "In",
                "values": ["text-classifier", "text-classifier-streaming"],
            }
        ],
    }
    # seldon.io/engine-separate-pod: the executor's own pod has seldon-deployment-id but not the managed-by label
    [peer] = rules_by_port(policy(chart_render(CHART, {"networkPolicy": {"seldonPodLabels": None}}), "collector"))[
        "http"
    ]
    assert peer["podSelector"] == {"matchExpressions": [{"key": "seldon-deployment-id", "operator": "Exists"}]}


def test_every_metrics_port_admits_only_the_scraper(chart_render: RenderFn) -> None:
    scraper = {"app.kubernetes.io/name": "prometheus"}
    objects = chart_render(CHART, {"networkPolicy": {"metricsNamespace": "monitoring", "metricsPodLabels": scraper}})
    assert rules_by_port(policy(objects, "collector")) == {
        "http": [rules_by_port(policy(objects, "collector"))["http"][0]],
        "metrics": [SCRAPER],
    }
    for component in ("indexer", "monitor"):
        assert rules_by_port(policy(objects, component)) == {"metrics": [SCRAPER]}, component
    everyone = chart_render(CHART, {"networkPolicy": {"metricsNamespace": "monitoring"}})  # no labels: any pod there
    for component in COMPONENTS:
        assert rules_by_port(policy(everyone, component))["metrics"] == [
            {"namespaceSelector": SCRAPER["namespaceSelector"]}
        ]
    for component in ("indexer", "monitor"):  # no scraper configured: nothing may connect at all
        assert policy(chart_render(CHART), component)["ingress"] == []


def test_the_collector_serves_metrics_and_probes_on_their_own_port(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, {"serviceMonitor": {"enabled": True}})
    collector = container(objects, "collector")
    ports = {port["name"]: port["containerPort"] for port in collector["ports"]}
    assert ports == {"http": 8080, "metrics": 9090}
    for probe in ("readinessProbe", "livenessProbe"):
        assert collector[probe]["httpGet"]["port"] == "metrics", probe
    config = one(objects, "ConfigMap", f"{FULLNAME}-collector")["data"]
    assert (config["COLLECTOR_PORT"], config["COLLECTOR_METRICS_PORT"]) == ("8080", "9090")
    assert "COLLECTOR_PRODUCER_PORT" not in config
    service = one(objects, "Service", f"{FULLNAME}-collector")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8080, "http"),
        ("metrics", 9090, "metrics"),
    ]
    [endpoint] = one(objects, "ServiceMonitor", f"{FULLNAME}-collector")["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    moved = chart_render(CHART, {"collector": {"metricsPort": 9100}})
    assert {p["name"]: p["containerPort"] for p in container(moved, "collector")["ports"]}["metrics"] == 9100
    assert one(moved, "ConfigMap", f"{FULLNAME}-collector")["data"]["COLLECTOR_METRICS_PORT"] == "9100"


def test_the_producer_port_opens_with_a_token_secret_to_the_producer_namespaces(
    chart_render: RenderFn, tmp_path: Path
) -> None:
    values = {
        "collector": {
            "producers": {
                "enabled": True,
                "existingSecret": "labelling-token",
                "namespaces": ["labelling"],
                "podLabels": {"app": "label-studio"},
            }
        },
        "networkPolicy": {"metricsNamespace": "monitoring"},
    }
    objects = chart_render(CHART, values)
    rules = rules_by_port(policy(objects, "collector"))
    assert set(rules) == {"http", "producers", "metrics"}
    assert rules["producers"] == [
        {
            "namespaceSelector": {
                "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["labelling"]}]
            },
            "podSelector": {"matchLabels": {"app": "label-studio"}},
        }
    ]
    collector = container(objects, "collector")
    assert {p["name"]: p["containerPort"] for p in collector["ports"]} == {
        "http": 8080,
        "metrics": 9090,
        "producers": 8081,
    }
    [mount] = [m for m in collector["volumeMounts"] if m["name"] == "producer-token"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/feedback/producer-token", True)
    pod = one(objects, "Deployment", f"{FULLNAME}-collector")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "producer-token"]
    assert volume["secret"]["secretName"] == "labelling-token"
    assert volume["secret"]["items"] == [{"key": "token", "path": "tokens"}]
    service = one(objects, "Service", f"{FULLNAME}-collector")
    assert ("producers", 8081, "producers") in [
        (p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]
    ]

    token = tmp_path / "tokens"
    token.write_text("p" * 48 + "\n")
    env = container_env(objects, "collector", {"/etc/feedback/producer-token/": token})
    settings = CollectorSettings.from_env(env)  # the real collector accepts what the chart renders
    assert settings.producer is not None
    assert (settings.port, settings.metrics_port, settings.producer.port) == (8080, 9090, 8081)
    assert settings.producer.event_kinds == ("feedback",) and settings.producer.tokens == (b"p" * 48,)

    [peer] = rules_by_port(policy(chart_render(CHART, PRODUCERS_ON), "collector"))["producers"]
    assert peer == {
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["seldon"]}]
        }
    }, "no producer namespaces: the release namespace only"


# The fields Istio's security.istio.io/v1 AuthorizationPolicy has (istio/api security/v1beta1/authorization.proto;
# the v1 API serves the same message): a typo would be dropped by the API server and the rule would mean something
# else. No Istio CRD is in ../shared/upstream/crds, so the shape is checked here.
AUTHZ_SPEC = {"selector", "action", "rules", "targetRef", "targetRefs", "provider"}
AUTHZ_RULE = {"from", "to", "when"}


def authorization(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    found = one(objects, "AuthorizationPolicy", f"{FULLNAME}-{component}")
    assert found["apiVersion"] == "security.istio.io/v1"
    spec = found["spec"]
    assert set(spec) <= AUTHZ_SPEC and spec["action"] == "ALLOW"
    for rule in spec["rules"]:
        assert set(rule) <= AUTHZ_RULE
        for source in rule.get("from", []):
            assert set(source) == {"source"} and set(source["source"]) == {"principals"}
        for target in rule["to"]:
            assert set(target) == {"operation"} and set(target["operation"]) == {"ports"}
    selector = one(objects, "Deployment", f"{FULLNAME}-{component}")["spec"]["selector"]["matchLabels"]
    assert spec["selector"]["matchLabels"] == selector
    return spec


def admitted(spec: dict[str, Any]) -> dict[str, list[str] | None]:
    """{container port: the principals admitted there (None: any source)}."""
    result: dict[str, list[str] | None] = {}
    for rule in spec["rules"]:
        [target] = rule["to"]
        [port] = target["operation"]["ports"]
        principals = [p for source in rule.get("from", []) for p in source["source"]["principals"]]
        result[port] = principals or None
    return result


def test_without_a_mesh_there_are_no_authorization_policies(chart_render: RenderFn) -> None:
    assert by_kind(chart_render(CHART), "AuthorizationPolicy") == []


def test_istio_admits_the_seldon_principals_on_the_event_port_and_the_scraper_on_metrics(
    chart_render: RenderFn,
) -> None:
    scraper = "cluster.local/ns/monitoring/sa/prometheus-k8s"
    labelling = "cluster.local/ns/labelling/sa/label-studio"
    values = {
        "mesh": {
            "type": "istio",
            "seldonPrincipals": [PRINCIPAL],
            "metricsPrincipals": [scraper],
            "producerPrincipals": [labelling],
        },
        **PRODUCERS_ON,
    }
    objects = chart_render(CHART, values)
    assert [p["metadata"]["name"] for p in by_kind(objects, "AuthorizationPolicy")] == [
        f"{FULLNAME}-{component}" for component in COMPONENTS
    ]
    assert admitted(authorization(objects, "collector")) == {
        "8080": [PRINCIPAL],
        "9090": [scraper],
        "8081": [labelling],
    }
    assert admitted(authorization(objects, "indexer")) == {"9090": [scraper]}
    assert admitted(authorization(objects, "monitor")) == {"9091": [scraper]}
    # the policy's ports are the containers' ports (Istio matches the workload's port, not the Service's)
    ports = {p["name"]: str(p["containerPort"]) for p in container(objects, "collector")["ports"]}
    assert set(admitted(authorization(objects, "collector"))) == set(ports.values())

    plain = chart_render(CHART, ISTIO)  # no scraper principals: a Prometheus outside the mesh still scrapes
    assert admitted(authorization(plain, "collector")) == {"8080": [PRINCIPAL], "9090": None}
    assert admitted(authorization(plain, "indexer")) == {"9090": None}
    no_monitor = chart_render(CHART, {**ISTIO, "monitor": {"enabled": False}})
    assert [p["metadata"]["name"] for p in by_kind(no_monitor, "AuthorizationPolicy")] == [
        f"{FULLNAME}-collector",
        f"{FULLNAME}-indexer",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"collector": {"producers": {"enabled": True}}},
            "collector.producers.enabled needs collector.producers.existingSecret",
        ),
        ({"mesh": {"type": "istio"}}, "mesh.type istio needs mesh.seldonPrincipals"),
        (
            {"collector": {"metricsPort": 8080}},
            "collector.port=8080, collector.metricsPort=8080 and collector.producers.port=8081 (with "
            "collector.producers.enabled) must differ",
        ),
        (
            {"collector": {"producers": {"enabled": True, "existingSecret": "t", "port": 9090}}},
            "collector.metricsPort=9090 and collector.producers.port=9090",
        ),
    ],
    ids=["producers-without-secret", "istio-without-principals", "metrics-on-event-port", "producers-on-metrics"],
)
def test_incomplete_access_settings_are_refused_with_the_fix(
    chart_render_error: Any, values: dict[str, Any], message: str
) -> None:
    assert message in chart_render_error(CHART, values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mesh": {"type": "linkerd"}}, "- at '/mesh/type': value must be one of 'none', 'istio'"),
        (
            {"mesh": {"type": "istio", "seldonPrincipals": ["seldon/default"]}},
            "- at '/mesh/seldonPrincipals/0': 'seldon/default' does not match pattern",
        ),
        (
            {"collector": {"producers": {"eventTypes": ["metrics"]}}},
            "- at '/collector/producers/eventTypes/0': value must be one of 'feedback', 'request', 'response'",
        ),
        (
            {"collector": {"producers": {"token": "inline"}}},
            "- at '/collector/producers': additional properties 'token' not allowed",
        ),
    ],
    ids=["mesh-type", "principal-shape", "event-type", "inline-token"],
)
def test_the_schema_rejects_bad_access_values(chart_render_error: Any, values: dict[str, Any], message: str) -> None:
    assert SCHEMA_ERRORS + message in chart_render_error(CHART, values)
