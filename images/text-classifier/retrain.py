"""Train a candidate of the text classifier on the shipped training rows plus exported feedback.

    python retrain.py --feedback dataset/train.csv --out candidate/ [--feedback-weight 2] [--seed 20261202]

The same pipeline as `train.py` (spaCy lemmas, TF-IDF, logistic regression, `textclf`): the shipped data's training
rows (`textclf.split`, the rows `train.py` trains on) plus every row of the feedback CSV (columns `text,label`,
what `python -m feedback.flowback export` writes as `train.csv`), each feedback row weighted `--feedback-weight`
times a shipped row. The seed is the logistic regression's `random_state`; with the same inputs the fitted
coefficients, the files and the metrics are the same on every run. Writes `model.joblib`, `metadata.json`
(version, parent, dataset, weights, metrics on the shipped held-out rows) and the monitor's reference profile
`profile.json` (textclf/profile.py) to `--out`. The version is the pipeline
version plus a hash of the shipped model's fingerprint, the feedback file and the parameters, so equal inputs give
the same version.
Exit code 1 with a one-line reason on bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import spacy
from textclf.dataset import DatasetError, file_digest, read_labelled_csv
from textclf.fingerprint import BUILD_CONTEXT, DEFAULT_DATA, PIPELINE_VERSION, fingerprint
from textclf.model import CLASS_NAMES, TextModel, build_estimator
from textclf.profile import build_profile, write_profile
from textclf.split import HELD_OUT_PERCENT, split_rows
from textclf.tokens import Lemmatizer
from train import evaluate, report

DEFAULT_SEED = 20261202
DEFAULT_FEEDBACK_WEIGHT = 1.0


def candidate_version(parent_fingerprint: str, feedback: Path, params: dict[str, object]) -> str:
    digest = hashlib.sha256()
    digest.update(parent_fingerprint.encode() + b"\0" + file_digest(feedback).encode() + b"\0")
    digest.update(json.dumps(params, sort_keys=True).encode())
    return f"{PIPELINE_VERSION}+{digest.hexdigest()[:12]}"


def retrain(
    *, data: Path, feedback: Path, out: Path, feedback_weight: float, seed: int, c: float, dataset: str | None
) -> dict[str, object]:
    if feedback_weight <= 0:
        raise DatasetError(f"--feedback-weight must be above 0, got {feedback_weight:g}")
    shipped = read_labelled_csv(data)
    train_rows, held_out = split_rows(shipped)
    feedback_rows = read_labelled_csv(feedback, both_labels=False)
    rows = train_rows + feedback_rows
    weights = [1.0] * len(train_rows) + [feedback_weight] * len(feedback_rows)
    lemmatizer = Lemmatizer()
    started = time.monotonic()
    estimator = build_estimator(c=c)
    estimator.set_params(logreg__random_state=seed)
    estimator.fit(
        lemmatizer.lemmas(text for text, _ in rows), [label for _, label in rows], logreg__sample_weight=weights
    )
    probabilities = estimator.predict_proba(lemmatizer.lemmas(text for text, _ in held_out))
    metrics = evaluate([label for _, label in held_out], np.argmax(probabilities, axis=1).tolist())
    parent = fingerprint(BUILD_CONTEXT, data)
    params = {"C": c, "feedback_weight": feedback_weight, "seed": seed, "ngram_range": [1, 2], "min_df": 2}
    metadata = {
        "version": candidate_version(parent, feedback, params),
        "parent_version": f"{PIPELINE_VERSION}+{parent[:12]}",
        "fingerprint": hashlib.sha256((parent + file_digest(feedback)).encode()).hexdigest(),
        "class_names": CLASS_NAMES,
        "data": {"file": data.name, "sha256": file_digest(data), "rows": len(shipped)},
        "feedback": {"file": feedback.name, "sha256": file_digest(feedback), "rows": len(feedback_rows)},
        "dataset": dataset,
        "split": {
            "train_rows": len(train_rows),
            "feedback_rows": len(feedback_rows),
            "held_out_rows": len(held_out),
            "held_out_percent": HELD_OUT_PERCENT,
        },
        "held_out_metrics": metrics,
        "params": {**params, "max_features": 30_000},
        "libraries": {"scikit-learn": sklearn.__version__, "spacy": spacy.__version__, "numpy": np.__version__},
    }  # no training time: equal inputs must give byte-identical artifacts (the registry refuses changed versions)
    # scikit-learn keeps id(stop_words), a memory address, to skip a re-check; it differs in every process and is
    # the only thing that would make equal fits pickle to different bytes. Without it the check simply runs again.
    vars(estimator.named_steps["tfidf"]).pop("_stop_words_id", None)
    TextModel(estimator=estimator, metadata=metadata, lemmatizer=lemmatizer).save(out)
    # the monitor's reference profile of this version: training rows = shipped + feedback (the traffic the candidate
    # learned), held-out rows = the shipped held-out set it was evaluated on (textclf/profile.py)
    profile = build_profile(
        model_version=str(metadata["version"]),
        class_names=CLASS_NAMES,
        train_texts=[text for text, _ in rows],
        train_labels=[label for _, label in rows],
        held_out_texts=[text for text, _ in held_out],
        held_out_labels=[label for _, label in held_out],
        held_out_probabilities=probabilities.tolist(),
    )
    write_profile(out, profile)
    print(f"fitted in {time.monotonic() - started:.1f} s")
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feedback", type=Path, required=True, help="CSV with the columns text,label (train.csv)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the candidate's artifacts")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shipped CSV (default data/comments.csv)")
    parser.add_argument("--feedback-weight", type=float, default=DEFAULT_FEEDBACK_WEIGHT, help="weight of a row")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random_state of the logistic regression")
    parser.add_argument("--C", dest="c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--dataset", default=None, help="the exported dataset (its prefix), kept in metadata")
    args = parser.parse_args(argv)
    try:
        metadata = retrain(
            data=args.data,
            feedback=args.feedback,
            out=args.out,
            feedback_weight=args.feedback_weight,
            seed=args.seed,
            c=args.c,
            dataset=args.dataset,
        )
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(metadata))
    print(f"plus {metadata['split']['feedback_rows']} feedback rows (weight {args.feedback_weight:g})")  # type: ignore[index]
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
