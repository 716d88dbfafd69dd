"""What gRPC capture costs in the collector, side by side with REST (not a test; run it and read the table).

    $(python3.11 devstack/dev_env.py ensure)/bin/python bench/bench_grpc_capture.py [--events 20000] [--seconds 20]

Takes recorded executor events (../shared/reference/seldon-executor-1.17.1): the gRPC request and response of one
prediction (protobuf bodies) and the REST request and response of the same prediction (JSON bodies), and runs the
collector's pure path (`build_record`: CloudEvent validation, decoding, redaction with the default e-mail and
phone patterns, the Kafka record) on each, alternating, until `--events` per kind or `--seconds` in total. Prints
microseconds per event and the gRPC/REST ratio, plus the fingerprint the indexer adds per request and response.
No Kafka, no HTTP: the figure is the CPU the decoding adds to each event, which the executor's logger waits for.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "images" / "feedback"))

from feedback.collector.core import CaptureRecord, build_record  # noqa: E402
from feedback.indexer.fingerprint import fingerprint  # noqa: E402
from feedback.redaction import build_redactor  # noqa: E402
from feedback.seldon_protos import DEFAULT_VERSION, default_dir, ensure, load  # noqa: E402

from tests.recordings import RecordedEvent, sources  # noqa: E402


def per_event_us(events: list[RecordedEvent], work: object, limit: int, deadline: float) -> float:
    done, started = 0, time.perf_counter()
    while done < limit and time.perf_counter() < deadline:
        for event in events:
            work(event)  # type: ignore[operator]
        done += len(events)
    return (time.perf_counter() - started) / max(done, 1) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per kind (upper bound)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time budget for all kinds together")
    args = parser.parse_args()
    protos = load(ensure(DEFAULT_VERSION, default_dir(os.environ)), DEFAULT_VERSION)
    redactor = build_redactor([], ["email", "phone"], [], patterns_variable="COLLECTOR_REDACT_PATTERNS")
    grpc = sources()["grpc"][:2]  # request + response of one ndarray prediction
    rest = [e for e in sources()["rest"] if e.id in ("rest/01-predict-1-request", "rest/02-predict-1-response")]

    def collect(event: RecordedEvent) -> None:
        record = build_record(dict(event.headers), event.body, max_body_bytes=1 << 20, redactor=redactor, protos=protos)
        assert isinstance(record, CaptureRecord)

    def hash_payload(event: RecordedEvent) -> None:
        fingerprint(event.payload)

    budget = time.perf_counter() + args.seconds
    share = args.seconds / 3
    rest_us = per_event_us(rest, collect, args.events, min(budget, time.perf_counter() + share))
    grpc_us = per_event_us(grpc, collect, args.events, min(budget, time.perf_counter() + share))
    hash_us = per_event_us(rest, hash_payload, args.events, budget)
    print(f"{'figure':64} {'value':>12}")
    print(f"{'collector build_record, REST event (JSON, 43 + 578 bytes)':64} {rest_us:10.1f} us")
    print(f"{'collector build_record, gRPC event (protobuf, 24 + 344 bytes)':64} {grpc_us:10.1f} us")
    print(f"{'ratio gRPC / REST':64} {grpc_us / rest_us:12.2f}")
    print(f"{'indexer fingerprint of one request or response':64} {hash_us:10.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
