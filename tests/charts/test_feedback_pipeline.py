"""feedback-pipeline chart: selectors, the environment the real collector and indexer settings accept, Secret
references (never inlined), NetworkPolicies, ServiceMonitors, the Kibana dashboard, and rejected values."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from feedback.collector.settings import CollectorSettings
from feedback.indexer.settings import IndexerSettings

from tests.fixtures.charts import RenderFn, by_kind, env_of, one, profile_id, profiles
from tools.helm import CHARTS_DIR, REPO_ROOT

CHART = "feedback-pipeline"
FULLNAME = "feedback-pipeline"
PROFILES = [None, *profiles(CHART)]
FEEDBACK_SOURCES = [
    REPO_ROOT / "images/feedback/feedback/config.py",
    REPO_ROOT / "images/feedback/feedback/collector/settings.py",
    REPO_ROOT / "images/feedback/feedback/indexer/settings.py",
    REPO_ROOT / "images/feedback/feedback/monitor/settings.py",
    REPO_ROOT / "images/feedback/feedback/seldon_protos.py",
    REPO_ROOT / "images/feedback/feedback/redaction.py",
]


def variables_the_services_read() -> set[str]:
    """Every environment variable name the feedback settings modules read (string literals in env_* calls)."""
    names: set[str] = set()
    for path in FEEDBACK_SOURCES:
        text = path.read_text()
        names |= set(re.findall(r'env_\w+\(\s*env,\s*"([A-Z][A-Z0-9_]*)"', text))
        # seldon_protos.py reads SELDON_PROTO_VERSION and SELDON_PROTOS_DIR with env.get
        names |= set(re.findall(r'env\.get\(\s*"([A-Z][A-Z0-9_]*)"', text))
        # search_settings(env, prefix): the indexer's INDEXER_SEARCH_* and the monitor's MONITOR_SEARCH_*;
        # redactor_from_env(env, prefix): COLLECTOR_REDACT_* and INDEXER_REDACT_*
        for suffix in re.findall(r'env_\w+\(\s*env,\s*f"\{prefix\}_([A-Z][A-Z0-9_]*)"', text):
            prefixes = ("COLLECTOR", "INDEXER") if suffix.startswith("REDACT_") else ("INDEXER", "MONITOR")
            names |= {f"{prefix}_{suffix}" for prefix in prefixes}
    return names


def container_env(objects: list[dict[str, Any]], component: str, mounts: dict[str, Path]) -> dict[str, str]:
    """What the container sees: its ConfigMap, its Secret-referenced variables (fake values), mount paths mapped."""
    deployment = one(objects, "Deployment", f"{FULLNAME}-{component}")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    [source] = container["envFrom"]
    env = dict(one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for name, value in env_of(container).items():
        env[name] = f"secret:{value['secretKeyRef']['name']}/{value['secretKeyRef']['key']}"
    for name, value in env.items():
        for prefix, local in mounts.items():
            if value.startswith(prefix):
                env[name] = str(local)
    return env


@pytest.fixture
def ca_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for prefix in ("/etc/feedback/kafka-ca/", "/etc/feedback/search-ca/"):
        path = tmp_path / prefix.strip("/").replace("/", "_")
        path.write_text("-----BEGIN CERTIFICATE-----\n")
        files[prefix] = path
    token = tmp_path / "producer-token"  # the producer port's token file (a mounted Secret)
    token.write_text("t" * 64 + "\n")
    files["/etc/feedback/producer-token/"] = token
    return files


@pytest.mark.parametrize("profile", PROFILES, ids=profile_id)
def test_services_accept_the_rendered_environment(
    chart_render: RenderFn, profile: Path | None, ca_files: dict[str, Path]
) -> None:
    objects = chart_render(CHART, profile=profile)
    known = variables_the_services_read()
    collector_env = container_env(objects, "collector", ca_files)
    indexer_env = container_env(objects, "indexer", ca_files)
    for component, env in (("collector", collector_env), ("indexer", indexer_env)):
        unknown = sorted(set(env) - known)
        assert not unknown, f"{component} gets variables no feedback service reads: {unknown}"

    collector = CollectorSettings.from_env(collector_env)
    indexer = IndexerSettings.from_env(indexer_env)
    assert collector.topic == indexer.topic, "the indexer must consume the topic the collector produces to"
    assert collector.kafka.bootstrap_servers == indexer.kafka.bootstrap_servers
    deployment = one(objects, "Deployment", f"{FULLNAME}-collector")
    ports = {p["name"]: p["containerPort"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert collector.port == ports["http"]
    assert collector.metrics_port == ports["metrics"] != collector.port
    if collector.producer is not None:
        assert collector.producer.port == ports["producers"]
    deployment = one(objects, "Deployment", f"{FULLNAME}-indexer")
    ports = {p["name"]: p["containerPort"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert indexer.metrics_port == ports["metrics"]


def test_configured_values_reach_the_services(chart_render: RenderFn, ca_files: dict[str, Path]) -> None:
    values = {
        "kafka": {"bootstrapServers": "k1:9092,k2:9092", "captureTopic": "cap", "deadLetterTopic": "cap-dlq"},
        "search": {"engine": "opensearch", "url": "https://os:9200", "index": "captures", "indexReplicas": 0},
        "collector": {"samplingRate": 0.25, "maxBodyBytes": 1048576, "redact": {"regexes": ["ID-[0-9]+"]}},
        "indexer": {"groupId": "g1", "batchSize": 200},
    }
    objects = chart_render(CHART, values)
    collector = CollectorSettings.from_env(container_env(objects, "collector", ca_files))
    indexer = IndexerSettings.from_env(container_env(objects, "indexer", ca_files))
    assert collector.kafka.bootstrap_servers == indexer.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert (collector.topic, indexer.topic, indexer.dead_letter_topic) == ("cap", "cap", "cap-dlq")
    assert (collector.sampling_rate, collector.max_body_bytes) == (0.25, 1048576)
    assert [p.pattern for p in collector.redactor.regexes] == ["ID-[0-9]+"]
    assert (indexer.search.engine, indexer.index) == ("opensearch", "captures")
    assert indexer.search.urls == ("https://os:9200",)
    assert (indexer.group_id, indexer.batch_size, indexer.index_replicas) == ("g1", 200, 0)


@pytest.mark.parametrize(("rate", "expected"), [(None, 1.0), (0, 0.0), (0.25, 0.25)])
def test_sampling_rate_is_passed_only_when_set_and_zero_is_a_rate(
    chart_render: RenderFn, ca_files: dict[str, Path], rate: float | None, expected: float
) -> None:
    """collector.samplingRate -> COLLECTOR_SAMPLING_RATE; unset leaves the collector's own default (written once,
    in its settings), and 0 (keep nothing) is a value, not "unset"."""
    env = container_env(chart_render(CHART, {"collector": {"samplingRate": rate}}), "collector", ca_files)
    assert ("COLLECTOR_SAMPLING_RATE" in env) is (rate is not None)
    assert CollectorSettings.from_env(env).sampling_rate == expected


SWEEP_SETTINGS = [
    # chart value, indexer variable, IndexerSettings field, a set value (the range ends the indexer accepts)
    ("noResponseAfterSeconds", "INDEXER_NO_RESPONSE_AFTER_S", "no_response_after_s", 86400),
    ("feedbackJoinDelaySeconds", "INDEXER_FEEDBACK_JOIN_DELAY_S", "feedback_join_delay_s", 1),
    ("feedbackJoinWindowSeconds", "INDEXER_FEEDBACK_JOIN_WINDOW_S", "feedback_join_window_s", 2592000),
    ("sweepIntervalSeconds", "INDEXER_SWEEP_INTERVAL_S", "sweep_interval_s", 0.1),
    # the consumer watchdog's (not sweeps, but passed the same way)
    ("sessionTimeoutSeconds", "INDEXER_SESSION_TIMEOUT_S", "session_timeout_s", 300),
    ("consumerStallSeconds", "INDEXER_CONSUMER_STALL_S", "consumer_stall_s", 3600),
]


@pytest.mark.parametrize(("value", "variable", "field", "setting"), SWEEP_SETTINGS, ids=[s[0] for s in SWEEP_SETTINGS])
def test_sweep_timings_reach_the_indexer_only_when_set(
    chart_render: RenderFn, ca_files: dict[str, Path], value: str, variable: str, field: str, setting: float
) -> None:
    """indexer.<value> -> <variable> -> the indexer's setting; unset, the variable is absent and the indexer's own
    default (written once, in its settings) applies."""
    default_env = container_env(chart_render(CHART, None), "indexer", ca_files)
    assert variable not in default_env
    assert getattr(IndexerSettings.from_env(default_env), field) == getattr(IndexerSettings, field)
    env = container_env(chart_render(CHART, {"indexer": {value: setting}}), "indexer", ca_files)
    assert variable in env
    assert getattr(IndexerSettings.from_env(env), field) == setting
    assert variable not in container_env(chart_render(CHART, {"indexer": {value: setting}}), "collector", ca_files)


def test_the_proto_version_reaches_both_services_only_when_set(
    chart_render: RenderFn, ca_files: dict[str, Path]
) -> None:
    """seldonProtoVersion -> SELDON_PROTO_VERSION of the collector and the indexer (both decode gRPC payloads)."""
    defaults = chart_render(CHART, None)
    for component in ("collector", "indexer"):
        assert "SELDON_PROTO_VERSION" not in container_env(defaults, component, ca_files)
    objects = chart_render(CHART, {"seldonProtoVersion": "1.17.1"})
    collector_env = container_env(objects, "collector", ca_files)
    indexer_env = container_env(objects, "indexer", ca_files)
    assert collector_env["SELDON_PROTO_VERSION"] == indexer_env["SELDON_PROTO_VERSION"] == "1.17.1"
    collector, indexer = CollectorSettings.from_env(collector_env), IndexerSettings.from_env(indexer_env)
    assert collector.protos is not None and indexer.protos is not None
    assert collector.protos.version == indexer.protos.version == "1.17.1"
    env = container_env(chart_render(CHART, {"seldonProtoVersion": "1.16.0"}), "indexer", ca_files)
    assert env["SELDON_PROTO_VERSION"] == "1.16.0"


# profile -> service -> (Secret, key) of its search password; the admin's only in the setup and Kibana Jobs
SEARCH_SECRETS = {
    "defaults": {
        "setup": ("seldon-search-es-elastic-user", "elastic"),
        "indexer": ("seldon-search-feedback-indexer-user", "password"),
        "monitor": ("seldon-search-feedback-monitor-user", "password"),
    },
    "opensearch": {
        "setup": ("opensearch-admin", "password"),
        "indexer": ("opensearch-feedback-indexer", "password"),
        "monitor": ("opensearch-feedback-monitor", "password"),
    },
}


def search_secrets(profile: Path | None) -> dict[str, tuple[str, str]]:
    return SEARCH_SECRETS.get(profile_id(profile), SEARCH_SECRETS["defaults"])


@pytest.mark.parametrize("profile", PROFILES, ids=profile_id)
def test_credentials_are_secret_references_never_values(chart_render: RenderFn, profile: Path | None) -> None:
    objects = chart_render(CHART, profile=profile)
    assert not by_kind(objects, "Secret"), "the chart must reference existing Secrets, never create them"
    for config_map in by_kind(objects, "ConfigMap"):
        leaked = [key for key in config_map["data"] if re.search("PASSWORD|SECRET|TOKEN|API_KEY", key)]
        # a *_FILE variable names where a mounted Secret is, never its content
        leaked = [key for key in leaked if not (key.endswith("_FILE") and config_map["data"][key].startswith("/etc/"))]
        assert not leaked, f"{config_map['metadata']['name']} carries credentials: {leaked}"
    secrets = search_secrets(profile)
    deployments = {o["metadata"]["name"] for o in by_kind(objects, "Deployment")}
    for service, prefix in (("indexer", "INDEXER"), ("monitor", "MONITOR")):
        if f"{FULLNAME}-{service}" not in deployments:
            continue  # the monitor is off in some profiles
        container = one(objects, "Deployment", f"{FULLNAME}-{service}")["spec"]["template"]["spec"]["containers"][0]
        secret, key = secrets[service]
        assert env_of(container)[f"{prefix}_SEARCH_PASSWORD"] == {"secretKeyRef": {"name": secret, "key": key}}


def setup_job(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (job,) = [o for o in by_kind(objects, "Job") if o["metadata"]["name"].startswith(f"{FULLNAME}-search-setup-")]
    return job


@pytest.mark.parametrize("profile", PROFILES, ids=profile_id)
def test_the_admin_password_reaches_only_the_setup_job_which_runs_both_setups(
    chart_render: RenderFn, profile: Path | None
) -> None:
    objects = chart_render(CHART, profile=profile)
    admin, key = search_secrets(profile)["setup"]
    holders = sorted(
        f"{o['kind']}/{o['metadata']['name']}"
        for o in objects
        if o["kind"] in ("Deployment", "Job") and f'"name": "{admin}"' in json.dumps(o)
    )
    job = setup_job(objects)
    allowed = {f"Job/{job['metadata']['name']}"} | {
        f"Job/{o['metadata']['name']}" for o in by_kind(objects, "Job") if "kibana-import" in o["metadata"]["name"]
    }
    assert set(holders) <= allowed and f"Job/{job['metadata']['name']}" in holders, holders
    pod = job["spec"]["template"]["spec"]
    steps = [*pod.get("initContainers", []), *pod["containers"]]
    monitor = any(o["metadata"]["name"] == f"{FULLNAME}-monitor" for o in by_kind(objects, "Deployment"))
    modules = ["feedback.indexer", "feedback.monitor"] if monitor else ["feedback.indexer"]
    assert [step["command"] for step in steps] == [["python", "-m", module, "setup"] for module in modules]
    for step, prefix in zip(steps, ("INDEXER", "MONITOR")[: len(modules)], strict=True):
        env = env_of(step)
        assert env[f"{prefix}_SEARCH_PASSWORD"] == {"secretKeyRef": {"name": admin, "key": key}}
        assert step["securityContext"]["runAsNonRoot"] is True and step["resources"]["limits"]["memory"]


def test_the_setup_job_is_renamed_when_its_inputs_change_and_can_be_left_out(chart_render: RenderFn) -> None:
    name = setup_job(chart_render(CHART))["metadata"]["name"]
    assert setup_job(chart_render(CHART, values={"search": {"indexShards": 3}}))["metadata"]["name"] != name
    assert setup_job(chart_render(CHART, values={"image": {"tag": "9.9.9"}}))["metadata"]["name"] != name
    assert setup_job(chart_render(CHART, values={"collector": {"replicas": 3}}))["metadata"]["name"] == name
    monitorless = setup_job(chart_render(CHART, values={"monitor": {"enabled": False}}))["spec"]["template"]["spec"]
    assert "initContainers" not in monitorless
    assert monitorless["containers"][0]["command"] == ["python", "-m", "feedback.indexer", "setup"]
    off = chart_render(CHART, values={"searchSetup": {"enabled": False}})
    assert not [o for o in by_kind(off, "Job") if "search-setup" in o["metadata"]["name"]]


def test_the_old_single_search_user_keys_are_rejected_by_name(chart_render_error: Callable[..., str]) -> None:
    message = chart_render_error(CHART, {"search": {"existingSecret": "seldon-search-es-elastic-user"}})
    assert "additional properties 'existingSecret' not allowed" in message


def test_sasl_credentials_are_referenced_in_both_services(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, profile=CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    for component in ("collector", "indexer"):
        container = one(objects, "Deployment", f"{FULLNAME}-{component}")["spec"]["template"]["spec"]["containers"][0]
        env = env_of(container)
        assert env["KAFKA_SASL_USERNAME"] == {"secretKeyRef": {"name": "feedback-pipeline", "key": "username"}}
        assert env["KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "feedback-pipeline", "key": "password"}}


def test_both_charts_take_kafka_sasl_in_one_shape() -> None:
    """kafka.sasl has the same keys, defaults and rules in feedback-pipeline and text-classifier."""
    shapes = {}
    for chart in (CHART, "text-classifier"):
        values = yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text())["kafka"]["sasl"]
        schema = json.loads((CHARTS_DIR / chart / "values.schema.json").read_text())
        rules = schema["properties"]["kafka"]["properties"]["sasl"]["properties"]
        shapes[chart] = (
            values,
            {key: {k: v for k, v in rule.items() if k != "description"} for key, rule in rules.items()},
        )
    assert shapes[CHART] == shapes["text-classifier"]
    assert set(shapes[CHART][0]) == {"mechanism", "existingSecret", "username", "usernameKey", "passwordKey"}


def test_selectors_select_only_their_component(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, profile=CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    for component in ("collector", "indexer"):
        deployment = one(objects, "Deployment", f"{FULLNAME}-{component}")
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector == {
            "app.kubernetes.io/name": "feedback-pipeline",
            "app.kubernetes.io/instance": "feedback-pipeline",
            "app.kubernetes.io/component": component,
        }
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        pdb = one(objects, "PodDisruptionBudget", f"{FULLNAME}-{component}")
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        policy = one(objects, "NetworkPolicy", f"{FULLNAME}-{component}")
        assert policy["spec"]["podSelector"]["matchLabels"] == selector
    collector_selector = one(objects, "Deployment", f"{FULLNAME}-collector")["spec"]["selector"]["matchLabels"]
    assert one(objects, "Service", f"{FULLNAME}-collector")["spec"]["selector"] == collector_selector


def test_collector_is_reachable_from_seldon_pods_only(chart_render: RenderFn) -> None:
    policy = one(chart_render(CHART), "NetworkPolicy", f"{FULLNAME}-collector")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    [rule] = policy["ingress"]
    [peer] = rule["from"]
    # the operator's labels on the predictor pods where the executor runs (seldon-core v1.17.1
    # operator/controllers/labels.go and seldondeployment_controller.go)
    assert peer["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "seldon-core"},
        "matchExpressions": [{"key": "seldon-deployment-id", "operator": "Exists"}],
    }
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["seldon"]
    assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]

    prod_objects = chart_render(CHART, profile=CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    prod = one(prod_objects, "NetworkPolicy", f"{FULLNAME}-collector")
    seldon_rule, metrics_rule = prod["spec"]["ingress"]
    assert seldon_rule["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["seldon", "seldon-batch"]
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    assert metrics_rule["from"] == [monitoring]
    assert metrics_rule["ports"] == [{"protocol": "TCP", "port": "metrics"}], "the scraper never gets the event port"


def egress_ports(policy: dict[str, Any]) -> list[tuple[str, tuple[int | str, ...]]]:
    ports = []
    for rule in policy["spec"]["egress"]:
        namespace = rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        ports.append((namespace, tuple(p["port"] for p in rule["ports"])))
    return ports


def test_egress_is_limited_to_dns_kafka_and_search(chart_render: RenderFn) -> None:
    objects = chart_render(CHART)
    collector = one(objects, "NetworkPolicy", f"{FULLNAME}-collector")
    indexer = one(objects, "NetworkPolicy", f"{FULLNAME}-indexer")
    assert egress_ports(collector) == [("kube-system", (53, 53)), ("kafka", (9092, 9093))]
    assert egress_ports(indexer) == [("kube-system", (53, 53)), ("kafka", (9092, 9093)), ("search", (9200,))]
    assert indexer["spec"]["egress"][2]["to"][0]["podSelector"] == {
        "matchLabels": {"elasticsearch.k8s.elastic.co/cluster-name": "seldon-search"}
    }
    assert indexer["spec"]["ingress"] == [], "nothing may connect to the indexer unless metrics are scraped"
    assert not by_kind(chart_render(CHART, {"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_service_monitors_scrape_named_ports_when_enabled(chart_render: RenderFn) -> None:
    assert not by_kind(chart_render(CHART), "ServiceMonitor")
    objects = chart_render(CHART, profile=CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    monitors = by_kind(objects, "ServiceMonitor")
    assert [m["metadata"]["name"] for m in monitors] == [f"{FULLNAME}-{c}" for c in ("collector", "indexer", "monitor")]
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        wanted = monitor["spec"]["selector"]["matchLabels"].items()
        [service] = [s for s in by_kind(objects, "Service") if s["metadata"]["labels"].items() >= wanted]
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "15s")


def dashboard_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    data = one(objects, "ConfigMap", f"{FULLNAME}-kibana-dashboard")["data"]["dashboard.ndjson"]
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def test_kibana_dashboard_is_rendered_whole_for_both_indices(chart_render: RenderFn) -> None:
    """The saved objects as shipped (their fields are checked against the templates in
    tests/alerts/test_dashboards_and_rules.py), with the data views named after the configured indices."""
    shipped = (CHARTS_DIR / CHART / "files" / "kibana-dashboard.ndjson").read_text().splitlines()
    saved = dashboard_objects(chart_render(CHART))
    assert len(saved) == len(shipped)
    patterns = sorted(o["attributes"]["title"] for o in saved if o["type"] == "index-pattern")
    assert patterns == ["seldon-feedback*", "seldon-monitor*"]
    assert {o["attributes"]["title"] for o in saved if o["type"] == "dashboard"} == {
        "Seldon feedback: captured inferences",
        "Seldon feedback: monitor",
    }


def test_dashboard_follows_the_index_name(chart_render: RenderFn) -> None:
    saved = dashboard_objects(chart_render(CHART, {"search": {"index": "captures"}, "monitor": {"index": "watch"}}))
    patterns = sorted(o["attributes"]["title"] for o in saved if o["type"] == "index-pattern")
    assert patterns == ["captures*", "watch*"]
    names = [
        c["metadata"]["name"] for c in by_kind(chart_render(CHART, {"dashboard": {"enabled": False}}), "ConfigMap")
    ]
    assert names == [
        f"{FULLNAME}-collector",
        f"{FULLNAME}-grafana-dashboard",
        f"{FULLNAME}-indexer",
        f"{FULLNAME}-monitor",
    ]


SCHEMA_ERRORS = (
    "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nfeedback-pipeline:\n"
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"collector": {"samplingRate": 2}}, "- at '/collector/samplingRate': maximum: got 2, want 1"),
        ({"search": {"engine": "solr"}}, "- at '/search/engine': value must be one of 'elasticsearch', 'opensearch'"),
        (
            {"kafka": {"securityProtocol": "SASL_SSL"}},
            "- at '/kafka/securityProtocol': value must be one of 'plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'",
        ),
        ({"collector": {"resources": None}}, "- at '/collector': missing property 'resources'"),
        ({"indexer": {"replicas": "1"}}, "- at '/indexer/replicas': got string, want integer"),
        (
            {"image": {"tag": "latest"}},
            "- at '/image/tag': value must be 'a fixed version such as 0.1.0 (latest is not allowed), or set "
            "image.digest'",
        ),
        (
            {"collector": {"redact": {"patterns": "email,ssn"}}},
            "- at '/collector/redact/patterns': 'email,ssn' does not match pattern",
        ),
        ({"securityContext": {"runAsNonRoot": False}}, "- at '/securityContext/runAsNonRoot': value must be true"),
        ({"search": {"password": "hunter2"}}, "- at '/search': additional properties 'password' not allowed"),
        (
            {"seldonProtoVersion": "1.2.0"},
            "- at '/seldonProtoVersion': value must be 'a Seldon Core release >= 1.3.0 such as 1.17.1 (the Seldon "
            "version the executors run)'",
        ),
        (
            {"seldonProtoVersion": "v1.17"},
            "- at '/seldonProtoVersion': value must be 'a Seldon Core release >= 1.3.0 such as 1.17.1",
        ),
        ({"seldonProtoVersion": 1.17}, "- at '/seldonProtoVersion': got number, want null or string"),
        (
            {"indexer": {"sessionTimeoutSeconds": 2}},
            "- at '/indexer/sessionTimeoutSeconds': value must be 'a number of seconds from 6 to 300 (5 minutes)'",
        ),
        (
            {"indexer": {"sweepIntervalSeconds": 0}},
            "- at '/indexer/sweepIntervalSeconds': value must be 'a number of seconds from 0.1 to 3600 (1 hour)'",
        ),
        (
            {"indexer": {"feedbackJoinWindowSeconds": 2592001}},
            "- at '/indexer/feedbackJoinWindowSeconds': value must be 'a number of seconds from 1 to 2592000 (30 "
            "days)'",
        ),
        (
            {"indexer": {"noResponseAfterSeconds": "2m"}},
            "- at '/indexer/noResponseAfterSeconds': got string, want null or number",
        ),
    ],
    ids=[
        "sampling",
        "engine",
        "protocol-case",
        "no-resources",
        "replicas-type",
        "latest",
        "pattern",
        "root",
        "inline-password",
        "proto-too-old",
        "proto-not-a-release",
        "proto-number",
        "session-too-short",
        "sweep-zero",
        "join-window-too-long",
        "no-response-unit",
    ],
)
def test_schema_rejects_bad_values(chart_render_error: Any, values: dict[str, Any], message: str) -> None:
    assert SCHEMA_ERRORS + message in chart_render_error(CHART, values)


def test_a_watchdog_bound_shorter_than_two_sessions_is_rejected_with_the_fix(
    chart_render: RenderFn, chart_render_error: Any, ca_files: dict[str, Path]
) -> None:
    values = {"indexer": {"sessionTimeoutSeconds": 10, "consumerStallSeconds": 19}}
    error = chart_render_error(CHART, values)
    assert "indexer.consumerStallSeconds=19 must be at least 2 session timeouts" in error
    env = container_env(
        chart_render(CHART, {"indexer": {"sessionTimeoutSeconds": 10, "consumerStallSeconds": 20}}), "indexer", ca_files
    )
    settings = IndexerSettings.from_env(env)
    assert (settings.session_timeout_s, settings.consumer_stall_s) == (10, 20)


def test_sasl_without_credentials_is_rejected_with_the_fix(chart_render_error: Any) -> None:
    error = chart_render_error(CHART, {"kafka": {"securityProtocol": "sasl_ssl"}})
    assert re.search(
        r"kafka.securityProtocol sasl_ssl needs kafka.clients.(collector|indexer|monitor).existingSecret or "
        r"kafka.sasl.existingSecret: the name of a Secret with the SASL password",
        error,
    ), error


def test_a_collector_rollout_drains_within_the_grace_period(chart_render: RenderFn, ca_files: dict[str, Path]) -> None:
    """A rollout used to drop events: no preStop, and aiohttp's 60 s shutdown timeout above the 45 s grace period."""
    objects = chart_render(CHART, None)
    deployment = one(objects, "Deployment", f"{FULLNAME}-collector")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    settings = CollectorSettings.from_env(container_env(objects, "collector", ca_files))
    needed = 5 + settings.drain_s + settings.shutdown_timeout_s + 10  # preStop, drain, requests in flight, flush
    assert pod["terminationGracePeriodSeconds"] > needed
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Mi") and settings.producer_buffer_max_bytes < int(limit[:-2]) * 1024 * 1024 / 2


