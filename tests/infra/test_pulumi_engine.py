"""`pulumi up` for real: the program (infra/__main__.py) through the real Pulumi engine and Kubernetes provider
(built by `make go-tools`) against the local control plane with the upstream CRDs installed and the operators
"existing" (tests/infra/data/Pulumi.cluster.yaml). Each step checks what the API server holds afterwards.

The steps share one deployed stack (module scope): up, preview, a config change, refresh, the smoke target, and
destroy last. Nothing here can pass on the mocks: the objects are read back from kube-apiserver.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.runtime.process import wait_until
from devstack.servers.cluster import ClusterServer
from infra import kafka_access
from smoke_tests import target as smoke_target
from tests.infra.engine import REPLACING_OPS, EngineRun, EngineStack, engine_stack
from tests.infra.harness import REPO_ROOT, TEST_SECRETS

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

STACK_FILE = Path(__file__).parent / "data" / "Pulumi.cluster.yaml"
APP = "fb-engine"
# Kafka passwords are no stack secrets any more (Strimzi generates one per KafkaUser); the check stays for any key
SECRETS = {key: value for key, value in TEST_SECRETS.items() if key.startswith(("kafka:", "search:"))}
PART_OF = "app.kubernetes.io/part-of"
STACK_LABEL = "seldon-feedback/stack"

# What the program makes in the app namespace for this stack: (API path, name) -> must exist after up.
OBJECTS = {
    ("/apis/kafka.strimzi.io/v1", "kafkas", "seldon-kafka"),
    ("/apis/kafka.strimzi.io/v1", "kafkatopics", "seldon-capture"),
    ("/apis/kafka.strimzi.io/v1", "kafkatopics", "seldon-capture-dead-letter"),
    ("/apis/kafka.strimzi.io/v1", "kafkatopics", "model-input"),
    ("/apis/kafka.strimzi.io/v1", "kafkatopics", "model-output"),
    ("/apis/elasticsearch.k8s.elastic.co/v1", "elasticsearches", "seldon-search"),
    ("/apis/kibana.k8s.elastic.co/v1", "kibanas", "seldon-search"),
    ("/apis/machinelearning.seldon.io/v1", "seldondeployments", "text-classifier"),
    ("/apis/machinelearning.seldon.io/v1", "seldondeployments", "text-classifier-streaming"),
    ("/apis/argoproj.io/v1alpha1", "workflowtemplates", "batch-workflow"),
    ("/apis/argoproj.io/v1alpha1", "workflowtemplates", "flowback-workflow"),
    ("/apis/argoproj.io/v1alpha1", "cronworkflows", "flowback-workflow"),
}


def stack_config() -> dict[str, Any]:
    config = dict(yaml.safe_load(STACK_FILE.read_text())["config"])
    config["platform:appNamespace"] = APP
    return config


def items(cluster: ClusterServer, api: str, plural: str, namespace: str = APP) -> list[dict[str, Any]]:
    return list((cluster.get(f"{api}/namespaces/{namespace}/{plural}") or {}).get("items", []))


def named(cluster: ClusterServer, api: str, plural: str, name: str) -> dict[str, Any] | None:
    return cluster.get(f"{api}/namespaces/{APP}/{plural}/{name}")


def replacements(run: EngineRun) -> list[str]:
    return [f"{operation.op} {operation.urn}" for operation in run.operations if operation.op in REPLACING_OPS]


class Deployed:
    """The stack after `up`, and what each step measured."""

    def __init__(self, engine: EngineStack, cluster: ClusterServer, up: EngineRun) -> None:
        self.engine, self.cluster, self.up = engine, cluster, up
        self.destroyed: EngineRun | None = None


@pytest.fixture(scope="module")
def deployed(
    cluster: ClusterServer, cluster_crds: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("pulumi-engine")
    with engine_stack(work, cluster.kubeconfig, "cluster", stack_config(), SECRETS) as engine:
        try:
            up = engine.up()
            print(f"\npulumi up of the dev-shaped stack: {up.seconds} s, {up.changes}")
            state = Deployed(engine, cluster, up)
            yield state
        finally:
            if cluster.get(f"/api/v1/namespaces/{APP}") is not None:
                engine.destroy()  # a step failed before the destroy test: leave nothing behind either way


def test_up_creates_every_object_labelled_in_its_namespace(deployed: Deployed) -> None:
    cluster = deployed.cluster
    assert deployed.up.changes.get("create", 0) > 0 and not replacements(deployed.up)
    namespace = cluster.get(f"/api/v1/namespaces/{APP}")
    assert namespace is not None and namespace["metadata"]["labels"][PART_OF] == "seldon-feedback"
    for api, plural, name in sorted(OBJECTS):
        obj = named(cluster, api, plural, name)
        assert obj is not None, f"{plural}/{name} missing in {APP} after up"
        labels = obj["metadata"].get("labels", {})
        assert labels.get(PART_OF) == "seldon-feedback" and labels.get(STACK_LABEL) == "cluster", (plural, name)
    # our charts: the collector and indexer Deployments, Running on the kwok node
    deployments = {d["metadata"]["name"]: d for d in items(cluster, "/apis/apps/v1", "deployments")}
    for component in ("collector", "indexer"):
        name = f"feedback-pipeline-{component}"
        assert name in deployments, sorted(deployments)
        assert deployments[name]["metadata"]["labels"][STACK_LABEL] == "cluster"
    path = f"/apis/apps/v1/namespaces/{APP}/deployments/feedback-pipeline-collector"
    wait_until(lambda: (cluster.get(path) or {}).get("status", {}).get("readyReplicas") == 1, 120, "collector ready")
    # no object of the operators' charts: they are "existing"
    for namespace_name in ("strimzi-system", "elastic-system", "argo", "seldon-system", "minio"):
        assert cluster.get(f"/api/v1/namespaces/{namespace_name}") is None, namespace_name


def test_the_flowback_workflow_reads_the_registry_bucket_on_a_schedule(deployed: Deployed) -> None:
    """The WorkflowTemplate as the API server holds it: the registry bucket and the credentials by reference, the
    CronWorkflow of flowback:schedule running it over flowback:lookback; the outputs name both."""
    cluster, outputs = deployed.cluster, deployed.engine.outputs()
    template = named(cluster, "/apis/argoproj.io/v1alpha1", "workflowtemplates", "flowback-workflow")
    cron = named(cluster, "/apis/argoproj.io/v1alpha1", "cronworkflows", "flowback-workflow")
    assert template is not None and cron is not None
    assert outputs["flowback"]["workflowTemplate"] == outputs["flowback"]["cronWorkflow"] == "flowback-workflow"
    export = next(t["container"] for t in template["spec"]["templates"] if t["name"] == "export")
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in export["env"]}
    assert env["FLOWBACK_BUCKET"] == outputs["flowback"]["bucket"] == "flowback"
    assert env["FLOWBACK_S3_ENDPOINT"] == "http://s3.storage.svc.cluster.local:9000"
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "objectstore-credentials", "key": "secretKey"}}
    assert cron["spec"]["schedules"] == ["30 2 * * *"]
    parameters = {p["name"]: p["value"] for p in cron["spec"]["workflowSpec"]["arguments"]["parameters"]}
    assert parameters == {"start": "-24h", "end": "{{workflow.scheduledTime}}"}


def test_secrets_reach_the_api_server_but_never_plain_config_or_state(deployed: Deployed) -> None:
    engine, cluster = deployed.engine, deployed.cluster
    stack_text = engine.stack_file.read_text()
    state_text = engine.state_file.read_text()
    secret_names = {s["metadata"]["name"]: s for s in items(cluster, "/api/v1", "secrets")}
    for key, password in SECRETS.items():
        assert password not in stack_text, f"{key} in plain text in {engine.stack_file.name}"
        assert password not in state_text, f"{key} in plain text in the state file"
    kafka_users = {u["metadata"]["name"]: u for u in items(cluster, "/apis/kafka.strimzi.io/v1", "kafkausers")}
    assert set(kafka_users) == set(kafka_access.CLIENTS), "one KafkaUser per client of the access table"
    for name, user in kafka_users.items():
        # accepted by the API server against Strimzi's CRD; no password from the stack (Strimzi generates it)
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}, name
        assert user["spec"]["authorization"]["type"] == "simple" and user["spec"]["authorization"]["acls"], name
        assert f"{name}-credentials" not in secret_names, f"the stack made a credentials Secret for {name}"
    # the search services' passwords reach only their ECK file-realm Secrets (basic-auth)
    for service in ("indexer", "monitor"):
        secret = secret_names.get(f"seldon-search-feedback-{service}-user")
        assert secret is not None and secret["type"] == "kubernetes.io/basic-auth", f"no user Secret for the {service}"
        assert base64.b64decode(secret["data"]["password"]).decode() == SECRETS[f"search:{service}Password"]


def test_preview_right_after_up_changes_nothing(deployed: Deployed) -> None:
    preview = deployed.engine.preview()
    changed = [f"{o.op} {o.urn} {o.diffs}" for o in preview.operations if o.op != "same"]
    assert changed == [], changed
    assert set(preview.changes) == {"same"}


def test_outputs_give_a_valid_smoke_target(deployed: Deployed, tmp_path: Path) -> None:
    """The outputs the built CLI reads from the file backend feed `smoke_tests.from_pulumi write`. No operator
    runs here, so the test makes the Secrets Strimzi and ECK would have made, and the existing S3 credentials."""
    cluster = deployed.cluster
    outputs = deployed.engine.outputs()
    assert outputs["namespaces"]["app"] == APP and outputs["prediction"]["namespace"] == APP
    ca = {"ca.crt": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nlocal\n-----END CERTIFICATE-----\n").decode()}
    made = {
        outputs["kafka"]["caSecret"]: ca,
        outputs["search"]["credentialsSecret"]: {outputs["search"]["credentialsSecretKey"]: _b64("search-password")},
        outputs["objectStore"]["credentialsSecret"]: {"accessKey": _b64("access"), "secretKey": _b64("secret")},
    }
    cluster.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": APP}, "data": data}
        for name, data in made.items()
    )
    saved, out = tmp_path / "outputs.json", tmp_path / "target.yaml"
    saved.write_text(json.dumps(outputs))
    sasl = {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "feedback", "sasl.password": "from-the-secret"}
    env = {
        "PATH": f"{cluster.kubectl_path.parent}:/usr/bin:/bin",
        "KUBECONFIG": str(cluster.kubeconfig),
        "HOME": str(tmp_path),  # kubectl's discovery cache goes to $HOME/.kube (without HOME: into the checkout)
        "SMOKE_KAFKA_CONFIG": json.dumps(sasl),
    }
    argv = [sys.executable, "-m", "smoke_tests.from_pulumi", "write", "--stack", "cluster"]
    done = subprocess.run(
        [*argv, "--outputs", str(saved), "--out", str(out)], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    target = smoke_target.parse(smoke_target.read_file(out))
    assert target.kind == "cluster" and target.realtime.namespace == APP
    assert target.search.password == "search-password" and target.object_store.access_key == "access"
    assert target.kafka.bootstrap == outputs["kafka"]["bootstrap"] and "local" in target.kafka.config["ssl.ca.pem"]


def test_a_config_change_updates_in_place(deployed: Deployed) -> None:
    engine, cluster = deployed.engine, deployed.cluster
    engine.set_config({"feedback:collectorReplicas": 2, "feedback:samplingRate": 0.5})
    up = engine.up()
    assert replacements(up) == [] and up.changes.get("update", 0) >= 1, up.changes
    assert not up.with_op("create") and not up.with_op("delete"), up.changes
    path = f"/apis/apps/v1/namespaces/{APP}/deployments/feedback-pipeline-collector"
    collector = cluster.get(path)
    assert collector is not None and collector["spec"]["replicas"] == 2
    settings = named(cluster, "/api/v1", "configmaps", "feedback-pipeline-collector")
    assert settings is not None and settings["data"]["COLLECTOR_SAMPLING_RATE"] == "0.5", settings
    wait_until(lambda: (cluster.get(path) or {}).get("status", {}).get("readyReplicas") == 2, 120, "2 collectors")


def test_refresh_finds_no_drift(deployed: Deployed) -> None:
    refresh = deployed.engine.refresh()
    assert refresh.with_op("update") == [] and refresh.with_op("delete") == [], refresh.changes
    preview = deployed.engine.preview()
    assert [o.urn for o in preview.operations if o.op != "same"] == []


def test_destroy_leaves_no_object(deployed: Deployed) -> None:
    cluster = deployed.cluster
    destroyed = deployed.engine.destroy()
    assert destroyed.changes.get("delete", 0) > 0
    began = time.monotonic()
    wait_until(lambda: cluster.get(f"/api/v1/namespaces/{APP}") is None, 180, f"namespace {APP} finalized")
    print(f"\nnamespace {APP} finalized {time.monotonic() - began:.1f} s after destroy")
    for api, plural, _name in OBJECTS:
        assert items(cluster, api, plural) == [], plural
    labelled = cluster.kubectl("get", "all", "-A", "-l", f"{STACK_LABEL}=cluster", "-o", "name").stdout.strip()
    assert labelled == ""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
