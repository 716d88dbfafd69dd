"""The local stack's command line.

python -m devstack up [--keep]     start Kafka, search and S3 (foreground; --keep: leave them running)
python -m devstack up --loop       the whole loop (also model, collector, indexer, executors) and a smoke target
                                   file; --seldon-version X.Y.Z: the executor the local engine behaves as
python -m devstack status          what runs, where, its memory and log
python -m devstack logs NAME [-n N]
python -m devstack down            stop a stack left running by `up --keep`
python -m devstack demo            the whole loop with real traffic, a report of where it landed, stop (`make demo`)
python -m devstack check-servers   start Kafka, search and S3, show each works, report memory, stop
                                   (also `demo --servers-only`)
python -m devstack cluster up [--nodes N] | status | down
                                   a local Kubernetes control plane (kube-apiserver, controller-manager,
                                   scheduler, kwok fake nodes) left running; `up` prints its kubeconfig
python -m devstack batch run --endpoint URL --bucket B --input-key K --output-key K --batch-id ID --host H:P
                                   one run of the batch workflow's steps against a running stack; the object
                                   store's keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
python -m devstack images build [NAME ...]   build the classifier, feedback and smoke-suite images from their
                                   Dockerfiles with buildah (cached by content); `images list` names them
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from devstack.cluster_cli import add_cluster_parser
from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import new_run_dir
from devstack.runtime.process import tail
from devstack.stack import LocalStack, current_state_path, pid_alive, read_state, stop_pid

log = logging.getLogger("devstack")


def _alive_servers(state: dict) -> dict[str, dict]:
    return {
        name: info for name, info in state.get("servers", {}).items() if pid_alive(info.get("pid"), state["run_dir"])
    }


def cmd_up(args: argparse.Namespace) -> int:
    from devstack.servers_check import default_servers

    previous = read_state()
    if previous and _alive_servers(previous):
        raise DevstackError(
            f"a local stack is already running (run dir {previous['run_dir']}); "
            "use it (`python -m devstack status`) or stop it first (`python -m devstack down`)"
        )
    run_dir = new_run_dir("stack-")
    if args.loop:  # the whole loop (model, collector, indexer, ...) and a smoke target file
        from devstack.loop import LoopStack

        loop = LoopStack(run_dir, seldon_version=args.seldon_version).start()
        stack = loop.stack
        print(_format_status(stack.state()))
        print(f"\nsmoke target: {loop.target_path}  (SMOKE_TARGET={loop.target_path} make smoke)")
    else:
        stack = LocalStack(default_servers(run_dir), run_dir).start()
        print(_format_status(stack.state()))
    if args.keep:
        stack.detach()
        print("\nthe servers keep running; stop them with: python -m devstack down")
        return 0
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    print("\nrunning; press Ctrl-C to stop")
    try:
        stopped.wait()
    finally:
        stack.stop()
    return 0


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _format_status(state: dict) -> str:
    alive = _alive_servers(state)
    lines = [f"run dir: {state['run_dir']}"]
    for name, info in state.get("servers", {}).items():
        address = info.get("bootstrap") or info.get("url") or info.get("endpoint") or ""
        running = name in alive
        memory = f"{_rss_bytes(int(info['pid'])) / 2**20:.0f} MiB" if running else "-"
        lines.append(
            f"  {name:<8} {'up' if running else 'down':<5} {address:<28} pid {info.get('pid') or '-':<8} "
            f"rss {memory:<9} log {info.get('log')}"
        )
    return "\n".join(lines)


def cmd_status(_args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        print(f"no local stack has been started (no {current_state_path()})")
        return 1
    print(_format_status(state))
    return 0 if _alive_servers(state) else 1


def cmd_logs(args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        raise DevstackError(f"no local stack has been started (no {current_state_path()}); run `python -m devstack up`")
    info = state.get("servers", {}).get(args.name)
    if info is None:
        known = ", ".join(state.get("servers", {}))
        raise DevstackError(f"no server called {args.name!r} in the last stack; choose one of: {known}")
    print(tail(Path(info["log"]), args.lines))
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        print("nothing to stop: no local stack has been started")
        return 0
    alive = _alive_servers(state)
    for name, info in reversed(list(alive.items())):
        log.info("stopping %s (pid %s)", name, info["pid"])
        stop_pid(int(info["pid"]))
    state["status"] = "stopped"
    for info in state.get("servers", {}).values():
        info["pid"] = None
    current_state_path().write_text(json.dumps(state, indent=2) + "\n")
    print(f"stopped {len(alive)} server(s): {', '.join(alive) or 'none was running'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.servers_only:  # the older spelling of `check-servers`
        return cmd_check_servers(args)
    from devstack.demo import DemoSizes
    from devstack.demo import run as run_loop
    from devstack.demo_drift import DriftSizes

    drift = None if args.drift_windows == 0 else DriftSizes(window_s=args.window, shifted=args.drift_windows)
    sizes = DemoSizes(
        realtime=args.realtime,
        streaming=args.streaming,
        batch=args.batch,
        grpc=args.grpc,
        timeout_s=args.timeout,
        drift=drift,
    )
    return run_loop(sizes, keep=args.keep, verbose=args.verbose, seldon_version=args.seldon_version)


def cmd_check_servers(_args: argparse.Namespace) -> int:
    from devstack.servers_check import format_report, run

    report = run()
    print(format_report(report))
    return 0 if report.ok else 1


CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
SELDON_VERSION_HELP = "the Seldon executor the local engine behaves as (default: seldon:version of the dev stack)"


def cmd_batch_run(args: argparse.Namespace) -> int:
    """One batch run (download, seldon-batch-processor, upload): what the smoke suite calls for a local target."""
    from devstack.servers.batch import BatchJob, ObjectStoreConfig, run_batch

    missing = [name for name in CREDENTIAL_VARIABLES if not os.environ.get(name)]
    if missing:
        raise DevstackError(
            f"batch run: {' and '.join(missing)} not set; export the object store's access key and secret key "
            "in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (they are never taken from the command line)"
        )
    job = BatchJob(
        store=ObjectStoreConfig(
            endpoint=args.endpoint,
            bucket=args.bucket,
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region=args.region,
        ),
        input_key=args.input_key,
        output_key=args.output_key,
        host=args.host,
        batch_id=args.batch_id,
        deployment=args.deployment,
        namespace=args.namespace,
        workers=args.workers,
    )
    result = run_batch(job, timeout_s=args.timeout)
    print(
        f"batch {result.batch_id}: {result.output_lines}/{result.input_lines} lines written "
        f"({result.failed_lines} failed) in {result.seconds:.1f} s to s3://{args.bucket}/{args.output_key}; "
        f"processor log {result.log_path}"
    )
    return 0


def _add_batch_parser(sub: Any) -> None:
    from devstack.names import DEPLOYMENT, NAMESPACE

    batch = sub.add_parser("batch", help="the batch workflow's steps as local processes")
    steps = batch.add_subparsers(dest="batch_command", required=True)
    run = steps.add_parser(
        "run",
        help="fetch the input, run seldon-batch-processor against --host, store the output",
        description="Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (environment only).",
    )
    run.add_argument("--endpoint", required=True, help="the object store's URL, e.g. http://127.0.0.1:9000")
    run.add_argument("--bucket", required=True, help="bucket of the input and the output file")
    run.add_argument("--input-key", required=True, help="object key of the input (one JSON instance per line)")
    run.add_argument("--output-key", required=True, help="object key the output is stored under")
    run.add_argument("--batch-id", required=True, help="this run's id (meta.tags.batch_id)")
    run.add_argument("--host", required=True, help="host:port of the REST endpoint the processor calls")
    run.add_argument("--workers", type=int, default=4, help="parallel requests (default 4)")
    run.add_argument("--deployment", default=DEPLOYMENT, help=f"SeldonDeployment name (default {DEPLOYMENT})")
    run.add_argument("--namespace", default=NAMESPACE, help=f"its namespace (default {NAMESPACE})")
    run.add_argument("--region", default="us-east-1", help="the object store's region (default us-east-1)")
    run.add_argument("--timeout", type=float, default=600.0, help="limit for the whole run, s (default 600)")
    run.set_defaults(func=cmd_batch_run)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devstack", description="Real Kafka, search and S3 on 127.0.0.1.")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Kafka, search and S3")
    up.add_argument("--keep", action="store_true", help="leave the servers running after this command exits")
    up.add_argument("--loop", action="store_true", help="the whole loop: also model, collector, indexer, executors")
    up.add_argument("--seldon-version", default=None, help=SELDON_VERSION_HELP)
    up.set_defaults(func=cmd_up)
    sub.add_parser("status", help="show the last stack's servers").set_defaults(func=cmd_status)
    logs = sub.add_parser("logs", help="print the end of a server's log")
    logs.add_argument("name", help="kafka, search, s3, ...")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many lines (default 50)")
    logs.set_defaults(func=cmd_logs)
    sub.add_parser("down", help="stop the servers left running by `up --keep`").set_defaults(func=cmd_down)
    demo = sub.add_parser("demo", help="the whole loop: start everything, send real traffic, report, stop")
    demo.add_argument("--keep", action="store_true", help="leave the stack running after the report")
    demo.add_argument("--realtime", type=int, default=600, help="real-time predictions (default 600)")
    demo.add_argument("--streaming", type=int, default=300, help="streaming messages (default 300)")
    demo.add_argument("--batch", type=int, default=3000, help="batch input lines (default 3000)")
    demo.add_argument("--grpc", type=int, default=60, help="real-time predictions over gRPC (default 60)")
    demo.add_argument("--seldon-version", default=None, help=SELDON_VERSION_HELP)
    demo.add_argument("--timeout", type=float, default=900.0, help="limit for traffic and indexing, s (default 900)")
    demo.add_argument("--window", type=int, default=20, help="the monitor's window in the demo, s (default 20)")
    demo.add_argument(
        "--drift-windows", type=int, default=4, help="windows of the spam wave after 5 stationary ones; 0: no drift"
    )
    demo.add_argument("--servers-only", action="store_true", help="the same as `check-servers`")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser("check-servers", help="start Kafka, search and S3, show each works (with memory), stop")
    check.set_defaults(func=cmd_check_servers)
    _add_batch_parser(sub)
    add_cluster_parser(sub)
    from devstack.images.cli import add_parser as add_images_parser

    add_images_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except DevstackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
