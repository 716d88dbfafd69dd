"""Every dashboard and alert names only what really exists: each field a Kibana saved object charts is mapped by the
index template of its index (capture or monitor), and each metric a Grafana panel or an alert rule reads is one the
collector, the indexer or the monitor exports (taken from their metric objects, with the _total, _bucket, _sum and
_count series Prometheus makes of them). A renamed field or metric fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from feedback.collector.metrics import CollectorMetrics
from feedback.indexer.core import index_template as capture_template
from feedback.indexer.metrics import IndexerMetrics
from feedback.monitor.metrics import MonitorMetrics
from feedback.monitor.search_io import index_template as monitor_template
from prometheus_client import CollectorRegistry

FILES = Path(__file__).resolve().parents[2] / "charts" / "feedback-pipeline" / "files"
PROMQL_FUNCTIONS = {
    "sum", "max", "min", "avg", "rate", "increase", "histogram_quantile", "time", "clamp_min", "by", "unless",
    "and", "or", "count", "le", "offset", "without", "on", "ignoring",
}  # fmt: skip


def exported_metrics() -> set[str]:
    names: set[str] = set()
    for metrics in (CollectorMetrics(), IndexerMetrics(), MonitorMetrics()):
        registry: CollectorRegistry = metrics.registry
        for family in registry.collect():
            names.add(family.name)
            if family.type == "counter":
                names.add(f"{family.name}_total")
            if family.type == "histogram":
                names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
    return names


def metric_names(expr: str) -> set[str]:
    """Identifiers of an expression that are metric names: ours all start with feedback_; anything else must be a
    PromQL function, keyword or label (inside braces or by(...) clauses, removed first)."""
    stripped = re.sub(r"\{[^}]*\}", "", expr)
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", stripped))
    unknown = {t for t in tokens if not t.startswith("feedback_") and t not in PROMQL_FUNCTIONS}
    assert not unknown, f"{expr!r}: neither one of our metrics nor a known PromQL word: {sorted(unknown)}"
    return {t for t in tokens if t.startswith("feedback_")}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def grafana_exprs() -> list[str]:
    dashboard = json.loads((FILES / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.parametrize("source", ["alert rules", "grafana"])
def test_every_metric_read_is_exported(source: str) -> None:
    exprs = [rule["expr"] for rule in rules()] if source == "alert rules" else grafana_exprs()
    exported = exported_metrics()
    used = set().union(*(metric_names(expr) for expr in exprs))
    assert used, "nothing charted"
    assert used <= exported, f"metrics nothing exports: {sorted(used - exported)}"


def test_the_checker_catches_a_metric_nobody_exports() -> None:
    assert metric_names("sum(rate(feedback_indexer_messages_indexed_total[5m]))") == {
        "feedback_indexer_messages_indexed_total"
    }
    assert not metric_names("time()") - exported_metrics()
    assert metric_names("feedback_monitor_drift_alarms == 1") - exported_metrics() == {"feedback_monitor_drift_alarms"}
    with pytest.raises(AssertionError, match="known PromQL word"):
        metric_names("sum(seldon_api_executor_client_requests_seconds_count)")


def saved_objects() -> list[dict[str, Any]]:
    text = (FILES / "kibana-dashboard.ndjson").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def fields_charted(obj: dict[str, Any]) -> set[str]:
    used: set[str] = set()
    if obj["type"] == "visualization":
        state = json.loads(obj["attributes"]["visState"])
        used |= {agg["params"]["field"] for agg in state["aggs"] if "field" in agg["params"]}
        search = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        used |= set(re.findall(r"\b([a-z_@][a-z0-9_.]*):", search["query"]["query"]))
    if obj["type"] == "search":
        used |= set(obj["attributes"]["columns"]) | {field for field, _order in obj["attributes"].get("sort", [])}
        search = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        used |= set(re.findall(r"\b([a-z_@][a-z0-9_.]*):", search["query"]["query"]))
    return used


def test_every_kibana_field_is_mapped_by_its_index_template() -> None:
    objects = saved_objects()
    patterns = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    assert sorted(patterns.values()) == ["seldon-feedback*", "seldon-monitor*"]
    mapped = {
        "seldon-feedback*": set(capture_template("seldon-feedback", 1, 1)["template"]["mappings"]["properties"]),
        "seldon-monitor*": _flat(monitor_template("seldon-monitor", 1, 1)["template"]["mappings"]["properties"]),
    }
    ids = {(o["type"], o["id"]) for o in objects}
    charted: dict[str, set[str]] = {title: set() for title in mapped}
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{obj['id']} references missing {ref['type']} {ref['id']}"
        index_refs = [r["id"] for r in obj["references"] if r["type"] == "index-pattern"]
        for ref in index_refs:
            charted[patterns[ref]] |= fields_charted(obj)
    for title, fields in charted.items():
        assert fields, f"no saved object charts {title}"
        assert fields <= mapped[title], f"{title}: fields its template does not map: {sorted(fields - mapped[title])}"
    dashboards = [o for o in objects if o["type"] == "dashboard"]
    assert len(dashboards) == 2
    for dashboard in dashboards:
        panels = json.loads(dashboard["attributes"]["panelsJSON"])
        assert {p["panelRefName"] for p in panels} == {r["name"] for r in dashboard["references"]}


def _flat(properties: dict[str, Any], prefix: str = "") -> set[str]:
    names = set()
    for name, spec in properties.items():
        names.add(prefix + name)
        if "properties" in spec:
            names |= _flat(spec["properties"], f"{prefix}{name}.")
    return names


def test_the_field_checker_reads_queries_columns_and_aggregations() -> None:
    [drift] = [o for o in saved_objects() if o["id"] == "seldon-feedback-monitor-drift"]
    assert fields_charted(drift) == {"value", "window_start", "metric", "kind", "status"}
