"""`make demo`: the whole feedback loop on one machine, with a realistic stream and a report of where it all landed.

1. start the loop stack (Kafka, OpenSearch, S3, the text classifier under seldon-core-microservice, the
   collector, the indexer, and in front of the model an executor in REST/gRPC mode and one in Kafka mode: the
   local engine, or a real executor binary with DEVSTACK_EXECUTOR_BIN);
2. send real traffic through them: real-time predictions of held-out comments from the shipped data set over REST
   and gRPC, ground truth (the data set's label, with the prediction's Seldon-Puid) for a share of the REST ones,
   a few bad requests (the
   model refuses them; the pipeline marks their documents with an outcome), streaming messages on the input topic
   (answers checked on the output topic, keys kept), and a batch of a few thousand comments through the real
   `seldon-batch-processor` with the WorkflowTemplate's steps;
3. wait until the index holds everything, then report counts per mode in Kafka and in the index, losses,
   freshness p50/p99, the model's label distribution and accuracy on the ground truth, and example queries
   (devstack/demo_report.py);
4. the drift scenario (devstack/demo_drift.py): stationary windows of held-out comments, then a crypto-spam wave;
   the monitor's windows say when it alarmed, false alarms before the shift, accuracy before and after; the run
   folder gets `report.html` (devstack/report_html.py: self-contained, opens offline) and its screenshot.

Capture source: the executor's request logger, the only thing that posts events to the collector; the report
names it (the local engine or the binary's path).

Ctrl-C (or SIGTERM) stops everything cleanly; `--keep` leaves the stack running for exploration.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

import requests

from devstack.demo_drift import DriftResult, DriftSizes, run_drift
from devstack.demo_html import write_report
from devstack.demo_report import (
    BAD_PREFIX,
    WARMUP_PREFIX,
    Console,
    FreshnessWatch,
    Sent,
    kafka_counts,
    report,
    wait_for_index,
    wait_for_outcomes,
)
from devstack.loop import LoopStack
from devstack.names import BUCKET, INDEX
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import REPO_ROOT
from devstack.servers.batch import BatchJob, ObjectStoreConfig, run_batch
from devstack.stack import pid_alive, read_state
from smoke_tests import seldon_grpc
from smoke_tests.sinks import TopicReader
from smoke_tests.traffic import PUID_HEADER, RestClient, produce_streaming

DATA = REPO_ROOT / "images" / "text-classifier" / "data" / "comments.csv"
SPLIT = REPO_ROOT / "images" / "text-classifier" / "textclf" / "split.py"


@dataclass(frozen=True)
class DemoSizes:
    realtime: int = 600
    streaming: int = 300
    batch: int = 3000
    grpc: int = 60  # real-time predictions over gRPC (captured as protobuf, indexed with transport grpc)
    bad: int = 4  # requests the model refuses (they get an outcome in the index)
    feedback_share: float = 0.4  # share of the real-time requests that get ground truth
    workers: int = 4
    timeout_s: float = 900.0  # the whole traffic + indexing phase
    drift: DriftSizes | None = field(default_factory=DriftSizes)  # None: no drift scenario

    def validate(self) -> None:
        problems = [
            f"--{name} {value} must be at least {low}"
            for name, value, low in (
                ("realtime", self.realtime, 1),
                ("batch", self.batch, 1),
                ("streaming", self.streaming, 0),
                ("grpc", self.grpc, 0),
                ("bad", self.bad, 0),
            )
            if value < low
        ]
        if not 0.0 <= self.feedback_share <= 1.0:
            problems.append(f"feedback share {self.feedback_share} must be from 0 to 1")
        if self.timeout_s <= 0:
            problems.append(f"--timeout {self.timeout_s:g} must be more than 0 seconds")
        if self.drift is not None and self.drift.window_s < 10:
            problems.append(f"--window {self.drift.window_s} must be at least 10 seconds (the monitor's minimum)")
        if self.drift is not None and self.drift.shifted < 0:
            problems.append(f"--drift-windows {self.drift.shifted} must be at least 0")
        if problems:
            raise DevstackError("demo: " + "; ".join(problems))


def _split_module() -> Any:
    spec = importlib.util.spec_from_file_location("_textclf_split", SPLIT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_comments() -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(held-out rows, training rows) of the shipped data set, split exactly as train.py split them."""
    with DATA.open(newline="", encoding="utf-8") as handle:
        rows = [(row["text"], int(row["label"])) for row in csv.DictReader(handle)]
    train, held_out = _split_module().split_rows(rows)
    return held_out, train


