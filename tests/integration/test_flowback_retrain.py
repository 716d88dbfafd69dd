"""Retrain, evaluate, register, promote on real servers: OpenSearch (documents with ground truth after a shift),
s3proxy (datasets and the registry) and the classifier's own environment (spaCy, scikit-learn) for training and
scoring.

What: the shipped model is registered as `serving`; 400 post-shift documents (40 % of the monitor's crypto-spam
wave, labelled removed, half of which the serving model keeps) are exported, a candidate is trained on them and
evaluated. Waits for: the subprocesses only.
Asserts: the candidate beats the serving model on the feedback's held-out rows and is not worse on the shipped
held-out set, so the rule promotes it; the same inputs give the same version, files and report; a corrupt artifact,
a failed rule and a folder that is not a model are refused with a reason and leave the registry and its aliases as
they were. Cleanup: each test has its own index, bucket and temporary folders.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from feedback.flowback import aliases, evaluation, training
from feedback.flowback.errors import FlowbackError
from feedback.flowback.export import ExportRequest, export
from feedback.flowback.promotion import PromotionRule
from feedback.flowback.registry import Registry
from feedback.flowback.settings import ClassifierSettings
from feedback.flowback.store import ObjectStore
from feedback.redaction import Redactor

from devstack.demo import load_comments
from devstack.flowback_traffic import drifted_feedback
from devstack.servers.model import BUILD_CONTEXT, trained_artifacts
from tests.flowback_data import DEPLOYMENT, at, backend, document, index_documents, new_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FEEDBACK_ROWS = 400
SHIFT_SHARE = 0.4
WEIGHT = 1.0


@dataclass
class Loop:
    store: ObjectStore
    registry: Registry
    classifier: ClassifierSettings
    dataset: str
    serving: str


@pytest.fixture(scope="module")
def shipped_artifacts() -> Path:
    return trained_artifacts()


@pytest.fixture(scope="module")
def classifier(model_venv_python: Path) -> ClassifierSettings:
    return ClassifierSettings(python=model_venv_python, directory=BUILD_CONTEXT)


@pytest.fixture(scope="module")
def loop(search: Any, s3: Any, shipped_artifacts: Path, classifier: ClassifierSettings) -> Iterator[Loop]:
    """An exported post-shift dataset and a registry whose `serving` alias is the shipped model."""
    _, train_rows = load_comments()
    rows = drifted_feedback(train_rows, FEEDBACK_ROWS, SHIFT_SHARE, seed=11)
    index = f"flowback-{secrets.token_hex(4)}-feedback"
    docs = [document(f"shift-{i:04d}", i * 0.1, text, label) for i, (text, label) in enumerate(rows)]
    index_documents(search.url, index, docs)
    store = new_store(s3)
    request = ExportRequest(start=at(0), end=at(60), deployment=DEPLOYMENT)
    exported = export(backend(search.url), store, index, request, Redactor())
    assert exported.manifest["counts"]["rows"] == FEEDBACK_ROWS
    registry = Registry(store, "text-classifier")
    serving = training.add(registry, classifier, shipped_artifacts)
    registry.set_alias("serving", serving.version)
    yield Loop(store, registry, classifier, exported.prefix, serving.version)


def test_the_retrained_candidate_beats_the_serving_model_after_the_shift_and_is_promoted(loop: Loop, tmp_path: Path):
    candidate = training.train(loop.store, loop.registry, loop.classifier, loop.dataset, feedback_weight=WEIGHT, seed=7)
    assert candidate.version != loop.serving
    assert candidate.metadata["dataset"] == loop.dataset
    assert candidate.metadata["params"]["feedback_weight"] == WEIGHT
    assert candidate.metadata["parent_version"] == loop.serving
    assert sorted(candidate.files) == ["metadata.json", "model.joblib", "profile.json"]
    profile = json.loads(loop.store.get(f"registry/text-classifier/{candidate.version}/profile.json") or b"{}")
    assert profile["model_version"] == candidate.version  # the monitor finds the canary's profile by its version
    assert profile["held_out"]["rows"] == 1227

    report = evaluation.evaluate(
        loop.store,
        loop.registry,
        loop.classifier,
        candidate=candidate.version,
        dataset_reference=loop.dataset,
        out=tmp_path,
    )
    feedback, held_out = report["sets"]["feedback"], report["sets"]["held_out"]
    manifest = json.loads(loop.store.get(f"{loop.dataset}/manifest.json") or b"{}")
    assert feedback["rows"] == manifest["counts"]["per_split"]["held_out"]["rows"] > 30
    assert held_out["rows"] == 1227  # the shipped data's held-out split, as train.py holds it out
    assert feedback["candidate"]["accuracy"] - feedback["serving"]["accuracy"] > 0.1
    assert feedback["difference"]["low"] > 0.02
    assert held_out["difference"]["difference"] >= -0.01
    assert feedback["candidate"]["low"] <= feedback["candidate"]["accuracy"] <= feedback["candidate"]["high"]
    assert report["decision"]["promote"] is True
    assert [check["passed"] for check in report["decision"]["checks"]] == [True] * 4
    stored = json.loads(loop.registry.report(candidate.version, "evaluation.json") or b"{}")
    assert stored["decision"] == report["decision"]
    assert (tmp_path / "evaluation.html").read_text().count("<svg") == 2

    assert aliases.register(loop.registry, candidate.version) == candidate.version
    assert loop.registry.alias("candidate") == candidate.version
    assert aliases.promote(loop.registry) == (loop.serving, candidate.version)
    assert (loop.registry.alias("serving"), loop.registry.alias("candidate")) == (candidate.version, None)
    loop.registry.set_alias("serving", loop.serving)  # the other tests of the module start from the shipped model


def test_the_same_inputs_give_the_same_version_files_and_report(loop: Loop):
    first = training.train(loop.store, loop.registry, loop.classifier, loop.dataset, feedback_weight=WEIGHT, seed=7)
    again = training.train(loop.store, loop.registry, loop.classifier, loop.dataset, feedback_weight=WEIGHT, seed=7)
    assert (again.version, again.files) == (first.version, first.files)  # byte-identical artifacts
    other_seed = training.train(loop.store, loop.registry, loop.classifier, loop.dataset, feedback_weight=2.0, seed=7)
    assert other_seed.version != first.version

    reports = []
    for _ in range(2):
        evaluation.evaluate(
            loop.store, loop.registry, loop.classifier, candidate=first.version, dataset_reference=loop.dataset
        )
        reports.append(loop.registry.report(first.version, "evaluation.json"))
    assert reports[0] == reports[1] and reports[0]


def test_a_corrupt_artifact_is_refused_and_nothing_moves(loop: Loop, tmp_path: Path):
    candidate = training.train(loop.store, loop.registry, loop.classifier, loop.dataset, feedback_weight=WEIGHT, seed=7)
    key = f"registry/text-classifier/{candidate.version}/model.joblib"
    original = loop.store.get(key) or b""
    loop.store.put(key, original[: len(original) // 2])
    try:
        with pytest.raises(FlowbackError, match=r"model\.joblib is corrupt: sha256 .* register the version again"):
            evaluation.evaluate(
                loop.store, loop.registry, loop.classifier, candidate=candidate.version, dataset_reference=loop.dataset
            )
        assert (loop.registry.alias("serving"), loop.registry.alias("candidate")) == (loop.serving, None)
    finally:
        loop.store.put(key, original)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.json").write_text(json.dumps({"version": "9.9.9+broken", "class_names": ["t:0", "t:1"]}))
    (broken / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(FlowbackError, match=r"score\.py failed: .*the artifacts cannot be loaded"):
        training.add(loop.registry, loop.classifier, broken)
    assert "9.9.9+broken" not in loop.registry.versions()
    assert loop.store.keys("registry/text-classifier/9.9.9+broken/") == []


def test_a_candidate_that_fails_the_rule_is_not_registered(loop: Loop, tmp_path: Path):
    candidate = training.train(loop.store, loop.registry, loop.classifier, loop.dataset, feedback_weight=WEIGHT, seed=7)
    strict = PromotionRule(feedback_min_gain=0.9)
    report = evaluation.evaluate(
        loop.store,
        loop.registry,
        loop.classifier,
        candidate=candidate.version,
        dataset_reference=loop.dataset,
        rule=strict,
    )
    assert report["decision"]["promote"] is False
    assert [c["name"] for c in report["decision"]["checks"] if not c["passed"]] == ["feedback_better"]
    with pytest.raises(
        FlowbackError, match=r"fails the promotion rule, aliases unchanged: feedback held-out: .*>= \+0\.9"
    ):
        aliases.register(loop.registry, candidate.version)
    assert (loop.registry.alias("serving"), loop.registry.alias("candidate")) == (loop.serving, None)
    with pytest.raises(FlowbackError, match="is the serving model itself"):
        evaluation.evaluate(
            loop.store, loop.registry, loop.classifier, candidate=loop.serving, dataset_reference=loop.dataset
        )
    with pytest.raises(FlowbackError, match=r"has no manifest\.json: not an exported dataset"):
        training.train(loop.store, loop.registry, loop.classifier, "datasets/text-classifier/0000000000000000")
