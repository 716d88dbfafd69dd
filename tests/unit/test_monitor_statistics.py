"""The monitor's statistics on seeded data: stationary windows (held-out comments, as the profile saw them) do not
breach after the multiple-testing control, an obvious shift (the spam wave) breaches every input and prediction
metric, quality intervals cover their values, and the alarm rules behave as documented."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from feedback.monitor import drift
from feedback.monitor.alarms import adjusted_p_values, is_alarm
from feedback.monitor.core import (
    DRIFT_METRICS,
    Result,
    decide,
    drift_statistics,
    quality_results,
)
from feedback.monitor.profiles import ProfileError, parse_profile
from feedback.monitor.quality import quality, wilson
from feedback.monitor.settings import Thresholds
from textclf.profile import monitor_tokens, token_bucket

from tests.monitor_data import CLASS_NAMES, profile_data, window_documents

THRESHOLDS = Thresholds(domain_permutations=20)


@pytest.fixture(scope="module")
def profile():
    return parse_profile(profile_data(), "test-profile")


def results_of(docs, profile, seed: int = 1) -> dict[str, Result]:
    statistics, _ = drift_statistics(docs, profile, THRESHOLDS, seed)
    return {r.metric: r for r in decide(statistics, THRESHOLDS, {})}


def test_the_monitor_tokenises_and_buckets_exactly_as_the_profile_was_made(profile) -> None:
    """Both images split and hash texts by the profile's own rule, not by shared code: they must agree."""
    for text in ["Fascinating stuff about the vaccine.", "Ünïcode wörds_and 42 numbers", "CLAIM $PEPEX now!!! 🚀"]:
        assert profile.tokens(text) == monitor_tokens(text)
        assert [profile.bucket(t) for t in profile.tokens(text)] == [token_bucket(t) for t in monitor_tokens(text)]
    assert profile.bucket_shares.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_stationary_windows_breach_nothing(profile, seed: int) -> None:
    results = results_of(window_documents(300, seed), profile, seed)
    assert set(results) == set(DRIFT_METRICS)
    assert {m: r.breach for m, r in results.items() if r.breach} == {}
    assert all(r.status == "ok" for r in results.values())
    assert results["domain_auc"].value < 0.65


def test_a_spam_wave_breaches_every_input_and_prediction_metric(profile) -> None:
    results = results_of(window_documents(300, 5, spam_share=1.0), profile)
    assert {m for m, r in results.items() if r.breach} == set(DRIFT_METRICS)
    assert results["domain_auc"].value > 0.95
    assert results["oov_rate"].value > 3 * results["oov_rate"].reference_value
    assert results["label_chi2"].detail["shares"] == {"t:1": 1.0}


def test_a_partial_shift_is_seen_by_the_input_metrics(profile) -> None:
    """Half the texts spam: the unknown words and the domain classifier see it; the alarm needs consecutive windows."""
    results = results_of(window_documents(400, 6, spam_share=0.5), profile)
    stationary = results_of(window_documents(400, 6), profile)
    assert results["domain_auc"].breach and results["oov_rate"].breach
    assert results["token_psi"].value > 3 * stationary["token_psi"].value
    assert not any(r.alarm for r in results.values()), "one window alone never alarms with consecutive_windows=2"


def test_too_few_documents_and_missing_fields_give_a_status_not_a_number(profile) -> None:
    docs = window_documents(60, 3)
    for doc in docs[:20]:
        del doc["predicted_label"]
    for doc in docs[20:30]:
        doc["input_text"] = None
    statistics, skipped = drift_statistics(docs, profile, THRESHOLDS, 1)
    by_metric = {s.metric: s for s in statistics}
    assert skipped == Counter({"no_predicted_label": 20, "no_input_text": 10})
    assert isinstance(by_metric["label_chi2"], Result) and by_metric["label_chi2"].status == "too_few_samples"
    assert by_metric["label_chi2"].reason == "40 < 50"
    assert isinstance(by_metric["confidence_ks"], drift.Statistic)  # 60 scores are enough


