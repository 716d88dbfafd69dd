"""feedback-pipeline chart, the monitor's part: the environment the real monitor settings accept (every profile),
one pod that copies each model image's profile in an init container, runs non-root with probes and resources, may
reach only DNS, search and (for offsets) Kafka; the PrometheusRule is the rules file as it is; the Grafana dashboard
carries the sidecar label; values the monitor would refuse are refused at render time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from feedback.monitor.settings import MonitorSettings

from tests.charts.test_feedback_pipeline import SCHEMA_ERRORS, container_env, egress_ports, variables_the_services_read
from tests.fixtures.charts import RenderFn, by_kind, one, profile_id, profiles
from tools.helm import CHARTS_DIR

CHART = "feedback-pipeline"
FULLNAME = "feedback-pipeline"
MONITORED = [None, *[p for p in profiles(CHART) if p.name != "no-networkpolicy-values.yaml"]]
PROD = CHARTS_DIR / CHART / "ci" / "prod-values.yaml"


@pytest.fixture
def mounts(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for prefix in ("/etc/feedback/kafka-ca/", "/etc/feedback/search-ca/"):
        path = tmp_path / prefix.strip("/").replace("/", "_")
        path.write_text("-----BEGIN CERTIFICATE-----\n")
        files[prefix] = path
    (tmp_path / "profiles").mkdir()
    files["/profiles"] = tmp_path / "profiles"
    return files


def monitor_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment", f"{FULLNAME}-monitor")["spec"]["template"]["spec"]


@pytest.mark.parametrize("profile", MONITORED, ids=profile_id)
def test_the_monitor_accepts_the_rendered_environment(
    chart_render: RenderFn, profile: Path | None, mounts: dict[str, Path]
) -> None:
    objects = chart_render(CHART, profile=profile)
    env = container_env(objects, "monitor", mounts)
    unknown = sorted(set(env) - variables_the_services_read())
    assert not unknown, f"the monitor gets variables it does not read: {unknown}"
    settings = MonitorSettings.from_env(env)
    values = yaml.safe_load((CHARTS_DIR / CHART / "values.yaml").read_text())
    assert settings.capture_index == env["MONITOR_CAPTURE_INDEX"] == values["search"]["index"]
    assert settings.index == "seldon-monitor"
    ports = {p["name"]: p["containerPort"] for p in monitor_pod(objects)["containers"][0]["ports"]}
    assert settings.metrics_port == ports["metrics"]
    if profile == PROD:
        assert settings.window_s == 900 and settings.dead_letters is not None
        assert settings.dead_letters.dead_letter_topic == "seldon-capture-dead-letter"
        assert settings.dead_letters.kafka.security_protocol == "sasl_ssl"


def test_thresholds_reach_the_monitor(chart_render: RenderFn, mounts: dict[str, Path]) -> None:
    thresholds = {
        "fdr": 0.05,
        "multipleTesting": "bonferroni",
        "consecutiveWindows": 3,
        "psi": 0.3,
        "domainAuc": 0.7,
        "accuracyDrop": 0.1,
        "minSamples": 80,
    }
    values = {"monitor": {"windowSeconds": 300, "settleSeconds": 60, "thresholds": thresholds}}
    settings = MonitorSettings.from_env(container_env(chart_render(CHART, values), "monitor", mounts))
    t = settings.thresholds
    assert (settings.window_s, settings.settle_s) == (300, 60.0)
    assert (t.fdr, t.multiple_testing, t.consecutive_windows, t.psi, t.domain_auc, t.accuracy_drop, t.min_samples) == (
        0.05, "bonferroni", 3, 0.3, 0.7, 0.1, 80,
    )  # fmt: skip
    default = container_env(chart_render(CHART), "monitor", mounts)
    assert not {"MONITOR_WINDOW_S", "MONITOR_SETTLE_S", "MONITOR_FDR", "MONITOR_PSI_THRESHOLD"} & set(default)
    assert MonitorSettings.from_env(default).window_s == 900, "unset: the monitor's own default"
    zero = {"monitor": {"settleSeconds": 0, "thresholds": {"accuracyDrop": 0}}}
    settings = MonitorSettings.from_env(container_env(chart_render(CHART, zero), "monitor", mounts))
    assert (settings.settle_s, settings.thresholds.accuracy_drop) == (0.0, 0.0), "0 is a value, not unset"


def test_each_model_image_gives_its_profile_in_an_init_container(chart_render: RenderFn) -> None:
    pod = monitor_pod(chart_render(CHART, profile=PROD))
    inits = {c["name"]: c for c in pod["initContainers"]}
    assert sorted(inits) == ["profile-canary", "profile-classifier"]
    assert inits["profile-canary"]["image"] == "ghcr.io/seldon-feedback/text-classifier:0.2.0"
    assert inits["profile-canary"]["command"] == ["cp", "/microservice/artifacts/profile.json", "/profiles/canary.json"]
    [container] = pod["containers"]
    for c in [*inits.values(), container]:
        assert c["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}["/profiles"] is True
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    deployment = one(chart_render(CHART), "Deployment", f"{FULLNAME}-monitor")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_the_monitor_reaches_only_dns_search_and_kafka(chart_render: RenderFn) -> None:
    policy = one(chart_render(CHART), "NetworkPolicy", f"{FULLNAME}-monitor")
    assert egress_ports(policy) == [("kube-system", (53, 53)), ("search", (9200,)), ("kafka", (9092, 9093))]
    assert policy["spec"]["ingress"] == []
    dev = one(
        chart_render(CHART, profile=CHARTS_DIR / CHART / "ci" / "dev-values.yaml"),
        "NetworkPolicy",
        f"{FULLNAME}-monitor",
    )
    assert egress_ports(dev) == [("kube-system", (53, 53)), ("search", (9200,))], "without offsets: no Kafka"


def test_the_registry_reaches_the_monitor_settings_and_its_network_policy(
    chart_render: RenderFn, mounts: dict[str, Path]
) -> None:
    objects = chart_render(CHART, profile=PROD)
    env = container_env(objects, "monitor", mounts)
    registry = MonitorSettings.from_env(env).registry
    assert registry is not None
    assert (registry.store.bucket, registry.store.endpoint, registry.model_name) == (
        "flowback", "http://minio.minio.svc.cluster.local:9000", "text-classifier",
    )  # fmt: skip
    assert env["AWS_ACCESS_KEY_ID"] == "secret:objectstore-credentials/accessKey"
    assert env["AWS_SECRET_ACCESS_KEY"] == "secret:objectstore-credentials/secretKey"
    policy = one(objects, "NetworkPolicy", f"{FULLNAME}-monitor")
    assert ("minio", (9000,)) in egress_ports(policy)
    [rule] = [r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == 9000]
    assert rule["to"][0]["podSelector"] == {"matchLabels": {"app": "minio", "release": "minio"}}
    outside = {
        "monitor": {"registry": {"bucket": "b", "retrySeconds": 60}},
        "networkPolicy": {"objectStore": {"port": 443, "anywhere": True}},
    }
    objects = chart_render(CHART, outside)
    policy = one(objects, "NetworkPolicy", f"{FULLNAME}-monitor")
    assert {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]} in policy["spec"][
        "egress"
    ]
    settings = MonitorSettings.from_env(container_env(objects, "monitor", mounts))
    assert (
        settings.registry is not None and settings.registry.retry_s == 60.0 and settings.registry.store.endpoint is None
    )
    assert "AWS_ACCESS_KEY_ID" not in container_env(objects, "monitor", mounts), "no Secret: the pod's own identity"
    default = container_env(chart_render(CHART), "monitor", mounts)
    assert MonitorSettings.from_env(default).registry is None and "MONITOR_REGISTRY_BUCKET" not in default


def test_the_prometheus_rule_is_the_rules_file_and_the_monitor_is_scraped(chart_render: RenderFn) -> None:
    assert not by_kind(chart_render(CHART), "PrometheusRule")
    objects = chart_render(CHART, profile=PROD)
    rule = one(objects, "PrometheusRule", FULLNAME)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load((CHARTS_DIR / CHART / "files" / "prometheus-rules.yaml").read_text())
    monitors = {m["metadata"]["name"] for m in by_kind(objects, "ServiceMonitor")}
    assert monitors == {f"{FULLNAME}-collector", f"{FULLNAME}-indexer", f"{FULLNAME}-monitor"}
    service = one(objects, "Service", f"{FULLNAME}-monitor-metrics")
    assert service["spec"]["ports"][0]["port"] == 9091


def test_the_grafana_dashboard_is_labelled_for_the_sidecar(chart_render: RenderFn) -> None:
    config_map = one(chart_render(CHART), "ConfigMap", f"{FULLNAME}-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["feedback-pipeline.json"])
    assert dashboard["uid"] == "seldon-feedback-pipeline" and len(dashboard["panels"]) >= 8


def test_refused_monitor_values(chart_render_error: Any) -> None:
    error = chart_render_error(CHART, {"monitor": {"index": "seldon-feedback-monitor"}})
    assert 'monitor.index "seldon-feedback-monitor" must not start with search.index "seldon-feedback"' in error
    error = chart_render_error(CHART, {"monitor": {"profileImages": None}})
    assert "monitor.profileImages is empty: list the model images" in error
    error = chart_render_error(CHART, {"monitor": {"profileImages": {"classifier": "ghcr.io/x/classifier:latest"}}})
    assert SCHEMA_ERRORS in error and "/monitor/profileImages/classifier" in error
    error = chart_render_error(CHART, {"monitor": {"thresholds": {"multipleTesting": "holm"}}})
    assert "- at '/monitor/thresholds/multipleTesting': value must be one of 'bh', 'bonferroni'" in error


def kibana_jobs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [job for job in by_kind(objects, "Job") if "-kibana-import-" in job["metadata"]["name"]]


def test_a_job_imports_the_kibana_dashboards_when_kibana_is_given(chart_render: RenderFn) -> None:
    assert not kibana_jobs(chart_render(CHART)), "no Kibana URL, no import Job"
    values = {"dashboard": {"kibana": {"url": "https://kb:5601", "caSecret": "kb-ca"}}}
    [job] = kibana_jobs(chart_render(CHART, values))
    assert job["metadata"]["name"].startswith(f"{FULLNAME}-kibana-import-")
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["python", "-m", "feedback.kibana_import", "/dashboards/dashboard.ndjson"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["KIBANA_URL"] == "https://kb:5601" and env["KIBANA_CA_CERTS"] == "/etc/feedback/kibana-ca/ca.crt"
    assert env["KIBANA_PASSWORD"] == {"secretKeyRef": {"name": "seldon-search-es-elastic-user", "key": "elastic"}}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dashboards"]["configMap"]["name"] == f"{FULLNAME}-kibana-dashboard"
    assert container["securityContext"]["runAsNonRoot"] is True and pod["restartPolicy"] == "Never"
    other = kibana_jobs(chart_render(CHART, {**values, "monitor": {"index": "watch"}}))[0]
    assert other["metadata"]["name"] != job["metadata"]["name"], "other dashboards, another Job"


@pytest.mark.parametrize(
    "image",
    [
        "mirror.example:5000/hub/seldon-feedback/text-classifier:0.1.0",  # a registry mirror with a port
        "localhost:5000/text-classifier@sha256:" + "0" * 64,
        "text-classifier:0.1.0",
    ],
)
def test_profile_images_may_come_from_a_registry_with_a_port(chart_render: RenderFn, image: str) -> None:
    values = {"monitor": {"profileImages": {"classifier": image}}}
    deployment = one(chart_render(CHART, values), "Deployment", f"{FULLNAME}-monitor")
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["initContainers"]]
    assert images == [image]