def test_index_retention_refresh_and_the_join_wait_reach_the_indexer(
    chart_render: RenderFn, ca_files: dict[str, Path]
) -> None:
    values = {
        "search": {"retentionDays": 30, "refreshInterval": "500ms", "indexShards": 3},
        "indexer": {"joinWaitSeconds": 1.5, "offsetReset": "latest"},
    }
    settings = IndexerSettings.from_env(container_env(chart_render(CHART, values), "indexer", ca_files))
    assert (settings.retention_days, settings.index_refresh_interval, settings.index_shards) == (30, "500ms", 3)
    assert (settings.join_wait_s, settings.offset_reset) == (1.5, "latest")


def test_redaction_reaches_both_services_in_one_shape_with_the_hash_key_from_a_secret(
    chart_render: RenderFn, ca_files: dict[str, Path]
) -> None:
    redact = {
        "fields": "customer",
        "patterns": "email",
        "regexes": ["ID-[0-9]+"],
        "keyRegexes": ["^user-"],
        "headers": "requestid,userid",
        "hashKeySecret": "pii-hash",
    }
    objects = chart_render(CHART, {"collector": {"redact": redact}, "indexer": {"redact": redact}})
    collector_env, indexer_env = (container_env(objects, c, ca_files) for c in ("collector", "indexer"))
    assert (
        collector_env["COLLECTOR_REDACT_HASH_KEY"]
        == indexer_env["INDEXER_REDACT_HASH_KEY"]
        == "secret:pii-hash/hash-key"
    )
    collector = CollectorSettings.from_env(collector_env).redactor
    indexer = IndexerSettings.from_env(indexer_env).redactor
    for redactor in (collector, indexer):
        assert (redactor.fields, redactor.builtins) == ({"customer"}, ("email",))
        assert [p.pattern for p in redactor.key_regexes] == ["^user-"]
        assert redactor.headers == {"requestid", "userid"}
    assert collector.redact_request_id("a@example.com") == indexer.redact_request_id("a@example.com")
    defaults = chart_render(CHART, None)
    assert "INDEXER_REDACT_HASH_KEY" not in container_env(defaults, "indexer", ca_files)
    assert IndexerSettings.from_env(container_env(defaults, "indexer", ca_files)).redactor.builtins == (
        "email",
        "phone",
    )


