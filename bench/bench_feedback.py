"""Benchmark the feedback pipeline on the real local Kafka and OpenSearch (not a test; run it and read the table).

    $(python3.11 devstack/dev_env.py ensure)/bin/python bench/bench_feedback.py
    ... bench/bench_feedback.py --ids 6000 --collector-events 4000 --freshness-seconds 20 --baseline main --profile

Every figure below comes from one run, side by side, on the same servers:

1. Indexer vs the physical limit, events in the executor's order: request, its response a few events later,
   the feedback of every second id ~2,000 events later, many requests interleaved, both capture formats (the
   collector's CloudEvent headers and the executor's direct Kafka logging), pre-loaded into a 4-partition topic.
   The indexer consumes it all (time from its first to its last acknowledged message); then the very documents
   it produced are written with raw `_bulk` index operations (1000 per request) into a fresh index with the same
   template: ratio = indexer docs/s / raw docs/s.
2. The same with every event shuffled across partitions and 30 % repeated (correctness: one document each, every
   field exact), and its ratio.
3. Collector sustained rate: CloudEvents POSTed by 32 concurrent clients (each answered after Kafka's
   acknowledgement); events/s, and events per CPU second of the collector process (its own CPU time).
4. End-to-end freshness at 50 % and 80 % of the sustained rate (the lower of collector and indexer rates):
   request and response POSTed to the collector a few ms apart, each document's time from its request being sent
   until a search finds it with its prediction (polled every 100 ms), p50/p99, and the collector's answer times.
With `--baseline <git ref>` the indexer and collector of that ref (e.g. `main`) run through 1-4 as well, on the
same servers, so before and after come from one run. With `--profile`, one more indexer pass of (1) runs under
cProfile and the top of the profile is printed.
Memory: RSS of OpenSearch, Kafka, collector and indexer after the run. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import logging
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "images" / "feedback"))

from devstack.capture_traffic import Traffic, WireRecord, generate_traffic, http_event, post_events  # noqa: E402
from devstack.feedback_pipeline import FeedbackPipeline  # noqa: E402
from devstack.runtime.paths import new_run_dir  # noqa: E402
from devstack.servers.feedback import CollectorServer, IndexerServer  # noqa: E402
from devstack.servers.kafka import KafkaServer  # noqa: E402
from devstack.servers.search import SearchServer  # noqa: E402

log = logging.getLogger("bench_feedback")
SENDERS = 8
FEEDBACK_LAG = 2000  # events between a response and its feedback in the executor-ordered stream
KINDS = {"request": 0, "response": 1, "feedback": 2}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def mib(value: int) -> str:
    return f"{value / 1024 / 1024:.0f} MiB"


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def executor_ordered(records: list[WireRecord]) -> list[WireRecord]:
    """The executor's order: per request id (numbered by the generator), the request, the response right after
    it, and the feedback FEEDBACK_LAG events later; request ids follow each other, so many are interleaved."""

    def position(record: WireRecord) -> tuple[float, int]:
        number = int(record.request_id.rsplit("-", 1)[1])
        base = number * 2.5
        if record.kind == "response":
            return (base + 1.5, 1)  # a few events later: the next request is logged before this response
        if record.kind == "feedback":
            return (base + FEEDBACK_LAG, 2)
        return (base, 0)

    return sorted(records, key=position)


def with_package(server: Any, package_dir: Path | None) -> Any:
    """Run `server` (a CollectorServer or IndexerServer, not started) from another copy of images/feedback."""
    if package_dir is not None:
        server.process.env["PYTHONPATH"] = os.pathsep.join([str(package_dir), str(REPO_ROOT)])
        server.process.cwd = package_dir
    return server


def indexer_for(pipeline: FeedbackPipeline, package_dir: Path | None, profile: Path | None = None) -> IndexerServer:
    server = pipeline.indexer_server(batch_size="1000", streaming_deployments="text-classifier-streaming")
    with_package(server, package_dir)
    if profile is not None:
        server.process.argv = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "feedback.indexer"]
    return server.start(timeout=180)


def collector_for(pipeline: FeedbackPipeline, package_dir: Path | None) -> CollectorServer:
    server = CollectorServer(pipeline.run_dir / pipeline.name, pipeline.kafka.bootstrap, pipeline.topic)
    with_package(server, package_dir)
    pipeline.started.append(server)
    return server.start(timeout=120)


def consume_all(indexer: IndexerServer, total: int, timeout: float = 900) -> tuple[float, float]:
    """(seconds from the first to the last acknowledged message, messages acknowledged after the first sample)."""
    deadline = time.monotonic() + timeout
    first = None
    while time.monotonic() < deadline:
        indexed = indexer.metric("feedback_indexer_messages_indexed_total")
        now = time.monotonic()
        if first is None and indexed > 0:
            first = (now, indexed)
        if indexed >= total:
            assert first is not None
            return max(1e-3, now - first[0]), total - first[1]
        time.sleep(0.1)
    raise SystemExit(f"the indexer did not finish {total} messages within {timeout:.0f} s")


def raw_bulk(pipeline: FeedbackPipeline, hits: list[dict[str, Any]], suffix: str) -> float:
    """Raw `_bulk` index operations of the given documents into `<index>-<suffix>` (same template): docs/s."""
    from opensearchpy import OpenSearch
    from opensearchpy.helpers import bulk

    client = OpenSearch([pipeline.search.url], timeout=120)
    raw_index = f"{pipeline.index}-{suffix}"  # matches the template's `<index>-*` pattern: same mapping
    client.indices.create(index=raw_index)
    started = time.monotonic()
    for start in range(0, len(hits), 1000):
        chunk = [
            {"_index": raw_index, "_id": hit["_id"], "_source": hit["_source"]} for hit in hits[start : start + 1000]
        ]
        _, errors = bulk(client, chunk, chunk_size=1000, max_chunk_bytes=50 * 1024 * 1024)
        assert not errors
    seconds = time.monotonic() - started
    client.indices.refresh(index=raw_index)
    assert client.count(index=raw_index)["count"] == len(hits)
    return len(hits) / seconds


def indexer_throughput(
    kafka: KafkaServer,
    search: SearchServer,
    run_dir: Path,
    traffic: Traffic,
    records: list[WireRecord],
    package_dir: Path | None,
    label: str,
    profile: Path | None = None,
) -> dict[str, Any]:
    pipeline = FeedbackPipeline(kafka, search, run_dir)
    try:
        pipeline.produce(records)
        indexer = indexer_for(pipeline, package_dir, profile)
        seconds, counted = consume_all(indexer, len(records))
        docs = len(traffic.expected)
        pipeline.wait_for(lambda: pipeline.count() >= docs, 120, f"{label}: all documents searchable")
        pipeline.assert_matches(traffic.expected)  # exact: one document each, every field right
        hits = pipeline.documents()
        result = {
            "label": label,
            "events": len(records),
            "documents": docs,
            "events_per_s": counted / seconds,
            "docs_per_s": docs * counted / len(records) / seconds,
            "raw_docs_per_s": raw_bulk(pipeline, hits, "raw"),
            "rss": indexer.rss_bytes(),
            "writes": {
                op: indexer.metric("feedback_indexer_document_writes_total", op=op)
                for op in ("create", "index", "update")
            },
        }
        result["ratio"] = result["docs_per_s"] / result["raw_docs_per_s"]
        return result
    finally:
        pipeline.stop_all()


def collector_rate(pipeline: FeedbackPipeline, collector: CollectorServer, count: int) -> dict[str, Any]:
    """Events/s and events per CPU second, after an unmeasured warm-up of count/10 events (at least 200): the
    producer's first batches (idempotence id, metadata, partition leaders) otherwise land on whichever build runs
    first (seen: the same code 3,030 vs 4,478 events per CPU second, first vs second)."""
    warmup = max(200, count // 10)
    events = [
        http_event("request", f"{pipeline.name}-c{i}", {"data": {"ndarray": [f"text {i}"]}}, 1_714_564_800_000_000 + i)
        for i in range(count + warmup)
    ]
    assert post_events(collector.url, events[count:], concurrency=32).count(200) == warmup, "warm-up refused"
    events = events[:count]
    cpu_before = cpu_seconds(collector.process.pid)
    started = time.monotonic()
    statuses = post_events(collector.url, events, concurrency=32)
    seconds = time.monotonic() - started
    cpu = cpu_seconds(collector.process.pid) - cpu_before
    assert statuses.count(200) == count, sorted(set(statuses))
    return {"events": count, "events_per_s": count / seconds, "events_per_cpu_s": count / max(cpu, 1e-3)}


def freshness(pipeline: FeedbackPipeline, collector: CollectorServer, rate: float, seconds: float) -> dict[str, Any]:
    """`rate` events/s as request-response pairs in the executor's order; a document counts as searchable once a
    search finds it with its prediction (the response's fields)."""
    pairs = max(10, int(rate * seconds / 2))
    tag = uuid.uuid4().hex[:6]
    events = []
    for i in range(pairs):
        request_id = f"{pipeline.name}-f{tag}-{i}"
        events.append(http_event("request", request_id, {"data": {"ndarray": [f"fresh {i}"]}}, 0))
        response = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.3, 0.7]]}}
        events.append(http_event("response", request_id, response, 0))
    for event in events:  # the event time is irrelevant here; the clock is the client's send time
        event.headers.pop("Ce-Time")
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    acked: list[float] = []
    done = threading.Event()

    def poll() -> None:
        session = requests.Session()
        deadline = time.monotonic() + seconds + 120
        while time.monotonic() < deadline and (not done.is_set() or len(seen) < len(sent)):
            pending = [request_id for request_id in list(sent) if request_id not in seen][:2000]
            if pending:
                body = {
                    "size": len(pending),
                    "_source": ["request_id"],
                    "query": {
                        "bool": {
                            "filter": [{"terms": {"request_id": pending}}, {"exists": {"field": "predicted_label"}}]
                        }
                    },
                }
                response = session.post(f"{pipeline.search.url}/{pipeline.index}/_search", json=body, timeout=30)
                if response.status_code == 200:
                    now = time.monotonic()
                    for hit in response.json()["hits"]["hits"]:
                        seen.setdefault(hit["_source"]["request_id"], now)
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    started = time.monotonic()
    failures: list[str] = []

    def send(lane: int) -> None:  # 8 lanes, each sending every 8th pair on the shared schedule, as the executor
        session = requests.Session()  # logs them: the request, then its response once the model answered
        for pair in range(lane, pairs, SENDERS):
            delay = started + 2 * pair / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for event in events[2 * pair : 2 * pair + 2]:
                sent_at = time.monotonic()
                if event.kind == "request":
                    sent[event.request_id] = sent_at
                response = session.post(collector.url, data=event.body, headers=event.headers, timeout=30)
                acked.append(time.monotonic() - sent_at)
                if response.status_code != 200:
                    failures.append(response.text)

    senders = [threading.Thread(target=send, args=(lane,)) for lane in range(SENDERS)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=seconds + 120)
    assert not failures, failures[:3]
    achieved = len(events) / (time.monotonic() - started)
    done.set()
    poller.join(timeout=seconds + 130)
    latencies = [seen[request_id] - sent[request_id] for request_id in sent if request_id in seen]
    assert len(latencies) == pairs, f"only {len(latencies)} of {pairs} documents became searchable"
    return {
        "events": len(events),
        "target_rate": rate,
        "achieved_rate": achieved,
        "p50_s": statistics.median(latencies),
        "p99_s": percentile(latencies, 0.99),
        "ack_p50_ms": statistics.median(acked) * 1000,
        "ack_p99_ms": percentile(acked, 0.99) * 1000,
    }