def test_documents_without_response_count_for_inputs_only(profile) -> None:
    docs = window_documents(80, 4)
    for doc in docs[:40]:
        doc.update(outcome="no_response", predicted_label=None, predicted_score=None)
    statistics, skipped = drift_statistics(docs, profile, THRESHOLDS, 1)
    by_metric = {s.metric: s for s in statistics}
    assert skipped == Counter(), "a request without response is no bad document"
    assert by_metric["length_ks"].samples == 80
    assert isinstance(by_metric["label_chi2"], Result) and by_metric["label_chi2"].samples == 40


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    reference = np.array([0.5, 0.3, 0.2])
    assert drift.psi(np.array([50, 30, 20]), reference) == pytest.approx(0.0, abs=1e-9)
    small, large = drift.psi(np.array([45, 33, 22]), reference), drift.psi(np.array([10, 30, 60]), reference)
    assert 0 < small < 0.05 < 0.5 < large


@pytest.mark.parametrize(
    ("p_values", "method", "rejected"),
    [
        ({"a": 0.001, "b": 0.02, "c": 0.04, "d": 0.5}, "bh", {"a"}),
        ({"a": 0.001, "b": 0.004, "c": 0.006, "d": 0.5}, "bh", {"a", "b", "c"}),
        ({"a": 0.001, "b": 0.004, "c": 0.006, "d": 0.5}, "bonferroni", {"a"}),
        ({"a": 0.2}, "bh", set()),
        ({}, "bh", set()),
    ],
)
def test_multiple_testing_control(p_values: dict, method: str, rejected: set) -> None:
    adjusted = adjusted_p_values(p_values, method)
    assert {name for name, p in adjusted.items() if p <= 0.01} == rejected
    assert all(adjusted[name] >= p_values[name] for name in p_values)


@pytest.mark.parametrize(
    ("breach", "previous", "consecutive", "alarm"),
    [
        (True, [], 1, True),
        (True, [], 2, False),
        (True, [True], 2, True),
        (True, [None], 2, False),  # a window without data breaks the run
        (True, [True, False], 3, False),
        (True, [True, True, False], 3, True),
        (False, [True, True], 2, False),
    ],
)
def test_consecutive_windows_rule(breach: bool, previous: list, consecutive: int, alarm: bool) -> None:
    assert is_alarm(breach, previous, consecutive) is alarm


def test_the_alarm_needs_the_previous_windows_breach(profile) -> None:
    statistics, _ = drift_statistics(window_documents(300, 5, spam_share=1.0), profile, THRESHOLDS, 1)
    history = {metric: [True] for metric in DRIFT_METRICS}
    history["length_ks"] = [False]
    results = {r.metric: r for r in decide(statistics, THRESHOLDS, history)}
    assert {m for m, r in results.items() if r.alarm} == set(DRIFT_METRICS) - {"length_ks"}


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson(80, 100, 0.95)
    assert (round(low, 4), round(high, 4)) == (0.7112, 0.8666)
    assert wilson(0, 0, 0.95) == (0.0, 1.0)


def test_quality_per_class_with_intervals_covering_the_values() -> None:
    truth = [0, 0, 1, 1, 1, 0, 1, 0, 1, 1] * 10
    predicted = [0, 1, 1, 1, 0, 0, 1, 0, 1, 1] * 10
    estimates = {(e.metric, e.class_name): e for e in quality(truth, predicted, CLASS_NAMES, 0.95, seed=3)}
    assert estimates[("accuracy", None)].value == pytest.approx(0.8)
    assert estimates[("precision", "t:1")].value == pytest.approx(5 / 6)
    assert estimates[("recall", "t:1")].value == pytest.approx(5 / 6)
    for estimate in estimates.values():
        assert estimate.lower <= estimate.value <= estimate.upper


