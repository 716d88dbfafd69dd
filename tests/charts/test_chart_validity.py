"""Every chart, with its defaults and every shipped `ci/*-values.yaml` profile: `helm lint --strict` passes, `helm
template` renders, every object is valid against the Kubernetes JSON schema (offline, strict) or the upstream CRD,
and the rules every object must follow hold (pinned images, resources, non-root, probes, standard labels)."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from tests.fixtures.charts import (
    CHARTS,
    NAMESPACE,
    RenderFn,
    chart_profiles,
    one,
    pod_specs,
    profile_id,
    profiles,
)
from tools import helm

# Kubernetes versions the rendered objects are validated against: the newest that Seldon Core 1.17 documents
# (1.27) and a current one.
KUBE_VERSIONS = ("1.27.0", "1.33.0")
COMMON_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
)
CASES = chart_profiles()


def test_every_chart_ships_dev_and_prod_profiles() -> None:
    for chart in CHARTS:
        names = {profile_id(p) for p in profiles(chart)}
        assert {"dev", "prod"} <= names, f"{chart} ships profiles {sorted(names)}; dev and prod are required"
    assert {"streaming", "direct-kafka"} <= {profile_id(p) for p in profiles("text-classifier")}


@pytest.mark.parametrize(("chart", "profile"), CASES, ids=[f"{c}-{profile_id(p)}" for c, p in CASES])
def test_helm_lint_strict(helm_bin: Path, chart: str, profile: Path | None) -> None:
    result = helm.lint_chart(chart, [profile] if profile else [])
    assert result.returncode == 0, f"helm lint {chart} {profile_id(profile)}:\n{result.stdout}\n{result.stderr}"
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(("chart", "profile"), CASES, ids=[f"{c}-{profile_id(p)}" for c, p in CASES])
def test_rendered_objects_are_valid(
    chart_render: RenderFn, upstream_crds: helm.CrdSchemas, chart: str, profile: Path | None
) -> None:
    objects = chart_render(chart, profile=profile)
    assert objects, f"{chart} {profile_id(profile)} rendered nothing"
    errors: list[str] = []
    for obj in objects:
        # custom resources (SeldonDeployment, the Prometheus Operator's ServiceMonitor and PrometheusRule) against
        # their upstream CRD (../shared/upstream/crds), the others against the Kubernetes schema of each version
        key = (obj["apiVersion"], obj["kind"])
        for version in KUBE_VERSIONS if upstream_crds.schema_for(*key) is None else KUBE_VERSIONS[:1]:
            errors += [f"[k8s {version}] {e}" for e in helm.validate_object(obj, version)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(("chart", "profile"), CASES, ids=[f"{c}-{profile_id(p)}" for c, p in CASES])
def test_objects_follow_the_chart_rules(chart_render: RenderFn, chart: str, profile: Path | None) -> None:
    objects = chart_render(chart, profile=profile)
    problems: list[str] = []
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        labels = obj["metadata"].get("labels", {})
        problems += [f"{name}: label {label} missing" for label in COMMON_LABELS if label not in labels]
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding") and obj["metadata"].get("namespace") != NAMESPACE:
            problems.append(f"{name}: namespace {obj['metadata'].get('namespace')!r}, not the release namespace")
        for where, pod_security, containers in pod_specs(obj):
            for container in containers:
                at = f"{name} {where} container {container['name']}"
                image = container["image"]
                if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
                    problems.append(f"{at}: image {image} is not pinned by tag or digest")
                resources = container.get("resources", {})
                if not resources.get("requests", {}).get("memory") or not resources.get("limits", {}).get("memory"):
                    problems.append(f"{at}: no memory request and limit")
                if not resources.get("requests", {}).get("cpu"):
                    problems.append(f"{at}: no cpu request")
                security = {**pod_security, **container.get("securityContext", {})}
                if security.get("runAsNonRoot") is not True or security.get("runAsUser", 1) == 0:
                    problems.append(f"{at}: does not run as non-root")
                if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                    problems.append(f"{at}: allowPrivilegeEscalation is not false")
                if obj["kind"] not in ("WorkflowTemplate", "Job") and not (  # run to completion: nothing to probe
                    container.get("readinessProbe") and container.get("livenessProbe")
                ):
                    problems.append(f"{at}: readiness or liveness probe missing")
        if obj["kind"] == "SeldonDeployment":
            for predictor in obj["spec"]["predictors"]:
                executor = predictor.get("svcOrchSpec", {}).get("resources", {})
                if not executor.get("limits", {}).get("memory"):
                    problems.append(f"{name}: executor (svcOrchSpec) of {predictor['name']} has no memory limit")
    assert not problems, "\n".join(problems)


def test_no_latest_anywhere_in_rendered_images(chart_render: RenderFn) -> None:
    for chart, profile in CASES:
        for obj in chart_render(chart, profile=profile):
            for _, _, containers in pod_specs(obj):
                assert all(not c["image"].endswith(":latest") for c in containers), (chart, profile_id(profile))


def test_validation_rejects_unknown_fields_and_wrong_types(
    chart_render: RenderFn, upstream_crds: helm.CrdSchemas
) -> None:
    """The validator itself can fail: a typo or a wrong type in any kind of object is reported with its path."""
    sdep = one(chart_render("text-classifier"), "SeldonDeployment")
    bad_sdep = copy.deepcopy(sdep)
    bad_sdep["spec"]["predictors"][0]["graph"]["loger"] = {"mode": "all"}
    assert any("'loger' was unexpected" in e for e in helm.validate_object(bad_sdep))
    bad_sdep = copy.deepcopy(sdep)
    bad_sdep["spec"]["predictors"][0]["replicas"] = "two"
    assert any("spec/predictors/0/replicas" in e for e in helm.validate_object(bad_sdep))

    template = one(chart_render("batch-workflow"), "WorkflowTemplate")
    bad_template = copy.deepcopy(template)
    bad_template["spec"]["templates"][1]["container"]["imagePullPolicyy"] = "Always"
    assert any("'imagePullPolicyy' was unexpected" in e for e in helm.validate_object(bad_template))

    deployment = one(chart_render("feedback-pipeline"), "Deployment", "feedback-pipeline-collector")
    bad_deployment = copy.deepcopy(deployment)
    bad_deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    assert helm.validate_object(bad_deployment), "a misspelt container field must fail the Kubernetes schema"
    bad_deployment = copy.deepcopy(deployment)
    bad_deployment["spec"]["replicas"] = "3"
    assert helm.validate_object(bad_deployment), "a string replica count must fail the Kubernetes schema"


def test_objects_without_any_schema_are_an_error() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "x"}}
    with pytest.raises(helm.DevstackError, match=r"no schema for example\.com/v1/Gadget"):
        helm.validate_object(unknown)


def test_upstream_crds_are_found_beside_the_checkout(upstream_crds: helm.CrdSchemas) -> None:
    assert upstream_crds.schema_for("machinelearning.seldon.io/v1", "SeldonDeployment") is not None
    assert upstream_crds.schema_for("argoproj.io/v1alpha1", "WorkflowTemplate") is not None
    source = upstream_crds.sources[("machinelearning.seldon.io/v1", "SeldonDeployment")]
    if os.environ.get(helm.UPSTREAM_ENV) is None:
        assert source.is_relative_to(helm.REPO_ROOT.parent / "shared" / "upstream")


def test_missing_upstream_folder_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(helm.UPSTREAM_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(helm.DevstackError, match=r"upstream CRDs not found .*copy the project's shared/ folder"):
        helm.upstream_dir()
