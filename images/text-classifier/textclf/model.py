"""The estimator (TF-IDF over spaCy lemmas + logistic regression) and its versioned artifacts on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from textclf.tokens import Lemmatizer, identity

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
CLASS_NAMES = ["t:0", "t:1"]  # t:1 = probability that moderators remove the comment (label 1)


class ArtifactsError(RuntimeError):
    """Trained artifacts are missing or unreadable; the message says how to produce them."""


def build_estimator(c: float = 1.0, max_features: int = 30_000) -> Pipeline:
    vectorizer = TfidfVectorizer(
        tokenizer=identity,
        preprocessor=identity,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        min_df=2,
        max_features=max_features,
        sublinear_tf=True,
    )
    classifier = LogisticRegression(C=c, max_iter=2000, class_weight=None)
    return Pipeline([("tfidf", vectorizer), ("logreg", classifier)])


@dataclass
class TextModel:
    """A fitted estimator plus its metadata (version, metrics, training inputs)."""

    estimator: Pipeline
    metadata: dict[str, Any]
    lemmatizer: Lemmatizer

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """An (n, 2) array of [P(kept), P(removed)] per text, rows summing to 1."""
        return self.estimator.predict_proba(self.lemmatizer.lemmas(texts))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.estimator, directory / MODEL_FILE)
        (directory / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path, lemmatizer: Lemmatizer | None = None) -> TextModel:
        model_path, metadata_path = directory / MODEL_FILE, directory / METADATA_FILE
        if not model_path.is_file() or not metadata_path.is_file():
            raise ArtifactsError(
                f"no trained model in {directory} (need {MODEL_FILE} and {METADATA_FILE}); "
                f"run `python train.py --out {directory}` in images/text-classifier first"
            )
        metadata = json.loads(metadata_path.read_text())
        estimator = joblib.load(model_path)
        return cls(estimator=estimator, metadata=metadata, lemmatizer=lemmatizer or Lemmatizer())
