"""Retrain: an exported dataset plus the shipped training data give a candidate, registered in the registry.

    python -m feedback.flowback train --dataset datasets/text-classifier/<hash> [--feedback-weight 2] [--seed N]

Three steps, the same locally (one process each, in this order) and on Argo (one container each):
`fetch-dataset` (download and verify the dataset's files against its manifest), the classifier's `retrain.py` in
the classifier's environment (shipped training rows + the dataset's `train.csv`, weighted, fixed seed), and
`add` (register the artifacts under the version retrain.py gave them). The dataset's `held_out.csv` is never
trained on: `evaluate` uses it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from feedback.flowback import classifier, dataset
from feedback.flowback.errors import FlowbackError
from feedback.flowback.registry import Registration, Registry
from feedback.flowback.settings import ClassifierSettings
from feedback.flowback.store import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_SEED = 20261202
DEFAULT_FEEDBACK_WEIGHT = 1.0


def dataset_key(reference: str, bucket: str) -> str:
    """`datasets/<deployment>/<hash>` from what `export` printed (with or without `s3://<bucket>/`)."""
    key = reference.strip().rstrip("/")
    if key.startswith("s3://"):
        found_bucket, _, key = key.removeprefix("s3://").partition("/")
        if found_bucket != bucket:
            raise FlowbackError(f"--dataset {reference!r} is in bucket {found_bucket!r}, FLOWBACK_BUCKET is {bucket!r}")
    return key.removesuffix(f"/{dataset.MANIFEST_FILE}")


def fetch_dataset(store: ObjectStore, reference: str, destination: Path) -> dict[str, Any]:
    """The dataset's manifest, with its files in `destination`, each checked against the manifest."""
    prefix = dataset_key(reference, store.bucket)
    raw = store.get(f"{prefix}/{dataset.MANIFEST_FILE}")
    if raw is None:
        raise FlowbackError(
            f"{store.describe(prefix)} has no {dataset.MANIFEST_FILE}: not an exported dataset (or its export did "
            "not finish); run `python -m feedback.flowback export` and pass the prefix it prints"
        )
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise FlowbackError(f"{store.describe(prefix)}/{dataset.MANIFEST_FILE} is not a dataset manifest") from None
    destination.mkdir(parents=True, exist_ok=True)
    for name, expected in sorted(files.items()):
        data = store.get(f"{prefix}/{name}")
        if data is None or dataset.sha256(data) != expected["sha256"]:
            state = "missing" if data is None else f"corrupt (sha256 {dataset.sha256(data)[:12]}...)"
            raise FlowbackError(
                f"{store.describe(f'{prefix}/{name}')} is {state}; the manifest records "
                f"{expected['sha256'][:12]}...: export the range again"
            )
        (destination / name).write_bytes(data)
    return manifest


def add(registry: Registry, classifier_settings: ClassifierSettings | None, artifacts: Path) -> Registration:
    """Register an artifacts folder; with the classifier's environment, load it there first (a corrupt file
    fails before anything is uploaded)."""
    if classifier_settings is not None:
        classifier.check(classifier_settings, artifacts)
    registration, written = registry.register(artifacts)
    log.info("%s %s", "registered" if written else "already registered", registry.describe(registration.version))
    return registration


def train(
    store: ObjectStore,
    registry: Registry,
    classifier_settings: ClassifierSettings,
    reference: str,
    *,
    feedback_weight: float = DEFAULT_FEEDBACK_WEIGHT,
    seed: int = DEFAULT_SEED,
    workdir: Path | None = None,
) -> Registration:
    with tempfile.TemporaryDirectory(prefix="flowback-train-", dir=workdir) as tmp:
        folder = Path(tmp)
        manifest = fetch_dataset(store, reference, folder / "dataset")
        if manifest["counts"]["per_split"]["train"]["rows"] == 0:
            raise FlowbackError(f"{reference}: the dataset has no training rows (all rows are held out)")
        classifier.retrain(
            classifier_settings,
            folder / "dataset" / dataset.TRAIN_FILE,
            folder / "candidate",
            feedback_weight=feedback_weight,
            seed=seed,
            dataset=dataset_key(reference, store.bucket),
        )
        return add(registry, None, folder / "candidate")
