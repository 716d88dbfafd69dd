"""Every pod spec we render passes the Pod Security Standards' `restricted` profile (tools/pod_security.py: one
pure check per control of the Kubernetes page): each chart with its defaults and every shipped profile (their
Deployments, Jobs, the SeldonDeployment's componentSpecs, the Argo WorkflowTemplates' step pods) and the smoke
suite's Job. The checks themselves are shown to fail on a pod breaking each control, so a pass means something.

What the spec does not hold is judged apart: the executor container the Seldon operator 1.17.1 injects into every
SeldonDeployment pod (its securityContext is the operator's, modelled here from its source) passes `baseline` but
not `restricted`, which is why the application namespace enforces `baseline` (decision 69).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.charts import RenderFn, chart_profiles, profile_id
from tools import pod_security

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_JOB = REPO_ROOT / "smoke_tests" / "k8s" / "job.yaml"
CASES = chart_profiles()
# pods no shipped profile renders: (chart, values that switch them on)
OPTIONAL_PODS = [
    ("feedback-pipeline", {"dashboard": {"kibana": {"url": "https://seldon-kibana-kb-http.seldon.svc:5601"}}}),
]

COMPLIANT: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "image": "example/app:1@sha256:" + "a" * 64,
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "ports": [{"containerPort": 8080}],
        }
    ],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


def _with(change: dict[str, Any]) -> dict[str, Any]:
    """COMPLIANT with `change` merged in (dicts merge; `container` merges into the first container)."""
    spec = copy.deepcopy(COMPLIANT)
    for key, value in change.items():
        if key == "container":
            for field, setting in value.items():
                target = spec["containers"][0]
                if isinstance(setting, dict):
                    target.setdefault(field, {}).update(setting)
                else:
                    target[field] = setting
        elif key == "podSecurityContext":
            spec["securityContext"].update(value)
        else:
            spec[key] = value
    return spec


# One pod per control, each breaking exactly that control: (control name, change).
BREAKERS = [
    ("HostProcess", {"container": {"securityContext": {"windowsOptions": {"hostProcess": True}}}}),
    ("Host Namespaces", {"hostNetwork": True}),
    ("Host Namespaces", {"hostPID": True}),
    ("Privileged Containers", {"container": {"securityContext": {"privileged": True}}}),
    (
        "Capabilities (baseline)",
        {"container": {"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}},
    ),
    ("HostPath Volumes", {"volumes": [{"name": "host", "hostPath": {"path": "/var/run"}}]}),
    ("Host Ports", {"container": {"ports": [{"containerPort": 8080, "hostPort": 8080}]}}),
    ("AppArmor", {"container": {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}}),
    ("SELinux", {"podSecurityContext": {"seLinuxOptions": {"type": "spc_t"}}}),
    ("/proc Mount Type", {"container": {"securityContext": {"procMount": "Unmasked"}}}),
    ("Seccomp (baseline)", {"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}}),
    ("Sysctls", {"podSecurityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}),
    ("Volume Types", {"volumes": [{"name": "nfs", "nfs": {"server": "x", "path": "/"}}]}),
    ("Privilege Escalation", {"container": {"securityContext": {"allowPrivilegeEscalation": True}}}),
    ("Running as Non-root", {"podSecurityContext": {"runAsNonRoot": False}}),
    ("Running as Non-root user", {"container": {"securityContext": {"runAsUser": 0}}}),
    ("Capabilities (restricted)", {"container": {"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}}),
]


def test_the_compliant_pod_passes() -> None:
    assert pod_security.restricted(COMPLIANT) == []


@pytest.mark.parametrize(("control", "change"), BREAKERS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(BREAKERS)])
def test_each_control_fails_a_pod_that_breaks_it(control: str, change: dict[str, Any]) -> None:
    found = pod_security.restricted(_with(change))
    assert any(item.startswith(f"{control}: ") for item in found), found


def test_seccomp_must_be_set_somewhere_and_runasnonroot_too() -> None:
    spec = _with({})
    del spec["securityContext"]["seccompProfile"], spec["securityContext"]["runAsNonRoot"]
    found = pod_security.restricted(spec)
    assert any(item.startswith("Seccomp (restricted): ") for item in found), found
    assert any(item.startswith("Running as Non-root: ") for item in found), found
    assert pod_security.baseline(spec) == [], "unset seccomp and runAsNonRoot are allowed by baseline"


def test_apparmor_annotations_are_judged() -> None:
    bad = {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
    assert any(item.startswith("AppArmor: ") for item in pod_security.restricted(COMPLIANT, bad))
    good = {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}
    assert pod_security.restricted(COMPLIANT, good) == []


def test_init_containers_are_checked() -> None:
    spec = _with({"initContainers": [{"name": "init", "image": "x:1"}]})
    found = pod_security.restricted(spec)
    assert any("initContainers[init]" in item for item in found), found


def _rendered_pods(objects: list[dict[str, Any]]) -> list[pod_security.PodSpec]:
    return [pod for obj in objects for pod in pod_security.pod_specs(obj)]


@pytest.mark.parametrize(("chart", "profile"), CASES, ids=[f"{c}-{profile_id(p)}" for c, p in CASES])
def test_every_rendered_pod_passes_restricted(chart_render: RenderFn, chart: str, profile: Path | None) -> None:
    objects = chart_render(chart, profile=profile)
    pods = _rendered_pods(objects)
    assert pods, f"{chart} ({profile_id(profile)}) renders no pod at all"
    problems = {where: found for where, spec, notes in pods if (found := pod_security.restricted(spec, notes))}
    assert not problems, f"{chart} ({profile_id(profile)}) renders pods the restricted profile rejects: {problems}"


@pytest.mark.parametrize(("chart", "values"), OPTIONAL_PODS, ids=[chart for chart, _ in OPTIONAL_PODS])
def test_optional_pods_pass_restricted(chart_render: RenderFn, chart: str, values: dict[str, Any]) -> None:
    pods = _rendered_pods(chart_render(chart, values))
    problems = {where: found for where, spec, notes in pods if (found := pod_security.restricted(spec, notes))}
    assert not problems, f"{chart} with {values} renders pods the restricted profile rejects: {problems}"


def test_the_pods_cover_every_kind_we_render(chart_render: RenderFn) -> None:
    """The walk sees the SeldonDeployment's componentSpecs, the workflows' step pods, Jobs and Deployments."""
    kinds = set()
    renders = [chart_render(chart, profile=profile) for chart, profile in CASES]
    renders += [chart_render(chart, values) for chart, values in OPTIONAL_PODS]
    for objects in renders:
        for where, _, _ in _rendered_pods(objects):
            kinds.add(where.split("/", 1)[0])
    assert {"Deployment", "Job", "SeldonDeployment", "WorkflowTemplate"} <= kinds, kinds


def test_the_smoke_job_passes_restricted() -> None:
    documents = [doc for doc in yaml.safe_load_all(SMOKE_JOB.read_text()) if doc]
    pods = _rendered_pods(documents)
    assert [where for where, _, _ in pods] == ["Job/smoke-tests"], pods
    problems = {where: found for where, spec, notes in pods if (found := pod_security.restricted(spec, notes))}
    assert not problems, problems


def injected_executor(pod_security_context: dict[str, Any]) -> dict[str, Any]:
    """A SeldonDeployment pod as the operator 1.17.1 leaves it: our componentSpec's pod securityContext, plus the
    `seldon-container-engine` container whose securityContext the operator sets itself (createEngineContainer in
    operator/controllers/seldondeployment_engine.go @v1.17.1: RunAsUser from executor.user, 8888, and
    AllowPrivilegeEscalation false; nothing else) and its downward-API podinfo volume."""
    return {
        "securityContext": pod_security_context,
        "containers": [
            {
                "name": "seldon-container-engine",
                "image": "docker.io/seldonio/seldon-core-executor:1.17.1",
                "securityContext": {"runAsUser": 8888, "allowPrivilegeEscalation": False},
                "ports": [{"containerPort": 8000}, {"containerPort": 5001}],
            }
        ],
        "volumes": [{"name": "seldon-podinfo", "downwardAPI": {"items": []}}],
    }


def test_the_operator_injected_executor_passes_baseline_but_not_restricted(chart_render: RenderFn) -> None:
    sdep = next(obj for obj in chart_render("text-classifier") if obj["kind"] == "SeldonDeployment")
    pod_context = sdep["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["securityContext"]
    pod = injected_executor(pod_context)
    assert pod_security.baseline(pod) == []
    found = pod_security.restricted(pod)
    # our pod-level runAsNonRoot and seccompProfile cover it; only the capabilities it cannot drop remain
    assert found and all(item.startswith("Capabilities (restricted): ") for item in found), found
