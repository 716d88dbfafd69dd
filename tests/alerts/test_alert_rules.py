"""The chart's alert rules with Prometheus's own tool: `promtool check rules` accepts the file, and `promtool test
rules` passes tests/alerts/rules-test.yaml, which has a case for every alert (silent, then firing with its labels and
rendered annotations). That the chart's PrometheusRule holds exactly this file is tests/charts/
test_feedback_monitor_chart.py; that it passes the Prometheus Operator's CRD (v0.93.0) is tests/charts/
test_chart_validity.py.

promtool is built from the github.com/prometheus/prometheus Go module by devstack.runtime.go_build (once, then
cached), like the other Go tools of the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from devstack.servers.prometheus import RULES, prometheus_bin_dir

TESTS = Path(__file__).with_name("rules-test.yaml")


@pytest.fixture(scope="module")
def promtool() -> Path:
    return prometheus_bin_dir() / "promtool"


def run(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, timeout=300, check=False, cwd=TESTS.parent
    )


def alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules(promtool: Path) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout + result.stderr


def test_every_alert_has_a_promtool_case_and_they_pass(promtool: Path) -> None:
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    tested = {check["alertname"] for case in cases for check in case.get("alert_rule_test", [])}
    assert tested == set(alert_names()), f"alerts without a case: {sorted(set(alert_names()) - tested)}"
    for case in cases:  # each case shows the alert silent first, then firing
        checks = case["alert_rule_test"]
        assert any(not c["exp_alerts"] for c in checks) and any(c["exp_alerts"] for c in checks), case["name"]
    result = run(promtool, "test", "rules", TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_expectation_fails(promtool: Path, tmp_path: Path) -> None:
    """The cases can fail: the same file with one expected label changed is refused."""
    text = TESTS.read_text().replace("metric: token_psi", "metric: label_chi2", 1)
    text = text.replace("../../charts/", f"{(TESTS.parent / '../../charts').resolve()}/")
    broken = tmp_path / "broken-test.yaml"
    broken.write_text(text)
    result = run(promtool, "test", "rules", str(broken))
    assert result.returncode != 0
    assert "SeldonFeedbackDriftDetected" in result.stdout + result.stderr
