"""What the flow back's steps cost on N feedback documents (not a test; run it and read the lines).

    $(python3.11 devstack/dev_env.py ensure)/bin/python bench/bench_flowback.py [--documents 400,2000,10000]
        [--shift 0.4] [--repeats 3] [--skip-train]

Starts a real OpenSearch and a real S3 server (s3proxy) on 127.0.0.1 (devstack/servers), registers the shipped
model as `serving` (the model's artifacts, trained once into the cache), and for each size N of `--documents`:

1. writes N capture documents with ground truth (post-shift traffic: a `--shift` share of the monitor's spam wave,
   the rest shipped comments; devstack/flowback_traffic.py) into a fresh index under the indexer's template;
2. export: `--repeats` exports of the range (each into a fresh bucket, so each really writes its dataset), through
   one point in time; prints the median wall time and rows/s (rows = documents with text and truth), and checks
   that every repeat gave the same hash;
3. train: `python -m feedback.flowback train`'s function (fetch the dataset, the classifier's retrain.py in the
   model's environment, register the candidate); prints the wall time (spaCy on the shipped training rows plus the
   N feedback rows, then the fit);
4. evaluate: both models score the shipped held-out set (1,227 rows) and the feedback's held-out rows, judged by
   the default rule; prints the wall time and the decision.

Every step is bounded by its size; nothing loops on time. Figures on a shared, loaded machine vary by tens of per
cent between runs; compare sizes within one run.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "images" / "feedback"):
    sys.path.insert(0, str(path))

from feedback.flowback import evaluation, training  # noqa: E402
from feedback.flowback.export import ExportRequest, export  # noqa: E402
from feedback.flowback.registry import Registry  # noqa: E402
from feedback.flowback.settings import ClassifierSettings  # noqa: E402
from feedback.redaction import Redactor  # noqa: E402

from devstack.demo import load_comments  # noqa: E402
from devstack.flowback_traffic import drifted_feedback  # noqa: E402
from devstack.runtime.paths import new_run_dir  # noqa: E402
from devstack.servers.model import BUILD_CONTEXT, model_python, trained_artifacts  # noqa: E402
from devstack.servers.s3 import S3Server  # noqa: E402
from devstack.servers.search import SearchServer  # noqa: E402
from tests.flowback_data import DEPLOYMENT, at, backend, document, index_documents, new_store  # noqa: E402

T = TypeVar("T")


def timed(step: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    result = step()
    return result, time.perf_counter() - began


def run_size(
    size: int, args: argparse.Namespace, search: SearchServer, s3: S3Server, classifier: ClassifierSettings
) -> None:
    _, train_rows = load_comments()
    rows = drifted_feedback(train_rows, size, args.shift, seed=size)
    index = f"bench-flowback-{secrets.token_hex(4)}-feedback"
    docs = [document(f"bench-{i:06d}", i * 59 / size, text, label) for i, (text, label) in enumerate(rows)]
    _, write_s = timed(lambda: index_documents(search.url, index, docs))
    request = ExportRequest(start=at(0), end=at(60), deployment=DEPLOYMENT)
    times: list[float] = []
    hashes: set[str] = set()
    stores = []
    for _ in range(args.repeats):
        store = new_store(s3, "bench")
        stores.append(store)
        result, seconds = timed(lambda store=store: export(backend(search.url), store, index, request, Redactor()))
        times.append(seconds)
        hashes.add(result.content_hash)
    exported = result.manifest["counts"]["rows"]
    median = statistics.median(times)
    print(
        f"N={size}: indexed in {write_s:.1f} s; export {exported} rows: median {median:.2f} s of {args.repeats} "
        f"({exported / median:.0f} rows/s; min {min(times):.2f} s, max {max(times):.2f} s); "
        f"same hash every time: {len(hashes) == 1}",
        flush=True,
    )
    if args.skip_train:
        return
    store = stores[0]
    registry = Registry(store, "text-classifier")
    serving = training.add(registry, None, trained_artifacts())
    registry.set_alias("serving", serving.version)
    prefix = result.prefix
    candidate, train_s = timed(lambda: training.train(store, registry, classifier, prefix, feedback_weight=1.0))
    split = result.manifest["counts"]["per_split"]
    print(
        f"N={size}: train {train_s:.1f} s (shipped training rows + {split['train']['rows']} feedback rows, "
        f"candidate {candidate.version})",
        flush=True,
    )
    report, evaluate_s = timed(
        lambda: evaluation.evaluate(
            store,
            registry,
            classifier,
            candidate=candidate.version,
            dataset_reference=prefix,
        )
    )
    sets = report["sets"]
    print(
        f"N={size}: evaluate {evaluate_s:.1f} s (2 models x ({sets['held_out']['rows']} shipped held-out + "
        f"{sets['feedback']['rows']} feedback held-out rows)); feedback accuracy serving "
        f"{sets['feedback']['serving']['accuracy']:.3f} -> candidate {sets['feedback']['candidate']['accuracy']:.3f}; "
        f"promote: {report['decision']['promote']}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", default="400,2000,10000", help="comma-separated sizes N")
    parser.add_argument("--shift", type=float, default=0.4, help="share of spam in the feedback")
    parser.add_argument("--repeats", type=int, default=3, help="exports per size (median printed)")
    parser.add_argument("--skip-train", action="store_true", help="export only (no classifier environment needed)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.documents.split(",") if size.strip()]
    if not sizes or min(sizes) < 10 or max(sizes) > 200_000 or not 1 <= args.repeats <= 20:
        parser.error("--documents must be sizes from 10 to 200000 and --repeats from 1 to 20")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_dir = new_run_dir("bench-flowback-")
    search, s3 = SearchServer(run_dir), S3Server(run_dir)
    classifier = None if args.skip_train else ClassifierSettings(python=model_python(), directory=BUILD_CONTEXT)
    try:
        search.start()
        s3.start()
        print(f"servers: OpenSearch {search.url}, s3proxy {s3.endpoint}; run folder {run_dir}", flush=True)
        for size in sizes:
            run_size(size, args, search, s3, classifier)  # type: ignore[arg-type]
    finally:
        s3.stop()
        search.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
