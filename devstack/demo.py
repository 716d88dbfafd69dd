"""`make demo`: the whole feedback loop on one machine, with a realistic stream and a report of where it all landed.

1. start the loop stack (Kafka, OpenSearch, S3, the text classifier under seldon-core-microservice, the Seldon
   executor in REST and Kafka mode when it can be built, the collector, the indexer);
2. send real traffic: real-time predictions of held-out comments from the shipped data set, ground truth (the
   data set's label) for a share of them, streaming messages (with the executor's Kafka mode), and a batch of a
   few thousand comments through the real `seldon-batch-processor` with the WorkflowTemplate's steps;
3. wait until the index holds everything, then report counts per mode in Kafka and in the index, losses,
   freshness p50/p99, the model's label distribution and accuracy on the ground truth, and example queries.

Capture source: the Seldon executor logs every request, response and feedback when it runs. While it cannot be
built here (docs/executor.md), the demo posts each real request and answer to the collector itself, as
CloudEvents in the executor's format (smoke_tests/executor_events.py), and says so in the report; streaming
needs the executor's Kafka server type and is then left out.

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

from devstack.loop import LoopStack
from devstack.names import BUCKET, CAPTURE_TOPIC, DEAD_LETTER_TOPIC, INDEX, STREAMING_DEPLOYMENT
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import REPO_ROOT
from devstack.servers.batch import BatchJob, ObjectStoreConfig, run_batch
from devstack.stack import pid_alive, read_state
from smoke_tests.executor_events import CollectorClient, Deployment
from smoke_tests.traffic import CLASS_NAMES, Prediction, RestClient, produce_streaming

DATA = REPO_ROOT / "images" / "text-classifier" / "data" / "comments.csv"
SPLIT = REPO_ROOT / "images" / "text-classifier" / "textclf" / "split.py"
MODES = ("realtime", "streaming", "batch")
WARMUP_PREFIX = "warmup-"


@dataclass(frozen=True)
class DemoSizes:
    realtime: int = 600
    streaming: int = 300
    batch: int = 3000
    feedback_share: float = 0.4  # share of the real-time requests that get ground truth
    workers: int = 4
    timeout_s: float = 900.0  # the whole traffic + indexing phase

    def validate(self) -> None:
        problems = [
            f"--{name} {value} must be at least {low}"
            for name, value, low in (
                ("realtime", self.realtime, 1),
                ("batch", self.batch, 1),
                ("streaming", self.streaming, 0),
            )
            if value < low
        ]
        if not 0.0 <= self.feedback_share <= 1.0:
            problems.append(f"feedback share {self.feedback_share} must be from 0 to 1")
        if self.timeout_s <= 0:
            problems.append(f"--timeout {self.timeout_s:g} must be more than 0 seconds")
        if problems:
            raise DevstackError("demo: " + "; ".join(problems))


@dataclass
class Sent:
    """What the demo sent, per mode, to compare with what landed."""

    requests: Counter = field(default_factory=Counter)  # mode -> requests
    events: Counter = field(default_factory=Counter)  # (mode, kind) -> capture events expected
    feedback: dict[str, int] = field(default_factory=dict)  # request id -> truth label index
    sent_at: dict[str, float] = field(default_factory=dict)  # sampled request id -> wall time its answer was logged
    batch_id: str = ""
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # phases that failed, with the first line of the reason


class Console:
    """Progress lines with the elapsed time; progress that repeats is throttled to one line every 2 s."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.began = time.monotonic()
        self._last: dict[str, float] = {}

    def say(self, message: str) -> None:
        self.out.write(f"[{time.monotonic() - self.began:6.1f}s] {message}\n")
        self.out.flush()

    def progress(self, key: str, message: str, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - self._last.get(key, 0.0) >= 2.0:
            self._last[key] = now
            self.say(message)


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
    collector = None if loop.has_executor else CollectorClient(loop.collector.url)
    deployment = Deployment()
    done = 0
    lock = threading.Lock()

    def one(i: int, text: str, label: int) -> None:
        nonlocal done
        puid = f"demo-{run}-rt-{i}"
        prediction = rest.predict(text, puid)
        if collector is not None:
            collector.send("request", puid, prediction.request, deployment)
            collector.send("response", puid, _with_puid(prediction.response, puid), deployment)
        if i % 5 == 0:
            sent.sent_at[puid] = time.time()
        if gets_ground_truth(i, sizes.feedback_share):
            rest.feedback(prediction, truth=label)
            if collector is not None:
                collector.send("feedback", puid, _feedback_body(prediction, label), deployment)
            with lock:
                sent.feedback[puid] = label
        with lock:
            done += 1
            console.progress("realtime", f"real-time: {done}/{sizes.realtime} predictions answered and logged")

    rows = _cycle(rows, sizes.realtime)
    in_parallel(sizes.workers, [lambda i=i, row=row: one(i, *row) for i, row in enumerate(rows)])
    console.progress("realtime", f"real-time: {done}/{sizes.realtime} predictions answered and logged", final=True)
    sent.requests["realtime"] += sizes.realtime
    sent.events[("realtime", "request")] += sizes.realtime
    sent.events[("realtime", "response")] += sizes.realtime
    sent.events[("realtime", "feedback")] += len(sent.feedback)


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


def _with_puid(response: dict[str, Any], puid: str) -> dict[str, Any]:
    """The answer as the executor returns it: the model's answer with the request's puid in meta."""
    return {**response, "meta": {**response.get("meta", {}), "puid": puid}}


def _feedback_body(prediction: Prediction, label: int) -> dict[str, Any]:
    return {
        "request": prediction.request,
        "response": prediction.response,
        "truth": {"data": {"names": CLASS_NAMES, "ndarray": [[1.0 - label, float(label)]]}},
        "reward": 1.0,
    }


def send_streaming(
    loop: LoopStack, sizes: DemoSizes, rows: list[tuple[str, int]], sent: Sent, console: Console
) -> None:
    if loop.executor_kafka is None:
        sent.notes.append(
            "streaming: not run; it needs the Seldon executor's Kafka server type, which cannot be built here "
            "(docs/executor.md)"
        )
        console.say("streaming: skipped (no Seldon executor; see docs/executor.md)")
        return
    target = loop.target()
    assert target.streaming is not None
    run = uuid.uuid4().hex[:8]
    items = [(f"demo-{run}-st-{i}", text) for i, (text, _label) in enumerate(_cycle(rows, sizes.streaming))]
    produce_streaming(target.kafka, target.streaming.input_topic, items, timeout=60)
    console.say(f"streaming: {len(items)} messages on {target.streaming.input_topic}")
    sent.requests["streaming"] += len(items)
    sent.events[("streaming", "request")] += len(items)
    sent.events[("streaming", "response")] += len(items)


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
    if loop.has_executor:
        return
    body = store.client().get_object(Bucket=BUCKET, Key=output_key)["Body"].read().decode()
    collector = CollectorClient(loop.collector.url)
    deployment = Deployment()
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]

    def log_line(answer: dict[str, Any]) -> None:
        tags = answer.get("meta", {}).get("tags", {})
        request = {"data": {"ndarray": [texts[int(tags["batch_index"])]]}, "meta": {"tags": tags}}
        puid = str(tags["batch_instance_id"])
        collector.send("request", puid, request, deployment)
        collector.send("response", puid, answer, deployment)

    def log_and_count(i: int, line: dict[str, Any]) -> None:
        log_line(line)
        console.progress("batch-log", f"batch: {i}/{len(lines)} answers logged to the collector")

    in_parallel(sizes.workers, [lambda i=i, line=line: log_and_count(i, line) for i, line in enumerate(lines, 1)])
    console.progress("batch-log", f"batch: {len(lines)}/{len(lines)} answers logged to the collector", final=True)


