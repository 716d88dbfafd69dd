"""The demo's observing half: what it sent (`Sent`), its progress lines (`Console`), what landed where (the index
by mode and label, the capture and dead-letter topics, freshness while traffic ran) and the report that compares
them. `devstack/demo.py` sends the traffic and calls these.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import requests

from devstack.names import BUCKET, CAPTURE_TOPIC, DEAD_LETTER_TOPIC, INDEX, STREAMING_DEPLOYMENT
from devstack.runtime.errors import DevstackError

if TYPE_CHECKING:
    from devstack.loop import LoopStack

MODES = ("realtime", "streaming", "batch")
OUTCOME_FIELD = "outcome"  # set by the indexer on a request without a (200) response (docs/feedback-pipeline.md)
WARMUP_PREFIX = "warmup-"
BAD_PREFIX = "demo-bad-"  # request ids of the requests the model refuses on purpose (reported apart)


@dataclass
class Sent:
    """What the demo sent, per mode, to compare with what landed."""

    requests: Counter = field(default_factory=Counter)  # mode -> requests
    events: Counter = field(default_factory=Counter)  # (mode, kind) -> capture events expected
    feedback: dict[str, int] = field(default_factory=dict)  # request id -> truth label index
    sent_at: dict[str, float] = field(default_factory=dict)  # sampled request id -> wall time its answer was logged
    batch_id: str = ""
    bad: dict[str, tuple[str, int]] = field(default_factory=dict)  # request id -> (what is wrong, HTTP status)
    grpc: int = 0  # of the real-time requests, those sent over gRPC
    streaming_answers: int = 0  # answers on the output topic with the keys we sent
    streaming_keys_kept: int = 0  # distinct sent keys among them
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
        "query": {"bool": {"must_not": [{"prefix": {"request_id": BAD_PREFIX}}]}},
        "track_total_hits": True,
        "aggs": {
            "mode": {"terms": {"field": "mode", "size": 10}},
            "label": {"terms": {"field": "predicted_label", "size": 10}},
            "by_mode_label": {
                "terms": {"field": "mode", "size": 10},
                "aggs": {"label": {"terms": {"field": "predicted_label", "size": 10}}},
            },
            "transport": {"terms": {"field": "transport", "size": 10}},
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


def wait_for_outcomes(search_url: str, sent: Sent, deadline: float, console: Console) -> list[dict[str, Any]]:
    """The refused requests' documents once each has its outcome (the indexer sets it after a delay)."""
    while True:
        try:
            docs = bad_documents(search_url)
        except (requests.RequestException, ValueError):
            docs = []
        marked = sum(1 for doc in docs if doc.get(OUTCOME_FIELD))
        done = marked >= len(sent.bad)
        console.progress("outcome", f"bad requests: {marked}/{len(sent.bad)} documents with an {OUTCOME_FIELD}", done)
        if done or time.monotonic() > deadline:
            return docs
        time.sleep(1.0)


def kafka_counts(client_config: dict[str, str], timeout: float = 120.0) -> tuple[Counter, int]:
    """Capture events per (mode, kind) on the capture topic, and records on the dead-letter topic (reading stops
    with an error after `timeout` s instead of waiting forever for a partition that never reaches its end).
    `client_config`: bootstrap.servers and the login (the local broker's admin: it reads both topics)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**client_config, "group.id": f"demo-report-{uuid.uuid4()}", "enable.auto.commit": False})
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
                        f"demo: could not read {topic} on {client_config['bootstrap.servers']} to its end within "
                        f"{timeout:.0f} s (partitions "
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
    request_id = headers.get("ce_requestid") or headers.get("requestid") or ""
    if request_id.startswith(WARMUP_PREFIX):
        return None
    ce_type = headers.get("ce_type") or headers.get("type") or "?"
    kind = ce_type.rsplit(".", 1)[-1]
    if request_id.startswith(BAD_PREFIX):
        return "bad", kind
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
    loop: LoopStack,
    sent: Sent,
    counts: dict[str, Any],
    kafka: Counter,
    dead: int,
    watch: FreshnessWatch,
    bad_docs: list[dict[str, Any]] | None = None,
) -> tuple[str, bool]:
    """The report's text, and whether nothing was lost (every mode, the dead-letter topic, the ground truth)."""
    aggs = counts.get("aggregations", {})
    source = f"the request logger of {loop.capture_source}"
    lines = ["", "Feedback loop demo", "==================", "", f"capture source: {source}", ""]
    table, ok = _landed_table(sent, aggs, kafka)
    lines += table
    lines.append(f"dead-lettered: {dead}")
    truth_docs = aggs.get("with_truth", {}).get("doc_count", 0)
    ok = ok and dead == 0 and not sent.failures and truth_docs == len(sent.feedback)  # ground truth lost counts too
    transports = _buckets(aggs.get("transport", {}))
    if sent.grpc:
        ok = ok and transports.get("grpc", 0) == sent.grpc
    lines.append("transport: " + (", ".join(f"{name} {n}" for name, n in sorted(transports.items())) or "-")
                 + f" (gRPC sent {sent.grpc})")  # fmt: skip
    if sent.requests.get("streaming"):
        kept = sent.streaming_answers == sent.requests["streaming"] == sent.streaming_keys_kept
        ok = ok and kept
        lines.append(
            f"streaming answers: {sent.requests['streaming']} messages on the input topic -> {sent.streaming_answers} "
            f"on the output topic, {sent.streaming_keys_kept} with their input's key"
        )
    if sent.bad:
        bad_lines, bad_ok = _bad_request_lines(loop, sent, kafka, bad_docs)
        lines += bad_lines
        ok = ok and bad_ok
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


def bad_documents(search_url: str, index: str = INDEX) -> list[dict[str, Any]]:
    """The documents of the requests the model refused on purpose (their request id starts with BAD_PREFIX)."""
    requests.post(f"{search_url}/{index}/_refresh", timeout=30)
    found = requests.post(
        f"{search_url}/{index}/_search",
        json={"query": {"prefix": {"request_id": BAD_PREFIX}}, "size": 100},
        timeout=30,
    ).json()
    return [hit["_source"] for hit in found.get("hits", {}).get("hits", [])]


def _bad_request_lines(
    loop: LoopStack, sent: Sent, kafka: Counter, docs: list[dict[str, Any]] | None
) -> tuple[list[str], bool]:
    """What became of the refused requests: their answers, their events (a request, no response) and documents."""
    statuses = Counter(status for _what, status in sent.bad.values())
    kinds = Counter(what for what, _status in sent.bad.values())
    docs = docs or []
    outcomes = Counter(str(doc.get(OUTCOME_FIELD, "none")) for doc in docs)
    events_ok = kafka.get(("bad", "request"), 0) == len(sent.bad) and kafka.get(("bad", "response"), 0) == 0
    ok = events_ok and len(docs) == len(sent.bad) and all(400 <= status < 500 for status in statuses)
    lines = [
        f"bad requests: {len(sent.bad)} sent ("
        + ", ".join(f"{n} {what}" for what, n in sorted(kinds.items()))
        + "), answered "
        + ", ".join(f"{status} x{n}" for status, n in sorted(statuses.items())),
        f"  on Kafka: {kafka.get(('bad', 'request'), 0)} request and {kafka.get(('bad', 'response'), 0)} response "
        f"events; in the index: {len(docs)} documents, {OUTCOME_FIELD} "
        + (", ".join(f"{name} {n}" for name, n in sorted(outcomes.items())) or "-"),
    ]
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
