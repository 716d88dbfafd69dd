"""Evaluate: the candidate against the serving model on (a) the shipped held-out rows and (b) the exported
feedback's held-out rows, with intervals, the promotion rule's decision and a JSON + HTML report.

    python -m feedback.flowback evaluate --candidate V --dataset datasets/text-classifier/<hash> [--serving V]
        [--rule rule.json] [--out folder]

Steps (locally in one process, on Argo one container each): `fetch-models` (both versions from the registry, each
file checked), the classifier's `score.py` (both models, both sets, in the classifier's environment), `judge`
(metrics, intervals, the rule; `evaluation.json` and `evaluation.html` into the candidate's registry folder). The
serving model is the `serving` alias unless `--serving` names a version. The report has no time of the run in it:
the same models and dataset give the same report, byte for byte.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from feedback.flowback import classifier, dataset, statistics
from feedback.flowback.errors import FlowbackError
from feedback.flowback.promotion import PromotionRule, decide
from feedback.flowback.registry import Registry
from feedback.flowback.report_html import render
from feedback.flowback.settings import ClassifierSettings
from feedback.flowback.store import ObjectStore
from feedback.flowback.training import dataset_key, fetch_dataset

REPORT_FORMAT = 1
SETS = ("held_out", "feedback")  # (a) the shipped held-out rows, (b) the feedback's held-out rows
SET_TITLES = {"held_out": "shipped held-out set", "feedback": "feedback held-out rows"}
ROLES = ("candidate", "serving")


def serving_version(registry: Registry, requested: str | None) -> str:
    if requested:
        return requested
    version = registry.alias("serving")
    if version is None:
        raise FlowbackError(
            f"no serving model for {registry.model}: pass --serving VERSION, or register the model that serves now "
            "with `python -m feedback.flowback add --artifacts FOLDER --alias serving`"
        )
    return version


def judge(
    scores: dict[str, Any],
    rule: PromotionRule,
    *,
    model: str,
    dataset_manifest: dict[str, Any],
    dataset_prefix: str,
) -> dict[str, Any]:
    """The report (pure): per set, each model's accuracy and interval and the paired difference; the decision."""
    try:
        models = {role: scores["models"][role] for role in ROLES}
        labels = {name: scores["sets"][name]["labels"] for name in SETS}
    except KeyError as exc:
        raise FlowbackError(f"the scores miss {exc}; score.py must score models {ROLES} on sets {SETS}") from None
    class_names = models["candidate"]["class_names"]
    if class_names != models["serving"]["class_names"]:
        raise FlowbackError(
            f"the candidate's classes {class_names} differ from the serving model's "
            f"{models['serving']['class_names']}: the two cannot be compared row by row"
        )
    sets: dict[str, Any] = {}
    differences: dict[str, statistics.Difference] = {}
    for name in SETS:
        guesses = {role: statistics.predicted(models[role]["scores"][name]) for role in ROLES}
        truth = labels[name]
        differences[name] = statistics.paired_difference(
            truth, guesses["candidate"], guesses["serving"], rule.confidence
        )
        sets[name] = {
            "title": SET_TITLES[name],
            "rows": len(truth),
            "per_label": {class_names[i]: truth.count(i) for i in range(len(class_names))},
            **{
                role: statistics.accuracy(truth, guesses[role], rule.confidence, len(class_names)).as_dict()
                for role in ROLES
            },
            "difference": differences[name].as_dict(),
        }
    promote, checks = decide(rule, differences["held_out"], differences["feedback"])
    return {
        "format": REPORT_FORMAT,
        "model": model,
        "candidate": {"version": models["candidate"]["version"]},
        "serving": {"version": models["serving"]["version"]},
        "class_names": class_names,
        "dataset": {
            "prefix": dataset_prefix,
            "content_hash": dataset_manifest.get("content_hash"),
            "time_range": dataset_manifest.get("provenance", {}).get("time_range"),
            "source_model_versions": dataset_manifest.get("source_model_versions"),
        },
        "rule": rule.as_dict(),
        "sets": sets,
        "decision": {"promote": promote, "checks": [check.as_dict() for check in checks]},
    }


def write_report(registry: Registry, report: dict[str, Any], out: Path | None) -> dict[str, str]:
    version = report["candidate"]["version"]
    json_bytes = json.dumps(report, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    html_bytes = render(report).encode("utf-8")
    where = {
        "json": registry.put_report(version, "evaluation.json", json_bytes, "application/json"),
        "html": registry.put_report(version, "evaluation.html", html_bytes, "text/html"),
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_bytes(json_bytes)
        (out / "evaluation.html").write_bytes(html_bytes)
    return where


def fetch_models(registry: Registry, candidate: str, serving: str, destination: Path) -> dict[str, Path]:
    folders = {"candidate": destination / "candidate", "serving": destination / "serving"}
    registry.fetch(candidate, folders["candidate"])
    registry.fetch(serving, folders["serving"])
    return folders


def evaluate(
    store: ObjectStore,
    registry: Registry,
    classifier_settings: ClassifierSettings,
    *,
    candidate: str,
    dataset_reference: str,
    serving: str | None = None,
    rule: PromotionRule | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    rule = rule or PromotionRule()
    serving = serving_version(registry, serving)
    if serving == candidate:
        raise FlowbackError(f"the candidate {candidate} is the serving model itself; evaluate a retrained version")
    with tempfile.TemporaryDirectory(prefix="flowback-evaluate-") as tmp:
        folder = Path(tmp)
        manifest = fetch_dataset(store, dataset_reference, folder / "dataset")
        models = fetch_models(registry, candidate, serving, folder / "models")
        scores_path = folder / "scores.json"
        sets = {"held_out": "shipped", "feedback": str(folder / "dataset" / dataset.HELD_OUT_FILE)}
        classifier.score(classifier_settings, models, sets, scores_path)
        scores = json.loads(scores_path.read_text())
    report = judge(
        scores,
        rule,
        model=registry.model,
        dataset_manifest=manifest,
        dataset_prefix=dataset_key(dataset_reference, store.bucket),
    )
    report["locations"] = write_report(registry, report, out)
    return report
