"""What the program hands to other people's software is what that software accepts: every value passed to an
upstream chart exists as a key in that chart version's values.yaml (../shared/upstream/charts), every value passed
to our charts exists in charts/<name>/values.yaml and passes its values.schema.json, and our custom resources
validate against the upstream CRDs (../shared/upstream/crds)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.infra.harness import ENVIRONMENTS, Run, run_program, shared_dir

CUSTOM_KINDS = ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Elasticsearch", "Kibana")


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def run(request: pytest.FixtureRequest) -> Run:
    return run_program(request.param)


def unknown_keys(passed: Any, upstream: Any, path: str = "") -> list[str]:
    """Keys in `passed` that `upstream` (a values.yaml tree) does not have. Below an upstream value that is an
    empty map, a null or a list, anything goes (free-form maps such as labels, lists such as buckets), and so it
    does in a container's resources.requests/limits (Kubernetes ResourceLists, e.g. cpu next to memory)."""
    if not isinstance(passed, dict) or path.endswith(("resources.requests", "resources.limits")):
        return []  # Kubernetes ResourceLists: any resource name is valid
    if not isinstance(upstream, dict) or not upstream:
        return [] if upstream in (None, {}) or isinstance(upstream, list) else [f"{path} (upstream is a scalar)"]
    missing = []
    for key, value in passed.items():
        where = f"{path}.{key}" if path else key
        if key not in upstream:
            missing.append(where)
        else:
            missing.extend(unknown_keys(value, upstream[key], where))
    return missing


def upstream_values(chart: str, version: str) -> dict[str, Any]:
    path = shared_dir() / "upstream" / "charts" / f"{chart}-{version}" / "values.yaml"
    if not path.exists():
        available = sorted(p.name for p in (shared_dir() / "upstream" / "charts").iterdir())
        pytest.fail(f"no upstream values for {chart} {version} at {path}; available: {available}")
    return yaml.safe_load(path.read_text())


def test_values_passed_to_upstream_charts_exist(run: Run) -> None:
    checked = []
    for chart in run.charts():
        if chart.inputs["chart"].startswith(("charts/", "../", "/")):
            continue
        passed = chart.inputs.get("values") or {}
        missing = unknown_keys(passed, upstream_values(chart.inputs["chart"], chart.inputs["version"]))
        assert not missing, f"{chart.inputs['chart']} {chart.inputs['version']} has no values key(s) {missing}"
        checked.append(chart.inputs["chart"])
    assert sorted(checked) == sorted(
        ["strimzi-kafka-operator", "eck-operator", "minio", "argo-workflows", "seldon-core-operator"]
    )


def test_unknown_key_detection_is_strict() -> None:
    upstream = {"image": {"tag": ""}, "labels": {}, "buckets": [], "environment": None}
    assert unknown_keys({"image": {"tga": "1"}}, upstream) == ["image.tga"]
    assert unknown_keys({"imagee": {}}, upstream) == ["imagee"]
    assert unknown_keys({"labels": {"a": "b"}, "buckets": [{"name": "x"}], "environment": {"A": "1"}}, upstream) == []
    resources = {"resources": {"requests": {"memory": "1Gi"}}}
    assert unknown_keys({"resources": {"requests": {"cpu": "1"}, "limit": {}}}, resources) == ["resources.limit"]


def deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


@pytest.mark.parametrize(
    "chart_resource",
    ["feedback-pipeline", "classifier-realtime", "classifier-streaming", "batch-workflow", "flowback-workflow"],
)
def test_values_passed_to_our_charts_exist_and_pass_their_schema(run: Run, chart_resource: str) -> None:
    chart = run.one("kubernetes:helm.sh/v4:Chart", chart_resource)
    directory = (Path.cwd() / chart.inputs["chart"]).resolve()
    defaults = yaml.safe_load((directory / "values.yaml").read_text())
    passed = chart.inputs["values"]
    missing = unknown_keys(passed, defaults)
    assert not missing, f"{directory.name} has no values key(s) {missing}"
    schema_path = directory / "values.schema.json"
    schema = json.loads(schema_path.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(deep_merge(defaults, passed)), key=str)
    assert not errors, f"{directory.name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


