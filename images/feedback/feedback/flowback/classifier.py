"""Run the classifier's own scripts (`retrain.py`, `score.py`) in the classifier's environment, as a subprocess.

The flow back runs in the feedback image's environment (search and S3 clients); spaCy and scikit-learn live only in
the classifier's (seldon-core 1.17.1 pins them). On a cluster the Argo steps run the same scripts in the classifier's
image; locally `FLOWBACK_CLASSIFIER_PYTHON` names that environment's interpreter.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from feedback.flowback.errors import FlowbackError
from feedback.flowback.settings import ClassifierSettings

TIMEOUT_S = 1800.0


def run_script(settings: ClassifierSettings, script: str, args: list[str], timeout: float = TIMEOUT_S) -> str:
    """stdout of `python <script> <args>` run in the classifier's folder; FlowbackError with its last lines."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    try:
        result = subprocess.run(
            [str(settings.python), script, *args],
            cwd=settings.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FlowbackError(f"{script} took longer than {timeout:.0f} s") from None
    except OSError as exc:
        raise FlowbackError(f"cannot run {settings.python} {script}: {exc}; check FLOWBACK_CLASSIFIER_PYTHON") from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).strip().splitlines() if line.strip()]
        detail = "\n".join(lines[-5:]) or f"exit code {result.returncode}"
        raise FlowbackError(f"{script} failed: {detail.removeprefix('error: ')}")
    return result.stdout


def retrain(
    settings: ClassifierSettings, feedback: Path, out: Path, *, feedback_weight: float, seed: int, dataset: str
) -> str:
    return run_script(
        settings,
        "retrain.py",
        [
            "--feedback",
            str(feedback),
            "--out",
            str(out),
            "--feedback-weight",
            repr(feedback_weight),
            "--seed",
            str(seed),
            "--dataset",
            dataset,
        ],
    )


def check(settings: ClassifierSettings, artifacts: Path) -> None:
    """Load the artifacts and predict one text in the classifier's environment: a corrupt file fails here."""
    run_script(settings, "score.py", ["--check", str(artifacts)], timeout=600)


def score(settings: ClassifierSettings, models: dict[str, Path], sets: dict[str, str], out: Path) -> None:
    args = [f"--model={name}={path}" for name, path in models.items()]
    args += [f"--set={name}={target}" for name, target in sets.items()]
    run_script(settings, "score.py", [*args, "--out", str(out)])