def _cycle(rows: list[tuple[str, int]], count: int) -> list[tuple[str, int]]:
    return [rows[i % len(rows)] for i in range(count)]


# ------------------------------------------------------------------------------------------- traffic


def gets_ground_truth(index: int, share: float) -> bool:
    """Whether request `index` gets ground truth: spread evenly, exactly floor(n * share) of the first n."""
    return int((index + 1) * share) > int(index * share)


def send_realtime(loop: LoopStack, sizes: DemoSizes, rows: list[tuple[str, int]], sent: Sent, console: Console) -> None:
    run = uuid.uuid4().hex[:8]
    rest = RestClient(loop.rest_url, timeout=30)
    done = 0
    lock = threading.Lock()

    def one(i: int, text: str, label: int) -> None:
        nonlocal done
        puid = f"demo-{run}-rt-{i}"
        prediction = rest.predict(text, puid)
        if prediction.answered_puid != puid:
            raise DevstackError(f"the executor answered {puid} with Seldon-Puid {prediction.answered_puid!r}")
        if i % 5 == 0:
            sent.sent_at[puid] = time.time()
        if gets_ground_truth(i, sizes.feedback_share):
            rest.feedback(prediction, truth=label)  # with the prediction's Seldon-Puid: the join key
            with lock:
                sent.feedback[puid] = label
        with lock:
            done += 1
            console.progress("realtime", f"real-time: {done}/{sizes.realtime} predictions answered")

    rows = _cycle(rows, sizes.realtime)
    in_parallel(sizes.workers, [lambda i=i, row=row: one(i, *row) for i, row in enumerate(rows)])
    console.progress("realtime", f"real-time: {done}/{sizes.realtime} predictions answered", final=True)
    sent.requests["realtime"] += sizes.realtime
    sent.events[("realtime", "request")] += sizes.realtime
    sent.events[("realtime", "response")] += sizes.realtime
    sent.events[("realtime", "feedback")] += len(sent.feedback)


def send_grpc(loop: LoopStack, sizes: DemoSizes, rows: list[tuple[str, int]], sent: Sent, console: Console) -> None:
    """Real-time predictions over gRPC (the Seldon service): the executor logs them as protobuf events."""
    if sizes.grpc == 0:
        return
    if not loop.engine.serves_grpc:
        sent.notes.append(f"gRPC: not sent; the Seldon {loop.seldon_version} executor opens no gRPC port with REST")
        return
    run = uuid.uuid4().hex[:8]
    done = 0
    lock = threading.Lock()

    def one(i: int, text: str) -> None:
        nonlocal done
        puid = f"demo-{run}-grpc-{i}"
        answer = seldon_grpc.predict(loop.engine.grpc_address, text, puid, timeout=30)
        if answer.puid != puid:
            raise DevstackError(f"the executor answered gRPC {puid} with seldon-puid {answer.puid!r}")
        with lock:
            done += 1
            console.progress("grpc", f"gRPC: {done}/{sizes.grpc} predictions answered")

    rows = _cycle(rows, sizes.grpc)
    in_parallel(sizes.workers, [lambda i=i, text=text: one(i, text) for i, (text, _label) in enumerate(rows)])
    console.progress("grpc", f"gRPC: {done}/{sizes.grpc} predictions answered", final=True)
    sent.requests["realtime"] += sizes.grpc
    sent.grpc += sizes.grpc
    sent.events[("realtime", "request")] += sizes.grpc
    sent.events[("realtime", "response")] += sizes.grpc


