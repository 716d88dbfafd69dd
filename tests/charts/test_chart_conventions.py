"""Chart conventions users rely on: every value documented in values.yaml and in the README table (kept in sync by
`python -m tools.helm tables`), a closed draft-07 schema covering every value, pinned Chart.yaml, the seven
prefixed helpers, NOTES.txt."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.fixtures.charts import CHARTS
from tools import helm

HELPERS = ("name", "fullname", "chart", "labels", "selectorLabels", "serviceAccountName", "namespace")


def schema_of(chart: str) -> dict[str, Any]:
    return json.loads((helm.CHARTS_DIR / chart / "values.schema.json").read_text())


def schema_node(schema: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    """The schema of a dotted values key, following local $refs; None when the schema does not define it."""
    node: dict[str, Any] = schema
    for part in dotted.split("."):
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
        properties = node.get("properties", {})
        if part not in properties:
            return None
        node = properties[part]
    return node


@pytest.mark.parametrize("chart", CHARTS)
def test_readme_values_table_is_generated_from_values_yaml(chart: str) -> None:
    readme = (helm.CHARTS_DIR / chart / "README.md").read_text()
    assert readme == helm.readme_with_table(chart), (
        f"charts/{chart}/README.md values table is stale: run `python -m tools.helm tables`"
    )
    for heading in ("## Prerequisites", "## Install", "## Uninstall", "## Upgrading", "## Configuration"):
        assert heading in readme, f"charts/{chart}/README.md lacks {heading}"


@pytest.mark.parametrize("chart", CHARTS)
def test_every_value_is_in_the_schema_with_its_values_comment(chart: str) -> None:
    schema = schema_of(chart)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    missing = [key for key, _, _ in helm.documented_values(chart) if schema_node(schema, key) is None]
    assert not missing, f"{chart}: values the schema does not define: {missing}"
    text = (helm.CHARTS_DIR / chart / "values.schema.json").read_text()
    assert text == helm.schema_with_descriptions(chart), (
        f"charts/{chart}/values.schema.json descriptions differ from the values.yaml comments: "
        "run `python -m tools.helm tables`"
    )


@pytest.mark.parametrize("chart", CHARTS)
def test_values_yaml_points_at_the_schema_and_matches_it(chart: str) -> None:
    text = (helm.CHARTS_DIR / chart / "values.yaml").read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=values.schema.json"
    values = yaml.safe_load(text)
    assert set(values) <= set(schema_of(chart)["properties"])


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_yaml_is_pinned(chart: str) -> None:
    meta = yaml.safe_load((helm.CHARTS_DIR / chart / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == chart
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["appVersion"])
    assert meta["kubeVersion"].startswith(">=")


@pytest.mark.parametrize("chart", CHARTS)
def test_helpers_and_notes_exist(chart: str) -> None:
    templates = helm.CHARTS_DIR / chart / "templates"
    helpers = (templates / "_helpers.tpl").read_text()
    for helper in HELPERS:
        assert f'define "{chart}.{helper}"' in helpers, f"{chart}/_helpers.tpl lacks {chart}.{helper}"
    assert helpers.startswith("{{/*"), "helpers open with a comment on purpose and parameters"
    assert (templates / "NOTES.txt").is_file()


def test_undocumented_value_is_reported(tmp_path: Any) -> None:
    chart = tmp_path / "demo"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("# mode is realtime or streaming.\nmode: realtime\nreplicas: 1\n")
    with pytest.raises(helm.DevstackError, match=r"replicas: no comment"):
        helm.documented_values(str(chart))
