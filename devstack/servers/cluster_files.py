"""What the local control plane needs on disk before its first process starts: certificates and keys, one
kubeconfig per client, kwok's Stage objects and the fake Node manifest.

Certificates are made with the `openssl` command (Debian package `openssl`), as kubeadm's manual PKI steps do:
a CA, the apiserver's serving certificate (127.0.0.1, localhost and the in-cluster names), one client certificate
per component (its user name is the CN, its group the O) and an RSA key pair that signs and checks service-account
tokens. They live two days: a cluster is made fresh for every run.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.runtime.errors import DevstackError

CERT_DAYS = 2
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
POD_CIDR = "10.0.1.0/24"  # kwok's pod IPs; its default 10.0.0.0/24 would overlap the service range
API_SERVICE_IP = "10.0.0.1"  # the first address of the service range: what in-cluster clients dial
FAKE_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")  # the nodes kwok manages (and only those)
NODE_CPU, NODE_MEMORY, NODE_PODS = "32", "256Gi", "110"

# (file stem, user name, group): every client of the apiserver, each with its own certificate and kubeconfig.
CLIENTS = (
    ("admin", "admin", "system:masters"),
    ("controller-manager", "system:kube-controller-manager", ""),
    ("scheduler", "system:kube-scheduler", ""),
    ("kwok", "system:kwok", "system:masters"),
)
SERVER_NAMES = (
    "IP:127.0.0.1",
    f"IP:{API_SERVICE_IP}",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Pki:
    """Paths of the cluster's certificates and keys (all PEM) in one folder."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "apiserver.key"

    @property
    def service_account_key(self) -> Path:
        return self.folder / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        return self.folder / "sa.pub"

    def client_cert(self, client: str) -> Path:
        return self.folder / f"{client}.crt"

    def client_key(self, client: str) -> Path:
        return self.folder / f"{client}.key"


def openssl_executable() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise DevstackError(
            "`openssl` is not on PATH; the local control plane makes its certificates with it: "
            "install it (`apt-get install openssl`)"
        )
    return found


def _openssl(folder: Path, *args: str) -> None:
    result = subprocess.run(
        [openssl_executable(), *args], cwd=folder, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise DevstackError(
            f"openssl {args[0]} failed while making the cluster's certificates in {folder} "
            f"(exit {result.returncode}: {result.stderr.strip()[-300:]}); check the openssl install"
        )


def _signed_certificate(pki: Pki, stem: str, subject: str, extensions: str) -> None:
    folder = pki.folder
    (folder / f"{stem}.ext").write_text(extensions)
    _openssl(folder, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{stem}.key", "-out", f"{stem}.csr",
             "-subj", subject)  # fmt: skip
    _openssl(folder, "x509", "-req", "-in", f"{stem}.csr", "-CA", pki.ca_cert.name, "-CAkey", pki.ca_key.name,
             "-CAcreateserial", "-out", f"{stem}.crt", "-days", str(CERT_DAYS), "-extfile", f"{stem}.ext")  # fmt: skip


def make_pki(folder: Path) -> Pki:
    """A fresh CA, the apiserver's serving certificate, a client certificate per entry of CLIENTS and the
    service-account key pair, in `folder` (keys readable by the owner only)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    pki = Pki(folder)
    _openssl(folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", pki.ca_key.name, "-out",
             pki.ca_cert.name, "-days", str(CERT_DAYS), "-subj", "/CN=devstack-cluster-ca")  # fmt: skip
    _signed_certificate(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        f"subjectAltName={','.join(SERVER_NAMES)}\nextendedKeyUsage=serverAuth\n",
    )
    for stem, user, group in CLIENTS:
        subject = f"/CN={user}" + (f"/O={group}" if group else "")
        _signed_certificate(pki, stem, subject, "extendedKeyUsage=clientAuth\n")
    _openssl(folder, "genrsa", "-out", pki.service_account_key.name, "2048")
    _openssl(folder, "rsa", "-in", pki.service_account_key.name, "-pubout", "-out", pki.service_account_public_key.name)
    for path in folder.iterdir():
        if path.suffix in (".csr", ".ext", ".srl"):
            path.unlink()
        elif path.suffix == ".key":
            path.chmod(0o600)
    return pki


def kubeconfig_text(pki: Pki, client: str, server: str) -> str:
    """A kubeconfig for `client` (a CLIENTS stem) that reaches `server` with its certificate."""
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: devstack\n"
        f"  cluster: {{server: '{server}', certificate-authority: '{pki.ca_cert}'}}\n"
        "users:\n"
        f"- name: {client}\n"
        f"  user: {{client-certificate: '{pki.client_cert(client)}', client-key: '{pki.client_key(client)}'}}\n"
        "contexts:\n"
        f"- name: {client}@devstack\n"
        f"  context: {{cluster: devstack, user: {client}}}\n"
        f"current-context: {client}@devstack\n"
    )


def fake_node(name: str) -> dict[str, object]:
    """A Node that kwok manages (annotated as fake), with room for every pod our charts ask for."""
    key, value = FAKE_NODE_ANNOTATION
    room = {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": NODE_PODS}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"allocatable": room, "capacity": room},
    }


# Our own kwok stages, written after reading kwok v0.8.0's kustomize/stage/{node/fast,node/heartbeat,pod/fast}:
# a node we manage becomes Ready at once and keeps a heartbeat; a pod bound to it becomes Running and Ready; a
# Job's pod then completes; a pod being deleted goes away. The templates are Go templates kwok renders per object.
KWOK_STAGES = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: node-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True']}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
      addresses:
      - {address: {{ NodeIP | Quote }}, type: InternalIP}
      - {address: {{ NodeName | Quote }}, type: Hostname}
      allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
      capacity: {cpu: "32", memory: 256Gi, pods: "110"}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
        kernelVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: node-heartbeat}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - {key: .status.phase, operator: In, values: [Running]}
    - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: In, values: ['True']}
  delay: {durationMilliseconds: 20000, jitterDurationMilliseconds: 25000}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ or $.metadata.creationTimestamp $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
  immediateNextStage: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-running}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.phase, operator: In, values: [Pending]}
    - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True']}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
      containerStatuses:
      {{ range .spec.containers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, started: true, restartCount: 0, \
state: {running: {startedAt: {{ $now | Quote }}}}}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, restartCount: 0, \
state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, \
finishedAt: {{ $now | Quote }}}}}
      {{ end }}
      {{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: job-pod-succeeded}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.phase, operator: In, values: [Running]}
    - {key: '.metadata.ownerReferences.[].kind', operator: In, values: [Job]}
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: false, started: false, \
restartCount: 0, state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, \
finishedAt: {{ $now | Quote }}}}}
      {{ end }}
      phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-gone}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: Exists}
  next: {delete: true}
"""
