"""Runs INSIDE the model's virtualenv (spaCy, scikit-learn, seldon-core), started by test_pipeline.py.

Reads {"texts": [...]} on stdin, exercises the real pipeline and the Seldon wrapper class on them and on
bad payloads, and prints one JSON object with what it saw. Holds no assertions: the dev-side test does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException
from TextClassifier import TextClassifier
from textclf.cleaning import clean_text
from textclf.tokens import Lemmatizer


def rejection(model: TextClassifier, payload: object) -> dict[str, object] | None:
    try:
        model.predict(payload, [])
    except SeldonMicroserviceException as exc:
        return {"status_code": exc.status_code, "message": exc.message, "reason": exc.reason}
    return None


def main() -> None:
    texts = json.load(sys.stdin)["texts"]
    lemmatizer = Lemmatizer()
    model = TextClassifier(artifacts_dir=os.environ["MODEL_ARTIFACTS_DIR"])
    model.metrics()  # start from an empty buffer
    probabilities = model.predict(np.array(texts), ["text"])
    metrics_after_predict = model.metrics()
    metrics_again = model.metrics()
    feedback = model.send_feedback(np.array(["a text"]), [], 1.0, np.array([[0, 1]]))
    metrics_after_feedback = model.metrics()
    out = {
        "cleaned": [clean_text(text) for text in texts],
        "lemmas": lemmatizer.lemmas(texts),
        "probabilities": np.asarray(probabilities).tolist(),
        "column_probabilities": model.predict(np.array([[text] for text in texts]), ["text"]).tolist(),
        "class_names": model.class_names(),
        "tags": model.tags(),
        "metrics_after_predict": metrics_after_predict,
        "metrics_again": metrics_again,
        "feedback_response": feedback,
        "metrics_after_feedback": metrics_after_feedback,
        "health": model.health_status(),
        "rejections": {
            "numbers": rejection(model, np.array([1, 2])),
            "nested": rejection(model, np.array([["a", "b"]])),
            "empty": rejection(model, np.array([])),
            "too_long": rejection(model, np.array(["x" * 20_000])),
        },
        "missing_artifacts": None,
    }
    try:
        TextClassifier(artifacts_dir=str(Path(os.environ["MODEL_ARTIFACTS_DIR"]) / "absent"))
    except RuntimeError as exc:
        out["missing_artifacts"] = str(exc)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
