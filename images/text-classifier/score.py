"""Score labelled rows with one or more trained models, for the flow back's evaluation (no metrics here).

    python score.py --model serving=models/serving --model candidate=models/candidate \
        --set held_out=shipped --set feedback=dataset/held_out.csv --out scores.json
    python score.py --check models/candidate       # load it and predict one text: exit 1 if it is unusable

`--set NAME=shipped` is the shipped data's held-out rows (`textclf.split`, what `train.py` evaluates on); any other
value is a CSV with the columns text,label. Each set is lemmatised once and every model predicts it; the output is
JSON: per set its labels, per model its version and per set the probability of each class for every row, in the
file's row order. Metrics, intervals and the promotion rule are computed by `feedback.flowback` from this file.
Exit code 1 with a one-line reason when a model or a set cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from textclf.dataset import DatasetError, read_labelled_csv
from textclf.fingerprint import DEFAULT_DATA
from textclf.model import ArtifactsError, TextModel
from textclf.split import split_rows
from textclf.tokens import Lemmatizer

SHIPPED = "shipped"
PROBE_TEXT = "Fascinating stuff about the vaccine."


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            raise DatasetError(f"--{what} {value!r} must be NAME=PATH, e.g. --{what} candidate=models/candidate")
        pairs[name] = target
    return pairs


def load_model(directory: Path, lemmatizer: Lemmatizer) -> TextModel:
    """The model in `directory`, or ArtifactsError naming the file that is missing or unreadable."""
    try:
        model = TextModel.load(directory, lemmatizer)
        probabilities = model.estimator.predict_proba(lemmatizer.lemmas([PROBE_TEXT]))
    except ArtifactsError:
        raise
    except Exception as exc:  # joblib/pickle raise anything on a truncated or foreign file
        raise ArtifactsError(f"{directory}: the artifacts cannot be loaded ({type(exc).__name__}: {exc})") from None
    if probabilities.shape != (1, len(model.metadata.get("class_names", []))):
        raise ArtifactsError(f"{directory}: the model answers {probabilities.shape[1]} classes, not its class_names")
    return model


def read_set(target: str) -> list[tuple[str, int]]:
    if target == SHIPPED:
        return split_rows(read_labelled_csv(DEFAULT_DATA))[1]
    return read_labelled_csv(Path(target), both_labels=False)


def score(models: dict[str, str], sets: dict[str, str]) -> dict[str, object]:
    lemmatizer = Lemmatizer()
    loaded = {name: load_model(Path(directory), lemmatizer) for name, directory in models.items()}
    out_sets: dict[str, object] = {}
    predictions: dict[str, dict[str, list[list[float]]]] = {name: {} for name in loaded}
    for set_name, target in sets.items():
        rows = read_set(target)
        lemmas = lemmatizer.lemmas(text for text, _ in rows)
        out_sets[set_name] = {"source": target, "labels": [label for _, label in rows]}
        for model_name, model in loaded.items():
            probabilities = model.estimator.predict_proba(lemmas) if rows else []
            predictions[model_name][set_name] = [[round(float(p), 6) for p in row] for row in probabilities]
    return {
        "sets": out_sets,
        "models": {
            name: {
                "version": model.version,
                "class_names": model.metadata.get("class_names"),
                "scores": predictions[name],
            }
            for name, model in loaded.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=artifacts folder (repeat)")
    parser.add_argument("--set", action="append", default=[], help="NAME=shipped or NAME=CSV (repeat)")
    parser.add_argument("--out", type=Path, help="where to write the scores (JSON)")
    parser.add_argument("--check", type=Path, help="only load this artifacts folder and predict one text")
    args = parser.parse_args(argv)
    try:
        if args.check is not None:
            model = load_model(args.check, Lemmatizer())
            print(f"{args.check}: model {model.version} loads and predicts")
            return 0
        if not args.model or not args.set or args.out is None:
            raise DatasetError("give at least one --model, one --set and --out (or --check FOLDER)")
        result = score(_pairs(args.model, "model"), _pairs(args.set, "set"))
    except (DatasetError, ArtifactsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