def warm_up(loop: LoopStack, console: Console, timeout: float = 120.0) -> None:
    """One probe through collector -> Kafka -> indexer -> search, then removed, so that the freshness figures
    measure the running pipeline rather than the indexer's first consumer-group join."""
    puid = f"{WARMUP_PREFIX}{uuid.uuid4().hex[:8]}"
    collector = CollectorClient(loop.collector.url)
    collector.send("request", puid, {"data": {"ndarray": ["warm-up"]}}, Deployment())
    collector.send("response", puid, {"data": {"names": CLASS_NAMES, "ndarray": [[0.5, 0.5]]}}, Deployment())
    query = {"query": {"term": {"request_id": puid}}}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = requests.post(f"{loop.search.url}/{INDEX}/_count", json=query, timeout=10)
        if found.status_code == 200 and found.json().get("count", 0) > 0:
            requests.post(f"{loop.search.url}/{INDEX}/_delete_by_query?refresh=true", json=query, timeout=30)
            console.say("pipeline warm: a probe went collector -> Kafka -> indexer -> search (then removed)")
            return
        time.sleep(0.2)
    console.say(f"warning: the warm-up probe was not searchable within {timeout:.0f} s; continuing")


# ----------------------------------------------------------------------------------------- observing


class FreshnessWatch:
    """Polls the index for the sampled request ids and records when each first became searchable."""

    def __init__(self, search_url: str, sent: Sent) -> None:
        self.search_url = search_url
        self.sent = sent
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="freshness", daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            waiting = [rid for rid in list(self.sent.sent_at) if rid not in self.seen]
            if waiting:
                try:
                    hits = session.post(
                        f"{self.search_url}/{INDEX}/_search",
                        json={
                            "query": {
                                "bool": {
                                    "filter": [
                                        {"terms": {"request_id": waiting[:500]}},
                                        {"exists": {"field": "response_time"}},
                                    ]
                                }
                            },
                            "_source": ["request_id"],
                            "size": 500,
                        },
                        timeout=10,
                    ).json()
                    now = time.time()
                    for hit in hits.get("hits", {}).get("hits", []):
                        self.seen.setdefault(hit["_source"]["request_id"], now)
                except (requests.RequestException, ValueError):
                    pass
            self.stop.wait(0.1)

    def percentiles(self) -> tuple[float, float, int] | None:
        delays = sorted(self.seen[rid] - self.sent.sent_at[rid] for rid in self.seen if rid in self.sent.sent_at)
        if not delays:
            return None
        return _percentile(delays, 50), _percentile(delays, 99), len(delays)


