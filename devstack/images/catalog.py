"""The images the charts deploy, each built from its own Dockerfile, and the local stand-ins for their bases.

| image | build context | Dockerfile | build arguments set here |
|---|---|---|---|
| text-classifier | images/text-classifier | its Dockerfile | BASE_IMAGE = the local base |
| feedback | images/feedback | its Dockerfile | BASE_IMAGE = the local base |
| smoke-tests | the repository root | smoke_tests/Dockerfile | BASE_IMAGE, KUBECTL_IMAGE = the local kubectl |

Every Dockerfile declares its bases as ARGs whose defaults are the upstream images users pull; here only those
arguments change. The kubectl stand-in is an image holding nothing but `/bin/kubectl`, as
`registry.k8s.io/kubectl` does, made from the kubectl the local control plane builds from Go modules.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from devstack.images.tools import Buildah
from devstack.runtime import go_build
from devstack.runtime.errors import DevstackError
from devstack.runtime.locks import file_lock
from devstack.runtime.paths import REPO_ROOT

log = logging.getLogger(__name__)

REPOSITORY = "localhost/seldon-feedback"
BASE_ARG = "BASE_IMAGE"
KUBECTL_ARG = "KUBECTL_IMAGE"
KUBECTL_VERSION = go_build.KUBERNETES_VERSION  # the local control plane's; users' default is the Dockerfile's


@dataclass(frozen=True)
class ImageSpec:
    """One image: where its build context and Dockerfile are, and which of its build arguments name a base."""

    name: str
    context: Path
    dockerfile: Path
    base_args: tuple[str, ...]  # build arguments this project sets to local stand-ins

    @property
    def repository(self) -> str:
        return f"{REPOSITORY}/{self.name}"


IMAGES = {
    "text-classifier": ImageSpec(
        "text-classifier",
        REPO_ROOT / "images" / "text-classifier",
        REPO_ROOT / "images" / "text-classifier" / "Dockerfile",
        (BASE_ARG,),
    ),
    "feedback": ImageSpec(
        "feedback", REPO_ROOT / "images" / "feedback", REPO_ROOT / "images" / "feedback" / "Dockerfile", (BASE_ARG,)
    ),
    "smoke-tests": ImageSpec(
        "smoke-tests", REPO_ROOT, REPO_ROOT / "smoke_tests" / "Dockerfile", (BASE_ARG, KUBECTL_ARG)
    ),
}


def select(names: list[str] | tuple[str, ...]) -> list[ImageSpec]:
    """The specs named (all of them for none), in the catalog's order; an unknown name is an error."""
    unknown = sorted(set(names) - set(IMAGES))
    if unknown:
        raise DevstackError(f"no image called {', '.join(unknown)}; choose from {', '.join(IMAGES)}")
    return [spec for name, spec in IMAGES.items() if not names or name in names]


# --------------------------------------------------------------------------------------- kubectl stand-in
def kubectl_binary() -> Path:
    """The kubectl the local control plane builds from the Go module proxy (built first when the cache has none)."""
    return go_build.build_part(go_build.kubernetes_part(KUBECTL_VERSION)) / "kubectl"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_kubectl_image(buildah: Buildah) -> str:
    """`localhost/seldon-feedback/kubectl:<version>-<binary hash>`: /bin/kubectl and nothing else."""
    binary = kubectl_binary()
    reference = f"{REPOSITORY}/kubectl:{KUBECTL_VERSION}-{_sha256(binary)[:12]}"
    if buildah.image_id(reference) is not None:
        return reference
    work = buildah.state_dir("stand-ins")
    with file_lock(work / "kubectl.lock"):
        if buildah.image_id(reference) is not None:
            return reference
        log_path = work / "kubectl.log"
        container = "seldon-feedback-kubectl-stand-in"
        if container in buildah.run(["containers", "--format", "{{.ContainerName}}"]).split():
            buildah.run(["rm", container], log_path=log_path)
        buildah.run(["from", "--name", container, "scratch"], log_path=log_path)
        buildah.run(["copy", "--chmod", "0755", container, str(binary), "/bin/kubectl"], log_path=log_path)
        buildah.run(["config", "--entrypoint", json.dumps(["/bin/kubectl"]), container], log_path=log_path)
        buildah.run(["commit", "--rm", container, reference], log_path=log_path)
    return reference
