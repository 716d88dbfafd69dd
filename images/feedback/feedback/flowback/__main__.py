"""`python -m feedback.flowback <command>`: export, train, evaluate, register, promote, rollback, compare, steps.

Settings are environment variables (docs/flowback.md): FLOWBACK_SEARCH_URL / _ENGINE / _USERNAME / _PASSWORD,
FLOWBACK_INDEX, FLOWBACK_S3_ENDPOINT, FLOWBACK_BUCKET, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION,
FLOWBACK_MODEL_NAME, FLOWBACK_CLASSIFIER_PYTHON, FLOWBACK_CLASSIFIER_DIR, FLOWBACK_REDACT_*. Every command prints
one JSON object on success (what it wrote, where) and `error: <what was wrong and the fix>` with exit code 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from feedback.config import SettingsError
from feedback.flowback import aliases, dataset, evaluation, settings, training
from feedback.flowback.compare import compare
from feedback.flowback.errors import FlowbackError
from feedback.flowback.export import ExportRequest, export, parse_range, parse_time
from feedback.flowback.metrics import RunMetrics
from feedback.flowback.promotion import PromotionRule
from feedback.flowback.registry import Registry
from feedback.flowback.store import ObjectStore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m feedback.flowback", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    ex = commands.add_parser("export", help="documents with ground truth of a time range -> dataset in the store")
    ex.add_argument(
        "--start",
        required=True,
        help="ISO-8601 with a zone, inclusive (request time), or a lookback before --end: -24h",
    )
    ex.add_argument("--end", required=True, help="ISO-8601 with a zone, exclusive")
    ex.add_argument("--deployment", required=True, help="the SeldonDeployment's name")
    ex.add_argument("--namespace", help="only this namespace")
    ex.add_argument("--predictor", help="only this predictor (e.g. main or canary)")
    ex.add_argument("--model-version", help="only documents served by this model version")
    ex.add_argument("--class-names", default=",".join(dataset.DEFAULT_CLASS_NAMES), help="the model's classes")
    ex.add_argument("--sample-rate", type=float, default=1.0, help="keep this share of request ids (0-1]")
    ex.add_argument("--held-out-percent", type=int, default=dataset.DEFAULT_HELD_OUT_PERCENT)
    ex.add_argument("--drop-unknown-labels", action="store_true", help="count and skip truths outside the classes")
    ex.add_argument("--output-parameter", type=Path, help="also write the dataset prefix to this file (Argo)")

    fd = commands.add_parser("fetch-dataset", help="download and verify a dataset's files (an Argo step of train)")
    fd.add_argument("--dataset", required=True)
    fd.add_argument("--dest", type=Path, required=True)

    tr = commands.add_parser("train", help="dataset + shipped data -> candidate in the registry")
    tr.add_argument("--dataset", required=True, help="the prefix `export` printed")
    tr.add_argument("--feedback-weight", type=float, default=training.DEFAULT_FEEDBACK_WEIGHT)
    tr.add_argument("--seed", type=int, default=training.DEFAULT_SEED)
    tr.add_argument("--output-parameter", type=Path, help="also write the candidate version to this file (Argo)")

    ad = commands.add_parser("add", help="register an artifacts folder (and optionally set an alias)")
    ad.add_argument("--artifacts", type=Path, required=True)
    ad.add_argument("--alias", choices=("serving", "candidate"), help="point this alias at the version")
    ad.add_argument("--no-check", action="store_true", help="do not load the model first (no classifier Python)")
    ad.add_argument("--output-parameter", type=Path, help="also write the version to this file (Argo)")

    ev = commands.add_parser("evaluate", help="candidate vs serving on both held-out sets; report and decision")
    ev.add_argument("--candidate", required=True)
    ev.add_argument("--dataset", required=True)
    ev.add_argument("--serving", help="a version; default: the `serving` alias")
    ev.add_argument("--rule", type=Path, help="promotion rule JSON (keys of PromotionRule)")
    ev.add_argument("--out", type=Path, help="also write evaluation.json and evaluation.html here")

    fm = commands.add_parser("fetch-models", help="download and verify candidate and serving (an Argo step)")
    fm.add_argument("--candidate", required=True)
    fm.add_argument("--serving")
    fm.add_argument("--dest", type=Path, required=True)

    fo = commands.add_parser("fetch-model", help="download one registered version, every file checked (canary init)")
    fo.add_argument("--version", required=True)
    fo.add_argument("--dest", type=Path, required=True)

    ju = commands.add_parser("judge", help="metrics, intervals and the rule from score.py's output (an Argo step)")
    ju.add_argument("--scores", type=Path, required=True)
    ju.add_argument("--dataset", required=True)
    ju.add_argument("--rule", type=Path)
    ju.add_argument("--out", type=Path)

    rg = commands.add_parser("register", help="alias candidate = V when V's evaluation passed the rule")
    rg.add_argument("--candidate", required=True)
    commands.add_parser("promote", help="alias serving = candidate; the canary becomes the main predictor")
    commands.add_parser("rollback", help="remove the candidate alias; the canary goes away")
    commands.add_parser("show", help="registered versions and aliases")

    cp = commands.add_parser("compare", help="the predictors of a deployment side by side (main vs canary)")
    cp.add_argument("--deployment", required=True)
    cp.add_argument("--start", required=True)
    cp.add_argument("--end", required=True)
    cp.add_argument("--confidence", type=float, default=0.95)
    return parser


def _store() -> ObjectStore:
    return ObjectStore(settings.store_settings())


def _registry(store: ObjectStore) -> Registry:
    return Registry(store, settings.model_name())


def _write_parameter(path: Path | None, value: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)


def run(args: argparse.Namespace) -> dict[str, Any]:
    command = args.command
    if command == "export":
        from feedback.indexer.search_io import create_backend

        start, end = parse_range(args.start, args.end)
        request = ExportRequest(
            start=start,
            end=end,
            deployment=args.deployment,
            namespace=args.namespace,
            predictor=args.predictor,
            model_version=args.model_version,
            class_names=tuple(name.strip() for name in args.class_names.split(",") if name.strip()),
            sample_rate=args.sample_rate,
            held_out_percent=args.held_out_percent,
            drop_unknown_labels=args.drop_unknown_labels,
        )
        store = _store()
        backend = create_backend(settings.search_settings())
        try:
            result = export(backend, store, settings.index_name(), request, settings.redactor())
        finally:
            backend.close()
        _write_parameter(args.output_parameter, result.prefix)
        return {"dataset": result.prefix, "written": result.written, **result.manifest}
    if command == "compare":
        from feedback.indexer.search_io import create_backend

        start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
        if end <= start:
            raise FlowbackError(f"--end {args.end} must be after --start {args.start}")
        backend = create_backend(settings.search_settings())
        try:
            return compare(backend, settings.index_name(), args.deployment, start, end, args.confidence)
        finally:
            backend.close()
    store = _store()
    if command == "fetch-dataset":
        manifest = training.fetch_dataset(store, args.dataset, args.dest)
        return {"dataset": args.dataset, "dest": str(args.dest), "content_hash": manifest["content_hash"]}
    registry = _registry(store)
    if command == "train":
        registration = training.train(
            store,
            registry,
            settings.classifier_settings(),
            args.dataset,
            feedback_weight=args.feedback_weight,
            seed=args.seed,
        )
        _write_parameter(args.output_parameter, registration.version)
        return {
            "version": registration.version,
            "registry": registry.describe(registration.version),
            **registration.metadata,
        }
    if command == "add":
        classifier = None if args.no_check else settings.classifier_settings()
        registration = training.add(registry, classifier, args.artifacts)
        if args.alias:
            registry.set_alias(args.alias, registration.version)
        _write_parameter(args.output_parameter, registration.version)
        return {
            "version": registration.version,
            "registry": registry.describe(registration.version),
            "alias": args.alias,
        }
    if command == "evaluate":
        report = evaluation.evaluate(
            store,
            registry,
            settings.classifier_settings(),
            candidate=args.candidate,
            dataset_reference=args.dataset,
            serving=args.serving,
            rule=PromotionRule.from_file(args.rule),
            out=args.out,
        )
        return {"decision": report["decision"], "locations": report["locations"]}
    if command == "fetch-models":
        serving = evaluation.serving_version(registry, args.serving)
        folders = evaluation.fetch_models(registry, args.candidate, serving, args.dest)
        return {"candidate": args.candidate, "serving": serving, "folders": {k: str(v) for k, v in folders.items()}}
    if command == "fetch-model":
        registration = registry.fetch(args.version, args.dest)
        return {"version": registration.version, "dest": str(args.dest), "files": sorted(registration.files)}
    if command == "judge":
        try:
            scores = json.loads(args.scores.read_text())
        except (OSError, ValueError) as exc:
            raise FlowbackError(f"--scores {args.scores}: cannot read score.py's output ({exc})") from None
        raw = store.get(f"{training.dataset_key(args.dataset, store.bucket)}/{dataset.MANIFEST_FILE}")
        if raw is None:
            raise FlowbackError(f"--dataset {args.dataset}: no manifest in {store.describe()}")
        report = evaluation.judge(
            scores,
            PromotionRule.from_file(args.rule),
            model=registry.model,
            dataset_manifest=json.loads(raw),
            dataset_prefix=training.dataset_key(args.dataset, store.bucket),
        )
        return {"decision": report["decision"], "locations": evaluation.write_report(registry, report, args.out)}
    if command == "register":
        return {"candidate": aliases.register(registry, args.candidate)}
    if command == "promote":
        previous, serving = aliases.promote(registry)
        return {"previous_serving": previous, "serving": serving}
    if command == "rollback":
        return {"removed_candidate": aliases.rollback(registry)}
    if command == "show":
        return {
            "model": registry.model,
            "versions": registry.versions(),
            "aliases": {name: registry.alias(name) for name in ("serving", "candidate")},
        }
    raise FlowbackError(f"unknown command {command!r}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    args = _parser().parse_args(argv)
    metrics = RunMetrics()
    try:
        result = run(args)
    except (FlowbackError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        metrics.record(args.command, "settings_error" if isinstance(exc, SettingsError) else "refused", None)
        metrics.write()
        return 1
    metrics.record(args.command, None, result)
    metrics.write()
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
