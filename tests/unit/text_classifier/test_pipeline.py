"""The real pipeline (spaCy lemmas, TF-IDF, logistic regression) and the Seldon wrapper class on edge cases.

spaCy, scikit-learn and seldon-core live in the model's own virtualenv, not in the project's, so this test
runs `model_venv_probe.py` there (once per module) on the trained artifacts and asserts on what it printed.
First run on a machine: creates that virtualenv and trains the model (cached afterwards).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devstack.servers.model import BUILD_CONTEXT, model_python, model_version, trained_artifacts

PROBE = Path(__file__).with_name("model_venv_probe.py")

CASES = {
    "empty": "",
    "emoji": "😂😂😂 🔥",
    "spanish": "¿Qué tal? Él está corriendo con los niños.",
    "japanese": "これは面白い研究ですね",
    "html": "&lt;p&gt;The mice were running &amp;amp; eating&lt;/p&gt;",
    "url": "Watch https://www.youtube.com/watch?v=x1 and [paper](https://doi.org/10.1/abc)",
    "numbers": "1,500 participants and 95 % of them",
    "spam": "Buy the supplement they don't want you to know about: https://bit.ly/123sci",
    "discussion": "The effect size is modest and the confidence interval is wide; the authors adjusted for age.",
}


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["MODEL_ARTIFACTS_DIR"] = str(trained_artifacts())
    env["PYTHONPATH"] = str(BUILD_CONTEXT)
    result = subprocess.run(
        [str(model_python()), str(PROBE)],
        input=json.dumps({"texts": list(CASES.values())}),
        capture_output=True,
        text=True,
        cwd=BUILD_CONTEXT,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def by_case(probe: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(zip(CASES, probe[key], strict=True))


def test_lemmas_of_edge_cases(probe: dict[str, Any]) -> None:
    lemmas = by_case(probe, "lemmas")
    assert lemmas["empty"] == []
    assert lemmas["emoji"] == ["😂", "😂", "😂", "🔥"]
    assert lemmas["spanish"] == ["qué", "tal", "él", "está", "corriendo", "con", "los", "niños"]
    assert lemmas["japanese"]  # no whitespace in Japanese: spaCy's English rules keep it as one or more tokens
    assert "".join(lemmas["japanese"]) == CASES["japanese"]
    assert lemmas["html"] == ["the", "mouse", "be", "run", "eat"]
    assert lemmas["url"] == ["watch", "URL", "youtube", "and", "paper", "URL", "doi"]
    assert lemmas["numbers"] == ["NUM", "NUM", "participant", "and", "NUM", "of", "them"]


def test_every_text_gets_two_probabilities_summing_to_one(probe: dict[str, Any]) -> None:
    assert probe["class_names"] == ["t:0", "t:1"]
    assert len(probe["probabilities"]) == len(CASES)
    for row in probe["probabilities"]:
        assert len(row) == 2
        assert all(0.0 <= p <= 1.0 for p in row)
        assert math.isclose(sum(row), 1.0, abs_tol=1e-9)
    assert probe["column_probabilities"] == probe["probabilities"]  # [["text"], ...] is read like ["text", ...]


def test_spam_is_more_likely_removed_than_discussion(probe: dict[str, Any]) -> None:
    removed = {case: row[1] for case, row in by_case(probe, "probabilities").items()}
    assert removed["spam"] > 0.7
    assert removed["discussion"] < 0.3


def test_version_tag_is_the_fingerprint_of_data_code_and_requirements(probe: dict[str, Any]) -> None:
    assert probe["tags"] == {"model_version": model_version()}


def test_custom_metrics_count_each_prediction_once(probe: dict[str, Any]) -> None:
    metrics = probe["metrics_after_predict"]
    counted = sum(m["value"] for m in metrics if m["key"] == "text_classifier_predictions")
    assert counted == len(CASES)
    labels = {m["tags"]["label"] for m in metrics if m["key"] == "text_classifier_predictions"}
    assert labels == {"t:0", "t:1"}
    assert {"type": "GAUGE", "key": "text_classifier_batch_size", "value": len(CASES)} in metrics
    assert probe["metrics_again"] == []  # drained: Seldon adds COUNTER values, so nothing may repeat


def test_feedback_is_accepted_and_counted_by_truth(probe: dict[str, Any]) -> None:
    assert probe["feedback_response"] == []
    assert probe["metrics_after_feedback"] == [
        {"type": "COUNTER", "key": "text_classifier_feedback", "value": 1, "tags": {"truth": "t:1"}}
    ]


def test_health_status_is_a_real_prediction(probe: dict[str, Any]) -> None:
    [row] = probe["health"]
    assert math.isclose(sum(row), 1.0, abs_tol=1e-9)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("numbers", "item 0 is int 1, not a string"),
        ("nested", "item 0 is a nested array of 2 values"),
        ("empty", "the ndarray is empty"),
        ("too_long", "item 0 has 20000 characters; the limit is 10000"),
    ],
)
def test_predict_rejects_bad_arrays_with_a_400(probe: dict[str, Any], case: str, message: str) -> None:
    rejection = probe["rejections"][case]
    assert rejection is not None, f"{case} was accepted"
    assert rejection["status_code"] == 400
    assert rejection["reason"] == "MICROSERVICE_BAD_DATA"
    assert rejection["message"].startswith(message)


def test_missing_artifacts_say_how_to_train(probe: dict[str, Any]) -> None:
    assert "no trained model in" in probe["missing_artifacts"]
    assert "run `python train.py --out" in probe["missing_artifacts"]