# (what is wrong, body): valid JSON the model answers 400 to; the executor logs the request and no response, so
# the indexer marks the document `outcome: no_response`. (Invalid JSON would be refused by the collector itself,
# counted as `invalid_json`, and never reach an index: docs/feedback-pipeline.md.)
BAD_REQUESTS = (
    ("a number instead of a text", b'{"data": {"ndarray": [42]}}'),
    ("an empty ndarray", b'{"data": {"ndarray": []}}'),
)


def send_bad_requests(
    loop: LoopStack, sizes: DemoSizes, rows: list[tuple[str, int]], sent: Sent, console: Console
) -> None:
    """A few requests the model refuses: their request events are captured, no response follows, and the
    pipeline gives their documents an outcome (docs/feedback-pipeline.md)."""
    run = uuid.uuid4().hex[:8]
    session = requests.Session()
    for i in range(sizes.bad):
        what, body = BAD_REQUESTS[i % len(BAD_REQUESTS)]
        puid = f"{BAD_PREFIX}{run}-{i}"
        answer = session.post(
            f"{loop.rest_url}/api/v1.0/predictions",
            data=body,
            headers={"Content-Type": "application/json", PUID_HEADER: puid},
            timeout=30,
        )
        sent.bad[puid] = (what, answer.status_code)
    statuses = Counter(status for _what, status in sent.bad.values())
    console.say(
        f"bad requests: {len(sent.bad)} sent ({', '.join(w for w, _ in BAD_REQUESTS)}), answered "
        + ", ".join(f"{status} x{n}" for status, n in sorted(statuses.items()))
    )
    sent.events[("bad", "request")] += len(sent.bad)


def in_parallel(workers: int, tasks: list[Callable[[], None]]) -> None:
    """Run `tasks` on `workers` threads; the first error (or Ctrl-C) cancels what has not started yet."""
    pool = ThreadPoolExecutor(workers)
    try:
        for future in [pool.submit(task) for task in tasks]:
            future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def send_streaming(
    loop: LoopStack, sizes: DemoSizes, rows: list[tuple[str, int]], sent: Sent, console: Console
) -> None:
    """N messages on the input topic (key = Seldon-Puid header = puid); N answers expected on the output topic."""
    if sizes.streaming == 0:
        return
    target = loop.target()
    assert target.streaming is not None
    run = uuid.uuid4().hex[:8]
    items = [(f"demo-{run}-st-{i}", text) for i, (text, _label) in enumerate(_cycle(rows, sizes.streaming))]
    output = TopicReader(target.kafka, target.streaming.output_topic)
    try:
        produce_streaming(target.kafka, target.streaming.input_topic, items, timeout=60)
        console.say(f"streaming: {len(items)} messages on {target.streaming.input_topic}")
        sent.requests["streaming"] += len(items)
        sent.events[("streaming", "request")] += len(items)
        sent.events[("streaming", "response")] += len(items)
        wanted = {puid for puid, _text in items}
        keys: Counter = Counter()
        deadline = time.monotonic() + min(sizes.timeout_s, 300.0)
        while time.monotonic() < deadline and set(keys) < wanted:
            for message in output.read(1.0):
                key = (message.key() or b"").decode("utf-8", "replace")
                if key in wanted:
                    keys[key] += 1
            console.progress(
                "streaming", f"streaming: {len(keys)}/{len(items)} answers on {target.streaming.output_topic}"
            )
        sent.streaming_answers = sum(keys.values())
        sent.streaming_keys_kept = len(keys)
        console.progress(
            "streaming", f"streaming: {len(keys)}/{len(items)} answers on {target.streaming.output_topic}", final=True
        )
    finally:
        output.close()


