"""Pure logic of the monitor: windows, groups, the results of one window and the documents that store them.

No search or Kafka client here: inputs are capture documents (dicts, as the indexer wrote them), a profile and the
thresholds; outputs are result documents with deterministic ids (window start + group + metric), so computing a
window twice overwrites, never doubles.

A window is [start, start + window_s) on the capture documents' `@timestamp` (the request time; a feedback that
found no prediction counts at its feedback time). A group is (deployment, predictor, model_version); a document
without one of them counts under "unknown" (a request whose response never came carries no model version).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feedback.monitor import drift
from feedback.monitor.alarms import adjusted_p_values, is_alarm
from feedback.monitor.profiles import Profile
from feedback.monitor.quality import quality
from feedback.monitor.settings import Thresholds

UNKNOWN = "unknown"
ALL = "*"  # the group of results that belong to no deployment (the window summary, dead letters, lag)
MODES = ("realtime", "streaming", "batch")
DRIFT_METRICS = ("label_chi2", "label_psi", "confidence_ks", "length_ks", "oov_rate", "token_psi", "domain_auc")
CAPTURE_METRICS = ("volume", "without_response", "errors", "orphan_feedback", "feedback")
QUALITY_METRICS = ("accuracy", "precision", "recall", "f1")
CAPTURE_FIELDS = ("@timestamp", "deployment", "predictor", "model_version", "mode", "outcome", "orphan_reason")
DRIFT_FIELDS = ("input_text", "predicted_label", "predicted_score")
QUALITY_FIELDS = ("truth_index", "predicted_index", "class_names", "feedback_time")
MAX_ID_BYTES = 400


@dataclass(frozen=True, order=True)
class Window:
    start: int  # seconds since the epoch, a multiple of `length`
    length: int

    @classmethod
    def containing(cls, time_s: float, length: int) -> Window:
        return cls(int(time_s // length) * length, length)

    @property
    def end(self) -> int:
        return self.start + self.length

    def next(self) -> Window:
        return Window(self.end, self.length)

    def previous(self, count: int = 1) -> Window:
        return Window(self.start - count * self.length, self.length)

    @property
    def start_iso(self) -> str:
        return iso(self.start)

    @property
    def end_iso(self) -> str:
        return iso(self.end)


def iso(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch from a search date (ISO text or epoch milliseconds); None when unreadable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000.0
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, order=True)
class Group:
    deployment: str
    predictor: str
    model_version: str

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Group:
        def key(name: str) -> str:
            value = document.get(name)
            return str(value) if isinstance(value, str) and value else UNKNOWN

        return cls(key("deployment"), key("predictor"), key("model_version"))

    @property
    def labels(self) -> dict[str, str]:
        return {"deployment": self.deployment, "predictor": self.predictor, "model_version": self.model_version}


EVERYTHING = Group(ALL, ALL, ALL)


@dataclass
class Result:
    """One metric of one window and group: what a monitor document stores."""

    kind: str  # window | capture | drift | quality
    metric: str
    status: str = "ok"  # ok | too_few_samples | no_profile | empty | unavailable
    value: float | None = None
    samples: int = 0
    p_value: float | None = None
    adjusted_p_value: float | None = None
    threshold: float | None = None
    reference_value: float | None = None
    lower: float | None = None
    upper: float | None = None
    breach: bool | None = None
    alarm: bool | None = None
    class_name: str | None = None
    by_mode: dict[str, int] | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.metric if self.class_name is None else f"{self.metric}:{self.class_name}"


def result_id(window: Window, group: Group, key: str) -> str:
    doc_id = f"{window.start_iso}|{group.deployment}|{group.predictor}|{group.model_version}|{key}"
    if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        return "sha256-" + hashlib.sha256(doc_id.encode("utf-8")).hexdigest()
    return doc_id


def result_document(window: Window, group: Group, result: Result, computed_at: float) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@timestamp": window.start_iso,
        "window_start": window.start_iso,
        "window_end": window.end_iso,
        "window_seconds": window.length,
        **group.labels,
        "kind": result.kind,
        "metric": result.metric,
        "status": result.status,
        "samples": result.samples,
        "computed_at": iso(computed_at),
    }
    for name in (
        "value",
        "p_value",
        "adjusted_p_value",
        "threshold",
        "reference_value",
        "lower",
        "upper",
        "breach",
        "alarm",
        "class_name",
        "by_mode",
        "reason",
    ):
        value = getattr(result, name)
        if value is not None:
            document[name] = value
    if result.detail:
        document["detail"] = result.detail
    return document


def seed_of(window: Window, group: Group, salt: str) -> int:
    """A seed fixed by the window, group and purpose: a recompute gives the same numbers."""
    digest = hashlib.sha256(f"{window.start}|{group}|{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


# ------------------------------------------------------------------------------------------ capture health


@dataclass
class CaptureCounts:
    documents: int = 0
    by_mode: Counter = field(default_factory=Counter)
    by_outcome: Counter = field(default_factory=Counter)
    orphan_feedback: int = 0
    feedback: int = 0


def capture_results(counts: CaptureCounts) -> list[Result]:
    without_response = counts.by_outcome.get("pending", 0) + counts.by_outcome.get("no_response", 0)
    return [
        Result(
            "capture",
            "volume",
            value=counts.documents,
            samples=counts.documents,
            by_mode={mode: int(counts.by_mode.get(mode, 0)) for mode in MODES},
        ),
        Result(
            "capture",
            "without_response",
            value=without_response,
            samples=counts.documents,
            detail={
                "no_response": counts.by_outcome.get("no_response", 0),
                "pending": counts.by_outcome.get("pending", 0),
            },
        ),
        Result("capture", "errors", value=counts.by_outcome.get("error", 0), samples=counts.documents),
        Result("capture", "orphan_feedback", value=counts.orphan_feedback, samples=counts.documents),
        Result("capture", "feedback", value=counts.feedback, samples=counts.documents),
    ]


# ---------------------------------------------------------------------------------------------------- drift


def _strings(documents: Iterable[Mapping[str, Any]], name: str, skipped: Counter) -> list[str]:
    values = []
    for document in documents:
        value = document.get(name)
        if isinstance(value, str):
            values.append(value)
        else:
            skipped[f"no_{name}"] += 1
    return values


def _numbers(documents: Iterable[Mapping[str, Any]], name: str, skipped: Counter) -> list[float]:
    values = []
    for document in documents:
        value = document.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            values.append(float(value))
        else:
            skipped[f"no_{name}"] += 1
    return values


def drift_statistics(
    documents: Sequence[Mapping[str, Any]], profile: Profile, thresholds: Thresholds, seed: int
) -> tuple[list[drift.Statistic | Result], Counter]:
    """Every drift metric of a window, or a too_few_samples result where its field has too few values. Documents
    without a response (no label, score) still count for the input metrics; the skipped counts say why."""
    skipped: Counter = Counter()
    answered = [d for d in documents if d.get("outcome") in (None, "ok")]
    labels = _strings(answered, "predicted_label", skipped)
    scores = _numbers(answered, "predicted_score", skipped)
    texts = _strings(documents, "input_text", skipped)
    minimum = thresholds.min_samples
    out: list[drift.Statistic | Result] = []

    def enough(metrics: Sequence[str], count: int) -> bool:
        if count >= minimum:
            return True
        out.extend(
            Result("drift", m, status="too_few_samples", samples=count, reason=f"{count} < {minimum}") for m in metrics
        )
        return False

    if enough(("label_chi2", "label_psi"), len(labels)):
        out.extend(drift.label_drift(labels, profile.class_names, profile.predicted_labels, thresholds.psi))
    if enough(("confidence_ks",), len(scores)):
        out.append(drift.ks("confidence_ks", scores, profile.confidence))
    if enough(("length_ks", "oov_rate", "token_psi", "domain_auc"), len(texts)):
        out.append(drift.ks("length_ks", [len(text) for text in texts], profile.text_length))
        out.append(drift.oov_drift(drift.oov_rates(texts, profile.tokens, profile.vocabulary), profile.oov_rate))
        out.append(drift.token_drift(texts, profile.tokens, profile.bucket, profile.bucket_shares, thresholds.psi))
        out.append(
            drift.domain_classifier(
                texts,
                profile.reference_sample,
                profile.tokens,
                permutations=thresholds.domain_permutations,
                min_auc=thresholds.domain_auc,
                seed=seed,
            )
        )
    return out, skipped


def decide(
    statistics: Sequence[drift.Statistic | Result],
    thresholds: Thresholds,
    history: Mapping[str, Sequence[bool | None]],
) -> list[Result]:
    """Breach and alarm flags for a window's drift statistics (see alarms.py); `history[metric]` holds that
    metric's breach flags in the windows right before, nearest first."""
    tested = {s.metric: s.p_value for s in statistics if isinstance(s, drift.Statistic) and s.p_value is not None}
    adjusted = adjusted_p_values(tested, thresholds.multiple_testing)
    results = []
    for statistic in statistics:
        if isinstance(statistic, Result):
            results.append(statistic)
            continue
        if statistic.metric in adjusted:
            breach = adjusted[statistic.metric] <= thresholds.fdr
        else:
            breach = statistic.threshold is not None and statistic.value > statistic.threshold
        alarm = is_alarm(breach, history.get(statistic.metric, ()), thresholds.consecutive_windows)
        results.append(
            Result(
                "drift",
                statistic.metric,
                value=statistic.value,
                samples=statistic.samples,
                p_value=statistic.p_value,
                adjusted_p_value=adjusted.get(statistic.metric),
                threshold=thresholds.fdr if statistic.metric in adjusted else statistic.threshold,
                reference_value=statistic.reference_value,
                breach=breach,
                alarm=alarm,
                detail=statistic.detail,
            )
        )
    return results


