"""The Pulumi program under mocks, once per stack config (dev, staging, prod): the resources it creates and how
they are wired (one Kafka bootstrap address, the executor logger pointing at the collector Service, topics that
exist, pins, sizing, budgets, secrets, ordering, transforms, and the stack outputs the smoke tests read)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra import config, kafka_access
from infra.namespaces import POD_SECURITY, POLICY_VERSION
from infra.search_roles import elasticsearch_roles
from tests.infra.harness import ENVIRONMENTS, REPO_ROOT, TEST_SECRETS, Run, run_program, stack_config, walk

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value in serialized inputs
CHART = "kubernetes:helm.sh/v4:Chart"
NAMESPACE = "kubernetes:core/v1:Namespace"
RELEASE = "kubernetes:helm.sh/v3:Release"
KAFKA = "kubernetes:kafka.strimzi.io/v1:Kafka"
TOPIC = "kubernetes:kafka.strimzi.io/v1:KafkaTopic"
USER = "kubernetes:kafka.strimzi.io/v1:KafkaUser"
POOL = "kubernetes:kafka.strimzi.io/v1:KafkaNodePool"
ES = "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch"
KIBANA = "kubernetes:kibana.k8s.elastic.co/v1:Kibana"
SECRET = "kubernetes:core/v1:Secret"


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def run(request: pytest.FixtureRequest) -> Run:
    return run_program(request.param)


@pytest.fixture(scope="module")
def prod() -> Run:
    return run_program("prod")


@pytest.fixture(scope="module")
def dev() -> Run:
    return run_program("dev")


def values(run: Run, name: str) -> dict[str, Any]:
    chart = next(r for r in run.resources if r.name == name and r.typ in (CHART, RELEASE))
    return chart.inputs.get("values") or {}


def kafka_cluster(run: Run) -> tuple[str, str, int]:
    cluster = run.one(KAFKA)
    listener = cluster.inputs["spec"]["kafka"]["listeners"]
    assert len(listener) == 1, "clients must have exactly one listener to connect to"
    return cluster.inputs["metadata"]["name"], cluster.inputs["metadata"]["namespace"], int(listener[0]["port"])


# ---- wiring -----------------------------------------------------------------------------------------------------


def test_one_kafka_bootstrap_address_everywhere(run: Run) -> None:
    name, namespace, port = kafka_cluster(run)
    expected = f"{name}-kafka-bootstrap.{namespace}.svc.cluster.local:{port}"
    feedback = values(run, "feedback-pipeline")
    realtime = values(run, "classifier-realtime")
    streaming = values(run, "classifier-streaming")
    used = {
        "collector and indexer (feedback-pipeline kafka.bootstrapServers)": feedback["kafka"]["bootstrapServers"],
        "streaming SeldonDeployment (KAFKA_BROKER)": streaming["kafka"]["broker"],
        "streaming executor logger (LOGGER_KAFKA_BROKER)": streaming["logger"]["kafka"]["broker"],
        "real-time executor (kafka.broker)": realtime["kafka"]["broker"],
        "real-time executor logger (LOGGER_KAFKA_BROKER)": realtime["logger"]["kafka"]["broker"],
        "stack output kafka.bootstrap": run.outputs["kafka"]["bootstrap"],
    }
    wrong = {who: address for who, address in used.items() if address != expected}
    assert not wrong, f"expected {expected} everywhere, got {wrong}"
    # The batch workflow reaches Kafka through the real-time SeldonDeployment it calls (its executor captures).
    batch = values(run, "batch-workflow")
    assert batch["seldonDeployment"]["name"] == realtime["deploymentName"]
    assert batch["seldonDeployment"]["predictorName"] == realtime["predictorName"]
    assert batch["seldonDeployment"]["namespace"] == namespace
    assert batch["seldonDeployment"]["host"] == run.outputs["prediction"]["restUrl"].removeprefix("http://")


def test_executor_logger_endpoint_is_the_collector_service_url(run: Run) -> None:
    feedback_chart = run.one(CHART, "feedback-pipeline")
    namespace = feedback_chart.inputs["namespace"]
    # The program names the collector Service (collector.service.*) and builds the URL from the same values;
    # test_rendered.py checks that the chart renders that Service.
    service = feedback_chart.inputs["values"]["collector"]["service"]
    expected = f"http://{service['name']}.{namespace}.svc.cluster.local:{service['port']}/"
    seldon = values(run, "seldon-operator")
    endpoints = {
        "seldon executor.requestLogger.defaultEndpoint": seldon["executor"]["requestLogger"]["defaultEndpoint"],
        "real-time graph logger url": values(run, "classifier-realtime")["logger"]["url"],
        "streaming graph logger url": values(run, "classifier-streaming")["logger"]["url"],
        "stack output collector.url": run.outputs["collector"]["url"],
    }
    wrong = {who: url for who, url in endpoints.items() if url != expected}
    assert not wrong, f"expected {expected}, got {wrong}"
    assert values(run, "classifier-realtime")["logger"]["sink"] == "collector"


@pytest.mark.parametrize("version", ["1.17.1", "1.15.0"])
def test_feedback_services_decode_grpc_with_the_executors_seldon_version(version: str) -> None:
    """The executor logs gRPC payloads as protobuf; the collector and indexer decode them with the protos of the
    Seldon version the operator installs (seldon:version), never a fixed default."""
    run = run_program("dev", overrides={"seldon:version": version})
    operator = run.one(RELEASE, "seldon-operator").inputs["version"]
    assert operator == version
    assert values(run, "feedback-pipeline")["seldonProtoVersion"] == operator
    assert values(run, "seldon-operator")["executor"]["image"]["tag"] == operator


def test_topics_in_use_exist_as_kafka_topics(run: Run) -> None:
    name, namespace, _ = kafka_cluster(run)
    topics = {r.inputs["spec"]["topicName"]: r for r in run.of_type(TOPIC)}
    for topic in topics.values():
        assert topic.inputs["metadata"]["labels"]["strimzi.io/cluster"] == name, topic.name
        assert topic.inputs["metadata"]["namespace"] == namespace, topic.name
    feedback = values(run, "feedback-pipeline")["kafka"]
    streaming = values(run, "classifier-streaming")
    used = {
        "capture (collector, indexer)": feedback["captureTopic"],
        "dead letter (indexer)": feedback["deadLetterTopic"],
        "streaming input": streaming["streaming"]["inputTopic"],
        "streaming output": streaming["streaming"]["outputTopic"],
        "direct Kafka capture (real-time)": values(run, "classifier-realtime")["logger"]["kafka"]["topic"],
        "direct Kafka capture (streaming)": streaming["logger"]["kafka"]["topic"],
        **{f"stack output kafka.topics.{role}": topic for role, topic in run.outputs["kafka"]["topics"].items()},
    }
    missing = {who: topic for who, topic in used.items() if topic not in topics}
    assert not missing, f"topics used but not declared as KafkaTopics: {missing}"
    assert set(topics) == set(run.outputs["kafka"]["topics"].values())
    assert run.one(KAFKA).inputs["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False


def test_search_credentials_are_handed_on_by_reference_one_user_per_service(run: Run) -> None:
    """The admin (`elastic`, ECK's Secret) reaches only the chart's setup Job; the indexer and the monitor get users
    of their own from the file realm, with the roles of infra/search_roles.py on their indices only."""
    es = run.one(ES)
    meta = es.inputs["metadata"]
    search = values(run, "feedback-pipeline")["search"]
    assert search["setup"] == {
        "username": "elastic",
        "existingSecret": f"{meta['name']}-es-elastic-user",
        "passwordKey": "elastic",
    }
    auth = es.inputs["spec"]["auth"]
    roles = run.one(SECRET, "search-roles").inputs
    assert auth["roles"] == [{"secretName": roles["metadata"]["name"]}]
    data = roles["stringData"].get("value", roles["stringData"])  # every Secret's data is a Pulumi secret
    definitions = yaml.safe_load(data["roles.yml"])
    index, monitor_index = run.outputs["search"]["index"], values(run, "feedback-pipeline")["monitor"]["index"]
    assert definitions == elasticsearch_roles(index, monitor_index)
    for service in ("indexer", "monitor"):
        user = run.one(SECRET, f"search-{service}-user").inputs
        assert user["type"] == "kubernetes.io/basic-auth"
        assert SECRET_SIG in user["stringData"], f"{service}: the password must stay a Pulumi secret"
        credentials = user["stringData"]["value"]
        assert (credentials["username"], credentials["roles"]) == (
            f"seldon-feedback-{service}",
            f"seldon-feedback-{service}",
        )
        assert credentials["password"] == TEST_SECRETS[f"search:{service}Password"]
        assert {"secretName": user["metadata"]["name"]} in auth["fileRealm"]
        assert user["metadata"]["namespace"] == meta["namespace"]
        assert search[service] == {
            "username": f"seldon-feedback-{service}",
            "existingSecret": user["metadata"]["name"],
            "passwordKey": "password",
        }
        assert run.outputs["search"]["serviceCredentials"][service]["secret"] == user["metadata"]["name"]
    assert search["url"] == run.outputs["search"]["url"]
    assert search["url"].endswith(f"{meta['name']}-es-http.{meta['namespace']}.svc.cluster.local:9200")
    assert run.calls == [], "the program must not read anything from the cluster (e.g. the ECK password)"


def test_object_store_wiring(run: Run) -> None:
    minio = values(run, "objectstore-minio")
    batch = values(run, "batch-workflow")["objectStore"]
    client = run.one(SECRET, "objectstore-client-credentials").inputs
    root = run.one(SECRET, "objectstore-root-credentials").inputs
    registry = run.outputs["flowback"]["bucket"]
    assert [b["name"] for b in minio["buckets"]] == [run.outputs["objectStore"]["bucket"], registry]
    assert batch["bucket"] == run.outputs["objectStore"]["bucket"] != registry
    assert batch["endpoint"] == run.outputs["objectStore"]["endpoint"]
    assert batch["existingSecret"] == client["metadata"]["name"] == run.outputs["objectStore"]["credentialsSecret"]
    assert client["metadata"]["namespace"] == run.outputs["namespaces"]["app"]
    assert {batch["accessKeyKey"], batch["secretKeyKey"]} <= set(client["stringData"]["value"])
    assert minio["existingSecret"] == root["metadata"]["name"]
    assert minio["users"] == [], "the chart's default user has a fixed password"


def test_namespaces_and_watch_lists(run: Run) -> None:
    app = run.outputs["namespaces"]["app"]
    for kind in (KAFKA, ES, KIBANA, TOPIC, POOL):
        for resource in run.of_type(kind):
            assert resource.inputs["metadata"]["namespace"] == app, resource.name
    for chart in ("feedback-pipeline", "classifier-realtime", "classifier-streaming", "batch-workflow"):
        assert run.one(CHART, chart).inputs["namespace"] == app
    assert run.one(CHART, "flowback-workflow").inputs["namespace"] == app
    assert values(run, "kafka-operator")["watchNamespaces"] == [app]
    assert values(run, "search-operator")["managedNamespaces"] == [app]
    assert values(run, "workflows-argo")["controller"]["workflowNamespaces"] == [app]
    created = {r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:core/v1:Namespace")}
    assert set(run.outputs["namespaces"].values()) == created


def test_every_namespace_carries_pod_security_labels(run: Run) -> None:
    """Pod Security Admission on every namespace we create: enforce at the level its pods can meet (baseline where
    a pod spec is not ours: the operator-injected executor in the app namespace, the upstream operator charts),
    warn and audit at restricted everywhere, each pinned to the policy version the checks implement."""
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"] for r in run.of_type(NAMESPACE)}
    assert namespaces
    for name, labels in namespaces.items():
        for mode in ("enforce", "warn", "audit"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] in ("baseline", "restricted"), (name, labels)
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == POLICY_VERSION, (name, labels)
        assert labels["pod-security.kubernetes.io/warn"] == "restricted", name
        assert labels["pod-security.kubernetes.io/audit"] == "restricted", name
    app = run.outputs["namespaces"]["app"]
    assert namespaces[app]["pod-security.kubernetes.io/enforce"] == "baseline", "the injected executor needs baseline"
    assert all(entry.reason for entry in POD_SECURITY.values() if entry.enforce != "restricted")


# ---- pins -------------------------------------------------------------------------------------------------------

SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def test_every_chart_and_image_is_pinned(run: Run) -> None:
    for chart in run.charts():
        assert SEMVER.match(str(chart.inputs.get("version", ""))), f"{chart.name}: chart version not pinned"
    for chart in run.of_type(CHART):
        path = chart.inputs["chart"]
        if "/" in path:  # our charts: a local path pinned by its Chart.yaml version
            local = (Path.cwd() / path).resolve()  # chart paths are relative to the working directory
            assert local.parent == REPO_ROOT / "charts", f"{chart.name}: {path} is not one of our charts"
            assert chart.inputs["version"] == yaml.safe_load((local / "Chart.yaml").read_text())["version"]
            effective = deep_merge(yaml.safe_load((local / "values.yaml").read_text()), chart.inputs["values"])
            images = [node for _, node in walk_dicts(effective) if "repository" in node and "tag" in node]
            assert images, f"{chart.name}: no image found"
            for image in images:
                assert image.get("digest") or (image["tag"] and image["tag"] != "latest"), f"{chart.name}: {image}"
    settings = {k.name: k.default for k in config.KEYS} | stack_config(run.globals["cfg"].platform.stack)
    strimzi, eck = values(run, "kafka-operator"), values(run, "search-operator")
    argo, minio, seldon = (
        values(run, "workflows-argo"),
        values(run, "objectstore-minio"),
        values(run, "seldon-operator"),
    )
    assert strimzi["defaultImageTag"] == run.one(CHART, "kafka-operator").inputs["version"]
    assert eck["image"]["tag"] == run.one(CHART, "search-operator").inputs["version"]
    assert argo["images"]["tag"] == settings["workflows:imageTag"]
    assert minio["image"]["tag"].startswith("RELEASE.") and minio["mcImage"]["tag"].startswith("RELEASE.")
    seldon_version = run.one(RELEASE, "seldon-operator").inputs["version"]
    assert seldon["image"]["tag"] == seldon["executor"]["image"]["tag"] == seldon_version
    assert seldon["storageInitializer"]["image"].endswith(f":{seldon_version}")
    assert SEMVER.match(run.one(KAFKA).inputs["spec"]["kafka"]["version"])
    assert SEMVER.match(run.one(ES).inputs["spec"]["version"])
    assert run.one(KIBANA).inputs["spec"]["version"] == run.one(ES).inputs["spec"]["version"]


def walk_dicts(node: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk_dicts(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk_dicts(value, (*path, str(index)))


# ---- sizing, budgets, security per environment -----------------------------------------------------------------


def test_resources_follow_the_stack_config(run: Run) -> None:
    cfg = run.globals["cfg"]
    pools = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.of_type(POOL)}
    assert pools["brokers"]["replicas"] == cfg.kafka.brokers and pools["brokers"]["roles"] == ["broker"]
    assert pools["controllers"]["replicas"] == cfg.kafka.controllers and pools["controllers"]["roles"] == ["controller"]
    for topic in run.of_type(TOPIC):
        assert topic.inputs["spec"]["replicas"] == cfg.kafka.replication_factor <= cfg.kafka.brokers
    assert run.one(ES).inputs["spec"]["nodeSets"][0]["count"] == cfg.search.nodes
    assert values(run, "feedback-pipeline")["collector"]["replicas"] == cfg.feedback.collector_replicas
    assert values(run, "classifier-realtime")["replicas"] == cfg.classifier.replicas


def test_prod_sizing(prod: Run) -> None:
    pools = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in prod.of_type(POOL)}
    assert pools["brokers"]["replicas"] == 3
    assert pools["controllers"]["replicas"] == 3
    assert pools["brokers"]["resources"]["requests"] == {"cpu": "1", "memory": "4Gi"}
    assert prod.one(ES).inputs["spec"]["nodeSets"][0]["count"] == 3
    kafka_config = prod.one(KAFKA).inputs["spec"]["kafka"]["config"]
    assert kafka_config["default.replication.factor"] == 3 and kafka_config["min.insync.replicas"] == 2
    retention = {r.inputs["spec"]["topicName"]: r.inputs["spec"]["config"]["retention.ms"] for r in prod.of_type(TOPIC)}
    week = 7 * 24 * 3_600_000
    assert retention == {
        "model_input": week,
        "model_output": week,
        "seldon-capture": week,
        "seldon-capture-dead-letter": 4 * week + 2 * 24 * 3_600_000,
    }
    assert values(prod, "objectstore-minio")["mode"] == "distributed"
    assert values(prod, "objectstore-minio")["replicas"] == 4


def test_prod_pod_disruption_budgets(prod: Run, dev: Run) -> None:
    for run, on in ((prod, True), (dev, False)):
        feedback = values(run, "feedback-pipeline")
        assert feedback["collector"]["pdb"]["enabled"] is on
        assert feedback["indexer"]["pdb"]["enabled"] is on
        assert values(run, "classifier-realtime")["pdb"]["enabled"] is on
        assert values(run, "objectstore-minio")["podDisruptionBudget"]["enabled"] is on
        es_budget = run.one(ES).inputs["spec"]["podDisruptionBudget"]
        kafka_template = run.one(KAFKA).inputs["spec"]["kafka"].get("template", {})
        if on:
            assert es_budget["spec"]["maxUnavailable"] == 1
            assert kafka_template["podDisruptionBudget"]["maxUnavailable"] == 1
        else:
            assert es_budget == {}
            assert "podDisruptionBudget" not in kafka_template


def test_prod_tls_and_scram(prod: Run) -> None:
    name, namespace, port = kafka_cluster(prod)
    listener = prod.one(KAFKA).inputs["spec"]["kafka"]["listeners"][0]
    assert (port, listener["tls"], listener["authentication"]) == (9093, True, {"type": "scram-sha-512"})
    assert prod.one(KAFKA).inputs["spec"]["kafka"]["authorization"] == {"type": "simple"}
    users = {r.inputs["metadata"]["name"]: r for r in prod.of_type(USER)}
    assert set(users) == set(kafka_access.CLIENTS), "one KafkaUser per client of the access table"
    for username, user in users.items():
        assert user.inputs["metadata"]["labels"]["strimzi.io/cluster"] == name
        assert user.inputs["metadata"]["namespace"] == namespace
        # no password from the stack: Strimzi generates it into the Secret named after the user
        assert user.inputs["spec"]["authentication"] == {"type": "scram-sha-512"}
        authorization = user.inputs["spec"]["authorization"]
        assert authorization["type"] == "simple" and authorization["acls"], username
    made = {r.inputs["metadata"]["name"] for r in prod.of_type(SECRET)}
    old = {"seldon-feedback-feedback-credentials", "seldon-feedback-executor-credentials"}
    assert not made & {*users, *(f"{u}-credentials" for u in users), *old}, "Kafka credentials are Strimzi's Secrets"
    ca = f"{name}-cluster-ca-cert"
    feedback = values(prod, "feedback-pipeline")["kafka"]
    assert feedback["securityProtocol"] == "sasl_ssl"
    assert feedback["sasl"] == {"mechanism": "SCRAM-SHA-512", "passwordKey": "password"}, "no shared login"
    assert feedback["clients"] == {
        role: {"existingSecret": user, "username": user}
        for role, user in (
            ("collector", "feedback-collector"),
            ("indexer", "feedback-indexer"),
            ("monitor", "feedback-monitor"),
        )
    }
    for chart in ("feedback-pipeline", "classifier-realtime", "classifier-streaming"):
        kafka = values(prod, chart)["kafka"]
        assert kafka["tls"]["existingSecret"] == ca
        assert kafka["sasl"]["mechanism"] == "SCRAM-SHA-512"
    for chart in ("classifier-realtime", "classifier-streaming"):
        sasl = values(prod, chart)["kafka"]["sasl"]
        assert sasl["existingSecret"] == sasl["username"] == "seldon-executor" and sasl["passwordKey"] == "password"
    kafka_out = prod.outputs["kafka"]
    assert kafka_out["users"]["smoke"] == kafka_out["credentialsSecrets"]["smoke"] == "smoke-tests"
    for chart in ("classifier-realtime", "classifier-streaming"):
        assert values(prod, chart)["kafka"]["securityProtocol"] == "SASL_SSL"
    search = values(prod, "feedback-pipeline")["search"]
    assert search["url"].startswith("https://")
    assert search["tls"]["caSecret"] == f"{prod.one(ES).inputs['metadata']['name']}-es-http-certs-public"
    assert "http" not in prod.one(ES).inputs["spec"], "ECK's TLS must stay on in prod"


def test_dev_is_plain_and_small(dev: Run) -> None:
    listener = dev.one(KAFKA).inputs["spec"]["kafka"]["listeners"][0]
    assert (listener["port"], listener["tls"], "authentication" in listener) == (9092, False, False)
    assert dev.of_type(USER) == []
    assert values(dev, "feedback-pipeline")["kafka"]["securityProtocol"] == "plaintext"
    assert dev.one(ES).inputs["spec"]["http"]["tls"]["selfSignedCertificate"]["disabled"] is True


# ---- secrets ----------------------------------------------------------------------------------------------------


def plaintext_leaks(node: Any, needles: set[str], path: str = "") -> list[str]:
    """Paths where a secret value appears outside a Pulumi secret wrapper."""
    if isinstance(node, dict):
        if node.get(SECRET_SIG) is not None:
            return []
        return [leak for key, value in node.items() for leak in plaintext_leaks(value, needles, f"{path}.{key}")]
    if isinstance(node, list):
        return [leak for i, value in enumerate(node) for leak in plaintext_leaks(value, needles, f"{path}[{i}]")]
    if isinstance(node, str) and any(needle in node for needle in needles):
        return [path]
    return []


def test_secrets_stay_secret(run: Run) -> None:
    needles = set(TEST_SECRETS.values())
    leaks = [leak for r in run.resources for leak in plaintext_leaks(r.inputs, needles, r.name)]
    assert not leaks, f"secret values in plain text at {leaks}"
    assert not any(needle in json.dumps(run.outputs) for needle in needles), "a stack output exposes a secret"
    carrying = [r for r in run.of_type(SECRET) if any(n in json.dumps(r.inputs) for n in needles)]
    assert carrying, "the Pulumi secrets must reach Kubernetes Secrets"
    for secret in carrying:
        assert set(secret.inputs["stringData"]) == {SECRET_SIG, "value"}, f"{secret.name}: stringData not secret"
    for name, value in values(run, "objectstore-minio").items():
        assert "password" not in name.lower() or value == "", "MinIO credentials go through existingSecret"


# ---- ordering and options ---------------------------------------------------------------------------------------


def depends_on(run: Run, name: str) -> set[str]:
    deps = run.registration(name).opts.depends_on or []
    assert isinstance(deps, list)
    return {next(r.name for r in run.registrations if r.resource is dep) for dep in deps}


def test_custom_resources_wait_for_their_operator(run: Run) -> None:
    for kind, operator in (
        (KAFKA, "kafka-operator"),
        (POOL, "kafka-operator"),
        (TOPIC, "kafka-operator"),
        (USER, "kafka-operator"),
        (ES, "search-operator"),
        (KIBANA, "search-operator"),
    ):
        for resource in run.of_type(kind):
            assert operator in depends_on(run, resource.name), f"{resource.name} does not wait for {operator}"
    assert "seldon" in depends_on(run, "classifier"), "SeldonDeployments must wait for the Seldon operator"
    assert {"workflows", "classifier"} <= depends_on(run, "batch"), "the WorkflowTemplate needs Argo's CRDs"
    assert {"workflows", "feedback", "classifier"} <= depends_on(run, "flowback"), "Argo's CRDs, the index"


def test_stateful_resources_are_protected_only_where_the_stack_asks(run: Run) -> None:
    protect = run.globals["cfg"].platform.protect
    for kind in (KAFKA, POOL, TOPIC, ES):
        for resource in run.of_type(kind):
            assert bool(run.registration(resource.name).opts.protect) is protect, resource.name
    assert bool(run.registration("objectstore-minio").opts.protect) is protect


def test_transforms_reach_every_kubernetes_object(run: Run) -> None:
    stack = run.globals["cfg"].platform.stack
    checked = 0
    for resource in run.resources:
        if not resource.custom or not resource.typ.startswith("kubernetes:") or "helm.sh" in resource.typ:
            continue
        props = copy.deepcopy(resource.inputs)
        ancestor = run.parent_of(resource.name)
        assert ancestor is not None, f"{resource.name} is not inside a component"
        while ancestor is not None:
            for transform in ancestor.opts.transforms or []:
                args = pulumi.ResourceTransformArgs(True, resource.typ, resource.name, props, pulumi.ResourceOptions())
                result = transform(args)
                props = result.props if result is not None else props
            ancestor = run.parent_of(ancestor.name)
        labels = props["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "seldon-feedback", resource.name
        assert labels.get("seldon-feedback/stack") == stack, resource.name
        if props["kind"] != "Namespace":
            assert props["metadata"].get("namespace"), f"{resource.name} has no namespace"
        checked += 1
    assert checked >= 10


# ---- outputs ----------------------------------------------------------------------------------------------------

OUTPUT_SHAPE = {
    "prediction": {"restUrl", "grpcAddress", "deployment", "streamingDeployment", "predictor", "namespace"},
    "kafka": {
        "bootstrap",
        "securityProtocol",
        "caSecret",
        "topics",
        "saslMechanism",
        "users",
        "credentialsSecrets",
        "passwordKey",
        "usernameKey",
        "clientCertificates",
    },
    "search": {
        "url",
        "kibanaUrl",
        "index",
        "indexPattern",
        "username",
        "credentialsSecret",
        "credentialsSecretKey",
        "serviceCredentials",
    },
    "objectStore": {"endpoint", "bucket", "credentialsSecret"},
    "namespaces": {"app", "kafkaOperator", "searchOperator", "objectStore", "workflows", "seldonOperator"},
    "collector": {"url", "executorDefaultEndpoint"},
    "batch": {"workflowTemplate", "namespace"},
    "flowback": {
        "enabled",
        "workflowTemplate",
        "cronWorkflow",
        "namespace",
        "bucket",
        "modelName",
        "registryPrefix",
        "datasetsPrefix",
        "credentialsSecret",
    },
    "components": {"collector", "indexer", "classifier", "classifierStreaming", "kafka", "elasticsearch", "minio"},
    "seldonVersion": None,
}


def test_stack_outputs_contract(run: Run) -> None:
    assert set(run.outputs) == set(OUTPUT_SHAPE)
    for name, keys in OUTPUT_SHAPE.items():
        if keys is not None:
            assert set(run.outputs[name]) == keys, name
    outputs = run.outputs
    assert re.fullmatch(r"http://[a-z0-9.-]+:8000", outputs["prediction"]["restUrl"])
    assert re.fullmatch(r"[a-z0-9.-]+:5001", outputs["prediction"]["grpcAddress"])
    assert set(outputs["kafka"]["topics"]) == {"modelInput", "modelOutput", "capture", "deadLetter"}
    assert outputs["search"]["indexPattern"] == outputs["search"]["index"] + "*"
    assert outputs["search"]["index"] == values(run, "feedback-pipeline")["search"]["index"]
    assert outputs["collector"]["executorDefaultEndpoint"] == outputs["collector"]["url"]
    assert outputs["batch"]["workflowTemplate"] == values(run, "batch-workflow")["fullnameOverride"]
    for role, component in outputs["components"].items():
        assert set(component) == {"namespace", "selector"}, role
        assert re.fullmatch(r"([a-z0-9./-]+=[a-z0-9.-]+)(,[a-z0-9./-]+=[a-z0-9.-]+)*", component["selector"]), role
        assert component["namespace"] in outputs["namespaces"].values(), role
    feedback_release = run.one(CHART, "feedback-pipeline").inputs["name"]
    assert f"app.kubernetes.io/instance={feedback_release}" in outputs["components"]["collector"]["selector"]
    assert (
        outputs["components"]["classifier"]["selector"] == f"seldon-deployment-id={outputs['prediction']['deployment']}"
    )
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text()
    for name, keys in OUTPUT_SHAPE.items():
        for key in sorted(keys or [""]):
            documented = f"`{name}.{key}`" if key else f"`{name}`"
            assert documented in docs, f"stack output {documented} is not documented in docs/deploy.md"
    for name, value in walk(outputs):
        assert value is None or isinstance(value, str | int | float | bool), name


def test_program_runs_from_its_own_directory_as_pulumi_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """`main: infra/` makes Pulumi run the program with infra/ as the working directory: chart paths must
    still point at charts/<name>, written relative so that stack state is the same on every machine."""
    monkeypatch.chdir(REPO_ROOT / "infra")
    run = run_program("dev")
    for chart in run.of_type(CHART):
        path = chart.inputs["chart"]
        if "/" in path:
            assert path.startswith("../charts/"), path
            assert (REPO_ROOT / "infra" / path / "Chart.yaml").is_file(), path


def test_streaming_can_be_switched_off() -> None:
    run = run_program("dev", overrides={"classifier:streaming": False})
    assert [r.name for r in run.of_type(CHART) if r.name.startswith("classifier-")] == ["classifier-realtime"]
    assert run.outputs["prediction"]["streamingDeployment"] is None
    assert "classifierStreaming" not in run.outputs["components"]
    assert values(run, "feedback-pipeline")["indexer"]["streamingDeployments"] == []
    # the streaming topics stay: other producers and consumers may use them
    assert {"model_input", "model_output"} <= {r.inputs["spec"]["topicName"] for r in run.of_type(TOPIC)}


def test_one_explicit_provider_takes_the_stack_kubernetes_settings() -> None:
    """Every component gets the explicit provider (Chart v4's objects then share it: with the default provider
    the real engine showed a delete on the preview after the first up), and it keeps reading the
    `kubernetes:` settings that docs/deploy.md tells users to set, which an explicit provider otherwise ignores."""
    run = run_program("dev", plain={"kubernetes:context": "prod-admin", "kubernetes:kubeconfig": "/k/config"})
    provider = run.one("pulumi:providers:kubernetes")
    assert provider.inputs.get("context") == "prod-admin" and provider.inputs.get("kubeconfig") == "/k/config"
    # a changed sampling rate (a ConfigMap) or password (a Secret) is an update in place, not a replacement
    assert provider.inputs.get("enableConfigMapMutable") in (True, "true"), provider.inputs
    assert provider.inputs.get("enableSecretMutable") in (True, "true"), provider.inputs
    components = [r for r in run.registrations if r.typ.startswith("feedback:")]
    assert components
    for component in components:
        providers = component.opts.providers
        given = list(providers.values()) if isinstance(providers, dict) else list(providers or [])
        assert [p for p in given if getattr(p, "package", None) == "kubernetes"], component.name


# ---- the flow back (charts/flowback-workflow) -------------------------------------------------------------------


def test_the_flowback_workflow_reads_the_index_and_writes_the_registry_bucket(run: Run) -> None:
    flowback = values(run, "flowback-workflow")
    pipeline = values(run, "feedback-pipeline")["search"]
    outputs = run.outputs
    assert flowback["search"]["url"] == outputs["search"]["url"] == pipeline["url"]
    assert flowback["search"]["index"] == outputs["search"]["index"]
    assert flowback["search"]["engine"] == pipeline["engine"]
    # the search user by reference: the ECK user's name as a value, its password as a Secret key (the setup's user
    # for now: a read-only export role is not made yet)
    assert (flowback["search"]["existingSecret"], flowback["search"]["passwordKey"]) == (
        pipeline["setup"]["existingSecret"],
        pipeline["setup"]["passwordKey"],
    )
    assert flowback["search"]["username"] == pipeline["setup"]["username"]
    assert flowback["search"]["caSecret"] == (pipeline["tls"]["caSecret"] if pipeline.get("tls") else "")
    store = flowback["objectStore"]
    assert store["bucket"] == outputs["flowback"]["bucket"] == "flowback"
    assert store["endpoint"] == outputs["objectStore"]["endpoint"]
    assert (
        store["existingSecret"]
        == outputs["objectStore"]["credentialsSecret"]
        == outputs["flowback"]["credentialsSecret"]
    )
    assert (store["accessKeyKey"], store["secretKeyKey"]) == ("accessKey", "secretKey")
    assert flowback["export"]["deployment"] == outputs["prediction"]["deployment"]
    assert outputs["flowback"]["workflowTemplate"] == flowback["fullnameOverride"]
    assert outputs["flowback"]["registryPrefix"] == f"registry/{flowback['model']['name']}/"
    cfg = run.globals["cfg"]
    images = flowback["images"]
    assert (
        images["flowback"]["tag"] == cfg.feedback.image.tag and images["classifier"]["tag"] == cfg.classifier.image.tag
    )


def test_the_canary_fetches_from_the_registry_bucket() -> None:
    run = run_program("dev", overrides={"classifier:canaryModelVersion": "1.0.0+0123456789ab"})
    canary = values(run, "classifier-realtime")["canary"]["registry"]
    assert (
        canary["bucket"]
        == run.outputs["flowback"]["bucket"]
        == values(run, "flowback-workflow")["objectStore"]["bucket"]
    )
    assert canary["bucket"] != run.outputs["objectStore"]["bucket"]


def test_prod_schedules_the_flowback_with_its_stricter_rule(prod: Run, dev: Run) -> None:
    flowback = values(prod, "flowback-workflow")
    assert flowback["schedule"] == {"cron": "0 3 * * *", "timezone": "Europe/Berlin", "lookback": "7d"}
    assert flowback["rule"] == {"heldOutMaxDrop": 0.005, "minFeedbackRows": 200}
    assert prod.outputs["flowback"]["cronWorkflow"] == flowback["fullnameOverride"]
    assert "schedule" not in values(dev, "flowback-workflow") and dev.outputs["flowback"]["cronWorkflow"] == ""
    assert "rule" not in values(dev, "flowback-workflow"), "unset rule fields keep the chart's defaults"


def test_the_flowback_can_be_switched_off() -> None:
    run = run_program("dev", overrides={"flowback:enabled": False})
    assert not [r for r in run.charts() if r.name == "flowback-workflow"]
    assert run.outputs["flowback"]["enabled"] is False and run.outputs["flowback"]["workflowTemplate"] == ""
    # the registry bucket stays: the canary and `python -m feedback.flowback` use it without the workflow
    assert "flowback" in [b["name"] for b in values(run, "objectstore-minio")["buckets"]]


def test_an_existing_object_store_gets_no_bucket_but_the_same_wiring() -> None:
    run = run_program(
        "dev",
        overrides={
            "objectstore:existing": {"endpoint": "https://s3.example", "secret": "s3-keys"},
            "flowback:bucket": "acme-registry",
        },
    )
    store = values(run, "flowback-workflow")["objectStore"]
    assert (store["endpoint"], store["bucket"], store["existingSecret"]) == (
        "https://s3.example",
        "acme-registry",
        "s3-keys",
    )
    assert run.outputs["flowback"]["bucket"] == "acme-registry"


def test_the_monitor_reads_canary_profiles_from_the_registry_bucket(run: Run) -> None:
    monitor = values(run, "feedback-pipeline")["monitor"]["registry"]
    outputs = run.outputs
    assert (monitor["bucket"], monitor["endpoint"], monitor["existingSecret"]) == (
        outputs["flowback"]["bucket"],
        outputs["objectStore"]["endpoint"],
        outputs["objectStore"]["credentialsSecret"],
    )
    policy = values(run, "feedback-pipeline")["networkPolicy"]["objectStore"]
    minio = outputs["components"]["minio"]
    assert policy["namespace"] == minio["namespace"] and policy["port"] == 9000
    assert ",".join(f"{k}={v}" for k, v in sorted(policy["podLabels"].items())) == minio["selector"]


def test_an_object_store_outside_the_cluster_is_reached_on_its_port() -> None:
    run = run_program("dev", overrides={"objectstore:existing": {"endpoint": "https://s3.example", "secret": "keys"}})
    policy = values(run, "feedback-pipeline")["networkPolicy"]["objectStore"]
    assert policy == {"port": 443, "anywhere": True}


def test_kafka_users_get_exactly_the_access_tables_acls_for_the_stacks_names(prod: Run) -> None:
    """The ACLs on the cluster are the table's (infra/kafka_access.py), resolved to prod's topic names, the indexer's
    group and the streaming executor's group `<predictor>.<deployment>.<namespace>`."""
    feedback = values(prod, "feedback-pipeline")
    namespace = prod.outputs["prediction"]["namespace"]
    names = kafka_access.KafkaNames(
        capture_topic=feedback["kafka"]["captureTopic"],
        dead_letter_topic=feedback["kafka"]["deadLetterTopic"],
        input_topic=values(prod, "classifier-streaming")["streaming"]["inputTopic"],
        output_topic=values(prod, "classifier-streaming")["streaming"]["outputTopic"],
        indexer_group="seldon-feedback-indexer",
        executor_groups=(f"default.{prod.outputs['prediction']['streamingDeployment']}.{namespace}",),
    )
    for user in prod.of_type(USER):
        username = user.inputs["metadata"]["name"]
        assert user.inputs["spec"]["authorization"]["acls"] == kafka_access.strimzi_acls(username, names), username


def test_tls_client_authentication_gives_each_client_its_certificate(prod: Run) -> None:
    run = run_program("prod", overrides={"kafka:authentication": "tls"})
    listener = run.one(KAFKA).inputs["spec"]["kafka"]["listeners"][0]
    assert listener["authentication"] == {"type": "tls"} and listener["tls"] is True
    assert run.one(KAFKA).inputs["spec"]["kafka"]["authorization"] == {"type": "simple"}
    users = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.of_type(USER)}
    assert set(users) == set(kafka_access.CLIENTS)
    assert all(spec["authentication"] == {"type": "tls"} for spec in users.values())
    feedback = values(run, "feedback-pipeline")["kafka"]
    assert feedback["securityProtocol"] == "ssl" and "sasl" not in feedback
    assert {role: c["certSecret"] for role, c in feedback["clients"].items()} == {
        "collector": "feedback-collector",
        "indexer": "feedback-indexer",
        "monitor": "feedback-monitor",
    }
    for chart in ("classifier-realtime", "classifier-streaming"):
        tls = values(run, chart)["kafka"]["tls"]
        assert tls["existingSecret"].endswith("-cluster-ca-cert") and tls["clientSecret"] == "seldon-executor"
        assert (tls["clientCertKey"], tls["clientKeyKey"]) == ("user.crt", "user.key")
    assert run.outputs["kafka"]["clientCertificates"] is True
