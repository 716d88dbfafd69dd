"""The flow back end to end on the local stack, with the numbers: `python -m devstack.flowback_demo`.

1. start the loop stack (Kafka, OpenSearch, s3proxy, the model under seldon-core-microservice behind the executor
   engine, collector, indexer);
2. shift: `--rows` real-time predictions of post-shift traffic (`--shift` of the monitor's crypto-spam drift scenario,
   the rest shipped training comments) on the main predictor, every one with ground truth, captured as the executor
   logs them (Ce-Endpoint = predictor);
3. the flow back as processes: `add` the shipped model as `serving`, `export` the shift's range, `train`
   (`--feedback-weight`), `evaluate` (JSON + HTML report), `register`;
4. canary: a second model server (predictor `canary`) serving the registered candidate, fetched with
   `fetch-model`; fresh post-shift traffic split by `--canary-percent` between the two, with ground truth;
5. `compare` main and canary from the index, then `promote`.

Exit code 0 only when the candidate passed the rule and beat the serving model on the canary's post-shift traffic.
Both predictors run behind the local executor engine (devstack/engine; a real binary with DEVSTACK_EXECUTOR_BIN),
the canary's defined by the text-classifier chart rendered with its canary on, so Ce-Endpoint names the predictor
and latency is the executor's. Ctrl-C stops everything; `--keep` leaves the stack running (the canary stops).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import requests

from devstack.demo import _refuse_if_a_stack_runs, in_parallel, load_comments
from devstack.flowback_traffic import drifted_feedback
from devstack.loop import LoopStack
from devstack.names import DEPLOYMENT, PREDICTOR
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import REPO_ROOT
from devstack.runtime.ports import HOST
from devstack.servers.engine import EngineServer
from devstack.servers.model import ModelServer, model_python, trained_artifacts
from smoke_tests.traffic import RestClient
from tools.helm import executor_definition

BUCKET = "flowback"
CANARY = "canary"
WORKERS = 4
INDEX_TIMEOUT_S = 180.0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def in_canary(index: int, percent: int) -> bool:
    """Request `index` goes to the canary: spread evenly, exactly floor(n * percent / 100) of the first n."""
    return (index + 1) * percent // 100 > index * percent // 100


class Flowback:
    """`python -m feedback.flowback` as processes against the loop stack's servers, each answer parsed."""

    def __init__(self, loop: LoopStack) -> None:
        s3 = loop.s3
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT / "images" / "feedback"),
            "FLOWBACK_SEARCH_URL": loop.search.url,
            "FLOWBACK_SEARCH_ENGINE": "opensearch",
            "FLOWBACK_INDEX": loop.names.index,
            "FLOWBACK_S3_ENDPOINT": s3.endpoint,
            "FLOWBACK_BUCKET": BUCKET,
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "AWS_REGION": s3.region,
            "FLOWBACK_CLASSIFIER_PYTHON": str(model_python()),
        }

    def __call__(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "feedback.flowback", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            raise DevstackError(f"flowback {args[0]} failed: {last}")
        return json.loads(done.stdout)


def send(urls: dict[str, str], rows: list[tuple[str, int]], route: Any, run: str, phase: str) -> dict[str, int]:
    """Predict every row through the executor of the predictor `route(i)` names and send its ground truth there
    (the executor logs request, response and feedback to the collector); the number of requests per predictor."""
    clients = {name: RestClient(url, timeout=60) for name, url in urls.items()}
    sent = dict.fromkeys(urls, 0)
    lock = threading.Lock()

    def one(i: int, text: str, label: int) -> None:
        predictor = route(i)
        prediction = clients[predictor].predict(text, f"flowback-{run}-{phase}-{i}")
        clients[predictor].feedback(prediction, truth=label)
        with lock:
            sent[predictor] += 1

    in_parallel(WORKERS, [lambda i=i, row=row: one(i, *row) for i, row in enumerate(rows)])
    return sent


def canary_engine(loop: LoopStack, model: ModelServer, version: str, percent: int) -> EngineServer:
    """The canary predictor's executor, defined by the text-classifier chart rendered with the canary on (as for a
    cluster), in front of the canary's model server and logging to the local collector."""
    values = {"canary": {"enabled": True, "predictorName": CANARY, "traffic": percent, "modelVersion": version}}
    definition = executor_definition(values, predictor_name=CANARY)
    return EngineServer(
        loop.run_dir,
        name="engine-canary",
        predictor=lambda: definition.local_predictor(
            HOST, model.http_port, model.grpc_port, logger_url=loop.collector.url
        ),
        deployment=definition.deployment,
        namespace=definition.namespace,
        predictor_name=CANARY,
        server_type=definition.server_type,
        transport=definition.transport,
        protocol=definition.protocol,
        env=definition.env,
        seldon_version=loop.seldon_version,
    )


def wait_indexed(search_url: str, index: str, prefix: str, expected: int, timeout: float = INDEX_TIMEOUT_S) -> int:
    """Documents with ground truth whose request id starts with `prefix`, once there are `expected` (or the time)."""
    body = {"query": {"bool": {"filter": [{"prefix": {"request_id": prefix}}, {"exists": {"field": "correct"}}]}}}
    deadline = time.monotonic() + timeout
    found = 0
    while time.monotonic() < deadline:
        requests.post(f"{search_url}/{index}/_refresh", timeout=30)
        found = int(requests.post(f"{search_url}/{index}/_count", json=body, timeout=30).json().get("count", 0))
        if found >= expected:
            return found
        time.sleep(1.0)
    raise DevstackError(
        f"only {found} of {expected} documents with ground truth ({prefix}*) indexed in {timeout:.0f} s"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def report(exported: dict, trained: dict, evaluation: dict, compared: dict, promoted: dict, html: Path) -> str:
    counts = exported["counts"]
    lines = [
        "",
        "flow back report",
        f"  dataset   {exported['dataset']}  ({counts['rows']} rows: train {counts['per_split']['train']['rows']}, "
        f"held out {counts['per_split']['held_out']['rows']}; labels {counts['per_label']})",
        f"  candidate {trained['version']} (parent {trained['parent_version']}, feedback weight "
        f"{trained['params']['feedback_weight']:g})",
    ]
    for data in evaluation["sets"].values():
        diff, serving, candidate = data["difference"], data["serving"], data["candidate"]
        lines.append(
            f"  {data['title']:<24} serving {_pct(serving['accuracy'])} "
            f"[{_pct(serving['low'])}, {_pct(serving['high'])}]  candidate "
            f"{_pct(candidate['accuracy'])} [{_pct(candidate['low'])}, {_pct(candidate['high'])}]"
            f"  difference {diff['difference']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}] ({data['rows']} rows)"
        )
    decision = evaluation["decision"]
    lines.append(
        f"  rule      {'promote' if decision['promote'] else 'keep'}: "
        + "; ".join(f"{c['name']} {'ok' if c['passed'] else 'FAILED'}" for c in decision["checks"])
    )
    lines.append("  canary vs main on fresh post-shift traffic (from the index):")
    for predictor, data in compared["predictors"].items():
        acc = data["accuracy"]
        lines.append(
            f"    {predictor:<8} {data['requests']:>5} requests, errors {data['errors']}, "
            f"accuracy {_pct(acc['accuracy'])} "
            f"[{_pct(acc['low'])}, {_pct(acc['high'])}] of {acc['rows']}, label mix {data['label_mix']}, "
            f"latency p50 {data['latency_ms']['p50']} ms p99 {data['latency_ms']['p99']} ms"
        )
    lines.append(f"  promoted  serving {promoted['previous_serving']} -> {promoted['serving']}")
    lines.append(f"  report    {html}")
    return "\n".join(lines)


def run(rows: int, shift: float, canary_percent: int, feedback_weight: float, keep: bool, out: TextIO) -> int:
    logging.getLogger("devstack").setLevel(logging.WARNING)
    _refuse_if_a_stack_runs()
    loop = LoopStack()
    canary: ModelServer | None = None
    engine: EngineServer | None = None
    try:
        out.write(f"starting the loop stack in {loop.run_dir}\n")
        loop.start()
        loop.s3.create_buckets([BUCKET])
        flowback = Flowback(loop)
        run_id = uuid.uuid4().hex[:8]
        _, train_rows = load_comments()

        shifted = drifted_feedback(train_rows, rows, shift, seed=1)
        start = datetime.now(UTC)
        out.write(f"shift: {rows} predictions ({shift:.0%} crypto spam) on the main predictor, all with ground truth\n")
        send({PREDICTOR: loop.rest_url}, shifted, lambda i: PREDICTOR, run_id, "shift")
        wait_indexed(loop.search.url, loop.names.index, f"flowback-{run_id}-shift-", rows)
        end = datetime.now(UTC)

        flowback("add", "--artifacts", str(trained_artifacts()), "--alias", "serving")
        exported = flowback("export", "--start", _iso(start), "--end", _iso(end), "--deployment", DEPLOYMENT)
        out.write(f"export: {exported['counts']['rows']} rows -> {exported['dataset']}\n")
        trained = flowback("train", "--dataset", exported["dataset"], "--feedback-weight", repr(feedback_weight))
        out.write(f"train: candidate {trained['version']}\n")
        evaluation_dir = loop.run_dir / "flowback-evaluation"
        decision = flowback(
            "evaluate",
            "--candidate",
            trained["version"],
            "--dataset",
            exported["dataset"],
            "--out",
            str(evaluation_dir),
        )
        evaluation = json.loads((evaluation_dir / "evaluation.json").read_text())
        out.write(f"evaluate: {'promote' if decision['decision']['promote'] else 'keep the serving model'}\n")
        flowback("register", "--candidate", trained["version"])

        canary_dir = loop.run_dir / "canary-model"
        flowback("fetch-model", "--version", trained["version"], "--dest", str(canary_dir))
        canary = ModelServer(loop.run_dir, artifacts=canary_dir, predictor=CANARY).start()
        engine = canary_engine(loop, canary, trained["version"], canary_percent).start()
        fresh = drifted_feedback(train_rows, rows, shift, seed=2)
        canary_start = datetime.now(UTC)
        out.write(f"canary: {rows} fresh post-shift predictions, {canary_percent} % to the canary\n")
        urls = {PREDICTOR: loop.rest_url, CANARY: engine.url}
        split = send(urls, fresh, lambda i: CANARY if in_canary(i, canary_percent) else PREDICTOR, run_id, "canary")
        wait_indexed(loop.search.url, loop.names.index, f"flowback-{run_id}-canary-", rows)
        compared = flowback(
            "compare", "--deployment", DEPLOYMENT, "--start", _iso(canary_start), "--end", _iso(datetime.now(UTC))
        )
        promoted = flowback("promote")
        out.write(report(exported, trained, evaluation, compared, promoted, evaluation_dir / "evaluation.html") + "\n")
        by = compared["predictors"]
        beat = by[CANARY]["accuracy"]["accuracy"] > by[PREDICTOR]["accuracy"]["accuracy"]
        exact = {name: by[name]["requests"] for name in split} == split
        out.write(
            f"  checks    candidate beats serving after the shift: {beat}; requests per predictor exact: {exact}\n"
        )
        ok = decision["decision"]["promote"] and beat and exact
        if keep:
            loop.detach()
            out.write(f"\nthe stack keeps running (run folder {loop.run_dir}); stop it with python -m devstack down\n")
        return 0 if ok else 1
    except KeyboardInterrupt:
        out.write("\ninterrupted: stopping the stack\n")
        keep = False
        return 130
    finally:
        if engine is not None:
            engine.stop()  # first: its queued events reach the collector before the stack stops
        if canary is not None:
            canary.stop()
        if not keep:
            loop.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.flowback_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400, help="post-shift predictions per phase (100 to 5000)")
    parser.add_argument(
        "--shift", type=float, default=0.4, help="share of the crypto-spam wave after the shift (0.05 to 1)"
    )
    parser.add_argument("--canary-percent", type=int, default=50, help="share of the canary phase's traffic (1-99)")
    parser.add_argument("--feedback-weight", type=float, default=1.0, help="weight of a feedback row in training")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args(argv)
    if not 100 <= args.rows <= 5000 or not 0.05 <= args.shift <= 1 or not 1 <= args.canary_percent <= 99:
        parser.error("--rows must be 100 to 5000, --shift 0.05 to 1 and --canary-percent 1 to 99")
    try:
        return run(args.rows, args.shift, args.canary_percent, args.feedback_weight, args.keep, sys.stdout)
    except DevstackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
