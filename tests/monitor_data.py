"""Seeded data for the monitor's tests and benchmark: a reference profile built by the classifier's own
`textclf.profile.build_profile` from the shipped comments (held-out split as train.py makes it), and capture
documents shaped like the indexer's, from stationary comments or the spam wave of devstack/drift_traffic.py.

The model's probabilities come from a stand-in (the model needs its own environment): a fixed function of the text
and its label, the same for the profile and the windows, so stationary windows match the reference and the spam
wave, which the stand-in scores as removed with high confidence, does not.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from functools import cache
from typing import Any

from textclf.profile import build_profile

from devstack.demo import load_comments
from devstack.drift_traffic import spam_text

CLASS_NAMES = ["t:0", "t:1"]
MODEL_VERSION = "1.0.0+monitortest"
SPAM_LABEL = 1


def removed_probability(text: str, label: int) -> float:
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    base = 0.72 if label else 0.28
    return min(0.99, max(0.01, base + rng.gauss(0.0, 0.18)))


@cache
def comments() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
    held_out, train = load_comments()
    return tuple(held_out), tuple(train)


def profile_data(model_version: str = MODEL_VERSION) -> dict[str, Any]:
    held_out, train = comments()
    probabilities = [[1 - removed_probability(t, label), removed_probability(t, label)] for t, label in held_out]
    return build_profile(
        model_version=model_version,
        class_names=CLASS_NAMES,
        train_texts=[t for t, _ in train],
        train_labels=[label for _, label in train],
        held_out_texts=[t for t, _ in held_out],
        held_out_labels=[label for _, label in held_out],
        held_out_probabilities=probabilities,
    )


def document(text: str, label: int, *, spam: bool = False, truth: bool = True, **fields: Any) -> dict[str, Any]:
    """A joined capture document as the indexer writes it (the fields the monitor reads)."""
    p1 = 0.97 if spam else removed_probability(text, label)
    predicted = int(p1 >= 0.5)
    doc: dict[str, Any] = {
        "input_text": text,
        "class_names": CLASS_NAMES,
        "probabilities": [1 - p1, p1],
        "predicted_index": predicted,
        "predicted_label": CLASS_NAMES[predicted],
        "predicted_score": max(p1, 1 - p1),
        "outcome": "ok",
        "mode": "realtime",
    }
    if truth:
        doc.update(truth=str(label), truth_index=label, correct=label == predicted)
    doc.update(fields)
    return doc


def window_documents(size: int, seed: int, spam_share: float = 0.0, truth_share: float = 1.0) -> list[dict[str, Any]]:
    """`size` documents: stationary held-out comments, each replaced by spam with probability `spam_share` (whose
    truth is "removed"); ground truth on a `truth_share` of them."""
    held_out, _ = comments()
    rng = random.Random(seed)
    docs = []
    for _ in range(size):
        truth = rng.random() < truth_share
        if rng.random() < spam_share:
            docs.append(document(spam_text(rng), SPAM_LABEL, spam=True, truth=truth))
        else:
            text, label = rng.choice(held_out)
            docs.append(document(text, label, truth=truth))
    return docs


def texts(docs: Sequence[dict[str, Any]]) -> list[str]:
    return [doc["input_text"] for doc in docs]
