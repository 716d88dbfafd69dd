"""The Seldon Python wrapper class: `seldon-core-microservice TextClassifier --service-type MODEL`.

Loads the trained artifacts (`MODEL_ARTIFACTS_DIR`, else `artifacts/` next to this file), answers
`predict` with [P(kept), P(removed)] per text under the class names `t:0`, `t:1`, accepts feedback, and
reports custom metrics and the model version (in `meta.tags.model_version` of every response).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException
from textclf.model import CLASS_NAMES, TextModel
from textclf.request_checks import build_request_checks
from textclf.validation import DEFAULT_MAX_BATCH, DEFAULT_MAX_TEXT_CHARS, InputError, texts_from_payload

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
HEALTH_TEXT = "Thanks for sharing the paper, the sample size looks reasonable."


def _truth_label(truth: Any) -> str:
    """'t:0' / 't:1' for a feedback truth given as a label (1), a row ([1]) or one-hot probabilities ([0, 1])."""
    value = truth.tolist() if hasattr(truth, "tolist") else truth
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, list) and len(value) == len(CLASS_NAMES):
        return CLASS_NAMES[int(np.argmax(value))]
    if isinstance(value, (int, float)) and int(value) in (0, 1) and value == int(value):
        return CLASS_NAMES[int(value)]
    return "unknown"


class TextClassifier:
    def __init__(
        self,
        artifacts_dir: str = "",
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        directory = Path(artifacts_dir or os.environ.get("MODEL_ARTIFACTS_DIR") or HERE / "artifacts")
        self.model = TextModel.load(directory)
        self.max_text_chars = int(max_text_chars)
        self.max_batch = int(max_batch)
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self.model_error_handler = build_request_checks(self.max_text_chars, self.max_batch, self._count_rejected)
        log.info("loaded text classifier %s from %s", self.model.version, directory)

    def class_names(self) -> list[str]:
        return list(CLASS_NAMES)

    def predict(self, X: Any, features_names: Any = None, **kwargs: Any) -> np.ndarray:
        payload = X.tolist() if hasattr(X, "tolist") else X
        try:
            texts = texts_from_payload(payload, self.max_text_chars, self.max_batch)
        except InputError as exc:
            self._count_rejected()
            raise SeldonMicroserviceException(str(exc), status_code=400) from None
        started = time.perf_counter()
        probabilities = self.model.predict_proba(texts)
        elapsed_ms = (time.perf_counter() - started) * 1000
        removed = int(np.sum(probabilities[:, 1] >= 0.5))
        self._record(
            {
                "type": "COUNTER",
                "key": "text_classifier_predictions",
                "value": len(texts) - removed,
                "tags": {"label": CLASS_NAMES[0]},
            },
            {
                "type": "COUNTER",
                "key": "text_classifier_predictions",
                "value": removed,
                "tags": {"label": CLASS_NAMES[1]},
            },
            {"type": "GAUGE", "key": "text_classifier_batch_size", "value": len(texts)},
            # Seldon's TIMER takes milliseconds and exports a histogram in seconds
            {"type": "TIMER", "key": "text_classifier_predict_seconds", "value": elapsed_ms},
        )
        return probabilities

    def send_feedback(self, features: Any, feature_names: Any, reward: float, truth: Any, routing: Any = None) -> list:
        label = _truth_label(truth) if truth is not None else "unknown"
        self._record({"type": "COUNTER", "key": "text_classifier_feedback", "value": 1, "tags": {"truth": label}})
        log.info("feedback accepted: truth %s, reward %s", label, reward)
        return []

    def metrics(self) -> list[dict[str, Any]]:
        """Custom metrics gathered since the last call (Seldon calls this after every request)."""
        with self._lock:
            pending, self._pending = self._pending, []
        return pending

    def tags(self) -> dict[str, str]:
        return {"model_version": self.model.version}

    def health_status(self) -> list[list[float]]:
        """A real prediction on a fixed text: healthy means the artifacts load and the pipeline runs."""
        return self.model.predict_proba([HEALTH_TEXT]).tolist()

    def init_metadata(self) -> dict[str, Any]:
        return {
            "name": "text-classifier",
            "versions": [self.model.version],
            "platform": "seldon",
            "inputs": [{"messagetype": "ndarray", "schema": {"names": ["text"]}}],
            "outputs": [{"messagetype": "ndarray", "schema": {"names": list(CLASS_NAMES)}}],
            "custom": {"held_out_accuracy": str(self.model.metadata["held_out_metrics"]["accuracy"])},
        }

    def _count_rejected(self) -> None:
        """Reported with the next request's metrics: Seldon collects custom metrics only after a success."""
        self._record({"type": "COUNTER", "key": "text_classifier_rejected_requests", "value": 1})

    def _record(self, *metrics: dict[str, Any]) -> None:
        with self._lock:
            self._pending.extend(metrics)
