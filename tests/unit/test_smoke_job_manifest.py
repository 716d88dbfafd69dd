"""The in-cluster smoke Job: valid Kubernetes objects, non-root, pinned image, least-privilege RBAC."""

from __future__ import annotations

from pathlib import Path

import yaml

from tools.helm import validate_object

MANIFEST = Path(__file__).resolve().parents[2] / "smoke_tests" / "k8s" / "job.yaml"


def _objects() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def test_every_object_validates_against_the_kubernetes_schema() -> None:
    objects = _objects()
    assert [o["kind"] for o in objects] == ["ServiceAccount", "Role", "RoleBinding", "Job"]
    problems = {o["kind"]: validate_object(o) for o in objects}
    assert problems == {kind: [] for kind in problems}


def test_job_runs_non_root_read_only_with_a_pinned_image_and_the_target_secret() -> None:
    job = next(o for o in _objects() if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert not container["image"].endswith(":latest") and ":" in container["image"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SMOKE_TARGET"].startswith("/etc/smoke/")
    assert {v["name"]: v.get("secret", {}).get("secretName") for v in pod["volumes"]}["target"] == "smoke-target"
    assert pod["serviceAccountName"] == "smoke-tests" and job["spec"]["backoffLimit"] == 0


def test_role_grants_only_what_the_suite_uses() -> None:
    role = next(o for o in _objects() if o["kind"] == "Role")
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert not any(r == "secrets" for _g, r, _v in granted), "the target Secret is mounted, not read through the API"
    assert not any(v in {"*", "update", "patch"} for _g, _r, v in granted)
    assert ("argoproj.io", "workflows", "create") in granted and ("", "pods/exec", "create") in granted
