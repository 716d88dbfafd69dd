"""Benchmark the local engine's cost (not a test; run it and read the table).

    $(python3.11 devstack/dev_env.py ensure)/bin/python bench/bench_engine.py
    ... bench/bench_engine.py --requests 600 --seconds 60 --concurrency 4 --rounds 3

Starts Kafka, the feedback collector, the text classifier under seldon-core-microservice (one worker) and two
engines in front of it (devstack/servers/engine.py): one without a logger, one logging every request and
response to the collector (mode all, as the chart deploys it). Then, in one run with the same load, it sends the
same real comments (from the shipped dataset) from `--concurrency` threads three ways: straight to the model's
/api/v1.0/predictions, through the engine with logging off, through the engine with logging on; in `--rounds`
interleaved rounds so that a busy machine slows all three alike. Every round is bounded by `--requests` and
`--seconds`. It prints p50/p99 latency and requests/s per way and the ratios to the direct calls, and checks that
the logging engine sent every event (sent = 2 x answered, none dropped). DEVSTACK_EXECUTOR_BIN benchmarks a real
executor binary instead of the local engine.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "images" / "text-classifier"))

from textclf.dataset import read_labelled_csv  # noqa: E402

from devstack.runtime.paths import new_run_dir  # noqa: E402
from devstack.runtime.ports import HOST  # noqa: E402
from devstack.servers.engine import EngineServer  # noqa: E402
from devstack.servers.feedback import CollectorServer  # noqa: E402
from devstack.servers.kafka import KafkaServer  # noqa: E402
from devstack.servers.model import BUILD_CONTEXT, ModelServer  # noqa: E402

log = logging.getLogger("bench_engine")
WAYS = ("direct", "engine, logging off", "engine, logging on")
CAPTURE_TOPIC = "bench-engine-capture"
WARM_UP = 20


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0

    def pct(self, p: float) -> float:
        values = sorted(self.seconds)
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000 if values else float("nan")

    @property
    def rate(self) -> float:
        return len(self.seconds) / self.wall_s if self.wall_s else 0.0


def texts() -> list[str]:
    return [text for text, _label in read_labelled_csv(BUILD_CONTEXT / "data" / "comments.csv")]


def load(url: str, comments: list[str], requests_n: int, seconds: float, concurrency: int, into: Latencies) -> None:
    """`requests_n` predictions (or fewer when `seconds` pass first) from `concurrency` threads."""
    lock = threading.Lock()
    issued = 0
    deadline = time.monotonic() + seconds

    def worker() -> None:
        nonlocal issued
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                if issued >= requests_n:
                    return
                i = issued
                issued += 1
            began = time.perf_counter()
            try:
                answer = session.post(url, json={"data": {"ndarray": [comments[i % len(comments)]]}}, timeout=30)
                ok = answer.status_code == 200
            except requests.RequestException:
                ok = False
            elapsed = time.perf_counter() - began
            with lock:
                if ok:
                    into.seconds.append(elapsed)
                else:
                    into.errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    into.wall_s += time.monotonic() - started


def predictor(model: ModelServer, logger_url: str | None) -> dict:
    graph: dict = {
        "name": "classifier",
        "type": "MODEL",
        "endpoint": {
            "service_host": HOST,
            "service_port": model.http_port,
            "httpPort": model.http_port,
            "grpcPort": model.grpc_port,
        },
    }
    if logger_url:
        graph["logger"] = {"mode": "all", "url": logger_url}
    return {"name": "default", "graph": graph}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="predictions per way and round (default 600)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per way and round (default 60)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    run_dir = new_run_dir("bench-engine-")
    kafka = KafkaServer(run_dir)
    collector = CollectorServer(run_dir, bootstrap=kafka.bootstrap, topic=CAPTURE_TOPIC)
    model = ModelServer(run_dir, workers=1)
    quiet = EngineServer(run_dir, name="engine-quiet", predictor=lambda: predictor(model, None), deployment="bench")
    logging_engine = EngineServer(
        run_dir, name="engine-logging", predictor=lambda: predictor(model, collector.url), deployment="bench"
    )
    comments = texts()
    results = {way: Latencies() for way in WAYS}
    with contextlib.ExitStack() as running:  # stops everything started, last first, also on Ctrl-C
        for server in (kafka, collector, model, quiet, logging_engine):
            server.start()
            running.callback(server.stop)
            if server is kafka:
                kafka.create_topics([CAPTURE_TOPIC])
        urls = {
            "direct": f"{model.url}/api/v1.0/predictions",
            "engine, logging off": f"{quiet.url}/api/v1.0/predictions",
            "engine, logging on": f"{logging_engine.url}/api/v1.0/predictions",
        }
        for url in urls.values():  # warm-up: the model's first requests are slow
            load(url, comments, WARM_UP, 30, 2, Latencies())
        for round_no in range(args.rounds):
            for way in WAYS:
                load(urls[way], comments, args.requests, args.seconds, args.concurrency, results[way])
                print(f"round {round_no + 1}/{args.rounds}: {way}: {len(results[way].seconds)} so far", flush=True)
        answered = len(results["engine, logging on"].seconds) + WARM_UP
        deadline = time.monotonic() + 30
        while logging_engine.metric("seldon_engine_logger_sent_total") < 2 * answered and time.monotonic() < deadline:
            time.sleep(0.5)
        sent = logging_engine.metric("seldon_engine_logger_sent_total")
        dropped = logging_engine.metric("seldon_engine_logger_dropped_total")
        errors = logging_engine.metric("seldon_engine_logger_send_errors_total")

    direct = results["direct"]
    print(f"\n{args.concurrency} client threads, {args.rounds} interleaved rounds of <= {args.requests} requests or "
          f"{args.seconds:.0f} s per way; executor: {logging_engine.source}")  # fmt: skip
    print(
        f"{'way':<22} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'p50 x':>6} {'p99 x':>6}"
    )
    for way in WAYS:
        r = results[way]
        print(
            f"{way:<22} {len(r.seconds):>8} {r.errors:>6} {r.rate:>7.1f} {r.pct(50):>8.1f} {r.pct(99):>8.1f} "
            f"{r.pct(50) / direct.pct(50):>6.2f} {r.pct(99) / direct.pct(99):>6.2f}"
        )
    print(
        f"logging engine: {sent:.0f} events sent for {answered} answers (expected {2 * answered}), {dropped:.0f} "
        f"dropped, {errors:.0f} send errors"
    )
    return 0 if sent == 2 * answered and not dropped and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