def _percentile(values: list[float], pct: float) -> float:
    index = min(len(values) - 1, max(0, round(pct / 100 * (len(values) - 1))))
    return values[index]


def index_counts(search_url: str) -> dict[str, Any]:
    body = {
        "size": 0,
        "track_total_hits": True,
        "aggs": {
            "mode": {"terms": {"field": "mode", "size": 10}},
            "label": {"terms": {"field": "predicted_label", "size": 10}},
            "by_mode_label": {
                "terms": {"field": "mode", "size": 10},
                "aggs": {"label": {"terms": {"field": "predicted_label", "size": 10}}},
            },
            "with_truth": {
                "filter": {"exists": {"field": "truth"}},
                "aggs": {"correct": {"terms": {"field": "correct"}}},
            },
            "joined": {
                "filter": {
                    "bool": {"filter": [{"exists": {"field": "request_time"}}, {"exists": {"field": "response_time"}}]}
                },
                "aggs": {"mode": {"terms": {"field": "mode", "size": 10}}},
            },
        },
    }
    requests.post(f"{search_url}/{INDEX}/_refresh", timeout=30)
    return requests.post(f"{search_url}/{INDEX}/_search", json=body, timeout=30).json()


def _buckets(agg: dict[str, Any]) -> dict[str, int]:
    return {str(b.get("key_as_string", b["key"])): int(b["doc_count"]) for b in agg.get("buckets", [])}