def send_batch(loop: LoopStack, sizes: DemoSizes, rows: list[tuple[str, int]], sent: Sent, console: Console) -> None:
    texts = [text for text, _label in _cycle(rows, sizes.batch)]
    sent.batch_id = f"demo-batch-{uuid.uuid4().hex[:8]}"
    store = ObjectStoreConfig(
        endpoint=loop.s3.endpoint,
        bucket=BUCKET,
        access_key=loop.s3.access_key,
        secret_key=loop.s3.secret_key,
        region=loop.s3.region,
    )
    input_key, output_key = f"input/{sent.batch_id}.jsonl", f"output/{sent.batch_id}.jsonl"
    store.client().put_object(
        Bucket=BUCKET, Key=input_key, Body="".join(json.dumps([t]) + "\n" for t in texts).encode()
    )
    console.say(f"batch: {len(texts)} comments uploaded to s3://{BUCKET}/{input_key}; running seldon-batch-processor")
    result = run_batch(
        BatchJob(
            store=store,
            input_key=input_key,
            output_key=output_key,
            host=loop.rest_url.split("://", 1)[1],
            batch_id=sent.batch_id,
            workers=sizes.workers,
        ),
        timeout_s=sizes.timeout_s,
        work_dir=loop.run_dir / "batch" / sent.batch_id,
        progress=lambda done, total: console.progress("batch", f"batch: {done}/{total} lines processed"),
    )
    console.say(
        f"batch: {result.output_lines}/{result.input_lines} output lines ({result.failed_lines} failed) in "
        f"{result.seconds:.0f} s, stored at s3://{BUCKET}/{output_key}"
    )
    sent.requests["batch"] += result.input_lines
    sent.events[("batch", "request")] += result.input_lines
    sent.events[("batch", "response")] += result.input_lines


def warm_up(loop: LoopStack, console: Console, timeout: float = 120.0) -> None:
    """One prediction through engine -> collector -> Kafka -> indexer -> search, then removed, so that the freshness
    figures measure the running pipeline rather than the indexer's first consumer-group join."""
    puid = f"{WARMUP_PREFIX}{uuid.uuid4().hex[:8]}"
    RestClient(loop.rest_url, timeout=30).predict("warm-up", puid)
    query = {"query": {"bool": {"filter": [{"term": {"request_id": puid}}, {"exists": {"field": "response_time"}}]}}}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = requests.post(f"{loop.search.url}/{INDEX}/_count", json=query, timeout=10)
        if found.status_code == 200 and found.json().get("count", 0) > 0:
            requests.post(
                f"{loop.search.url}/{INDEX}/_delete_by_query?refresh=true",
                json={"query": {"term": {"request_id": puid}}},
                timeout=30,
            )
            console.say("pipeline warm: a prediction went engine -> collector -> Kafka -> indexer -> search (removed)")
            return
        time.sleep(0.2)
    console.say(f"warning: the warm-up prediction was not searchable within {timeout:.0f} s; continuing")


# ---------------------------------------------------------------------------------------------- run


