"""flowback-workflow chart: the WorkflowTemplate runs export, train (fetch, fit, add), evaluate (fetch, score, judge)
and register in order, each step's arguments are ones its command accepts, Argo expressions survive Helm as
literals, the rule ConfigMap is a rule the Python code accepts, credentials are Secret references, and bad values
are rejected with Helm's message asserted verbatim. (Kubernetes and CRD validation of every profile is in
test_chart_validity.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from feedback.flowback.__main__ import _parser
from feedback.flowback.export import parse_range
from feedback.flowback.promotion import PromotionRule

from tests.fixtures.charts import NAMESPACE, RELEASES, RenderFn, by_kind, env_of, one
from tools import helm

CHART = "flowback-workflow"
FULLNAME = "flowback-flowback-workflow"
CLASSIFIER_DIR = Path(__file__).resolve().parents[2] / "images" / "text-classifier"
ARGO_LITERALS = (
    "{{steps.export.outputs.parameters.dataset}}",
    "{{steps.train.outputs.parameters.candidate}}",
    "{{steps.add.outputs.parameters.version}}",
    "--start={{workflow.parameters.start}}",
    "--end={{workflow.parameters.end}}",
    "--feedback-weight={{workflow.parameters.feedback-weight}}",
    "--candidate={{inputs.parameters.candidate}}",
    "--serving={{workflow.parameters.serving}}",
)
FLOWBACK_STEPS = ("export", "fetch-dataset", "add", "fetch-models", "judge", "register")
CLASSIFIER_STEPS = {"fit": "retrain.py", "score": "score.py"}


def workflow(chart_render: RenderFn, values: dict[str, Any] | None = None, profile: str | None = None) -> dict:
    path = helm.CHARTS_DIR / CHART / "ci" / f"{profile}-values.yaml" if profile else None
    return one(chart_render(CHART, values, profile=path), "WorkflowTemplate")


def template(wf: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [t for t in wf["spec"]["templates"] if t["name"] == name]
    return found


def steps_of(wf: dict[str, Any], name: str) -> list[list[str]]:
    return [[step["template"] for step in group] for group in template(wf, name)["steps"]]


SAMPLE_INPUTS = {"dataset": "datasets/text-classifier/0123456789abcdef", "candidate": "1.0.0+0123456789ab"}
SAMPLE_TIMES = {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z", "serving": ""}


def with_sample_values(argument: str, wf: dict[str, Any]) -> str:
    """An argument as Argo passes it: workflow parameters at their defaults (times for start and end), inputs as a
    dataset prefix and a version."""
    defaults = {p["name"]: p.get("value") for p in wf["spec"]["arguments"]["parameters"]}

    def value(match: re.Match[str]) -> str:
        scope, name = match.group(1), match.group(2)
        if scope == "workflow":
            return SAMPLE_TIMES[name] if defaults[name] is None or name in SAMPLE_TIMES else str(defaults[name])
        return SAMPLE_INPUTS[name]

    return re.sub(r"\{\{(workflow|inputs)\.parameters\.([a-z-]+)\}\}", value, argument)


def test_argo_expressions_survive_helm_as_literals(helm_bin: Path) -> None:
    text = helm.render_chart_text(CHART, release=RELEASES[CHART], namespace=NAMESPACE)
    missing = [literal for literal in ARGO_LITERALS if literal not in text]
    assert not missing, f"Argo expressions lost or changed by Helm: {missing}"


def test_the_steps_run_export_train_evaluate_register_in_order(chart_render: RenderFn) -> None:
    wf = workflow(chart_render)
    assert wf["spec"]["entrypoint"] == "flowback"
    assert wf["metadata"]["name"] == FULLNAME
    assert steps_of(wf, "flowback") == [["export"], ["train"], ["evaluate"], ["register"]]
    assert steps_of(wf, "train") == [["fetch-dataset"], ["fit"], ["add"]]
    assert steps_of(wf, "evaluate") == [["fetch-models"], ["score"], ["judge"]]
    params = {p["name"]: p.get("value") for p in wf["spec"]["arguments"]["parameters"]}
    assert params["start"] is None and params["end"] is None  # required per run
    assert (params["deployment"], params["feedback-weight"], params["seed"]) == ("text-classifier", "1", "20261202")
    for name in ("fit", "score"):
        assert "retryStrategy" not in template(wf, name), f"{name} failures are not transient"


def test_every_step_passes_arguments_its_command_accepts(chart_render: RenderFn) -> None:
    wf = workflow(chart_render, profile="prod")
    parser = _parser()
    for name in FLOWBACK_STEPS:
        container = template(wf, name)["container"]
        assert container["command"] == ["python", "-m", "feedback.flowback"], name
        parsed = parser.parse_args([with_sample_values(arg, wf) for arg in container["args"]])
        assert parsed.command == container["args"][0], name
        assert "{{" not in repr(vars(parsed)), f"{name}: an Argo expression was left unresolved"
    for name, script in CLASSIFIER_STEPS.items():
        container = template(wf, name)["container"]
        assert (container["command"], container["workingDir"]) == (["python", script], "/microservice")
        source = (CLASSIFIER_DIR / script).read_text()
        for arg in container["args"]:
            flag = arg.split("=", 1)[0]
            assert f'"{flag}"' in source, f"{name}: {script} has no option {flag}"
    export_args = template(wf, "export")["container"]["args"]
    assert "--drop-unknown-labels" in export_args and "--class-names=t:0,t:1" in export_args
    assert "--drop-unknown-labels" not in template(workflow(chart_render), "export")["container"]["args"]


def test_images_per_step_and_digests_when_given(chart_render: RenderFn) -> None:
    wf = workflow(chart_render)
    images = {t["name"]: t["container"]["image"] for t in wf["spec"]["templates"] if "container" in t}
    assert {name for name, image in images.items() if "/feedback:" in image} == set(FLOWBACK_STEPS)
    assert {name for name, image in images.items() if "/text-classifier:" in image} == set(CLASSIFIER_STEPS)
    prod = workflow(chart_render, profile="prod")
    assert all("@sha256:" in t["container"]["image"] for t in prod["spec"]["templates"] if "container" in t)


def test_the_rule_configmap_is_a_rule_the_code_accepts(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, profile=helm.CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    config = one(objects, "ConfigMap")
    rule = PromotionRule.from_mapping(json.loads(config["data"]["rule.json"]), "rendered rule")
    assert (rule.held_out_max_drop, rule.feedback_min_gain, rule.min_feedback_rows) == (0.005, 0.03, 200)
    wf = one(objects, "WorkflowTemplate")
    [volume] = [v for v in wf["spec"]["volumes"] if v["name"] == "rule"]
    assert volume["configMap"]["name"] == config["metadata"]["name"]
    assert "--rule=/rule/rule.json" in template(wf, "judge")["container"]["args"]


def test_credentials_are_secret_references_and_search_auth_only_when_given(chart_render: RenderFn) -> None:
    objects = chart_render(CHART, profile=helm.CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    assert not by_kind(objects, "Secret")
    env = env_of(template(one(objects, "WorkflowTemplate"), "export")["container"])
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "flowback-s3-credentials", "key": "AWS_ACCESS_KEY_ID"}}
    assert env["FLOWBACK_SEARCH_PASSWORD"] == {"secretKeyRef": {"name": "flowback-search-user", "key": "password"}}
    assert (env["FLOWBACK_BUCKET"], env["FLOWBACK_S3_ENDPOINT"]) == (
        "acme-seldon-flowback",
        "https://s3.eu-west-1.amazonaws.com",
    )
    default_env = env_of(template(workflow(chart_render), "export")["container"])
    assert "FLOWBACK_SEARCH_USERNAME" not in default_env
    assert default_env["FLOWBACK_INDEX"] == "seldon-feedback"


def test_search_tls_ca_and_a_plain_username_reach_only_the_export(chart_render: RenderFn) -> None:
    """ECK's elastic user: the name is a value, the password a Secret key; its HTTP CA mounted into the export."""
    values = {
        "search": {
            "url": "https://feedback-es-http:9200",
            "existingSecret": "feedback-es-elastic-user",
            "username": "elastic",
            "passwordKey": "elastic",
            "caSecret": "feedback-es-http-certs-public",
        }
    }
    wf = workflow(chart_render, values)
    export = template(wf, "export")["container"]
    env = env_of(export)
    assert env["FLOWBACK_SEARCH_USERNAME"] == "elastic"
    assert env["FLOWBACK_SEARCH_PASSWORD"] == {"secretKeyRef": {"name": "feedback-es-elastic-user", "key": "elastic"}}
    assert env["FLOWBACK_SEARCH_CA_CERTS"] == "/search-ca/ca.crt"
    [volume] = [v for v in wf["spec"]["volumes"] if v["name"] == "search-ca"]
    assert volume["secret"]["secretName"] == "feedback-es-http-certs-public"
    assert {"name": "search-ca", "mountPath": "/search-ca", "readOnly": True} in export["volumeMounts"]
    mounted = [
        t["name"] for t in wf["spec"]["templates"] if "search-ca" in repr(t.get("container", {}).get("volumeMounts"))
    ]
    assert mounted == ["export"], "only the export reads the search cluster"
    assert not [v for v in workflow(chart_render)["spec"]["volumes"] if v["name"] == "search-ca"]


