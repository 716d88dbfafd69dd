"""Measure the images built here: build time cold and warm, size, and start-to-ready of each (figures, not a test).

    $(make -s env)/bin/python bench/bench_images.py             # warm build + start-to-ready of every image
    $(make -s env)/bin/python bench/bench_images.py --cold      # also a cold build into an empty storage

Cold: the base and all three images built into a fresh buildah storage in a temporary folder (which is removed
afterwards), exactly as `python -m devstack images build` does on a machine that never built them. Warm: the same
call on the project's storage, where everything is built (it should build nothing). Start-to-ready, each image
run as its tests run it, from the first buildah call (`buildah from`, a full copy with the vfs driver) to:
- text-classifier: GET /health/ping answers 200 (its own command and default ports, loopback-only namespace);
- collector / indexer: GET /readyz answers 200 against a Kafka and OpenSearch started for the benchmark;
- smoke-tests: pytest has collected the suite (`--collect-only`) inside the image.
Every wait is bounded; every server and container is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from devstack.images.build import build_images  # noqa: E402
from devstack.images.containers import Container, RunOptions  # noqa: E402
from devstack.images.tools import Buildah  # noqa: E402
from devstack.runtime.paths import new_run_dir  # noqa: E402
from devstack.runtime.ports import free_ports  # noqa: E402
from devstack.servers.feedback import PACKAGE_DIR  # noqa: E402
from devstack.servers.kafka import KafkaServer  # noqa: E402
from devstack.servers.search import SearchServer  # noqa: E402

TIMEOUT_S = 300.0


def timed_build(buildah: Buildah | None) -> dict[str, object]:
    started = time.monotonic()
    results = build_images(buildah=buildah)
    return {"seconds": round(time.monotonic() - started, 1), "images": [r.as_dict() for r in results]}


def _ok(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0


def start_to_ready(box: Container, command: list[str] | None, ready: object) -> float:
    started = time.monotonic()
    box.create()
    box.start(command, ready=ready, timeout=TIMEOUT_S)  # type: ignore[arg-type]
    return round(time.monotonic() - started, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="also build everything into an empty storage")
    args = parser.parse_args()
    report: dict[str, object] = {}
    if args.cold:
        scratch = Path(tempfile.mkdtemp(prefix="bench-images-"))
        try:
            report["cold"] = timed_build(Buildah(scratch / "storage", scratch / "runroot"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    report["warm"] = timed_build(None)
    images = {item["name"]: item["reference"] for item in report["warm"]["images"]}  # type: ignore[index]
    buildah = Buildah.default()
    run_dir = new_run_dir("bench-images-")
    ready: dict[str, float] = {}
    probe = [
        sys.executable,
        "-c",
        "import urllib.request as u; u.urlopen('http://127.0.0.1:9000/health/ping', timeout=3)",
    ]
    box = Container(buildah, images["text-classifier"], run_dir, RunOptions(network="isolated"))
    try:
        ready["text-classifier"] = start_to_ready(box, None, lambda: _ok(box.in_network(probe)))
    finally:
        box.stop()
    kafka, search = KafkaServer(run_dir), SearchServer(run_dir)
    try:
        kafka.start()
        search.start()
        kafka.create_topics(["bench-capture", "bench-capture-dead-letter"])
        # the indexer waits (not ready) for its privileged setup step: run it first, as the chart's setup Job does
        setup_env = {"PYTHONPATH": str(PACKAGE_DIR), "PATH": os.environ.get("PATH", ""), "INDEXER_SEARCH_ENGINE":
                     "opensearch", "INDEXER_SEARCH_URL": search.url, "INDEXER_INDEX_REPLICAS": "0"}  # fmt: skip
        subprocess.run([sys.executable, "-m", "feedback.indexer", "setup"], env=setup_env, check=True, timeout=300)
        common = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "CAPTURE_TOPIC": "bench-capture"}
        for name, module, env in (
            ("collector", "feedback.collector", {"COLLECTOR_HOST": "127.0.0.1", "COLLECTOR_PORT": "{events}",
                                                  "COLLECTOR_METRICS_PORT": "{port}"}),  # /readyz: metrics port
            ("indexer", "feedback.indexer", {"INDEXER_SEARCH_ENGINE": "opensearch", "INDEXER_SEARCH_URL": search.url,
                                              "INDEXER_INDEX_REPLICAS": "0", "INDEXER_METRICS_HOST": "127.0.0.1",
                                              "INDEXER_METRICS_PORT": "{port}"}),
        ):  # fmt: skip
            port, events = free_ports(2)
            settings = {**common, **{key: value.format(port=port, events=events) for key, value in env.items()}}
            options = RunOptions(env=settings, read_only_root=True, writable=("/tmp",))
            box = Container(buildah, images["feedback"], run_dir, options)
            url = f"http://127.0.0.1:{port}/readyz"
            try:
                ready[name] = start_to_ready(
                    box, ["python", "-m", module], lambda url=url: requests.get(url, timeout=3).status_code == 200
                )
            finally:
                box.stop()
    finally:
        search.stop()
        kafka.stop()
    with Container(buildah, images["smoke-tests"], run_dir, RunOptions(env={"HOME": "/tmp"})) as box:
        started = time.monotonic()
        done = box.run(["python", "-m", "pytest", "smoke_tests", "--collect-only", "-q", "-p", "no:cacheprovider"])
        ready["smoke-tests (collected)"] = round(time.monotonic() - started, 1)
        if done.returncode != 0:
            print(done.stdout[-2000:], file=sys.stderr)
    report["start_to_ready_s"] = ready
    shutil.rmtree(run_dir, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
