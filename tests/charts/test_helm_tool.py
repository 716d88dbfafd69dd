"""tools.helm's tool handling: a clear error when Go is missing or the override points nowhere, and an unknown
chart named with the charts that exist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import helm


def test_missing_go_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SELDON_FEEDBACK_HELM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh-cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(helm.DevstackError, match=r"`go` is not on PATH; install Go >= 1\.26"):
        helm.helm_binary()


def test_helm_override_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SELDON_FEEDBACK_HELM", str(tmp_path / "nope"))
    with pytest.raises(helm.DevstackError, match=r"SELDON_FEEDBACK_HELM=.* is not a file"):
        helm.helm_binary()


def test_unknown_chart_lists_the_known_ones() -> None:
    with pytest.raises(helm.DevstackError, match=r"no chart at .*classifer.*'batch-workflow', 'feedback-pipeline'"):
        helm.chart_path("classifer")


def test_cached_binary_reports_the_pinned_version(helm_bin: Path) -> None:
    result = helm.run_helm(["version", "--short"])
    assert result.returncode == 0, result.stderr
    if "SELDON_FEEDBACK_HELM" not in os.environ:
        assert helm_bin.parts[-4:] == ("helm", helm.HELM_VERSION, "bin", "helm")
        assert result.stdout.strip() == helm.HELM_VERSION


def test_a_corrupt_cached_binary_is_rebuilt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A truncated helm in the cache is not handed out: it is replaced by a fresh `go install` (a stand-in here)."""
    monkeypatch.delenv("SELDON_FEEDBACK_HELM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    go = bin_dir / "go"  # `go install` writes a helm that reports the pinned version into $GOBIN
    go.write_text(
        f'#!/bin/sh\nprintf \'#!/bin/sh\\necho {helm.HELM_VERSION}\\n\' > "$GOBIN/helm"\nchmod +x "$GOBIN/helm"\n'
    )
    go.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    binary = tmp_path / "cache" / "seldon-feedback" / "go" / "helm" / helm.HELM_VERSION / "bin" / "helm"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF truncated")
    binary.chmod(0o755)

    assert helm.helm_binary() == binary
    assert binary.read_text() == f"#!/bin/sh\necho {helm.HELM_VERSION}\n"
