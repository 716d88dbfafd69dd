"""Accuracy with its interval, and the paired difference of two models on the same rows. Closed forms, no
resampling, so the same predictions always give the same numbers.

- one model: Wilson score interval of the accuracy (good coverage at small n and near 0 or 1);
- two models on the same rows: the difference of accuracies is (b - c) / n, where b rows only the candidate gets
  right and c rows only the serving model does; its interval is the normal approximation for paired proportions
  (variance ((b + c) - (b - c)^2 / n) / n^2), the interval behind McNemar's test. Pairing matters: both models
  see the same hard rows, so the difference is much tighter than two separate intervals suggest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any


def z_value(confidence: float) -> float:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence {confidence:g} must be from 0.5 to below 1")
    return NormalDist().inv_cdf((1.0 + confidence) / 2.0)


def predicted(probabilities: Sequence[Sequence[float]]) -> list[int]:
    """argmax per row; ties go to the lower index, as numpy's argmax does."""
    return [max(range(len(row)), key=lambda index: (row[index], -index)) for row in probabilities]


@dataclass(frozen=True)
class Accuracy:
    rows: int
    correct: int
    accuracy: float
    low: float
    high: float
    f1_macro: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _f1_macro(labels: Sequence[int], guesses: Sequence[int], classes: int) -> float:
    scores = []
    for cls in range(classes):
        tp = sum(1 for t, p in zip(labels, guesses, strict=True) if t == cls and p == cls)
        fp = sum(1 for t, p in zip(labels, guesses, strict=True) if t != cls and p == cls)
        fn = sum(1 for t, p in zip(labels, guesses, strict=True) if t == cls and p != cls)
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / classes


def wilson(correct: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of correct / n (0 to 1 for n = 0)."""
    if n == 0:
        return 0.0, 1.0
    z = z_value(confidence)
    share = correct / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)


def accuracy_interval(rows: int, correct: int, confidence: float) -> dict[str, Any]:
    """{rows, correct, accuracy, low, high} from counts (accuracy None without rows)."""
    low, high = wilson(correct, rows, confidence)
    return {
        "rows": rows,
        "correct": correct,
        "accuracy": round(correct / rows, 6) if rows else None,
        "low": low,
        "high": high,
    }


def accuracy(labels: Sequence[int], guesses: Sequence[int], confidence: float, classes: int = 2) -> Accuracy:
    if len(labels) != len(guesses):
        raise ValueError(f"{len(labels)} labels but {len(guesses)} predictions")
    n = len(labels)
    if n == 0:
        return Accuracy(0, 0, math.nan, 0.0, 1.0, math.nan)
    correct = sum(1 for t, p in zip(labels, guesses, strict=True) if t == p)
    low, high = wilson(correct, n, confidence)
    return Accuracy(
        rows=n,
        correct=correct,
        accuracy=round(correct / n, 6),
        low=low,
        high=high,
        f1_macro=round(_f1_macro(labels, guesses, classes), 6),
    )


@dataclass(frozen=True)
class Difference:
    """candidate accuracy minus serving accuracy on the same rows, with its interval."""

    rows: int
    only_candidate_right: int
    only_serving_right: int
    difference: float
    low: float
    high: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_difference(
    labels: Sequence[int], candidate: Sequence[int], serving: Sequence[int], confidence: float
) -> Difference:
    if not len(labels) == len(candidate) == len(serving):
        raise ValueError("labels and both models' predictions must have the same length")
    n = len(labels)
    if n == 0:
        return Difference(0, 0, 0, math.nan, -1.0, 1.0)
    b = sum(1 for t, c, s in zip(labels, candidate, serving, strict=True) if c == t and s != t)
    c = sum(1 for t, c, s in zip(labels, candidate, serving, strict=True) if c != t and s == t)
    difference = (b - c) / n
    variance = max(0.0, ((b + c) - (b - c) ** 2 / n) / (n * n))
    half = z_value(confidence) * math.sqrt(variance)
    return Difference(
        rows=n,
        only_candidate_right=b,
        only_serving_right=c,
        difference=round(difference, 6),
        low=round(max(-1.0, difference - half), 6),
        high=round(min(1.0, difference + half), 6),
    )
