"""The smoke suite asks the index only for fields the indexer maps: every document field it reads or queries is a
`Fields` constant (smoke_tests/sinks.py), and every constant is an indexed field of the indexer's index template
(images/feedback/feedback/indexer/core.py). A field renamed on one side fails here, not in a cluster."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from feedback.indexer.core import index_template
from feedback.monitor.search_io import index_template as monitor_template

SMOKE = Path(__file__).resolve().parents[2] / "smoke_tests"
QUERY_CLAUSES = {"term", "terms", "range", "exists", "match", "prefix", "wildcard"}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def smoke_fields(cls: str = "Fields") -> dict[str, str]:
    """Attribute -> document field name of `class Fields` (or `MonitorFields`) in smoke_tests/sinks.py."""
    (fields,) = [n for n in ast.walk(parse(SMOKE / "sinks.py")) if isinstance(n, ast.ClassDef) and n.name == cls]
    names = {}
    for statement in fields.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
            (target,) = statement.targets
            assert isinstance(target, ast.Name) and isinstance(statement.value.value, str)
            names[target.id] = statement.value.value
    return names


def mapped(template: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    """The mapping of `dotted` ("input_text", "input_text.keyword") in the template, or None."""
    node: dict[str, Any] = {"properties": template["template"]["mappings"]["properties"]}
    for part in dotted.split("."):
        children = {**node.get("properties", {}), **node.get("fields", {})}
        if part not in children:
            return None
        node = children[part]
    return node


def test_every_smoke_field_is_an_indexed_field_of_the_template() -> None:
    fields = smoke_fields()
    assert {"request_id", "mode", "batch_id", "truth_label", "input_text"} <= set(fields.values())
    template = index_template("seldon-feedback", 1, 1)
    for attribute, name in sorted(fields.items()):
        mapping = mapped(template, name)
        assert mapping is not None, f"smoke Fields.{attribute} = {name!r} is not in the indexer's index template"
        assert mapping.get("enabled", True) and mapping.get("index", True), f"{name!r} is mapped but not indexed"


def test_every_monitor_field_is_an_indexed_field_of_the_monitor_template() -> None:
    template = monitor_template("seldon-monitor", 1, 1)
    fields = smoke_fields("MonitorFields")
    assert {"metric", "window_start", "value"} <= set(fields.values())
    for attribute, name in sorted(fields.items()):
        assert mapped(template, name) is not None, f"smoke MonitorFields.{attribute} = {name!r} is not mapped"


def is_name(node: ast.AST, kind: type, attribute: str, name: str) -> bool:
    """`node` is a `kind` whose `attribute` is the plain name `name` (Fields.x, field(...))."""
    inner = getattr(node, attribute, None)
    return isinstance(node, kind) and isinstance(inner, ast.Name) and inner.id == name


@pytest.mark.parametrize("path", sorted(SMOKE.rglob("*.py")), ids=lambda path: str(path.relative_to(SMOKE)))
def test_the_suite_names_document_fields_only_through_fields(path: Path) -> None:
    """No document field as a string literal: `field(doc, "...")` and query clauses take a `Fields` constant, and
    every `Fields.<name>` used exists, so `Fields` is the complete list the template test checks."""
    known = smoke_fields()
    problems = []
    for node in ast.walk(parse(path)):
        if is_name(node, ast.Attribute, "value", "Fields") and node.attr not in known:
            problems.append(f"line {node.lineno}: Fields.{node.attr} does not exist")
        if is_name(node, ast.Attribute, "value", "MonitorFields") and node.attr not in smoke_fields("MonitorFields"):
            problems.append(f"line {node.lineno}: MonitorFields.{node.attr} does not exist")
        if is_name(node, ast.Call, "func", "field") and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            problems.append(f"line {node.lineno}: field(..., {node.args[1].value!r}) bypasses Fields")
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                clause = isinstance(key, ast.Constant) and key.value in QUERY_CLAUSES
                if clause and isinstance(value, ast.Dict):
                    literal = [k.value for k in value.keys if isinstance(k, ast.Constant) and k.value != "field"]
                    if literal:
                        problems.append(f"line {node.lineno}: query on {literal} bypasses Fields")
    assert not problems, f"{path.name}: {problems}"


def test_a_renamed_template_field_is_caught() -> None:
    """The check can fail: with `truth_label` renamed in the template, the smoke suite's truth field is unmapped."""
    template = index_template("seldon-feedback", 1, 1)
    properties = template["template"]["mappings"]["properties"]
    properties["truth_class"] = properties.pop("truth_label")
    assert mapped(template, smoke_fields()["truth"]) is None
