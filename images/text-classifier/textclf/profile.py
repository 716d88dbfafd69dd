"""The reference profile: what the traffic looked like at training time, for the monitor to compare windows with.

`train.py` writes it beside the model (`artifacts/profile.json`), versioned with it (`model_version` is the
model's version), so the image ships it. It holds what the monitor's detectors need, computed on the held-out
rows (what the model was evaluated on) unless a field says otherwise:

- `label_prior`: share of each true label in the training rows; `predicted_labels`: share of each predicted
  label on the held-out rows (the reference of prediction drift); `held_out`: rows and accuracy (quality);
- `confidence`: the predicted score (top probability) of every held-out row; `text_length`: their lengths in
  characters; `oov_rate`: per held-out row, the share of its tokens outside `vocabulary`;
- `tokenizer`: how the monitor must split texts (a regular expression, lower-cased), so both sides agree
  without sharing code; `vocabulary`: tokens found in at least `MIN_DOCUMENT_COUNT` training rows;
- `token_buckets`: the share of held-out tokens per hashed bucket (`crc32(token) % buckets`);
- `reference_sample`: up to `REFERENCE_SAMPLE` held-out texts for the monitor's learned detector (a domain
  classifier reference-vs-window). The data ships with the repository (data/PROVENANCE.md: synthetic, no
  personal data), so shipping a sample of it in the image discloses nothing new.

Standard library only, so a test can build a profile without the model's environment.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROFILE_FILE = "profile.json"
PROFILE_FORMAT = 1
TOKEN_PATTERN = r"[^\W_]+"  # runs of letters and digits in any script; lower-cased first
HASH_FUNCTION = "crc32"
HASH_BUCKETS = 64
MIN_DOCUMENT_COUNT = 2  # the vectorizer's min_df: a token seen in one training row is not vocabulary
REFERENCE_SAMPLE = 1000
_TOKEN = re.compile(TOKEN_PATTERN)


def monitor_tokens(text: str) -> list[str]:
    """The tokens the monitor sees in a text (not the model's spaCy lemmas: the monitor has no spaCy)."""
    return _TOKEN.findall(text.lower())


def token_bucket(token: str, buckets: int = HASH_BUCKETS) -> int:
    return zlib.crc32(token.encode("utf-8")) % buckets


def _shares(counts: Counter, names: Sequence[str]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {name: round(counts.get(name, 0) / total, 6) for name in names}


def _oov_rate(tokens: list[str], vocabulary: set[str]) -> float:
    return round(sum(token not in vocabulary for token in tokens) / len(tokens), 6) if tokens else 0.0


def _sample(texts: Sequence[str], size: int) -> list[str]:
    """A deterministic sample: the `size` texts with the smallest hash (stable across runs and row order)."""
    return sorted(texts, key=lambda text: hashlib.sha256(text.encode("utf-8")).hexdigest())[:size]


def build_profile(
    *,
    model_version: str,
    class_names: Sequence[str],
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    held_out_texts: Sequence[str],
    held_out_labels: Sequence[int],
    held_out_probabilities: Sequence[Sequence[float]],
) -> dict[str, Any]:
    if not held_out_texts or not len(held_out_texts) == len(held_out_labels) == len(held_out_probabilities):
        raise ValueError("the profile needs held-out texts, labels and probabilities of equal, non-zero length")
    predicted = [max(range(len(row)), key=row.__getitem__) for row in held_out_probabilities]
    document_counts: Counter = Counter()
    for text in train_texts:
        document_counts.update(set(monitor_tokens(text)))
    vocabulary = sorted(token for token, count in document_counts.items() if count >= MIN_DOCUMENT_COUNT)
    known = set(vocabulary)
    held_out_tokens = [monitor_tokens(text) for text in held_out_texts]
    buckets = Counter(token_bucket(token) for tokens in held_out_tokens for token in tokens)
    total_tokens = sum(buckets.values()) or 1
    correct = sum(int(p == t) for p, t in zip(predicted, held_out_labels, strict=True))
    return {
        "format": PROFILE_FORMAT,
        "model_version": model_version,
        "class_names": list(class_names),
        "label_prior": _shares(Counter(class_names[label] for label in train_labels), class_names),
        "predicted_labels": _shares(Counter(class_names[index] for index in predicted), class_names),
        "held_out": {"rows": len(held_out_texts), "accuracy": round(correct / len(held_out_texts), 6)},
        "confidence": [round(float(max(row)), 6) for row in held_out_probabilities],
        "text_length": [len(text) for text in held_out_texts],
        "tokenizer": {"pattern": TOKEN_PATTERN, "lowercase": True},
        "vocabulary": vocabulary,
        "oov_rate": [_oov_rate(tokens, known) for tokens in held_out_tokens],
        "token_buckets": {
            "function": HASH_FUNCTION,
            "buckets": HASH_BUCKETS,
            "shares": [round(buckets.get(index, 0) / total_tokens, 8) for index in range(HASH_BUCKETS)],
        },
        "reference_sample": _sample(held_out_texts, REFERENCE_SAMPLE),
    }


def write_profile(directory: Path, profile: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PROFILE_FILE
    path.write_text(json.dumps(profile, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return path