def baseline_package(ref: str, into: Path) -> Path:
    """images/feedback of git ref `ref`, extracted (read-only use: the baseline's indexer and collector); a
    directory holding a copy of images/feedback is used as it is."""
    if Path(ref).is_dir():
        return Path(ref).resolve()
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", ref, "images/feedback"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "images" / "feedback"


def print_profile(path: Path, top: int = 25) -> None:
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"   profile of the indexer ({total:.1f} s of CPU in its main thread), top {top} by own time:")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    for (filename, line, name), (_, calls, own, cumulative, _) in rows:
        where = f"{Path(filename).name}:{line}" if line else filename
        print(f"   {own:7.2f} s own {cumulative:7.2f} s cum {calls:9d} calls  {name} ({where})")


def section(title: str, run: Any, *args: Any) -> None:
    """Run one part of the benchmark; a failure is printed and the next part still runs."""
    try:
        run(*args)
    except Exception as exc:  # a timeout on an overloaded machine must not cost the other figures
        print(f"   {title}: failed ({type(exc).__name__}: {str(exc)[:300]})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", type=int, default=6000, help="request ids in the indexer runs (2.5 events each)")
    parser.add_argument("--collector-events", type=int, default=4000, help="events for the collector rate")
    parser.add_argument("--freshness-seconds", type=float, default=20.0, help="duration of each freshness run")
    parser.add_argument(
        "--baseline", default=None, help="git ref (e.g. main), or a copy of images/feedback, whose services run too"
    )
    parser.add_argument("--profile", action="store_true", help="one more indexer pass under cProfile")
    parser.add_argument(
        "--baseline-first",
        action="store_true",
        help="run the baseline before this build in each part (the first build of a part runs on colder servers; "
        "run both orders to see how much)",
    )
    parser.add_argument(
        "--parts", default="ordered,collector,shuffled", help="which parts run: ordered, collector, shuffled"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_dir = new_run_dir("bench-feedback-")
    kafka = KafkaServer(run_dir)
    search = SearchServer(run_dir)
    scratch = Path(tempfile.mkdtemp(prefix="bench-baseline-", dir=run_dir))
    builds: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline:
        builds.append((args.baseline, baseline_package(args.baseline, scratch)))
        if args.baseline_first:
            builds.reverse()
    sustained_rates: dict[str, float] = {}

    def ordered_run(label: str, package: Path | None) -> None:
        run = indexer_throughput(kafka, search, run_dir, ordered_traffic, ordered, package, label)
        print(
            f"1. [{label}] indexer, executor order: {run['events']} events -> {run['documents']} documents; "
            f"{run['events_per_s']:.0f} events/s = {run['docs_per_s']:.0f} docs/s; raw _bulk of the same "
            f"documents {run['raw_docs_per_s']:.0f} docs/s; ratio {run['ratio']:.2f}; writes {run['writes']}; "
            f"indexer RSS {mib(run['rss'])}",
            flush=True,
        )
        sustained_rates[label] = run["events_per_s"]

    def shuffled_run(label: str, package: Path | None) -> None:
        run = indexer_throughput(kafka, search, run_dir, shuffled_traffic, shuffled_traffic.records, package, label)
        print(
            f"2. [{label}] indexer, shuffled and 30 % repeated: {run['events']} events -> {run['documents']} "
            f"documents (exact); {run['docs_per_s']:.0f} docs/s; raw {run['raw_docs_per_s']:.0f} docs/s; "
            f"ratio {run['ratio']:.2f}; writes {run['writes']}",
            flush=True,
        )

    def collector_and_freshness(label: str, package: Path | None) -> None:
        pipeline = FeedbackPipeline(kafka, search, run_dir)
        pipelines.append(pipeline)
        collector = collector_for(pipeline, package)
        rate = collector_rate(pipeline, collector, args.collector_events)
        print(
            f"3. [{label}] collector sustained: {rate['events_per_s']:.0f} events/s ({rate['events']} events, "
            f"32 clients); {rate['events_per_cpu_s']:.0f} events per CPU second of the collector",
            flush=True,
        )
        indexer_for(pipeline, package)
        top = min(rate["events_per_s"], sustained_rates.get(label, rate["events_per_s"]))
        for share in (0.5, 0.8):
            fresh = freshness(pipeline, collector, top * share, args.freshness_seconds)
            print(
                f"4. [{label}] freshness at {share:.0%} of the sustained rate ({fresh['target_rate']:.0f}/s "
                f"target, {fresh['achieved_rate']:.0f}/s achieved, {fresh['events']} events): "
                f"p50 {fresh['p50_s']:.2f} s, p99 {fresh['p99_s']:.2f} s (collector answer p50 "
                f"{fresh['ack_p50_ms']:.1f} ms, p99 {fresh['ack_p99_ms']:.1f} ms)",
                flush=True,
            )
        print(
            f"memory (RSS) [{label}]: OpenSearch {mib(search.process.rss_bytes())}, Kafka "
            f"{mib(kafka.process.rss_bytes())}, collector {mib(collector.rss_bytes())}",
            flush=True,
        )
        pipeline.stop_all()

    def profiled_run() -> None:
        profile = run_dir / "indexer.prof"
        run = indexer_throughput(kafka, search, run_dir, ordered_traffic, ordered, None, "profiled", profile)
        print(f"   [profiled] {run['docs_per_s']:.0f} docs/s under cProfile", flush=True)
        print_profile(profile)

    pipelines: list[FeedbackPipeline] = []
    try:
        kafka.start()
        search.start()
        print(f"servers up; run folder {run_dir}", flush=True)
        ordered_traffic = generate_traffic(ids=args.ids, seed=3)
        ordered = executor_ordered(ordered_traffic.records)
        shuffled_traffic = generate_traffic(ids=args.ids, total_events=int(args.ids * 2.5 * 1.3), seed=5)
        # the short figures first (collector, freshness), then the long indexer runs; a section that fails (a
        # timeout on an overloaded machine) is reported and the others still run
        parts = set(args.parts.split(","))
        for label, package in builds if "ordered" in parts else []:
            section(f"indexer [{label}], executor order", ordered_run, label, package)
        for label, package in builds if "collector" in parts else []:
            section(f"collector and freshness [{label}]", collector_and_freshness, label, package)
        if args.profile:
            section("profile", profiled_run)
        for label, package in builds if "shuffled" in parts else []:
            section(f"indexer [{label}], shuffled", shuffled_run, label, package)
    finally:
        for pipeline in pipelines:
            pipeline.stop_all()
        kafka.stop()
        search.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
