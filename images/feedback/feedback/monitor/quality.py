"""Model quality from ground truth in one window: accuracy, precision, recall and F1 per class, with intervals.

Accuracy, precision and recall are proportions: Wilson score intervals (scipy's `binomtest(...).proportion_ci`).
F1 is not a proportion: a seeded bootstrap percentile interval over the window's labelled documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import f1_score

BOOTSTRAP_RESAMPLES = 200


@dataclass(frozen=True)
class Estimate:
    metric: str
    value: float
    lower: float
    upper: float
    samples: int
    class_name: str | None = None


def wilson(successes: int, trials: int, level: float) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=level, method="wilson")
    return float(interval.low), float(interval.high)


def _proportion(metric: str, successes: int, trials: int, level: float, class_name: str | None) -> Estimate:
    low, high = wilson(successes, trials, level)
    return Estimate(metric, successes / trials if trials else 0.0, low, high, trials, class_name)


def quality(
    truth: Sequence[int], predicted: Sequence[int], class_names: Sequence[str], level: float, seed: int
) -> list[Estimate]:
    """Accuracy, then precision, recall and F1 of each class, from paired truth and predicted class indices."""
    y_true, y_pred = np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)
    n = y_true.size
    estimates = [_proportion("accuracy", int(np.sum(y_true == y_pred)), n, level, None)]
    resamples = np.random.default_rng(seed).integers(0, n, (BOOTSTRAP_RESAMPLES, n)) if n else None
    tail = (1 - level) / 2
    for index, name in enumerate(class_names):
        true_positive = int(np.sum((y_pred == index) & (y_true == index)))
        estimates.append(_proportion("precision", true_positive, int(np.sum(y_pred == index)), level, name))
        estimates.append(_proportion("recall", true_positive, int(np.sum(y_true == index)), level, name))
        f1 = float(f1_score(y_true, y_pred, labels=[index], average="macro", zero_division=0)) if n else 0.0
        if resamples is None:
            estimates.append(Estimate("f1", f1, 0.0, 1.0, n, name))
            continue
        boot = _f1_per_resample(y_true[resamples] == index, y_pred[resamples] == index)
        estimates.append(
            Estimate("f1", f1, float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail)), n, name)
        )
    return estimates


def _f1_per_resample(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """F1 of one class in each row of boolean (resamples x n) arrays: 2 TP / (2 TP + FP + FN), 0 when undefined
    (sklearn's zero_division=0), in one vectorised pass instead of a scoring call per resample."""
    true_positive = np.sum(actual & predicted, axis=1)
    denominator = 2 * true_positive + np.sum(predicted & ~actual, axis=1) + np.sum(actual & ~predicted, axis=1)
    return np.divide(2 * true_positive, denominator, out=np.zeros(actual.shape[0]), where=denominator > 0)