def test_a_schedule_runs_the_template_over_the_latest_window(chart_render: RenderFn) -> None:
    assert not by_kind(chart_render(CHART), "CronWorkflow"), "no schedule by default"
    objects = chart_render(CHART, profile=helm.CHARTS_DIR / CHART / "ci" / "prod-values.yaml")
    cron = one(objects, "CronWorkflow")
    spec = cron["spec"]
    assert (spec["schedules"], spec["timezone"], spec["concurrencyPolicy"]) == (
        ["0 3 * * *"],
        "Europe/Berlin",
        "Forbid",
    )
    assert spec["workflowSpec"]["workflowTemplateRef"] == {"name": one(objects, "WorkflowTemplate")["metadata"]["name"]}
    params = {p["name"]: p["value"] for p in spec["workflowSpec"]["arguments"]["parameters"]}
    assert params == {"start": "-7d", "end": "{{workflow.scheduledTime}}"}
    # what the export step then receives parses to a seven-day range ending at the scheduled time
    start, end = parse_range(params["start"], "2026-12-02T02:00:00Z")
    assert (end - start).days == 7
    parsed = _parser().parse_args(
        ["export", f"--start={params['start']}", "--end=2026-12-02T02:00:00Z", "--deployment=d"]
    )
    assert parsed.start == "-7d"