@cache
def upstream_crds() -> tuple[dict[tuple[str, str, str], dict[str, Any]], dict[tuple[str, str], str]]:
    """(group, version, kind) -> openAPIV3Schema, and (group, kind) -> storage version, of the upstream CRDs."""
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    storage: dict[tuple[str, str], str] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(Path(shared_dir() / "upstream" / "crds").glob("*/*.yaml")):
        text = path.read_text()
        lines = {line.strip() for line in text.splitlines()}
        if not any(f"kind: {kind}" in lines for kind in CUSTOM_KINDS):
            continue  # parse only the CRDs of our kinds (the others are megabytes of YAML)
        for document in yaml.load_all(text, Loader=loader):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                if "schema" in version:
                    key = (spec["group"], version["name"], spec["names"]["kind"])
                    schemas[key] = version["schema"]["openAPIV3Schema"]
                if version.get("storage"):
                    storage[(spec["group"], spec["names"]["kind"])] = version["name"]
    return schemas, storage


def crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    return upstream_crds()[0]


def pruned_fields(node: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would silently drop: not declared in the structural schema (and not under
    x-kubernetes-preserve-unknown-fields or additionalProperties). jsonschema alone accepts them."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(node, dict) and schema.get("type") == "object":
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        dropped = []
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            if properties is not None and key in properties:
                dropped.extend(pruned_fields(value, properties[key], where))
            elif isinstance(additional, dict):
                dropped.extend(pruned_fields(value, additional, where))
            elif properties is not None and additional is not True and not (path == "" and key == "metadata"):
                dropped.append(where)
        return dropped
    if isinstance(node, list) and isinstance(schema.get("items"), dict):
        return [f for i, item in enumerate(node) for f in pruned_fields(item, schema["items"], f"{path}[{i}]")]
    return []


def test_custom_resources_validate_against_the_upstream_crds(run: Run) -> None:
    checked = validate_custom_resources(run)
    expected = {"Kafka", "KafkaNodePool", "KafkaTopic", "Elasticsearch", "Kibana"}
    assert expected <= checked


def test_kafka_users_with_client_certificates_validate_against_the_crd() -> None:
    """kafka:authentication=tls (staging's shape otherwise): the listener, the authorization and the TLS KafkaUsers
    with their ACLs are what Strimzi 0.49.1 accepts; prod and staging cover the SCRAM users above."""
    checked = validate_custom_resources(run_program("staging", overrides={"kafka:authentication": "tls"}))
    assert {"Kafka", "KafkaUser"} <= checked


def validate_custom_resources(run: Run) -> set[str]:
    """Validates every custom resource of `run` against its upstream CRD (also as stored); returns the kinds seen."""
    checked = set()
    for resource in run.resources:
        if not resource.typ.startswith("kubernetes:") or resource.inputs.get("kind") not in CUSTOM_KINDS:
            continue
        group, version = resource.inputs["apiVersion"].split("/")
        key = (group, version, resource.inputs["kind"])
        assert key in crd_schemas(), f"{resource.name}: no upstream CRD for {key}"
        body = copy.deepcopy(resource.inputs)
        errors = sorted(jsonschema.Draft7Validator(crd_schemas()[key]).iter_errors(body), key=str)
        assert not errors, f"{resource.name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
        dropped = pruned_fields(body, crd_schemas()[key])
        assert not dropped, f"{resource.name}: fields not in the {key} schema would be pruned: {dropped}"
        # Strimzi's CRDs convert with strategy None: the object is stored (and pruned) as the storage version.
        stored = (group, upstream_crds()[1][(group, resource.inputs["kind"])], resource.inputs["kind"])
        dropped = pruned_fields(body, crd_schemas()[stored])
        assert not dropped, f"{resource.name}: stored as {stored[1]}, these fields would be pruned: {dropped}"
        checked.add(resource.inputs["kind"])
    return checked


def test_crd_validation_catches_a_wrong_field() -> None:
    schema = crd_schemas()[("kafka.strimzi.io", "v1", "KafkaNodePool")]
    bad = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaNodePool", "metadata": {}, "spec": {"replicas": 1}}
    assert not jsonschema.Draft7Validator(schema).is_valid(bad)  # storage and roles are required
    typo = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaNodePool",
        "metadata": {"name": "x"},
        "spec": {"replicas": 1, "roles": ["broker"], "storage": {"type": "ephemeral"}, "resource": {}},
    }
    assert jsonschema.Draft7Validator(schema).is_valid(typo)  # a plain JSON-schema check misses the typo ...
    assert pruned_fields(typo, schema) == ["spec.resource"]  # ... the pruning check names it
