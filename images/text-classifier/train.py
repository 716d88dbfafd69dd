"""Train the text classifier from a labelled CSV and write versioned artifacts.

    python train.py                                  # data/comments.csv -> artifacts/
    python train.py --data my.csv --out /tmp/model   # any CSV with the columns text,label

Holds out the rows `textclf.split` picks (20 %, by a hash of the text), fits TF-IDF + logistic regression on
the rest, prints accuracy, F1 and the confusion matrix on the held-out rows, and writes `model.joblib` and
`metadata.json` (version, metrics, inputs) and the monitor's reference profile `profile.json` (textclf/profile.py) to
the output folder. Exit code 1 with a one-line reason on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import spacy
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from textclf.dataset import DatasetError, file_digest, read_labelled_csv
from textclf.fingerprint import BUILD_CONTEXT, DEFAULT_DATA, PIPELINE_VERSION, fingerprint
from textclf.model import CLASS_NAMES, TextModel, build_estimator
from textclf.profile import build_profile, write_profile
from textclf.split import HELD_OUT_PERCENT, split_rows
from textclf.tokens import Lemmatizer


def evaluate(labels: list[int], predicted: list[int]) -> dict[str, object]:
    majority = max(sum(labels), len(labels) - sum(labels)) / len(labels)
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 4),
        "f1_removed": round(float(f1_score(labels, predicted, pos_label=1)), 4),
        "f1_macro": round(float(f1_score(labels, predicted, average="macro")), 4),
        "majority_baseline": round(majority, 4),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    }


def train(data: Path, out: Path, c: float) -> dict[str, object]:
    rows = read_labelled_csv(data)
    train_rows, held_out = split_rows(rows)
    lemmatizer = Lemmatizer()
    started = time.monotonic()
    train_tokens = lemmatizer.lemmas(text for text, _ in train_rows)
    estimator = build_estimator(c=c)
    estimator.fit(train_tokens, [label for _, label in train_rows])
    probabilities = estimator.predict_proba(lemmatizer.lemmas(text for text, _ in held_out))
    predicted = np.argmax(probabilities, axis=1).tolist()
    metrics = evaluate([label for _, label in held_out], predicted)
    digest = fingerprint(BUILD_CONTEXT, data)
    metadata = {
        "version": f"{PIPELINE_VERSION}+{digest[:12]}",
        "fingerprint": digest,
        "class_names": CLASS_NAMES,
        "data": {"file": data.name, "sha256": file_digest(data), "rows": len(rows)},
        "split": {"train_rows": len(train_rows), "held_out_rows": len(held_out), "held_out_percent": HELD_OUT_PERCENT},
        "held_out_metrics": metrics,
        "params": {"C": c, "ngram_range": [1, 2], "min_df": 2, "max_features": 30_000},
        "libraries": {"scikit-learn": sklearn.__version__, "spacy": spacy.__version__, "numpy": np.__version__},
        "train_seconds": round(time.monotonic() - started, 1),
    }
    TextModel(estimator=estimator, metadata=metadata, lemmatizer=lemmatizer).save(out)
    profile = build_profile(
        model_version=str(metadata["version"]),
        class_names=CLASS_NAMES,
        train_texts=[text for text, _ in train_rows],
        train_labels=[label for _, label in train_rows],
        held_out_texts=[text for text, _ in held_out],
        held_out_labels=[label for _, label in held_out],
        held_out_probabilities=probabilities.tolist(),
    )
    write_profile(out, profile)
    return metadata


def report(metadata: dict) -> str:
    m = metadata["held_out_metrics"]
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    return "\n".join(
        [
            f"model {metadata['version']} trained on {metadata['split']['train_rows']} rows, "
            f"evaluated on {metadata['split']['held_out_rows']} held-out rows",
            f"accuracy {m['accuracy']:.4f}  (majority baseline {m['majority_baseline']:.4f})",
            f"F1 removed {m['f1_removed']:.4f}  macro F1 {m['f1_macro']:.4f}",
            "confusion matrix (rows = true, columns = predicted):",
            "              kept  removed",
            f"   kept    {tn:6d}   {fp:6d}",
            f"   removed {fn:6d}   {tp:6d}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV with the columns text,label")
    parser.add_argument("--out", type=Path, default=BUILD_CONTEXT / "artifacts", help="folder for the artifacts")
    parser.add_argument("--C", dest="c", type=float, default=1.0, help="inverse regularisation strength")
    args = parser.parse_args(argv)
    try:
        metadata = train(args.data, args.out, args.c)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(metadata))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
