"""Unit tests of the resource transforms in infra/transforms.py (pure functions, no engine)."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest

from infra.transforms import common_labels, default_namespace, default_requests, platform_transforms


def transform_args(typ: str, props: dict[str, Any], *, custom: bool = True) -> pulumi.ResourceTransformArgs:
    return pulumi.ResourceTransformArgs(custom=custom, type_=typ, name="r", props=props, opts=pulumi.ResourceOptions())


def deployment(containers: list[dict[str, Any]], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": dict(metadata),
        "spec": {"template": {"spec": {"containers": containers}}},
    }


LABELS = {"app.kubernetes.io/part-of": "seldon-feedback", "seldon-feedback/stack": "dev"}


@pytest.mark.parametrize(
    ("typ", "props", "expected"),
    [
        ("kubernetes:core/v1:ConfigMap", {"kind": "ConfigMap", "metadata": {"name": "a"}}, LABELS),
        (
            "kubernetes:apps/v1:Deployment",
            deployment([], labels={"seldon-feedback/stack": "mine", "x": "y"}),
            {"app.kubernetes.io/part-of": "seldon-feedback", "seldon-feedback/stack": "mine", "x": "y"},
        ),
        ("kubernetes:kafka.strimzi.io/v1:Kafka", {"kind": "Kafka"}, LABELS),
    ],
    ids=["adds", "existing-win", "no-metadata"],
)
def test_common_labels_merge_without_overriding(typ: str, props: dict[str, Any], expected: dict[str, str]) -> None:
    before = copy.deepcopy(props)
    result = common_labels(LABELS)(transform_args(typ, props))
    assert result is not None
    assert result.props["metadata"]["labels"] == expected
    assert props == before  # the caller's props are not mutated


@pytest.mark.parametrize(
    ("typ", "custom"),
    [
        ("kubernetes:helm.sh/v4:Chart", False),
        ("kubernetes:helm.sh/v3:Release", True),
        ("feedback:kafka:KafkaPlatform", False),
    ],
)
def test_transforms_leave_charts_and_components_alone(typ: str, custom: bool) -> None:
    args = transform_args(typ, {"values": {"a": 1}}, custom=custom)
    assert common_labels(LABELS)(args) is None
    assert default_namespace("seldon")(args) is None
    assert default_requests("50m", "64Mi")(args) is None


def test_common_labels_unchanged_object_returns_none() -> None:
    props = {"kind": "ConfigMap", "metadata": {"labels": dict(LABELS)}}
    assert common_labels(LABELS)(transform_args("kubernetes:core/v1:ConfigMap", props)) is None


@pytest.mark.parametrize(
    ("kind", "metadata", "expected"),
    [
        ("ConfigMap", {"name": "a"}, "seldon"),
        ("Service", {"name": "a", "namespace": "other"}, None),
        ("ClusterRole", {"name": "a"}, None),
        ("CustomResourceDefinition", {"name": "kafkas.kafka.strimzi.io"}, None),
        ("Namespace", {"name": "seldon"}, None),
        ("KafkaTopic", {}, "seldon"),
    ],
)
def test_default_namespace(kind: str, metadata: dict[str, str], expected: str | None) -> None:
    props = {"kind": kind, "metadata": metadata}
    result = default_namespace("seldon")(transform_args(f"kubernetes:x/v1:{kind}", props))
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert result.props["metadata"]["namespace"] == expected
        assert "namespace" not in metadata  # the caller's props are not mutated


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({}, {"requests": {"cpu": "50m", "memory": "64Mi"}}),
        ({"requests": {"cpu": "1"}}, {"requests": {"cpu": "1", "memory": "64Mi"}}),
        # a limit implies an equal request: adding a smaller default request would change scheduling
        ({"limits": {"memory": "32Mi"}}, {"limits": {"memory": "32Mi"}, "requests": {"cpu": "50m"}}),
        ({"limits": {"cpu": "10m", "memory": "16Mi"}}, {"limits": {"cpu": "10m", "memory": "16Mi"}}),
    ],
    ids=["none", "partial-request", "memory-limit", "both-limits"],
)
def test_default_requests_fill_only_what_is_missing(resources: dict[str, Any], expected: dict[str, Any]) -> None:
    props = deployment([{"name": "c", "image": "x:1", "resources": resources}])
    result = default_requests("50m", "64Mi")(transform_args("kubernetes:apps/v1:Deployment", props))
    if expected == resources:
        assert result is None
        return
    assert result is not None
    assert result.props["spec"]["template"]["spec"]["containers"][0]["resources"] == expected


def test_default_requests_reach_cronjob_init_containers() -> None:
    props = {
        "kind": "CronJob",
        "spec": {
            "jobTemplate": {"spec": {"template": {"spec": {"initContainers": [{"name": "i"}], "containers": []}}}}
        },
    }
    result = default_requests("50m", "64Mi")(transform_args("kubernetes:batch/v1:CronJob", props))
    assert result is not None
    init = result.props["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]
    assert init["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}


@pytest.mark.parametrize("kind", ["ConfigMap", "Service", "Kafka"])
def test_default_requests_ignore_non_workloads(kind: str) -> None:
    assert default_requests("50m", "64Mi")(transform_args(f"kubernetes:x/v1:{kind}", {"kind": kind})) is None


def test_malformed_workload_is_left_alone() -> None:
    props = {"kind": "Deployment", "spec": {"template": "not-a-mapping"}}
    assert default_requests("50m", "64Mi")(transform_args("kubernetes:apps/v1:Deployment", props)) is None


def test_platform_transforms_order_and_namespace_switch() -> None:
    with_ns = platform_transforms(labels=LABELS, namespace="seldon", cpu="50m", memory="64Mi")
    without = platform_transforms(labels=LABELS, namespace=None, cpu="50m", memory="64Mi")
    assert [t.__qualname__.split(".")[0] for t in with_ns] == ["common_labels", "default_namespace", "default_requests"]
    assert [t.__qualname__.split(".")[0] for t in without] == ["common_labels", "default_requests"]


class Unserializable:
    """Stands for a `pulumi.Output` in props under the real engine (a secret, a value not known yet): it refuses
    `copy.deepcopy` the way Output.__getstate__ does outside serialization."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        raise RuntimeError("__getstate__ can only be called during serialization")


def test_transforms_keep_output_values_they_cannot_copy() -> None:
    """Found by the real engine (mocks resolve every value): a Secret's data and a namespace name arrive as
    Outputs; every transform must leave them as they are instead of failing the whole `pulumi up`."""
    password, namespace = Unserializable(), Unserializable()
    secret = {"kind": "Secret", "metadata": {"name": "s", "namespace": namespace}, "stringData": {"p": password}}
    labelled = common_labels(LABELS)(transform_args("kubernetes:core/v1:Secret", secret))
    assert labelled is not None
    assert labelled.props["stringData"]["p"] is password
    assert labelled.props["metadata"]["namespace"] is namespace
    assert default_namespace("app")(transform_args("kubernetes:core/v1:Secret", secret)) is None  # it has one
    workload = deployment([{"name": "c", "env": [{"name": "P", "value": password}]}])
    requested = default_requests("10m", "16Mi")(transform_args("kubernetes:apps/v1:Deployment", workload))
    assert requested is not None
    container = requested.props["spec"]["template"]["spec"]["containers"][0]
    assert container["env"][0]["value"] is password
    assert container["resources"]["requests"] == {"cpu": "10m", "memory": "16Mi"}
