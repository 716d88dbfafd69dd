"""A local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with
fake nodes, all on 127.0.0.1, from the binaries `devstack.runtime.go_build` built into the cache.

    cluster = ClusterServer(run_dir).start()
    cluster.kubeconfig        # admin kubeconfig (a file): KUBECONFIG=... kubectl get nodes
    cluster.server            # "https://127.0.0.1:PORT"
    cluster.kubectl("get", "pods", "-A", "-o", "json")
    cluster.stop()

The apiserver serves only its secure port, with a CA made for this cluster, client certificates and RBAC, and
service-account tokens signed with a key pair made here; the controller-manager creates ReplicaSets, pods, each
namespace's `default` ServiceAccount and finalizes deleted namespaces; the scheduler binds pods to kwok's fake
nodes, where kwok's stages (`cluster_files.KWOK_STAGES`) make them Running and Ready (Job pods then Succeeded).
No container ever runs: it is the real API server with real admission and validation, and fake kubelets.

Binaries are never downloaded or built at start: a missing part fails with the command that builds it.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3

from devstack.runtime import go_build
from devstack.runtime.errors import DevstackError
from devstack.runtime.ports import HOST, free_ports
from devstack.runtime.process import ManagedProcess, wait_until
from devstack.runtime.startup import start_failure
from devstack.servers.cluster_files import (
    CLIENTS,
    POD_CIDR,
    SERVICE_CLUSTER_IP_RANGE,
    Pki,
    fake_node,
    kubeconfig_text,
    make_pki,
)
from devstack.servers.cluster_files import KWOK_STAGES as STAGES

log = logging.getLogger(__name__)

PARTS = ("etcd", "kubernetes", "kwok")  # the go_build parts this server runs
START_TIMEOUT_S = 180.0  # per process; the apiserver takes 3 s idle, far longer on a loaded 2-core machine
NAMESPACE_GONE_TIMEOUT_S = 120.0
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class ClusterBinaries:
    """The bin folders of the parts the control plane runs."""

    etcd: Path
    kubernetes: Path
    kwok: Path

    @property
    def kubectl(self) -> Path:
        return self.kubernetes / "kubectl"


def cluster_binaries() -> ClusterBinaries:
    """The built binaries; a DevstackError naming every missing part and the command that builds it."""
    return ClusterBinaries(**go_build.require_built(PARTS, "the local control plane's binaries are"))


class ClusterServer:
    """One control plane with `nodes` fake nodes; data, certificates and logs under `run_dir/cluster`."""

    name = "cluster"

    def __init__(self, run_dir: Path, nodes: int = 1) -> None:
        if nodes < 1:
            raise ValueError(f"nodes={nodes}: a cluster needs at least one node")
        self.home = Path(run_dir) / "cluster"
        self.log_dir = self.home / "logs"
        self.pki = Pki(self.home / "pki")
        self.node_names = [f"kwok-node-{index}" for index in range(nodes)]
        (
            self.etcd_port,
            self.etcd_peer_port,
            self.api_port,
            self.controller_manager_port,
            self.scheduler_port,
            self.kwok_port,
        ) = free_ports(6)
        self.processes: list[ManagedProcess] = []
        self._binaries: ClusterBinaries | None = None

    # ---- connection facts ------------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (user `admin` in `system:masters`)."""
        return self.kubeconfig_of("admin")

    def kubeconfig_of(self, client: str) -> Path:
        return self.home / f"{client}.kubeconfig"

    @property
    def binaries(self) -> ClusterBinaries:
        if self._binaries is None:
            self._binaries = cluster_binaries()
        return self._binaries

    @property
    def kubectl_path(self) -> Path:
        return self.binaries.kubectl

    @property
    def log_path(self) -> Path:
        return self.log_dir / "kube-apiserver.log"

    @property
    def process(self) -> ManagedProcess | None:
        """The apiserver's process (the one `python -m devstack status` shows); all of them in `processes`."""
        return next((p for p in self.processes if p.name == "kube-apiserver"), None)

    # ---- the API ---------------------------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """A requests session that speaks to the apiserver as `admin`."""
        session = _local_session()
        session.cert = (str(self.pki.client_cert("admin")), str(self.pki.client_key("admin")))
        session.verify = str(self.pki.ca_cert)
        return session

    def get(self, path: str, timeout: float = 10.0) -> dict[str, Any] | None:
        """GET an API path as JSON; None for 404."""
        with self.session() as session:
            response = session.get(self.server + path, timeout=timeout)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def kubectl(
        self, *args: str, input_text: str | None = None, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl with the admin kubeconfig; with `check`, a failure raises naming the command."""
        argv = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise DevstackError(f"kubectl {' '.join(args)} failed (exit {result.returncode}): {result.stderr.strip()}")
        return result

    def apply(self, manifests: Iterable[Mapping[str, Any]] | str, *, server_side: bool = True) -> str:
        """`kubectl apply` objects (dicts or YAML text); returns kubectl's report."""
        text = manifests if isinstance(manifests, str) else "\n---\n".join(json.dumps(dict(m)) for m in manifests)
        args = ["apply", "-f", "-"] + (["--server-side", "--field-manager=devstack"] if server_side else [])
        return self.kubectl(*args, input_text=text).stdout

    def apply_files(self, paths: Sequence[Path]) -> None:
        """Server-side apply YAML files (CRDs: they can exceed the client-side apply annotation's size)."""
        if paths:  # one kubectl for all: a process per file cost a second each on a loaded machine
            files = [arg for path in paths for arg in ("-f", str(path))]
            self.kubectl("apply", "--server-side", "--field-manager=devstack", *files, timeout=600)

    def wait_established(self, crd_names: Iterable[str], timeout: float = 120.0) -> None:
        """Wait until every named CustomResourceDefinition is Established (its kinds are served)."""
        for name in crd_names:
            path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            wait_until(lambda p=path: _condition(self.get(p), "Established"), timeout, f"CRD {name} established")

    def wait_openapi(self, timeout: float = 600.0, quick: float = 10.0) -> float:
        """Fetch the apiserver's OpenAPI v2 document until it comes back within `quick` seconds; the seconds it took.

        The Kubernetes provider loads /openapi/v2 with a 32 s client timeout before its first object. After many
        CRDs the apiserver rebuilds that document lazily, which on a loaded machine took longer and failed
        `pulumi up` with "configured Kubernetes cluster is unreachable". Fetching it here, without that limit,
        leaves it built and cached."""
        began = time.monotonic()

        def quick_answer() -> bool:
            asked = time.monotonic()
            with self.session() as session:
                response = session.get(f"{self.server}/openapi/v2", timeout=timeout)
            return response.status_code == 200 and time.monotonic() - asked < quick

        wait_until(quick_answer, timeout, "the apiserver's OpenAPI v2 document", interval=1.0, max_interval=5.0)
        return time.monotonic() - began

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Create a namespace and wait for its `default` ServiceAccount (pods are refused until it exists)."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}
        with self.session() as session:
            response = session.post(f"{self.server}/api/v1/namespaces", json=body, timeout=30)
        if response.status_code != 201:
            raise DevstackError(f"creating namespace {name} failed ({response.status_code}): {response.text[:300]}")
        path = f"/api/v1/namespaces/{name}/serviceaccounts/default"
        wait_until(lambda: self.get(path) is not None, 60, f"the default ServiceAccount of namespace {name}")

    def delete_namespace(self, name: str, timeout: float = NAMESPACE_GONE_TIMEOUT_S) -> None:
        """Delete a namespace and wait until the controller-manager finalized it (its objects are gone)."""
        with self.session() as session:
            session.delete(f"{self.server}/api/v1/namespaces/{name}", timeout=30)
        self.wait_namespace_gone(name, timeout)

    def wait_namespace_gone(self, name: str, timeout: float = NAMESPACE_GONE_TIMEOUT_S) -> None:
        wait_until(lambda: self.get(f"/api/v1/namespaces/{name}") is None, timeout, f"namespace {name} finalized")

    # ---- start and stop --------------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> ClusterServer:
        if self.processes and all(p.running() for p in self.processes):
            return self
        binaries = self.binaries
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the components' own serving certs
        began = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        make_pki(self.pki.folder)
        for client, _user, _group in CLIENTS:
            self.kubeconfig_of(client).write_text(kubeconfig_text(self.pki, client, self.server))
        stages = self.home / "kwok-stages.yaml"
        stages.write_text(STAGES)
        try:
            self._start("etcd", self._etcd_argv(binaries), self._etcd_ready, timeout)
            self._start("kube-apiserver", self._apiserver_argv(binaries), self._apiserver_ready, timeout)
            self._start(
                "kube-controller-manager",
                self._controller_manager_argv(binaries),
                functools.partial(_healthy, self.controller_manager_port),
                timeout,
            )
            scheduler_ready = functools.partial(_healthy, self.scheduler_port)
            self._start("kube-scheduler", self._scheduler_argv(binaries), scheduler_ready, timeout)
            self.apply([fake_node(name) for name in self.node_names])
            self._start("kwok", self._kwok_argv(binaries, stages), self._nodes_ready, timeout)
            wait_until(
                lambda: self.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
                timeout,
                "the default ServiceAccount (the controller-manager's service-account controller)",
            )
        except BaseException:
            self.stop()
            raise
        seconds = time.monotonic() - began
        log.info("cluster ready at %s in %.1f s (kubeconfig %s)", self.server, seconds, self.kubeconfig)
        return self

    def _start(self, name: str, argv: list[str], ready: Any, timeout: float) -> None:
        process = ManagedProcess(name, argv, self.log_dir)
        self.processes.append(process)
        process.start()
        try:
            process.wait_ready(ready, timeout)
        except DevstackError as exc:
            raise start_failure(name, exc, process.log_path, None) from None

    def stop(self) -> None:
        """Stop every process, the last started first (kwok before the apiserver, etcd last)."""
        for process in reversed(self.processes):
            process.stop(timeout=15)

    # ---- readiness -------------------------------------------------------------------------------------------

    def _etcd_ready(self) -> bool:
        with _local_session() as session:
            response = session.get(f"http://{HOST}:{self.etcd_port}/health", timeout=2)
        return response.status_code == 200 and response.json().get("health") == "true"

    def _apiserver_ready(self) -> bool:
        with self.session() as session:
            return session.get(f"{self.server}/readyz", timeout=5).status_code == 200

    def _nodes_ready(self) -> bool:
        nodes = self.get("/api/v1/nodes") or {}
        ready = {item["metadata"]["name"] for item in nodes.get("items", []) if _condition(item, "Ready")}
        return set(self.node_names) <= ready

    # ---- command lines ---------------------------------------------------------------------------------------

    def _etcd_argv(self, binaries: ClusterBinaries) -> list[str]:
        client, peer = f"http://{HOST}:{self.etcd_port}", f"http://{HOST}:{self.etcd_peer_port}"
        return [
            str(binaries.etcd / "etcd"),
            "--name=devstack",
            f"--data-dir={self.home / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=devstack={peer}",
            "--listen-metrics-urls=",
            "--log-level=warn",
            "--quota-backend-bytes=1073741824",
        ]

    def _apiserver_argv(self, binaries: ClusterBinaries) -> list[str]:
        pki = self.pki
        return [
            str(binaries.kubernetes / "kube-apiserver"),
            f"--etcd-servers=http://{HOST}:{self.etcd_port}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={self.api_port}",
            f"--tls-cert-file={pki.server_cert}",
            f"--tls-private-key-file={pki.server_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            f"--cert-dir={self.home / 'apiserver-certs'}",
            "--profiling=false",
        ]

    def _component_flags(self, client: str, port: int) -> list[str]:
        kubeconfig = self.kubeconfig_of(client)
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={HOST}",
            f"--secure-port={port}",
            f"--cert-dir={self.home / (client + '-certs')}",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _controller_manager_argv(self, binaries: ClusterBinaries) -> list[str]:
        pki = self.pki
        return [
            str(binaries.kubernetes / "kube-controller-manager"),
            *self._component_flags("controller-manager", self.controller_manager_port),
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca_cert}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
        ]

    def _scheduler_argv(self, binaries: ClusterBinaries) -> list[str]:
        return [
            str(binaries.kubernetes / "kube-scheduler"),
            *self._component_flags("scheduler", self.scheduler_port),
        ]

    def _kwok_argv(self, binaries: ClusterBinaries, stages: Path) -> list[str]:
        key, value = "kwok.x-k8s.io/node", "fake"
        return [
            str(binaries.kwok / "kwok"),
            f"--kubeconfig={self.kubeconfig_of('kwok')}",
            f"--config={stages}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            f"--cidr={POD_CIDR}",
            f"--node-ip={HOST}",
            f"--server-address={HOST}:{self.kwok_port}",
        ]

    # ---- description -----------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Connection facts, and every process with its pid, memory and log (for the state file)."""
        running = [p for p in self.processes if p.running()]
        apiserver = self.process
        return {
            "name": self.name,
            "version": f"kubernetes {go_build.KUBERNETES_VERSION}, etcd {go_build.ETCD_VERSION}, "
            f"kwok {go_build.KWOK_VERSION}",
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "nodes": list(self.node_names),
            "pid": apiserver.pid if apiserver is not None and apiserver.running() else None,
            "processes": {
                p.name: {"pid": p.pid if p.running() else None, "log": str(p.log_path), "rss_bytes": p.rss_bytes()}
                for p in self.processes
            },
            "log": str(self.log_path),
            "rss_bytes": sum(p.rss_bytes() for p in running),
        }


def _condition(obj: Mapping[str, Any] | None, kind: str) -> bool:
    """True when `obj` has status condition `kind` with status "True"."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _healthy(port: int) -> bool:
    """The component's /healthz on its secure port (served with a self-signed certificate from its cert dir)."""
    with _local_session() as session:
        return session.get(f"https://{HOST}:{port}/healthz", timeout=2, verify=False).status_code == 200


def _local_session() -> requests.Session:
    """A session for servers on 127.0.0.1 that ignores the environment: REQUESTS_CA_BUNDLE would replace the
    cluster's CA (requests lets it win over `session.verify`) and a proxy variable would route loopback traffic."""
    session = requests.Session()
    session.trust_env = False
    return session