def no_profile_results(model_version: str, known: Sequence[str]) -> list[Result]:
    reason = (
        f"no reference profile for model version {model_version!r} (profiles for: {', '.join(known) or 'none'}); "
        "ship profile.json with the model (train.py writes it) and give the monitor a copy"
    )
    return [Result("drift", metric, status="no_profile", reason=reason) for metric in DRIFT_METRICS]


# -------------------------------------------------------------------------------------------------- quality


def labelled_pairs(documents: Iterable[Mapping[str, Any]], skipped: Counter) -> tuple[list[int], list[int]]:
    truth, predicted = [], []
    for document in documents:
        t, p = document.get("truth_index"), document.get("predicted_index")
        if isinstance(t, int) and isinstance(p, int) and not isinstance(t, bool) and not isinstance(p, bool):
            truth.append(t)
            predicted.append(p)
        else:
            skipped["truth_without_prediction"] += 1
    return truth, predicted


def quality_results(
    documents: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    profile: Profile | None,
    thresholds: Thresholds,
    previous_breaches: Sequence[bool | None],
    seed: int,
) -> list[Result]:
    """Quality of the window's labelled documents; the accuracy is a breach when its upper bound is more than
    `accuracy_drop` below the held-out accuracy of the model version's profile (no profile: no breach decided)."""
    skipped: Counter = Counter()
    truth, predicted = labelled_pairs(documents, skipped)
    n = len(truth)
    results: list[Result] = []
    if n == 0:
        return [Result("quality", "accuracy", status="too_few_samples", samples=0, reason="no ground truth yet")]
    for estimate in quality(truth, predicted, class_names, thresholds.confidence_level, seed):
        results.append(
            Result(
                "quality",
                estimate.metric,
                status="ok" if n >= thresholds.min_labelled else "too_few_samples",
                value=estimate.value,
                lower=estimate.lower,
                upper=estimate.upper,
                samples=estimate.samples,
                class_name=estimate.class_name,
            )
        )
    accuracy = results[0]
    if skipped:
        accuracy.detail["skipped"] = dict(skipped)
    if profile is None:
        accuracy.reason = "no reference profile: accuracy is reported, no breach decided"
        return results
    accuracy.reference_value = profile.held_out_accuracy
    accuracy.threshold = profile.held_out_accuracy - thresholds.accuracy_drop
    if accuracy.status == "ok" and accuracy.upper is not None:
        accuracy.breach = accuracy.upper < accuracy.threshold
        accuracy.alarm = is_alarm(accuracy.breach, previous_breaches, thresholds.consecutive_windows)
    return results


def class_names_of(documents: Iterable[Mapping[str, Any]], profile: Profile | None) -> list[str]:
    if profile is not None:
        return list(profile.class_names)
    for document in documents:
        names = document.get("class_names")
        if isinstance(names, list) and names:
            return [str(name) for name in names]
    return []