def run(
    sizes: DemoSizes,
    keep: bool = False,
    out: TextIO = sys.stdout,
    verbose: bool = False,
    seldon_version: str | None = None,
) -> int:
    console = Console(out)
    if not verbose:  # the progress lines say what happens; server logs stay in the run folder
        logging.getLogger("devstack").setLevel(logging.WARNING)
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    loop: LoopStack | None = None
    sizes.validate()
    _refuse_if_a_stack_runs()
    try:
        held_out, train = load_comments()
        console.say(
            f"data: {len(held_out)} held-out and {len(train)} training comments from {DATA.relative_to(REPO_ROOT)}"
        )
        # short windows for a short demo; 10 label permutations keep a window's domain classifier to seconds
        window_s = sizes.drift.window_s if sizes.drift else 60
        loop = LoopStack(
            monitor_settings={"window_s": window_s, "settle_s": 5, "domain_permutations": 10},
            seldon_version=seldon_version,
        )
        console.say(
            f"starting the loop stack in {loop.run_dir} (first run downloads and builds; later runs reuse the cache)"
        )
        _start_with_progress(loop, console)
        warm_up(loop, console)
        sent = Sent()
        watch = FreshnessWatch(loop.search.url, sent)
        watch.thread.start()
        deadline = time.monotonic() + sizes.timeout_s
        for phase, send, rows in (
            ("real-time", send_realtime, held_out),
            ("gRPC", send_grpc, held_out),
            ("bad requests", send_bad_requests, held_out),
            ("streaming", send_streaming, held_out),
            ("batch", send_batch, held_out + train),
        ):
            try:
                send(loop, sizes, rows, sent, console)
            except (DevstackError, AssertionError, OSError, requests.RequestException) as exc:
                # report it with what did arrive instead of losing the whole run
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                sent.failures.append(f"{phase}: {first_line}")
                console.say(f"{phase}: FAILED: {first_line}")
        counts = wait_for_index(loop.search.url, sent, deadline, console)
        time.sleep(1.0)
        watch.stop.set()
        kafka, dead = kafka_counts(loop.kafka.client_config())
        bad_docs = wait_for_outcomes(loop.search.url, sent, deadline, console) if sent.bad else []
        drift: DriftResult | None = None
        if sizes.drift is not None:
            try:
                drift = run_drift(loop, sizes.drift, held_out, console)
            except (DevstackError, OSError, requests.RequestException) as exc:
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                sent.failures.append(f"drift: {first_line}")
                console.say(f"drift: FAILED: {first_line}")
        text, ok = report(loop, sent, counts, kafka, dead, watch, bad_docs)
        out.write(text + "\n")
        out.write(write_report(loop, sent, counts, watch, drift, sizes) + "\n")
        if keep:
            loop.detach()
            out.write(
                f"\nthe stack keeps running (run folder {loop.run_dir}):\n"
                "  python -m devstack status      where everything listens, memory, logs\n"
                "  python -m devstack down        stop it\n"
            )
        else:
            out.write(f"\nstopping the stack; logs stay in {loop.run_dir}\n")
        return 0 if ok else 1
    except KeyboardInterrupt:
        out.write("\ninterrupted: stopping the stack\n")
        keep = False
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if loop is not None and not keep:
            loop.stop()


def _refuse_if_a_stack_runs() -> None:
    """One local stack at a time: a second would overwrite the state file that `status` and `down` read."""
    state = read_state()
    if not state:
        return
    alive = [name for name, info in state.get("servers", {}).items() if pid_alive(info.get("pid"), state["run_dir"])]
    if alive:
        raise DevstackError(
            f"a local stack is already running ({', '.join(alive)} in {state['run_dir']}); explore it "
            "(`python -m devstack status`) or stop it first (`python -m devstack down`)"
        )


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _start_with_progress(loop: LoopStack, console: Console) -> None:
    """Start the stack while reporting each server as it comes up."""
    done = threading.Event()

    hints = {
        "model": "the first run builds the model's virtualenv and trains it: minutes",
        "kafka": "the first run downloads its jars from Maven Central",
        "search": "the first run downloads OpenSearch from Maven Central",
    }

    reported: set[str] = set()

    def report_up() -> None:
        for name, seconds in list(loop.stack.start_seconds.items()):
            if name not in reported:
                reported.add(name)
                console.say(f"  {name} up in {seconds:.1f} s")

    def watch() -> None:
        current, since = "", time.monotonic()
        while not done.wait(1.0):
            report_up()
            pending = [s.name for s in loop.stack.servers if s.name not in loop.stack.start_seconds]
            if pending and pending[0] != current:
                current, since = pending[0], time.monotonic()
                console.say(f"  starting {current} ...")
            elif pending and time.monotonic() - since >= 30:
                since = time.monotonic()
                hint = f" ({hints[current]})" if current in hints else ""
                console.say(f"  still starting {current}{hint}")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        loop.start()
    finally:
        done.set()
        thread.join()
    report_up()
    console.say(
        "stack up: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in loop.stack.start_seconds.items())
    )
