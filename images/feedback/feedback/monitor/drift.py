"""Drift statistics of one window against a reference profile: pure functions of arrays, seeded where random.

Each returns a `Statistic`: the value, a p-value where the test has one (these go through the window's
multiple-testing control), or a threshold where the metric is a score (PSI, the domain classifier's AUC).

- prediction drift: predicted labels vs the held-out predictions (chi-square and PSI), confidence (two-sample KS);
- input drift: text length (KS), out-of-vocabulary rate per text (one-sided Mann-Whitney U: more unknown words),
  token distribution over hashed buckets (PSI), and a domain classifier that tries to tell window texts from the
  reference sample: its cross-validated AUC against a threshold from label permutations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

PSI_FLOOR = 1e-4  # shares below this count as this, so that an empty bucket gives a large but finite PSI
DOMAIN_FEATURES = 2**12
DOMAIN_MAX_PER_SIDE = 400  # texts per side for the domain classifier (the cost grows with permutations x folds)
DOMAIN_FOLDS = 5
OTHER_LABEL = "(other)"  # a predicted label the profile does not know


@dataclass(frozen=True)
class Statistic:
    metric: str
    value: float
    samples: int
    p_value: float | None = None
    threshold: float | None = None  # score metrics: a breach when value > threshold
    reference_value: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    shares = counts / total if total > 0 else np.full(counts.shape, 1.0 / counts.size)
    shares = np.maximum(shares, PSI_FLOOR)
    return shares / shares.sum()


def psi(window_counts: np.ndarray, reference_shares: np.ndarray) -> float:
    """Population stability index: sum over buckets of (w - r) * ln(w / r), both floored at PSI_FLOOR."""
    window = _shares(np.asarray(window_counts, dtype=float))
    reference = _shares(np.asarray(reference_shares, dtype=float))
    return float(np.sum((window - reference) * np.log(window / reference)))


def label_counts(labels: Sequence[str], class_names: Sequence[str]) -> np.ndarray:
    """Counts per class name, plus one last cell for labels the profile does not know."""
    index = {name: i for i, name in enumerate(class_names)}
    counts = np.zeros(len(class_names) + 1)
    for label in labels:
        counts[index.get(label, len(class_names))] += 1
    return counts


def label_drift(
    labels: Sequence[str], class_names: Sequence[str], reference: dict[str, float], psi_threshold: float
) -> list[Statistic]:
    """Chi-square goodness of fit of the predicted labels to the held-out predicted shares, and their PSI."""
    counts = label_counts(labels, class_names)
    expected_shares = _shares(np.asarray([reference.get(name, 0.0) for name in class_names] + [0.0]))
    n = int(counts.sum())
    chi2 = stats.chisquare(counts, f_exp=expected_shares * n)
    shares = {name: round(float(c / n), 6) for name, c in zip([*class_names, OTHER_LABEL], counts, strict=True) if c}
    reference_shares = {name: reference.get(name, 0.0) for name in class_names}
    detail = {"shares": shares, "reference_shares": reference_shares}
    return [
        Statistic("label_chi2", float(chi2.statistic), n, p_value=float(chi2.pvalue), detail=detail),
        Statistic("label_psi", psi(counts, expected_shares), n, threshold=psi_threshold, detail=detail),
    ]


def ks(metric: str, window: Sequence[float], reference: np.ndarray) -> Statistic:
    result = stats.ks_2samp(np.asarray(window, dtype=float), reference)
    return Statistic(
        metric,
        float(result.statistic),
        len(window),
        p_value=float(result.pvalue),
        reference_value=float(np.median(reference)),
        detail={"median": float(np.median(window))},
    )


def oov_rates(texts: Sequence[str], tokens: Callable[[str], list[str]], vocabulary: frozenset[str]) -> list[float]:
    rates = []
    for text in texts:
        words = tokens(text)
        rates.append(sum(word not in vocabulary for word in words) / len(words) if words else 0.0)
    return rates


def oov_drift(rates: Sequence[float], reference: np.ndarray) -> Statistic:
    """More unknown words than at training time: one-sided Mann-Whitney U on the per-text rates."""
    result = stats.mannwhitneyu(np.asarray(rates, dtype=float), reference, alternative="greater")
    return Statistic(
        "oov_rate",
        float(np.mean(rates)),
        len(rates),
        p_value=float(result.pvalue),
        reference_value=float(np.mean(reference)),
    )


def token_drift(
    texts: Sequence[str],
    tokens: Callable[[str], list[str]],
    bucket: Callable[[str], int],
    reference_shares: np.ndarray,
    psi_threshold: float,
) -> Statistic:
    counts = np.zeros(reference_shares.size)
    for text in texts:
        for word in tokens(text):
            counts[bucket(word)] += 1
    return Statistic(
        "token_psi",
        psi(counts, reference_shares),
        int(counts.sum()),
        threshold=psi_threshold,
        detail={"texts": len(texts)},
    )


def _out_of_fold_auc(features: Any, labels: np.ndarray, seed: int) -> float:
    folds = StratifiedKFold(n_splits=DOMAIN_FOLDS, shuffle=True, random_state=seed)
    scores = np.zeros(labels.size)
    for train, test in folds.split(np.zeros(labels.size), labels):
        model = LogisticRegression(C=1.0, solver="liblinear")  # seconds for ~100 fits; lbfgs took a minute
        model.fit(features[train], labels[train])
        scores[test] = model.predict_proba(features[test])[:, 1]
    return float(roc_auc_score(labels, scores))


def domain_classifier(
    texts: Sequence[str],
    reference: Sequence[str],
    tokens: Callable[[str], list[str]],
    *,
    permutations: int,
    min_auc: float,
    seed: int,
) -> Statistic:
    """Can a classifier tell this window's texts from the reference sample? Cross-validated AUC (0.5: no), and the
    threshold it must pass: the 95th percentile of the AUCs with the domain labels permuted, and at least
    `min_auc` (an effect size, so a large window cannot alarm on a difference nobody would care about)."""
    rng = np.random.default_rng(seed)
    per_side = min(len(texts), len(reference), DOMAIN_MAX_PER_SIDE)
    window_sample = [texts[i] for i in rng.choice(len(texts), per_side, replace=False)]
    reference_sample = [reference[i] for i in rng.choice(len(reference), per_side, replace=False)]
    vectorizer = HashingVectorizer(
        n_features=DOMAIN_FEATURES, analyzer=tokens, alternate_sign=False, norm="l2", dtype=np.float64
    )
    features = vectorizer.transform([*reference_sample, *window_sample]).tocsr()
    labels = np.r_[np.zeros(per_side), np.ones(per_side)]
    auc = _out_of_fold_auc(features, labels, seed)
    permuted = np.array([_out_of_fold_auc(features, rng.permutation(labels), seed) for _ in range(permutations)])
    threshold = max(min_auc, float(np.quantile(permuted, 0.95)))
    return Statistic(
        "domain_auc",
        auc,
        per_side,
        threshold=threshold,
        p_value=None,
        reference_value=float(np.mean(permuted)),
        detail={
            "permutations": permutations,
            "permutation_p": float((1 + np.sum(permuted >= auc)) / (1 + permutations)),
        },
    )
