"""Benchmark the feedback pipeline on the real local Kafka and OpenSearch (not a test; run it and read the table).

    $(python3.11 devstack/dev_env.py ensure)/bin/python bench/bench_feedback.py
    ... bench/bench_feedback.py --ids 6000 --collector-events 4000 --freshness-seconds 20

1. Indexer throughput vs the physical limit: the same capture traffic (request, response, feedback; both capture
   formats) is pre-loaded into a 4-partition topic, the indexer consumes it all (time from its first to its last
   message); then the very documents it produced are written with raw `_bulk` index operations (1000 per request,
   the indexer's batch size) into a fresh index with the same template. Ratio = indexer docs/s / raw docs/s.
2. Collector sustained rate: CloudEvents POSTed as fast as 32 concurrent clients can (each answered after Kafka's
   acknowledgement).
3. End-to-end freshness at half the sustained rate (min of collector and indexer rates): each event's time from
   being sent to the collector until a search finds its document (polled every 100 ms), p50/p99.
4. Collector overhead on the executor's REST latency: needs the Seldon executor, which cannot be built here
   (docs/executor.md); reported as skipped, with the collector's own acknowledgement latency instead.
Memory: RSS of OpenSearch, Kafka, collector and indexer after the run. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "images" / "feedback"))

from devstack.capture_traffic import generate_traffic, http_event, post_events  # noqa: E402
from devstack.feedback_pipeline import FeedbackPipeline  # noqa: E402
from devstack.runtime.paths import new_run_dir  # noqa: E402
from devstack.servers.feedback import CollectorServer, IndexerServer  # noqa: E402
from devstack.servers.kafka import KafkaServer  # noqa: E402
from devstack.servers.search import SearchServer  # noqa: E402

log = logging.getLogger("bench_feedback")
SENDERS = 8


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def mib(value: int) -> str:
    return f"{value / 1024 / 1024:.0f} MiB"


def indexer_throughput(pipeline: FeedbackPipeline, ids: int) -> dict[str, Any]:
    traffic = generate_traffic(ids=ids, seed=3)
    pipeline.produce(traffic.records)
    total = len(traffic.records)
    indexer = pipeline.indexer(batch_size="1000")
    deadline = time.monotonic() + 600
    first = None
    while time.monotonic() < deadline:
        consumed = indexer.metric("feedback_indexer_messages_indexed_total")
        now = time.monotonic()
        if first is None and consumed > 0:
            first = (now, consumed)
        if consumed >= total:
            break
        time.sleep(0.1)
    else:
        raise SystemExit("indexer did not finish within 600 s")
    assert first is not None
    seconds = max(1e-3, now - first[0])
    events_per_s = (total - first[1]) / seconds
    docs = len(traffic.expected)
    docs_per_s = docs * (total - first[1]) / total / seconds
    pipeline.wait_for(lambda: pipeline.count() >= docs, 60, "all documents searchable")
    sources = [hit["_source"] for hit in pipeline.documents()]
    assert len(sources) == docs

    from opensearchpy import OpenSearch
    from opensearchpy.helpers import bulk

    client = OpenSearch([pipeline.search.url], timeout=60)
    raw_index = f"{pipeline.index}-raw"  # matches the template's `<index>-*` pattern: same mapping
    client.indices.create(index=raw_index)
    started = time.monotonic()
    for start in range(0, len(sources), 1000):
        chunk = [
            {"_index": raw_index, "_id": f"{s['request_id']}:{s['node']}:{s['instance']}", "_source": s}
            for s in sources[start : start + 1000]
        ]
        _, errors = bulk(client, chunk, chunk_size=1000, max_chunk_bytes=50 * 1024 * 1024)
        assert not errors
    raw_seconds = time.monotonic() - started
    client.indices.refresh(index=raw_index)
    assert client.count(index=raw_index)["count"] == docs
    raw_docs_per_s = docs / raw_seconds
    return {
        "events": total,
        "documents": docs,
        "indexer_events_per_s": events_per_s,
        "indexer_docs_per_s": docs_per_s,
        "raw_bulk_docs_per_s": raw_docs_per_s,
        "ratio": docs_per_s / raw_docs_per_s,
        "indexer": indexer,
    }


def collector_rate(pipeline: FeedbackPipeline, collector: CollectorServer, count: int) -> dict[str, Any]:
    events = [
        http_event("request", f"{pipeline.name}-c{i}", {"data": {"ndarray": [f"text {i}"]}}, 1_714_564_800_000_000 + i)
        for i in range(count)
    ]
    started = time.monotonic()
    statuses = post_events(collector.url, events, concurrency=32)
    seconds = time.monotonic() - started
    assert statuses.count(200) == count, sorted(set(statuses))
    return {"events": count, "events_per_s": count / seconds}


def freshness(pipeline: FeedbackPipeline, collector: CollectorServer, rate: float, seconds: float) -> dict[str, Any]:
    count = max(10, int(rate * seconds))
    tag = uuid.uuid4().hex[:6]
    events = [
        http_event("request", f"{pipeline.name}-f{tag}-{i}", {"data": {"ndarray": [f"fresh {i}"]}}, 0)
        for i in range(count)
    ]
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
                body = {"size": len(pending), "_source": ["request_id"], "query": {"terms": {"request_id": pending}}}
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

    def send(lane: int) -> None:  # 8 lanes, each sending every 8th event on the shared schedule
        session = requests.Session()
        for index in range(lane, count, SENDERS):
            event = events[index]
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent_at = time.monotonic()
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
    achieved = count / (time.monotonic() - started)
    done.set()
    poller.join(timeout=seconds + 130)
    latencies = [seen[request_id] - sent[request_id] for request_id in sent if request_id in seen]
    assert len(latencies) == count, f"only {len(latencies)} of {count} documents became searchable"
    return {
        "events": count,
        "target_rate": rate,
        "achieved_rate": achieved,
        "freshness_p50_s": statistics.median(latencies),
        "freshness_p99_s": percentile(latencies, 0.99),
        "collector_ack_p50_ms": statistics.median(acked) * 1000,
        "collector_ack_p99_ms": percentile(acked, 0.99) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", type=int, default=6000, help="request ids in the indexer run (2.5 events each)")
    parser.add_argument("--collector-events", type=int, default=4000, help="events for the collector rate")
    parser.add_argument("--freshness-seconds", type=float, default=20.0, help="duration of the freshness run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_dir = new_run_dir("bench-feedback-")
    kafka = KafkaServer(run_dir)
    search = SearchServer(run_dir)
    pipeline = None
    try:
        kafka.start()
        search.start()
        pipeline = FeedbackPipeline(kafka, search, run_dir)
        print(f"servers up; run folder {run_dir}", flush=True)
        throughput = indexer_throughput(pipeline, args.ids)
        print(
            f"1. indexer: {throughput['events']} events -> {throughput['documents']} documents; "
            f"{throughput['indexer_events_per_s']:.0f} events/s = {throughput['indexer_docs_per_s']:.0f} docs/s; "
            f"raw _bulk of the same documents {throughput['raw_bulk_docs_per_s']:.0f} docs/s; "
            f"ratio {throughput['ratio']:.2f}",
            flush=True,
        )
        collector = pipeline.collector()
        rate = collector_rate(pipeline, collector, args.collector_events)
        print(
            f"2. collector sustained: {rate['events_per_s']:.0f} events/s ({rate['events']} events, 32 clients)",
            flush=True,
        )
        sustained = min(rate["events_per_s"], throughput["indexer_events_per_s"])
        fresh = freshness(pipeline, collector, sustained / 2, args.freshness_seconds)
        print(
            f"3. freshness at half the sustained rate ({fresh['target_rate']:.0f}/s target, "
            f"{fresh['achieved_rate']:.0f}/s achieved, {fresh['events']} events): "
            f"p50 {fresh['freshness_p50_s']:.2f} s, p99 {fresh['freshness_p99_s']:.2f} s "
            f"(collector answer p50 {fresh['collector_ack_p50_ms']:.1f} ms, "
            f"p99 {fresh['collector_ack_p99_ms']:.1f} ms)",
            flush=True,
        )
        print(
            "4. executor REST p99 with logging vs off: skipped, the Seldon executor cannot be built here "
            "(docs/executor.md)"
        )
        indexer: IndexerServer = throughput["indexer"]
        print(
            f"memory (RSS): OpenSearch {mib(search.process.rss_bytes())}, Kafka {mib(kafka.process.rss_bytes())}, "
            f"collector {mib(collector.rss_bytes())}, indexer {mib(indexer.rss_bytes())}",
            flush=True,
        )
    finally:
        if pipeline is not None:
            pipeline.stop_all()
        kafka.stop()
        search.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
