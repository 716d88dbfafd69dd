"""The flow back's pure logic: rows from documents, canonical files and hashes, intervals, the promotion rule,
request and settings validation (every refusal asserted by its message)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from feedback.config import SettingsError
from feedback.flowback import dataset, settings, statistics
from feedback.flowback.errors import FlowbackError
from feedback.flowback.export import ExportRequest, parse_range, parse_time, search_body
from feedback.flowback.promotion import PromotionRule, decide
from feedback.flowback.report_html import render
from feedback.redaction import Redactor

CLASSES = ("t:0", "t:1")
BASE = {"request_id": "r1", "node": "classifier", "instance": 0, "class_names": ["t:0", "t:1"], "predictor": "main"}


@pytest.mark.parametrize(
    ("extra", "label", "reason"),
    [
        ({"input_text": "hello", "truth_index": 1}, 1, None),
        ({"input_text": "hello", "truth_index": 0, "truth": "0"}, 0, None),
        ({"input_text": "hello", "truth": "t:1"}, 1, None),  # a truth given by class name
        ({"input_text": "hello", "truth_index": 2, "truth": "2"}, None, dataset.UNKNOWN_LABEL),
        ({"input_text": "hello", "truth": "spam"}, None, dataset.UNKNOWN_LABEL),
        ({"input_text": "hello", "truth_index": True}, None, dataset.UNKNOWN_LABEL),  # a bool is not an index
        ({"input_text": "hello", "truth_index": 1, "class_names": ["no", "yes"]}, None, dataset.UNKNOWN_LABEL),
        ({"truth_index": 1}, None, dataset.NO_TEXT),  # an orphan feedback
        ({"input_text": "   ", "truth_index": 1}, None, dataset.NO_TEXT),
    ],
)
def test_a_document_becomes_a_row_or_a_counted_reason(extra: dict[str, Any], label: int | None, reason: str | None):
    row, why, _ = dataset.row_from_document({**BASE, **extra}, CLASSES, Redactor())
    assert why == reason
    assert (row.label if row else None) == label


@pytest.mark.parametrize(
    ("source", "version"),
    [
        ({"model_version": "1.0.0+abc"}, "1.0.0+abc"),
        ({"response_raw": {"meta": {"tags": {"model_version": "1.0.0+def"}}}}, "1.0.0+def"),
        ({"response_raw": {"meta": {"tags": "not a map"}}}, dataset.UNKNOWN_VERSION),
        ({}, dataset.UNKNOWN_VERSION),
    ],
)
def test_the_serving_models_version_comes_from_the_index_or_the_response_tags(source: dict[str, Any], version: str):
    assert dataset.model_version_of(source) == version


def _row(request_id: str, text: str, label: int = 0, instance: int = 0) -> dataset.FeedbackRow:
    return dataset.FeedbackRow(
        request_id, "classifier", instance, text, label, "v1", "main", "2026-11-30T12:00:00.000Z"
    )


def test_csv_is_canonical_sorted_and_round_trips_quotes_commas_and_newlines():
    rows = [_row("b", 'say "hi",\nthen leave', 1), _row("a", "plain", 0, instance=1), _row("a", "first", 0)]
    data = dataset.csv_bytes(rows)
    assert data == dataset.csv_bytes(list(reversed(rows)))  # input order does not matter
    assert b"\r" not in data
    parsed = list(csv.DictReader(io.StringIO(data.decode())))
    assert [(r["request_id"], r["instance"], r["text"]) for r in parsed] == [
        ("a", "0", "first"),
        ("a", "1", "plain"),
        ("b", "0", 'say "hi",\nthen leave'),
    ]


def test_the_content_hash_covers_query_files_and_split_but_not_when_it_ran():
    files = {"train.csv": b"text,label\n", "held_out.csv": b"text,label\n"}
    rule = {"held_out_percent": 20}
    query = {"index": "i", "range": ["a", "b"]}
    first = dataset.content_hash(query, files, rule)
    assert first == dataset.content_hash(dict(reversed(list(query.items()))), dict(reversed(list(files.items()))), rule)
    assert first != dataset.content_hash({**query, "index": "j"}, files, rule)
    assert first != dataset.content_hash(query, {**files, "train.csv": b"text,label\nx,1\n"}, rule)
    assert first != dataset.content_hash(query, files, {"held_out_percent": 10})
    manifest = dataset.build_manifest(
        query=query, files=files, train=[], held_out=[], class_names=CLASSES, held_out_percent=20, documents=0,
        skipped={}, redacted=0, provenance={},
    )  # fmt: skip
    assert not {"exported_at", "created", "time"} & set(json.dumps(manifest).split('"'))


def test_the_split_keeps_equal_texts_together_and_holds_out_about_the_share():
    rows = [_row(f"r{i}", f"text {i % 500}") for i in range(2000)]
    train, held_out = dataset.split(rows, 20)
    assert not {r.text for r in train} & {r.text for r in held_out}
    assert 0.15 < len(held_out) / len(rows) < 0.25


def test_the_wilson_interval_matches_known_values_and_stays_inside_zero_and_one():
    result = statistics.accuracy([1] * 100, [1] * 81 + [0] * 19, 0.95)
    assert result.accuracy == 0.81
    assert (round(result.low, 4), round(result.high, 4)) == (0.7222, 0.8749)  # statsmodels' proportion_confint wilson
    perfect = statistics.accuracy([0] * 10, [0] * 10, 0.95)
    assert perfect.high == 1.0 and 0.69 < perfect.low < 0.73
    empty = statistics.accuracy([], [], 0.95)
    assert empty.rows == 0 and math.isnan(empty.accuracy)


def test_the_paired_difference_counts_discordant_rows_and_its_interval_tightens_with_agreement():
    labels = [1] * 100
    candidate = [1] * 90 + [0] * 10
    serving = [1] * 70 + [0] * 30
    diff = statistics.paired_difference(labels, candidate, serving, 0.95)
    assert (diff.only_candidate_right, diff.only_serving_right, diff.difference) == (20, 0, 0.2)
    assert diff.low > 0.1 and diff.high < 0.3
    same = statistics.paired_difference(labels, serving, serving, 0.95)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same length"):
        statistics.paired_difference([1], [1, 0], [1], 0.95)


def _diff(difference: float, low: float, rows: int = 100) -> statistics.Difference:
    return statistics.Difference(rows, 0, 0, difference, low, difference + (difference - low))


@pytest.mark.parametrize(
    ("held_out", "feedback", "failed"),
    [
        (_diff(0.0, -0.01), _diff(0.05, 0.01), []),
        (_diff(-0.02, -0.03), _diff(0.05, 0.01), ["held_out_not_worse"]),
        (_diff(0.0, -0.01), _diff(0.01, -0.01), ["feedback_better", "feedback_significant"]),
        (_diff(0.0, -0.01), _diff(0.03, -0.005), ["feedback_significant"]),
        (_diff(0.0, -0.01), _diff(0.05, 0.01, rows=10), ["feedback_rows"]),
        (
            _diff(0.0, -0.01),
            statistics.Difference(0, 0, 0, math.nan, -1, 1),
            ["feedback_rows", "feedback_better", "feedback_significant"],
        ),
    ],
)
def test_the_default_rule(held_out: statistics.Difference, feedback: statistics.Difference, failed: list[str]):
    promote, checks = decide(PromotionRule(), held_out, feedback)
    assert [c.name for c in checks if not c.passed] == failed
    assert promote is (not failed)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"feedback_min_gain": 0.05, "held_out_max_drop": 0}', None),
        ('{"margin": 0.1}', "unknown key(s) margin; the rule's keys are confidence, feedback_min_gain"),
        ('{"confidence": "high"}', "confidence must be a number, got 'high'"),
        ('{"confidence": 1.5}', "confidence must be from 0.5 to below 1"),
        ('{"min_feedback_rows": 2.5}', "min_feedback_rows must be a whole number, got 2.5"),
        ('{"feedback_significant": "yes"}', "feedback_significant must be true or false"),
        ("[1]", "must be a JSON object of the rule's keys"),
        ("{oops", "not JSON"),
    ],
)
def test_the_rule_file_is_validated_key_by_key(tmp_path: Path, content: str, message: str | None):
    path = tmp_path / "rule.json"
    path.write_text(content)
    if message is None:
        rule = PromotionRule.from_file(path)
        assert (rule.feedback_min_gain, rule.held_out_max_drop, rule.confidence) == (0.05, 0, 0.95)
        return
    with pytest.raises(FlowbackError, match=None) as raised:
        PromotionRule.from_file(path)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "is not an ISO-8601 time; write e.g. 2026-12-01T00:00:00Z"),
        ("2026-12-01T00:00:00", "has no time zone; add Z (UTC) or an offset"),
    ],
)
def test_times_need_a_zone(value: str, message: str):
    with pytest.raises(FlowbackError) as raised:
        parse_time(value, "--start")
    assert message in str(raised.value)
    assert parse_time("2026-12-01T01:00:00+01:00", "--start") == parse_time("2026-12-01T00:00:00Z", "--end")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("-24h", "2026-12-01T03:00:00+00:00"),
        ("-7d", "2026-11-25T03:00:00+00:00"),
        ("-90m", "2026-12-02T01:30:00+00:00"),
        ("-30s", "2026-12-02T02:59:30+00:00"),
        ("2026-12-01T00:00:00Z", "2026-12-01T00:00:00+00:00"),
    ],
)
def test_a_start_may_be_a_lookback_before_the_end(start: str, expected: str):
    """The scheduled workflow passes `--start=-<lookback> --end=<scheduled time>`: a fixed range per run."""
    begin, end = parse_range(start, "2026-12-02T03:00:00Z")
    assert (begin.isoformat(), end.isoformat()) == (expected, "2026-12-02T03:00:00+00:00")


@pytest.mark.parametrize("start", ["-24", "-0h", "-1w", "-h", "- 24h"])
def test_a_bad_lookback_says_how_to_write_one(start: str):
    with pytest.raises(FlowbackError) as raised:
        parse_range(start, "2026-12-02T03:00:00Z")
    assert "is neither an ISO-8601 time nor a lookback; write e.g. 2026-12-01T00:00:00Z or -24h" in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"end": "2026-12-01T00:00:00Z"}, "must be after --start"),
        ({"deployment": " "}, "--deployment is required"),
        ({"sample_rate": 0.0}, "--sample-rate 0 must be above 0 and at most 1"),
        ({"held_out_percent": 0}, "--held-out-percent 0 must be from 1 to 50"),
        ({"class_names": ("t:0",)}, "must name at least two distinct classes"),
    ],
)
def test_bad_export_requests_say_what_to_change(kwargs: dict[str, Any], message: str):
    values: dict[str, Any] = {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z", "deployment": "d"}
    values.update(kwargs)
    values["start"], values["end"] = parse_time(values["start"], "--start"), parse_time(values["end"], "--end")
    with pytest.raises(FlowbackError) as raised:
        ExportRequest(**values)
    assert message in str(raised.value)


def test_the_search_pages_by_the_natural_key_and_filters_every_given_field():
    request = ExportRequest(
        start=parse_time("2026-12-01T00:00:00Z", "s"), end=parse_time("2026-12-02T00:00:00Z", "e"),
        deployment="d", predictor="canary", model_version="v2",
    )  # fmt: skip
    body = search_body(request, ["r9", "classifier", 3])
    assert body["sort"] == [{"request_id": "asc"}, {"node": "asc"}, {"instance": "asc"}]
    assert body["search_after"] == ["r9", "classifier", 3]
    filters = body["query"]["bool"]["filter"]
    assert {"term": {"predictor": "canary"}} in filters and {"term": {"model_version": "v2"}} in filters
    assert {"exists": {"field": "truth"}} in filters
    assert {"range": {"@timestamp": {"gte": "2026-12-01T00:00:00.000Z", "lt": "2026-12-02T00:00:00.000Z"}}} in filters


@pytest.mark.parametrize(
    ("env", "reader", "message"),
    [
        ({}, settings.search_settings, "FLOWBACK_SEARCH_URL must be the search cluster's http(s) URL"),
        ({"FLOWBACK_SEARCH_URL": "search:9200"}, settings.search_settings, "(got search:9200)"),
        (
            {"AWS_ACCESS_KEY_ID": "k"},
            settings.store_settings,
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set",
        ),
        ({"FLOWBACK_S3_ENDPOINT": "minio:9000"}, settings.store_settings, "must be an http(s) URL such as"),
        ({"FLOWBACK_CLASSIFIER_DIR": "/nowhere"}, settings.classifier_settings, "holds no retrain.py and score.py"),
        ({}, settings.classifier_settings, "FLOWBACK_CLASSIFIER_PYTHON is required for train and evaluate"),
        ({"FLOWBACK_REDACT_PATTERNS": "ssn"}, settings.redactor, "unknown pattern(s) ssn"),
    ],
)
def test_settings_name_the_variable_and_the_fix(env: dict[str, str], reader: Any, message: str):
    with pytest.raises(SettingsError) as raised:
        reader(env)
    assert message in str(raised.value)


def test_the_html_report_is_self_contained_and_escapes_what_it_shows():
    accuracy = statistics.accuracy([1, 0, 1], [1, 0, 0], 0.95).as_dict()
    sets = {
        name: {
            "title": name, "rows": 3, "per_label": {"t:0": 1, "t:1": 2}, "candidate": accuracy, "serving": accuracy,
            "difference": statistics.paired_difference([1, 0, 1], [1, 0, 0], [1, 0, 0], 0.95).as_dict(),
        }
        for name in ("held_out", "feedback")
    }  # fmt: skip
    report = {
        "model": "m<script>", "candidate": {"version": "2"}, "serving": {"version": "1"}, "rule": {"confidence": 0.95},
        "dataset": {"prefix": "datasets/x", "content_hash": "ab", "time_range": None}, "sets": sets,
        "decision": {"promote": False, "checks": [{"name": "feedback_better", "passed": False, "detail": "a < b"}]},
    }  # fmt: skip
    page = render(report)
    assert "<script>" not in page and "m&lt;script&gt;" in page and "a &lt; b" in page
    assert page.count("<svg") == 2 and "http" not in page.replace("http-equiv", "")


def test_a_refused_run_is_counted_in_the_metrics_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from feedback.flowback.__main__ import main

    path = tmp_path / "flowback.prom"
    monkeypatch.setenv("FLOWBACK_METRICS_FILE", str(path))
    argv = ["export", "--start", "yesterday", "--end", "2026-12-02T00:00:00Z", "--deployment", "d"]
    assert main(argv) == 1
    assert 'flowback_runs_total{command="export",outcome="refused"} 1.0' in path.read_text()


def test_an_export_counts_its_rows_and_every_skip_reason() -> None:
    from feedback.flowback.metrics import RunMetrics

    metrics = RunMetrics()
    skipped = {"no_text": 2, "unknown_label": 1, "sampled_out": 0}
    metrics.record("export", None, {"written": True, "counts": {"rows": 62, "skipped": skipped}})
    metrics.record("export", None, {"written": False, "counts": {"rows": 62, "skipped": skipped}})  # already there
    value = metrics.registry.get_sample_value
    assert value("flowback_export_rows_total") == 62
    assert value("flowback_export_skipped_total", {"reason": "no_text"}) == 2
    assert value("flowback_runs_total", {"command": "export", "outcome": "ok"}) == 2