def wait_for_index(search_url: str, sent: Sent, deadline: float, console: Console) -> dict[str, Any]:
    expected = {mode: n for mode, n in sent.requests.items() if n}
    while True:
        try:
            counts = index_counts(search_url)
            joined = _buckets(counts["aggregations"]["joined"]["mode"])
            truth = counts["aggregations"]["with_truth"]["doc_count"]
        except (requests.RequestException, KeyError, ValueError):
            counts, joined, truth = {}, {}, 0
        done = all(joined.get(mode, 0) >= n for mode, n in expected.items()) and truth >= len(sent.feedback)
        summary = ", ".join(f"{mode} {joined.get(mode, 0)}/{n}" for mode, n in expected.items())
        console.progress("index", f"index: joined documents {summary}; ground truth {truth}/{len(sent.feedback)}", done)
        if done or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def kafka_counts(bootstrap: str, timeout: float = 120.0) -> tuple[Counter, int]:
    """Capture events per (mode, kind) on the capture topic, and records on the dead-letter topic (reading stops
    with an error after `timeout` s instead of waiting forever for a partition that never reaches its end)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"demo-report-{uuid.uuid4()}", "enable.auto.commit": False}
    )
    counts: Counter = Counter()
    dead = 0
    try:
        for topic in (CAPTURE_TOPIC, DEAD_LETTER_TOPIC):
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30) for p in partitions}
            if topic == DEAD_LETTER_TOPIC:
                dead = sum(high - low for low, high in ends.values())
                continue
            consumer.assign([TopicPartition(topic, p, low) for p, (low, _high) in ends.items()])
            remaining = {p for p, (low, high) in ends.items() if high > low}
            deadline = time.monotonic() + timeout
            while remaining:
                if time.monotonic() > deadline:
                    raise DevstackError(
                        f"demo: could not read {topic} on {bootstrap} to its end within {timeout:.0f} s (partitions "
                        f"{sorted(remaining)} unfinished); check that Kafka still runs (python -m devstack status)"
                    )
                for message in consumer.consume(num_messages=1000, timeout=2.0):
                    if message.error() is not None:
                        continue
                    key = _capture_mode_kind(message)
                    if key is not None:
                        counts[key] += 1
                    if message.offset() >= ends[message.partition()][1] - 1:
                        remaining.discard(message.partition())
    finally:
        consumer.close()
    return counts, dead


def _capture_mode_kind(message: Any) -> tuple[str, str] | None:
    headers = {k.lower(): (v or b"").decode("utf-8", "replace") for k, v in (message.headers() or [])}
    if (headers.get("ce_requestid") or headers.get("requestid") or "").startswith(WARMUP_PREFIX):
        return None
    ce_type = headers.get("ce_type") or headers.get("type") or "?"
    kind = ce_type.rsplit(".", 1)[-1]
    deployment = headers.get("ce_inferenceservicename") or headers.get("inferenceservicename") or ""
    if deployment == STREAMING_DEPLOYMENT:
        return "streaming", kind
    try:
        body = json.loads(message.value() or b"{}")
    except ValueError:
        body = {}
    tags = body.get("meta", {}).get("tags", {}) if isinstance(body, dict) and isinstance(body.get("meta"), dict) else {}
    return ("batch" if isinstance(tags, dict) and "batch_id" in tags else "realtime"), kind


def indexer_freshness(indexer: Any) -> str:
    """p50/p99 upper bounds from the indexer's freshness histogram (bucket resolution)."""
    try:
        text = requests.get(indexer.metrics_url, timeout=5).text
    except requests.RequestException:
        return "unavailable"
    buckets = []
    for line in text.splitlines():
        if line.startswith("feedback_indexer_freshness_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return "no samples"
    total = buckets[-1][1]

    def bound(pct: float) -> str:
        for le, count in buckets:
            if count >= pct / 100 * total:
                return f"<= {le:g} s"
        return "?"

    return f"p50 {bound(50)}, p99 {bound(99)} over {total:.0f} messages (histogram buckets)"


# ------------------------------------------------------------------------------------------- report


def report(
    loop: LoopStack, sent: Sent, counts: dict[str, Any], kafka: Counter, dead: int, watch: FreshnessWatch
) -> tuple[str, bool]:
    """The report's text, and whether nothing was lost (every mode, the dead-letter topic, the ground truth)."""
    aggs = counts.get("aggregations", {})
    source = (
        "the Seldon executor's request logger"
        if loop.has_executor
        else "the demo, posting each real request and answer to the collector as the executor's CloudEvents "
        "(the executor cannot be built here: docs/executor.md)"
    )
    lines = ["", "Feedback loop demo", "==================", "", f"capture source: {source}", ""]
    table, ok = _landed_table(sent, aggs, kafka)
    lines += table
    lines.append(f"dead-lettered: {dead}")
    truth_docs = aggs.get("with_truth", {}).get("doc_count", 0)
    ok = ok and dead == 0 and not sent.failures and truth_docs == len(sent.feedback)  # ground truth lost counts too
    lines.append(f"losses: {'none' if ok else 'SOME (table, ground truth: sent must equal indexed, events as sent)'}")
    lines.append("")
    lines += _quality_lines(loop, sent, aggs, watch)
    lines += [f"FAILED: {failure}" for failure in sent.failures]
    lines += [f"note: {note}" for note in sent.notes]
    lines += _look_at_the_data(loop, sent)
    return "\n".join(lines), ok


def _landed_table(sent: Sent, aggs: dict[str, Any], kafka: Counter) -> tuple[list[str], bool]:
    """Per mode: sent, capture events on Kafka, documents indexed and joined, lost; ok when all match."""
    docs_by_mode = _buckets(aggs.get("mode", {}))
    joined_by_mode = _buckets(aggs.get("joined", {}).get("mode", {}))
    lines = [f"{'mode':<10} {'sent':>6} {'kafka req/resp/fb':>19} {'indexed':>8} {'joined':>7} {'lost':>5}"]
    ok = True
    for mode in MODES:
        requested = sent.requests.get(mode, 0)
        if not requested and not docs_by_mode.get(mode):
            continue
        on_kafka = "/".join(str(kafka.get((mode, kind), 0)) for kind in ("request", "response", "feedback"))
        lost = requested - joined_by_mode.get(mode, 0)
        expected_events = all(
            kafka.get((mode, kind), 0) == sent.events.get((mode, kind), 0)
            for kind in ("request", "response", "feedback")
        )
        ok = ok and lost == 0 and docs_by_mode.get(mode, 0) == requested and expected_events
        lines.append(
            f"{mode:<10} {requested:>6} {on_kafka:>19} {docs_by_mode.get(mode, 0):>8} {joined_by_mode.get(mode, 0):>7} "
            f"{lost:>5}"
        )
    return lines, ok


def _quality_lines(loop: LoopStack, sent: Sent, aggs: dict[str, Any], watch: FreshnessWatch) -> list[str]:
    """Freshness, the model's label distribution (in all and per mode) and its accuracy on the ground truth."""
    lines = []
    fresh = watch.percentiles()
    if fresh:
        lines.append(
            f"freshness of real-time requests (answer logged -> searchable, while traffic ran): "
            f"p50 {fresh[0] * 1000:.0f} ms, p99 {fresh[1] * 1000:.0f} ms over {fresh[2]} sampled requests; "
            f"indexer histogram (Ce-Time -> acknowledged, every message): {indexer_freshness(loop.indexer)}"
        )
    labels = _buckets(aggs.get("label", {}))
    total = sum(labels.values()) or 1
    lines.append(
        "model labels: " + ", ".join(f"{label} {n} ({100 * n / total:.0f}%)" for label, n in sorted(labels.items()))
    )
    for bucket in aggs.get("by_mode_label", {}).get("buckets", []):
        per = _buckets(bucket["label"])
        lines.append(f"  {bucket['key']:<9} " + ", ".join(f"{label} {n}" for label, n in sorted(per.items())))
    truth = aggs.get("with_truth", {})
    correct = _buckets(truth.get("correct", {}))
    if truth.get("doc_count"):
        right = correct.get("true", 0)
        lines.append(
            f"ground truth: {truth['doc_count']} documents (sent {len(sent.feedback)}), model correct on {right} "
            f"({100 * right / truth['doc_count']:.1f}%)"
        )
    return lines


def _look_at_the_data(loop: LoopStack, sent: Sent) -> list[str]:
    url = loop.search.url
    return [
        "",
        "look at the data:",
        f"  curl -s '{url}/{INDEX}/_count?q=mode:batch'",
        f"  curl -s '{url}/{INDEX}/_search?q=batch_id:{sent.batch_id}&size=1&pretty'",
        f"  curl -s '{url}/{INDEX}/_search?q=correct:false&size=3&pretty'        # wrong answers with their truth",
        f"  curl -s -H 'Content-Type: application/json' '{url}/{INDEX}/_search?pretty' -d "
        '\'{"size":0,"aggs":{"labels":{"terms":{"field":"predicted_label"}}}}\'',
        f"  capture topic {CAPTURE_TOPIC} on {loop.kafka.bootstrap}; object store {loop.s3.endpoint} bucket {BUCKET}",
        f"  smoke tests against this stack: SMOKE_TARGET={loop.target_path} make smoke",
    ]


# ---------------------------------------------------------------------------------------------- run


def run(sizes: DemoSizes, keep: bool = False, out: TextIO = sys.stdout, verbose: bool = False) -> int:
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
        loop = LoopStack()
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
        kafka, dead = kafka_counts(loop.kafka.bootstrap)
        text, ok = report(loop, sent, counts, kafka, dead, watch)
        out.write(text + "\n")
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
