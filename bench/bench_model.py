"""Benchmark the text classifier under the real seldon-core-microservice (not a test; run it and read the table).

    $(python3.11 devstack/dev_env.py ensure)/bin/python bench/bench_model.py
    ... bench/bench_model.py --workers 1 2 --batch-sizes 1 32 --requests 400 --seconds 45 --concurrency 4

For each gunicorn worker count, starts `ModelServer` on 127.0.0.1, warms it up, then for each batch size
sends real comments from the shipped dataset from `--concurrency` client threads until `--requests`
requests are done or `--seconds` have passed (whichever comes first), and reports predictions (texts) per
second, requests per second, p50/p99 latency and the server's memory: RSS summed over its processes (counts
pages shared between forked workers once per process) and PSS (shared pages split between processes; the
honest total). Every loop is bounded in count and time; each server is stopped before the next starts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "images" / "text-classifier"))

from textclf.dataset import read_labelled_csv  # noqa: E402

from devstack.runtime.paths import new_run_dir  # noqa: E402
from devstack.runtime.process import descendants  # noqa: E402
from devstack.servers.model import BUILD_CONTEXT, ModelServer  # noqa: E402

log = logging.getLogger("bench_model")


@dataclass
class Result:
    workers: int
    batch_size: int
    requests: int
    errors: int
    seconds: float
    predictions_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    pss_mb: float


def memory_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over the process tree under `root`."""
    rss = pss = 0
    for pid in descendants(root):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss / 1024, pss / 1024


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_load(
    server: ModelServer, texts: list[str], batch_size: int, max_requests: int, max_seconds: float, concurrency: int
) -> tuple[list[float], int, float]:
    """Latencies (ms) of successful requests, error count and wall time; bounded by count and time."""
    url = server.url + "/api/v1.0/predictions"
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    issued = 0
    deadline = time.monotonic() + max_seconds

    def client(offset: int) -> None:
        nonlocal issued, errors
        session = requests.Session()
        position = offset
        while time.monotonic() < deadline:
            with lock:
                if issued >= max_requests:
                    return
                issued += 1
            batch = [texts[(position + i) % len(texts)] for i in range(batch_size)]
            position += batch_size * concurrency
            started = time.perf_counter()
            try:
                response = session.post(url, json={"data": {"ndarray": batch}}, timeout=30)
                ok = response.status_code == 200 and len(response.json()["data"]["ndarray"]) == batch_size
            except requests.RequestException:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i * batch_size,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + 60)
    return latencies, errors, time.monotonic() - started


def bench(args: argparse.Namespace) -> list[Result]:
    texts = [text for text, _ in read_labelled_csv(BUILD_CONTEXT / "data" / "comments.csv")]
    results = []
    for workers in args.workers:
        server = ModelServer(new_run_dir("bench-model-"), workers=workers)
        try:
            server.start()
            assert server.process is not None and server.process.pid is not None
            run_load(server, texts, 8, 20 * workers, 20, args.concurrency)  # warm-up: every worker loads and runs
            for batch_size in args.batch_sizes:
                max_requests = args.requests if batch_size == 1 else max(1, args.requests // 4)
                latencies, errors, seconds = run_load(
                    server, texts, batch_size, max_requests, args.seconds, args.concurrency
                )
                rss, pss = memory_mb(server.process.pid)
                result = Result(
                    workers=workers,
                    batch_size=batch_size,
                    requests=len(latencies),
                    errors=errors,
                    seconds=round(seconds, 2),
                    predictions_per_s=round(len(latencies) * batch_size / seconds, 1),
                    requests_per_s=round(len(latencies) / seconds, 1),
                    p50_ms=round(percentile(latencies, 50), 1),
                    p99_ms=round(percentile(latencies, 99), 1),
                    rss_mb=round(rss, 1),
                    pss_mb=round(pss, 1),
                )
                log.info("%s", result)
                results.append(result)
        finally:
            server.stop()
    return results


def table(results: list[Result]) -> str:
    header = "workers  batch  requests  errors  pred/s  req/s  p50 ms  p99 ms  RSS MB  PSS MB"
    lines = [header]
    for r in results:
        lines.append(
            f"{r.workers:7d}  {r.batch_size:5d}  {r.requests:8d}  {r.errors:6d}  {r.predictions_per_s:6.1f}  "
            f"{r.requests_per_s:5.1f}  {r.p50_ms:6.1f}  {r.p99_ms:6.1f}  {r.rss_mb:6.0f}  {r.pss_mb:6.0f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--requests", type=int, default=400, help="requests per batch-1 run (a quarter for larger)")
    parser.add_argument("--seconds", type=float, default=45.0, help="time cap per run")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = bench(args)
    sys.stdout.write(table(results) + "\n")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