def test_rbac_is_least_privilege(chart_render: RenderFn) -> None:
    objects = chart_render(CHART)
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    assert one(objects, "Role")["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    ]
    assert one(objects, "WorkflowTemplate")["spec"]["serviceAccountName"] == FULLNAME


SCHEMA_ERRORS = (
    "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nflowback-workflow:\n"
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"export": {"sampleRate": 0}}, "- at '/export/sampleRate': exclusiveMinimum: got 0, want 0"),
        ({"export": {"heldOutPercent": 60}}, "- at '/export/heldOutPercent': maximum: got 60, want 50"),
        (
            {"search": {"engine": "solr"}},
            "- at '/search/engine': value must be one of 'elasticsearch', 'opensearch'",
        ),
        ({"rule": {"confidence": 1}}, "- at '/rule/confidence': exclusiveMaximum: got 1, want 1"),
        ({"rule": {"margin": 0.1}}, "- at '/rule': additional properties 'margin' not allowed"),
        ({"objectStore": {"existingSecret": ""}}, "- at '/objectStore/existingSecret': minLength: got 0, want 1"),
        (
            {"images": {"classifier": {"tag": "latest"}}},
            "- at '/images/classifier/tag': value must be 'a fixed version such as 0.1.0 (latest is not allowed), "
            "or set the digest'",
        ),
        ({"schedule": {"lookback": "1 week"}}, "- at '/schedule/lookback': "),
        ({"schedule": {"cron": "daily"}}, "- at '/schedule/cron': "),
    ],
    ids=["sample-rate", "held-out", "engine", "confidence", "rule-key", "no-secret", "latest", "lookback", "cron"],
)
def test_schema_rejects_bad_values(chart_render_error: Any, values: dict[str, Any], message: str) -> None:
    assert SCHEMA_ERRORS + message in chart_render_error(CHART, values)