def container_of(objects: Any, component: str) -> dict[str, Any]:
    return one(objects, "Deployment", f"{FULLNAME}-{component}")["spec"]["template"]["spec"]["containers"][0]


def test_each_service_logs_in_as_its_own_kafka_user(chart_render: RenderFn) -> None:
    """kafka.clients.<service>: Strimzi's KafkaUser Secrets (password only) and the user name as a value."""
    users = {"collector": "feedback-collector", "indexer": "feedback-indexer", "monitor": "feedback-monitor"}
    values = {
        "kafka": {
            "securityProtocol": "sasl_ssl",
            "sasl": {"mechanism": "SCRAM-SHA-512"},
            "clients": {role: {"existingSecret": user, "username": user} for role, user in users.items()},
        }
    }
    objects = chart_render(CHART, values)
    for role, user in users.items():
        env = env_of(container_of(objects, role))
        assert env["KAFKA_SASL_USERNAME"] == user
        assert env["KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": user, "key": "password"}}


def test_a_service_without_its_own_user_falls_back_to_kafka_sasl(chart_render: RenderFn) -> None:
    values = {
        "kafka": {
            "securityProtocol": "sasl_ssl",
            "sasl": {"existingSecret": "shared", "usernameKey": "user"},
            "clients": {"collector": {"existingSecret": "collector-login"}},
        }
    }
    objects = chart_render(CHART, values)
    collector, indexer = env_of(container_of(objects, "collector")), env_of(container_of(objects, "indexer"))
    assert collector["KAFKA_SASL_USERNAME"] == {"secretKeyRef": {"name": "collector-login", "key": "user"}}
    assert indexer["KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "shared", "key": "password"}}


def test_client_certificates_are_mounted_per_service(chart_render: RenderFn) -> None:
    values = {
        "kafka": {
            "securityProtocol": "ssl",
            "tls": {"existingSecret": "cluster-ca-cert"},
            "clients": {role: {"certSecret": f"feedback-{role}"} for role in ("collector", "indexer", "monitor")},
        }
    }
    objects = chart_render(CHART, values)
    for role in ("collector", "indexer", "monitor"):
        pod = one(objects, "Deployment", f"{FULLNAME}-{role}")["spec"]["template"]["spec"]
        env = env_of(pod["containers"][0])
        assert env["KAFKA_SSL_CERTIFICATE_LOCATION"] == "/etc/feedback/kafka-client/user.crt"
        assert env["KAFKA_SSL_KEY_LOCATION"] == "/etc/feedback/kafka-client/user.key"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["kafka-client"]["secret"]["secretName"] == f"feedback-{role}"
        mount = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}["kafka-client"]
        assert mount["mountPath"] == "/etc/feedback/kafka-client" and mount["readOnly"]


def test_a_client_certificate_without_tls_is_rejected_with_the_fix(chart_render_error: Any) -> None:
    error = chart_render_error(CHART, {"kafka": {"clients": {"indexer": {"certSecret": "feedback-indexer"}}}})
    assert "kafka.clients.indexer.certSecret needs kafka.securityProtocol ssl or sasl_ssl" in error