def test_accuracy_breaches_below_the_held_out_accuracy_minus_the_drop(profile) -> None:
    good = window_documents(200, 8)
    bad = [dict(doc, truth_index=1 - doc["truth_index"]) for doc in window_documents(200, 9)]
    ok = quality_results(good, CLASS_NAMES, profile, THRESHOLDS, [], 1)[0]
    dropped = quality_results(bad, CLASS_NAMES, profile, THRESHOLDS, [True], 1)[0]
    assert ok.breach is False and ok.reference_value == profile.held_out_accuracy
    assert dropped.breach is True and dropped.alarm is True and dropped.upper < profile.held_out_accuracy - 0.05
    few = quality_results(good[:10], CLASS_NAMES, profile, THRESHOLDS, [], 1)[0]
    assert (few.status, few.breach) == ("too_few_samples", None)
    none = quality_results([], CLASS_NAMES, profile, THRESHOLDS, [], 1)
    assert [(r.metric, r.status, r.samples) for r in none] == [("accuracy", "too_few_samples", 0)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("vocabulary"), "field 'vocabulary' is missing or not list"),
        (lambda p: p.update(format=9), "profile format 9 is not one of (1,)"),
        (lambda p: p["token_buckets"].update(function="md5"), "token_buckets.function must be one of ['crc32']"),
        (lambda p: p.update(confidence=[]), "field 'confidence' must be a non-empty list of finite numbers"),
        (lambda p: p["tokenizer"].update(pattern="("), "tokenizer.pattern is not a regular expression"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(change, message: str) -> None:
    data = json.loads(json.dumps(profile_data()))
    change(data)
    with pytest.raises(ProfileError, match="^" + re.escape(f"bad.json: {message}")):
        parse_profile(data, "bad.json")


def test_the_vectorised_bootstrap_f1_equals_sklearn() -> None:
    from feedback.monitor.quality import _f1_per_resample
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(4)
    truth, predicted = rng.integers(0, 2, (50, 30)), rng.integers(0, 2, (50, 30))
    predicted[0] = 0  # a resample that never predicts the class: F1 0, as sklearn's zero_division=0
    ours = _f1_per_resample(truth == 1, predicted == 1)
    theirs = [
        f1_score(t, p, labels=[1], average="macro", zero_division=0) for t, p in zip(truth, predicted, strict=True)
    ]
    assert ours == pytest.approx(theirs)


def test_the_profile_store_finds_profiles_by_version_and_reports_bad_files(tmp_path) -> None:
    from feedback.monitor.profiles import ProfileStore

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "profile.json").write_text(json.dumps(profile_data("1.0.0+a")))
    (tmp_path / "a" / "metadata.json").write_text(json.dumps({"version": "1.0.0+a"}))  # the model's, skipped
    (tmp_path / "b.json").write_text(json.dumps({**profile_data("2.0.0+b"), "format": 7}))
    (tmp_path / "c.json").write_text("{broken")
    store = ProfileStore(tmp_path)
    store.refresh()
    assert store.versions == ["1.0.0+a"] and store.get("2.0.0+b") is None
    assert sorted(Path(name).name for name in store.errors) == ["b.json", "c.json"]
    assert "profile format 7 is not one of (1,)" in store.errors[str(tmp_path / "b.json")]


def test_the_metrics_show_only_the_newest_windows_groups() -> None:
    from feedback.monitor.core import Group
    from feedback.monitor.metrics import MonitorMetrics

    metrics = MonitorMetrics()
    gone, stays = Group("old", "default", "1"), Group("new", "default", "1")
    alarm = Result("drift", "oov_rate", value=0.3, breach=True, alarm=True, threshold=0.01, adjusted_p_value=0.001)
    metrics.record(gone, [alarm])
    metrics.new_window()
    metrics.record(stays, [alarm])
    series = {s.labels["deployment"] for m in metrics.drift_alarm.collect() for s in m.samples}
    assert series == {"new"}
