"""Our charts rendered by `helm template` with exactly the release names, namespaces and values the Pulumi program
passes (read from the mocked run of each stack): every object is valid, the executors log to the collector Service
the feedback-pipeline chart really renders, every Kafka client gets the one bootstrap address and topics that
exist, and every Secret a rendered object references will exist (made by the program or by an operator)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.harness import ENVIRONMENTS, Run, run_program
from tests.infra.rendering import container_env, workload_containers
from tools import helm

CHART = "kubernetes:helm.sh/v4:Chart"
Objects = list[dict[str, Any]]


@dataclass
class Deployed:
    run: Run
    rendered: dict[str, Objects]  # Pulumi chart resource name -> rendered objects

    def objects(self, chart_resource: str, kind: str) -> Objects:
        return [o for o in self.rendered[chart_resource] if o["kind"] == kind]

    def all_objects(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, objects in self.rendered.items():
            for obj in objects:
                yield name, obj


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def deployed(request: pytest.FixtureRequest, chart_render: Any) -> Deployed:
    run = run_program(request.param)
    rendered: dict[str, Objects] = {}
    for chart in run.of_type(CHART):
        if "/" not in chart.inputs["chart"]:
            continue  # upstream charts: values checked against their values.yaml in test_upstream.py
        rendered[chart.name] = chart_render(
            Path(chart.inputs["chart"]).name,
            chart.inputs["values"],
            release=chart.inputs["name"],
            namespace=chart.inputs["namespace"],
        )
    assert set(rendered) == {
        "feedback-pipeline",
        "classifier-realtime",
        "classifier-streaming",
        "batch-workflow",
        "flowback-workflow",
    }
    return Deployed(run, rendered)


def kafka_cluster(run: Run) -> dict[str, Any]:
    return run.one("kubernetes:kafka.strimzi.io/v1:Kafka").inputs


def bootstrap(run: Run) -> str:
    meta = kafka_cluster(run)["metadata"]
    port = kafka_cluster(run)["spec"]["kafka"]["listeners"][0]["port"]
    return f"{meta['name']}-kafka-bootstrap.{meta['namespace']}.svc.cluster.local:{port}"


def topics(run: Run) -> set[str]:
    return {r.inputs["spec"]["topicName"] for r in run.of_type("kubernetes:kafka.strimzi.io/v1:KafkaTopic")}


def test_rendered_objects_are_valid(deployed: Deployed) -> None:
    errors = [error for _, obj in deployed.all_objects() for error in helm.validate_object(obj)]
    assert not errors, "\n".join(errors)
    app = deployed.run.outputs["namespaces"]["app"]
    for name, obj in deployed.all_objects():
        assert obj["metadata"].get("namespace", app) == app, f"{name}: {obj['kind']} {obj['metadata']['name']}"


def test_executors_log_to_the_collector_service_the_chart_renders(deployed: Deployed) -> None:
    services = [
        s
        for s in deployed.objects("feedback-pipeline", "Service")
        if s["spec"]["selector"].get("app.kubernetes.io/component") == "collector"
    ]
    assert len(services) == 1, "the feedback-pipeline chart must render exactly one Service in front of the collector"
    service = services[0]
    (port,) = [p["port"] for p in service["spec"]["ports"] if p.get("name", "http") == "http"] or [
        service["spec"]["ports"][0]["port"]
    ]
    url = f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{port}/"
    for chart in ("classifier-realtime", "classifier-streaming"):
        (sdep,) = deployed.objects(chart, "SeldonDeployment")
        for predictor in sdep["spec"]["predictors"]:
            assert predictor["graph"]["logger"]["url"] == url, f"{chart}: graph logger"
    seldon = deployed.run.one("kubernetes:helm.sh/v3:Release", "seldon-operator").inputs["values"]
    assert seldon["executor"]["requestLogger"]["defaultEndpoint"] == url
    assert deployed.run.outputs["collector"]["url"] == url


def test_exported_pod_selectors_select_the_rendered_pods(deployed: Deployed) -> None:
    """The smoke suite finds each component's pods by the selector in the stack outputs."""
    components = deployed.run.outputs["components"]
    for role in ("collector", "indexer"):
        selector = dict(part.split("=", 1) for part in components[role]["selector"].split(","))
        selected = [
            d["metadata"]["name"]
            for d in deployed.objects("feedback-pipeline", "Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"components.{role}.selector {selector} selects {selected}"
        assert components[role]["namespace"] == deployed.run.outputs["namespaces"]["app"]


def test_streaming_executor_reads_and_writes_existing_topics_on_the_one_bootstrap(deployed: Deployed) -> None:
    (sdep,) = deployed.objects("classifier-streaming", "SeldonDeployment")
    assert sdep["spec"]["serverType"] == "kafka"
    (predictor,) = sdep["spec"]["predictors"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in predictor["svcOrchSpec"]["env"]}
    assert env["KAFKA_BROKER"] == bootstrap(deployed.run)
    assert {env["KAFKA_INPUT_TOPIC"], env["KAFKA_OUTPUT_TOPIC"]} <= topics(deployed.run)
    if deployed.run.globals["cfg"].kafka.scram:
        assert env["KAFKA_SECURITY_PROTOCOL"].lower() == "sasl_ssl"


def test_collector_and_indexer_use_the_one_bootstrap_and_existing_topics(deployed: Deployed) -> None:
    objects = deployed.rendered["feedback-pipeline"]
    seen = {}
    for name, container in workload_containers(objects):
        values = {str(v) for v in container_env(objects, container).values() if v is not None}
        seen[name] = values
        assert bootstrap(deployed.run) in values, f"{name} does not get the Kafka bootstrap address"
        capture = deployed.run.outputs["kafka"]["topics"]["capture"]
        assert capture in values, f"{name} does not get the capture topic"
    assert any(n.endswith("collector") for n in seen) and any(n.endswith("indexer") for n in seen), sorted(seen)
    indexer = next(values for name, values in seen.items() if name.endswith("indexer"))
    assert deployed.run.outputs["kafka"]["topics"]["deadLetter"] in indexer
    assert deployed.run.outputs["search"]["url"] in indexer


def test_indexer_labels_exactly_the_rendered_streaming_deployment_as_streaming(deployed: Deployed) -> None:
    objects = deployed.rendered["feedback-pipeline"]
    indexer = next(c for name, c in workload_containers(objects) if name.endswith("indexer"))
    listed = container_env(objects, indexer)["INDEXER_STREAMING_DEPLOYMENTS"].split(",")
    (streaming,) = deployed.objects("classifier-streaming", "SeldonDeployment")
    (realtime,) = deployed.objects("classifier-realtime", "SeldonDeployment")
    assert listed == [streaming["metadata"]["name"]], "the indexer must get the streaming deployment by its name"
    assert realtime["metadata"]["name"] not in listed


def secret_references(node: Any) -> Iterator[tuple[str, str | None]]:
    """(Secret name, key or None) of every secretKeyRef, secretRef and secret volume below `node`."""
    if isinstance(node, dict):
        if isinstance(node.get("secretKeyRef"), dict):
            yield node["secretKeyRef"]["name"], node["secretKeyRef"].get("key")
        if isinstance(node.get("secretRef"), dict):
            yield node["secretRef"]["name"], None
        if isinstance(node.get("secret"), dict) and "secretName" in node["secret"]:
            keys = [item["key"] for item in node["secret"].get("items", [])] or [None]
            for key in keys:
                yield node["secret"]["secretName"], key
        for value in node.values():
            yield from secret_references(value)
    elif isinstance(node, list):
        for value in node:
            yield from secret_references(value)


def test_every_referenced_secret_will_exist(deployed: Deployed) -> None:
    run = deployed.run
    existing: dict[str, set[str] | None] = {}  # name -> keys (None: any key, made by an operator)
    for secret in run.of_type("kubernetes:core/v1:Secret"):
        data = secret.inputs.get("stringData", {})
        existing[secret.inputs["metadata"]["name"]] = set(data.get("value", data)) - {
            "4dabf18193072939515e22adb298388d"
        }
    kafka = kafka_cluster(run)["metadata"]["name"]
    es = run.one("kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch").inputs["metadata"]["name"]
    existing[f"{kafka}-cluster-ca-cert"] = {"ca.crt", "ca.p12", "ca.password"}  # Strimzi
    existing[f"{es}-es-elastic-user"] = {"elastic"}  # ECK
    existing[f"{es}-es-http-certs-public"] = {"ca.crt", "tls.crt"}  # ECK
    for kibana in run.of_type("kubernetes:kibana.k8s.elastic.co/v1:Kibana"):
        existing[f"{kibana.inputs['metadata']['name']}-kb-http-certs-public"] = {"ca.crt", "tls.crt"}  # ECK
    for user in run.of_type("kubernetes:kafka.strimzi.io/v1:KafkaUser"):
        existing[user.inputs["metadata"]["name"]] = {"password", "sasl.jaas.config"}  # Strimzi user operator
    for _, obj in deployed.all_objects():
        if obj["kind"] == "Secret":
            existing[obj["metadata"]["name"]] = set(obj.get("data", {})) | set(obj.get("stringData", {}))
    for name, obj in deployed.all_objects():
        for secret, key in secret_references(obj):
            where = f"{name}: {obj['kind']} {obj['metadata']['name']}"
            assert secret in existing, f"{where} references Secret {secret}, which nothing creates"
            keys = existing[secret]
            assert key is None or keys is None or key in keys, f"{where} reads key {key} of {secret} ({keys})"


def test_batch_workflow_calls_the_realtime_deployment_and_reads_the_bucket(deployed: Deployed) -> None:
    (template,) = deployed.objects("batch-workflow", "WorkflowTemplate")
    assert template["metadata"]["name"] == deployed.run.outputs["batch"]["workflowTemplate"]
    text = str(template)
    prediction = deployed.run.outputs["prediction"]
    assert prediction["restUrl"].removeprefix("http://") in text
    assert prediction["deployment"] in text
    assert deployed.run.outputs["objectStore"]["bucket"] in text
    assert deployed.run.outputs["objectStore"]["endpoint"] in text


def test_flowback_workflow_exports_the_realtime_deployment_into_the_registry_bucket(deployed: Deployed) -> None:
    outputs = deployed.run.outputs
    (template,) = deployed.objects("flowback-workflow", "WorkflowTemplate")
    assert template["metadata"]["name"] == outputs["flowback"]["workflowTemplate"]
    assert template["metadata"]["namespace"] == outputs["flowback"]["namespace"]
    parameters = {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}
    assert parameters["deployment"] == outputs["prediction"]["deployment"]
    export = next(t["container"] for t in template["spec"]["templates"] if t["name"] == "export")
    env = container_env(deployed.rendered["flowback-workflow"], export)
    assert env["FLOWBACK_BUCKET"] == outputs["flowback"]["bucket"] != outputs["objectStore"]["bucket"]
    assert env["FLOWBACK_S3_ENDPOINT"] == outputs["objectStore"]["endpoint"]
    assert env["FLOWBACK_SEARCH_URL"] == outputs["search"]["url"]
    assert env["FLOWBACK_INDEX"] == outputs["search"]["index"]
    assert env["FLOWBACK_SEARCH_USERNAME"] == outputs["search"]["username"]
    assert env["FLOWBACK_SEARCH_PASSWORD"] == {
        "secretKeyRef": {
            "name": outputs["search"]["credentialsSecret"],
            "key": outputs["search"]["credentialsSecretKey"],
        }
    }
    assert env["AWS_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == outputs["flowback"]["credentialsSecret"]
    tls = deployed.run.globals["cfg"].search.tls
    assert ("FLOWBACK_SEARCH_CA_CERTS" in env) == tls, "the export trusts the ECK CA exactly when search TLS is on"
    crons = deployed.objects("flowback-workflow", "CronWorkflow")
    assert [c["metadata"]["name"] for c in crons] == ([outputs["flowback"]["cronWorkflow"]] if crons else [])
    if crons:
        assert crons[0]["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == template["metadata"]["name"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_direct_kafka_capture_writes_to_the_capture_topic(env: str, chart_render: Any) -> None:
    run = run_program(env, overrides={"classifier:captureSink": "kafka"})
    chart = run.one(CHART, "classifier-realtime")
    objects = chart_render(
        "text-classifier", chart.inputs["values"], release=chart.inputs["name"], namespace=chart.inputs["namespace"]
    )
    (sdep,) = [o for o in objects if o["kind"] == "SeldonDeployment"]
    (predictor,) = sdep["spec"]["predictors"]
    env_vars = {e["name"]: e.get("value", e.get("valueFrom")) for e in predictor["svcOrchSpec"]["env"]}
    assert env_vars["LOGGER_KAFKA_BROKER"] == bootstrap(run)
    assert env_vars["LOGGER_KAFKA_TOPIC"] == run.outputs["kafka"]["topics"]["capture"]
    assert env_vars["LOGGER_KAFKA_TOPIC"] in topics(run)
    assert "url" not in predictor["graph"]["logger"], "with direct Kafka capture the executor must not also POST"
