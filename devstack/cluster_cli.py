"""`python -m devstack cluster up|status|down`: a local control plane left running for people and tools.

    python -m devstack cluster up [--nodes N]   start it in a fresh run folder, print the kubeconfig, return
    python -m devstack cluster status           each process (up/down, pid, memory, log) and the apiserver's /readyz
    python -m devstack cluster down             stop every process `up` started

The state file (`~/.cache/seldon-feedback/runs/cluster.json`) is separate from the local stack's `current.json`, so
a cluster and a stack can run side by side. Pids are recognised by the run folder in their command line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from devstack.runtime.errors import DevstackError
from devstack.runtime.paths import cache_dir, new_run_dir
from devstack.runtime.process import _RUNNING
from devstack.stack import pid_alive, stop_pid


def state_path() -> Path:
    return cache_dir("runs") / "cluster.json"


def read_cluster_state() -> dict[str, Any] | None:
    try:
        return dict(json.loads(state_path().read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_cluster_state(state: dict[str, Any]) -> None:
    path = state_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def alive_processes(state: dict[str, Any]) -> dict[str, int]:
    """The processes of the recorded cluster that still run, by name."""
    run_dir = str(state.get("run_dir", ""))
    found = {}
    for name, info in (state.get("processes") or {}).items():
        pid = info.get("pid")
        if pid and pid_alive(int(pid), run_dir):
            found[name] = int(pid)
    return found


def cmd_cluster_up(args: argparse.Namespace) -> int:
    from devstack.servers.cluster import ClusterServer

    previous = read_cluster_state()
    if previous and alive_processes(previous):
        raise DevstackError(
            f"a local cluster is already running (kubeconfig {previous.get('kubeconfig')}); use it "
            "(`python -m devstack cluster status`) or stop it first (`python -m devstack cluster down`)"
        )
    run_dir = new_run_dir("cluster-")
    cluster = ClusterServer(run_dir, nodes=args.nodes).start()
    for process in cluster.processes:  # they outlive this command; `cluster down` stops them
        _RUNNING.discard(process)
    write_cluster_state({"run_dir": str(run_dir), "status": "up", **cluster.describe()})
    print(format_cluster_status(read_cluster_state() or {}))
    print(f"\nexport KUBECONFIG={cluster.kubeconfig}\nstop it with: python -m devstack cluster down")
    return 0


def format_cluster_status(state: dict[str, Any]) -> str:
    alive = alive_processes(state)
    lines = [
        f"cluster {state.get('server')} ({state.get('version')}), nodes {', '.join(state.get('nodes', []))}",
        f"  run dir    {state.get('run_dir')}",
        f"  kubeconfig {state.get('kubeconfig')}",
    ]
    for name, info in (state.get("processes") or {}).items():
        running = name in alive
        memory = f"{_rss_mib(alive[name]):.0f} MiB" if running else "-"
        lines.append(
            f"  {name:<24} {'up' if running else 'down':<5} pid {info.get('pid') or '-':<8} rss {memory:<9} "
            f"log {info.get('log')}"
        )
    return "\n".join(lines)


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def cmd_cluster_status(_args: argparse.Namespace) -> int:
    state = read_cluster_state()
    if state is None:
        print(f"no local cluster has been started (no {state_path()}); start one with `python -m devstack cluster up`")
        return 1
    print(format_cluster_status(state))
    alive = alive_processes(state)
    if alive:
        from devstack.servers.cluster import cluster_binaries

        kubectl = cluster_binaries().kubectl
        ready = subprocess.run(
            [str(kubectl), f"--kubeconfig={state['kubeconfig']}", "get", "--raw", "/readyz"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        print(f"  apiserver /readyz: {ready.stdout.strip() or ready.stderr.strip()[:200]}")
    return 0 if len(alive) == len(state.get("processes") or {}) else 1


def cmd_cluster_down(_args: argparse.Namespace) -> int:
    state = read_cluster_state()
    if state is None:
        print("nothing to stop: no local cluster has been started")
        return 0
    alive = alive_processes(state)
    for name in reversed(list(alive)):  # kwok first, etcd last: the order `up` started them, reversed
        stop_pid(alive[name])
    for info in (state.get("processes") or {}).values():
        info["pid"] = None
    state.update(status="stopped", pid=None)
    write_cluster_state(state)
    print(f"stopped {len(alive)} process(es): {', '.join(alive) or 'none was running'}")
    return 0


def add_cluster_parser(sub: Any) -> None:
    cluster = sub.add_parser("cluster", help="a local Kubernetes control plane (kube-apiserver, kwok fake nodes)")
    steps = cluster.add_subparsers(dest="cluster_command", required=True)
    up = steps.add_parser("up", help="start it and leave it running; prints the kubeconfig")
    up.add_argument("--nodes", type=int, default=1, help="fake nodes (default 1)")
    up.set_defaults(func=cmd_cluster_up)
    steps.add_parser("status", help="its processes and the apiserver's readiness").set_defaults(func=cmd_cluster_status)
    steps.add_parser("down", help="stop what `cluster up` started").set_defaults(func=cmd_cluster_down)
