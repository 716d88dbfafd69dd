"""batch-workflow chart: the WorkflowTemplate runs Seldon's batch steps against the text-classifier chart's
SeldonDeployment, Argo expressions survive Helm as literals, credentials are Secret references, RBAC is least
privilege, and bad values are rejected with Helm's message asserted verbatim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.charts import NAMESPACE, RELEASES, RenderFn, by_kind, env_of, one
from tools import helm

CHART = "batch-workflow"
FULLNAME = "batch-batch-workflow"
ARGO_LITERALS = (
    "{{=sprig.empty(workflow.parameters['batch-id']) ? workflow.uid : workflow.parameters['batch-id']}}",
    "{{=sprig.empty(workflow.parameters['output-path']) ? workflow.parameters['output-prefix'] + '/' + "
    "workflow.name + '.txt' : workflow.parameters['output-path']}}",
    "store:batch/{{workflow.parameters.input-path}}",
    "store:batch/{{inputs.parameters.output-path}}",
    "--workers={{workflow.parameters.workers}}",
    "--retries={{workflow.parameters.retries}}",
    "--batch-size={{workflow.parameters.batch-size}}",
    "--batch-id={{inputs.parameters.batch-id}}",
)


def workflow(chart_render: RenderFn, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return one(chart_render(CHART, values), "WorkflowTemplate")


def template(wf: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [t for t in wf["spec"]["templates"] if t["name"] == name]
    return found


def processor_args(wf: dict[str, Any]) -> dict[str, str]:
    args = template(wf, "process-batch-inputs")["container"]["args"]
    return dict(arg.removeprefix("--").split("=", 1) for arg in args)


def test_argo_expressions_survive_helm_as_literals(helm_bin: Path) -> None:
    text = helm.render_chart_text(CHART, release=RELEASES[CHART], namespace=NAMESPACE)
    missing = [literal for literal in ARGO_LITERALS if literal not in text]
    assert not missing, f"Argo expressions lost or changed by Helm: {missing}"


def test_steps_are_seldons_batch_example_in_order(chart_render: RenderFn) -> None:
    wf = workflow(chart_render)
    assert wf["apiVersion"] == "argoproj.io/v1alpha1"
    assert wf["metadata"]["name"] == FULLNAME
    assert wf["spec"]["entrypoint"] == "seldon-batch-process"
    steps = [[step["template"] for step in group] for group in template(wf, "seldon-batch-process")["steps"]]
    assert steps == [["download-object-store"], ["process-batch-inputs"], ["upload-object-store"]]
    assert [v["metadata"]["name"] for v in wf["spec"]["volumeClaimTemplates"]] == ["assets"]
    for name in ("download-object-store", "process-batch-inputs", "upload-object-store"):
        mounts = template(wf, name)["container"]["volumeMounts"]
        assert mounts == [{"name": "assets", "mountPath": "/assets"}], name
    download = template(wf, "download-object-store")["container"]["args"]
    assert download == ["copyto", "store:batch/{{workflow.parameters.input-path}}", "/assets/input-data.txt"]
    upload = template(wf, "upload-object-store")["container"]["args"]
    assert upload == ["copyto", "/assets/output-data.txt", "store:batch/{{inputs.parameters.output-path}}"]
    assert "retryStrategy" not in template(wf, "process-batch-inputs"), "a rerun would give lines new instance ids"


def test_batch_processor_calls_the_text_classifier_rest_endpoint(chart_render: RenderFn) -> None:
    sdep = one(chart_render("text-classifier"), "SeldonDeployment")
    service = f"{sdep['metadata']['name']}-{sdep['spec']['predictors'][0]['name']}"
    args = processor_args(workflow(chart_render))
    assert args["deployment-name"] == sdep["metadata"]["name"]
    assert args["namespace"] == sdep["metadata"]["namespace"]
    assert args["host"] == f"{service}.{sdep['metadata']['namespace']}.svc.cluster.local:8000"
    assert (args["gateway-type"], args["transport"]) == ("seldon", "rest")
    assert (args["input-data-path"], args["output-data-path"]) == ("/assets/input-data.txt", "/assets/output-data.txt")
    assert template(workflow(chart_render), "process-batch-inputs")["container"]["command"] == [
        "seldon-batch-processor"
    ]


def test_parameters_default_to_values_and_reach_the_processor(chart_render: RenderFn) -> None:
    wf = workflow(chart_render, {"batch": {"workers": 7, "retries": 2, "batchSize": 5, "inputPath": "in/x.txt"}})
    params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert params == {
        "input-path": "in/x.txt",
        "output-path": "",
        "output-prefix": "output",
        "batch-id": "",
        "workers": "7",
        "retries": "2",
        "batch-size": "5",
    }
    args = processor_args(wf)
    assert args["workers"] == "{{workflow.parameters.workers}}"
    assert args["batch-id"] == "{{inputs.parameters.batch-id}}"
    [process_step] = template(wf, "seldon-batch-process")["steps"][1]
    [batch_id] = process_step["arguments"]["parameters"]
    assert batch_id["name"] == "batch-id" and "workflow.uid" in batch_id["value"]


def test_object_store_credentials_are_secret_references(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, profile=helm.CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    assert not by_kind(objects, "Secret")
    wf = one(objects, "WorkflowTemplate")
    for name in ("download-object-store", "upload-object-store"):
        env = env_of(template(wf, name)["container"])
        assert env["RCLONE_CONFIG_STORE_ACCESS_KEY_ID"] == {
            "secretKeyRef": {"name": "batch-s3-credentials", "key": "AWS_ACCESS_KEY_ID"}
        }
        assert env["RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY"] == {
            "secretKeyRef": {"name": "batch-s3-credentials", "key": "AWS_SECRET_ACCESS_KEY"}
        }
        assert (env["RCLONE_CONFIG_STORE_PROVIDER"], env["RCLONE_CONFIG_STORE_ENDPOINT"]) == (
            "AWS",
            "https://s3.eu-west-1.amazonaws.com",
        )
    assert (
        "store:acme-seldon-batch/{{inputs.parameters.output-path}}"
        in template(wf, "upload-object-store")["container"]["args"]
    )


def test_rbac_is_least_privilege_and_bound_to_the_workflow_identity(chart_render: RenderFn) -> None:
    objects = chart_render(CHART)
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    assert one(objects, "WorkflowTemplate")["spec"]["serviceAccountName"] == account == FULLNAME
    role = one(objects, "Role")
    assert role["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    ]
    binding = one(objects, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]


def test_existing_service_account_creates_no_rbac(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, {"serviceAccount": {"create": False, "name": "argo-batch"}})
    assert [o["kind"] for o in objects] == ["WorkflowTemplate"]
    assert objects[0]["spec"]["serviceAccountName"] == "argo-batch"


def test_istio_gateway_forwards_the_puid_through_the_ingress(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, profile=helm.CHARTS_DIR / CHART / "ci" / "istio-values.yaml")
    args = processor_args(one(objects, "WorkflowTemplate"))
    assert (args["gateway-type"], args["host"]) == ("istio", "istio-ingressgateway.istio-system.svc.cluster.local:80")


def test_images_are_pinned_by_digest_when_given(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, profile=helm.CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    wf = one(objects, "WorkflowTemplate")
    images = {t["name"]: t["container"]["image"] for t in wf["spec"]["templates"] if "container" in t}
    assert all("@sha256:" in image for image in images.values()), images


SCHEMA_ERRORS = (
    "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nbatch-workflow:\n"
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batch": {"workers": 0}}, "- at '/batch/workers': minimum: got 0, want 1"),
        ({"batch": {"dataType": "csv"}}, "- at '/batch/dataType': value must be one of 'data', 'json', 'str', 'raw'"),
        (
            {"seldonDeployment": {"gatewayType": "nginx"}},
            "- at '/seldonDeployment/gatewayType': value must be one of 'seldon', 'istio', 'ambassador'",
        ),
        ({"objectStore": {"existingSecret": ""}}, "- at '/objectStore/existingSecret': minLength: got 0, want 1"),
        (
            {"objectStore": {"accessKey": "AKIA123"}},
            "- at '/objectStore': additional properties 'accessKey' not allowed",
        ),
        (
            {"images": {"rclone": {"tag": "latest"}}},
            "- at '/images/rclone/tag': value must be 'a fixed version such as 1.68.2 (latest is not allowed), or set "
            "the digest'",
        ),
        ({"batch": {"retries": "3"}}, "- at '/batch/retries': got string, want integer"),
    ],
    ids=["workers", "data-type", "gateway", "no-secret", "inline-key", "latest", "retries-type"],
)
def test_schema_rejects_bad_values(chart_render_error: Any, values: dict[str, Any], message: str) -> None:
    assert SCHEMA_ERRORS + message in chart_render_error(CHART, values)


def test_ingress_gateway_without_host_is_rejected_with_the_fix(chart_render_error: Any) -> None:
    error = chart_render_error(CHART, {"seldonDeployment": {"gatewayType": "ambassador"}})
    assert (
        "seldonDeployment.gatewayType ambassador needs seldonDeployment.host (the ingress gateway host:port)" in error
    )


def test_missing_image_tag_is_rejected_with_the_fix(chart_render_error: Any) -> None:
    error = chart_render_error(CHART, {"images": {"batchProcessor": {"tag": ""}}})
    assert (
        'images.batchProcessor.tag must be a fixed version (not empty, not "latest"), or set '
        "images.batchProcessor.digest to sha256:<digest>" in error
    )
