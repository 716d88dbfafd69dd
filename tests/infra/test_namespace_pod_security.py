"""The Pod Security Admission labels of a namespace, from the roles it serves (pure logic of infra/namespaces.py)."""

from __future__ import annotations

import pytest

from infra.namespaces import POD_SECURITY, POLICY_VERSION, PodSecurity, pod_security_labels


def test_one_role_gets_its_levels_pinned_to_the_policy_version() -> None:
    labels = pod_security_labels(["app"])
    assert labels == {
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": POLICY_VERSION,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": POLICY_VERSION,
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": POLICY_VERSION,
    }


def test_a_shared_namespace_gets_the_least_strict_level_any_role_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(POD_SECURITY, "ours", PodSecurity(enforce="restricted", reason=""))
    assert pod_security_labels(["ours"])["pod-security.kubernetes.io/enforce"] == "restricted"
    assert pod_security_labels(["ours", "app"])["pod-security.kubernetes.io/enforce"] == "baseline"


def test_an_unknown_role_is_an_error_naming_the_table() -> None:
    with pytest.raises(ValueError, match=r"no Pod Security level for namespace role\(s\) \['labelling'\]"):
        pod_security_labels(["labelling"])


def test_every_level_below_restricted_says_why() -> None:
    for role, entry in POD_SECURITY.items():
        assert entry.enforce == "restricted" or len(entry.reason) > 40, role
        assert (entry.warn, entry.audit) == ("restricted", "restricted"), role
