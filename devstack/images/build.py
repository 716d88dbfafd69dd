"""Build the images from their Dockerfiles with buildah, once per content, and say what each build cost.

    results = build_images()                  # every image of the catalog; builds only what changed
    results = build_images(["feedback"])      # one
    results[0].reference                      # localhost/seldon-feedback/feedback:<key>

An image's key is a hash of what its build reads: the Dockerfile, the `.dockerignore`, every context file its
COPY/ADD instructions take (path, mode, content), the build arguments and the ids of the images they name. A
warm call finds the image of that key in the storage (and its marker in `~/.cache/seldon-feedback/containers/
builds/`) and builds nothing. A build is `buildah bud --isolation chroot --pull=never` of the unchanged
Dockerfile with the base arguments pointing at the local stand-ins and the host's pip configuration mounted
read-only into its steps (devstack/images/pip_access.py). The two cores build two images at a time, the
classifier (the longest) first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from devstack.images import base as base_image
from devstack.images.catalog import BASE_ARG, KUBECTL_ARG, ImageSpec, ensure_kubectl_image, select
from devstack.images.dockerfile import Dockerfile, context_files
from devstack.images.pip_access import config_mounts
from devstack.images.tools import REEXEC_ATTEMPTS, Buildah, ensure_tools, reexec_flaked
from devstack.runtime.errors import DevstackError
from devstack.runtime.locks import file_lock
from devstack.runtime.process import tail

log = logging.getLogger(__name__)

BUILD_FORMAT = 1  # bump when the way a build runs changes, so every image is rebuilt
BUILD_TIMEOUT_S = 3600.0
PARALLEL = 2
KEEP_PER_IMAGE = 3  # older builds of an image are removed from the storage (other checkouts may use recent ones)


@dataclass(frozen=True)
class BuildResult:
    name: str
    reference: str
    image_id: str
    size_bytes: int
    seconds: float  # this call's build time; 0 when the image was already built
    cached: bool
    log_path: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def content_key(spec: ImageSpec, build_args: dict[str, str], arg_ids: dict[str, str]) -> str:
    """The hash of everything the build of `spec` reads (see the module docstring)."""
    dockerfile_text = spec.dockerfile.read_text()
    dockerfile = Dockerfile.parse(dockerfile_text)
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": BUILD_FORMAT, "args": build_args, "ids": arg_ids}, sort_keys=True).encode())
    digest.update(b"\0Dockerfile\0" + dockerfile_text.encode())
    for ignore in (".containerignore", ".dockerignore"):
        path = spec.context / ignore
        if path.is_file():
            digest.update(f"\0{ignore}\0".encode() + path.read_bytes())
    for path in context_files(spec.context, dockerfile):
        relative = path.relative_to(spec.context).as_posix()
        mode = path.lstat().st_mode & 0o777
        body = str(path.readlink()).encode() if path.is_symlink() else path.read_bytes()
        digest.update(f"\0{relative}\0{mode:o}\0{len(body)}\0".encode() + body)
    return digest.hexdigest()[:12]


def _marker(buildah: Buildah, spec: ImageSpec, key: str) -> Path:
    return buildah.state_dir("builds") / f"{spec.name}-{key}.json"


def _cached(buildah: Buildah, spec: ImageSpec, key: str) -> BuildResult | None:
    try:
        marker = json.loads(_marker(buildah, spec, key).read_text())
    except (OSError, ValueError):
        return None
    reference = f"{spec.repository}:{key}"
    if buildah.image_id(reference) != marker.get("image_id"):
        return None
    return BuildResult(spec.name, reference, marker["image_id"], int(marker["size_bytes"]), 0.0, True, marker["log"])


def build_image(buildah: Buildah, spec: ImageSpec, build_args: dict[str, str]) -> BuildResult:
    """Build one image unless the image of its content key exists; `build_args` name the local bases."""
    arg_ids = {name: buildah.image_id(value) or "" for name, value in build_args.items()}
    missing = sorted(name for name, image_id in arg_ids.items() if not image_id)
    if missing:
        raise DevstackError(f"{spec.name}: the images named by {', '.join(missing)} are not in the local storage")
    key = content_key(spec, build_args, arg_ids)
    found = _cached(buildah, spec, key)
    if found is not None:
        return found
    with file_lock(buildah.state_dir("builds") / f"{spec.name}.lock"):
        found = _cached(buildah, spec, key)
        if found is not None:
            return found
        reference = f"{spec.repository}:{key}"
        log_path = buildah.state_dir("builds") / f"{spec.name}-{key}.log"
        log_path.unlink(missing_ok=True)
        argv = ["bud", "--isolation", "chroot", "--pull=never", "-f", str(spec.dockerfile), "-t", reference]
        argv += [arg for name, value in sorted(build_args.items()) for arg in ("--build-arg", f"{name}={value}")]
        argv += [arg for mount in config_mounts() for arg in ("-v", mount.volume())]
        log.info("building %s from %s (log %s)", reference, spec.dockerfile, log_path)
        started = time.monotonic()
        for attempt in range(1, REEXEC_ATTEMPTS + 1):
            try:
                buildah.run([*argv, str(spec.context)], log_path=log_path, timeout=BUILD_TIMEOUT_S)
                break
            except DevstackError as error:
                if attempt == REEXEC_ATTEMPTS or not reexec_flaked(tail(log_path, 5)):
                    raise DevstackError(f"{spec.name}: the build of {spec.dockerfile} failed: {error}") from None
                log.warning("%s: buildah failed in its re-exec; building again (log %s)", spec.name, log_path)
        seconds = time.monotonic() - started
        image_id = buildah.image_id(reference)
        if image_id is None:
            raise DevstackError(f"{spec.name}: buildah finished but {reference} is not in the storage; see {log_path}")
        size = buildah.image_size(reference)
        marker = {"image_id": image_id, "size_bytes": size, "seconds": round(seconds, 1), "log": str(log_path)}
        _marker(buildah, spec, key).write_text(json.dumps(marker, indent=2) + "\n")
        log.info("built %s in %.0f s (%.0f MB)", reference, seconds, size / 1e6)
        _remove_stage_leftovers(buildah, [arg_ids[name] for name in build_args if name != BASE_ARG])
        _prune(buildah, spec, keep=reference)
        return BuildResult(spec.name, reference, image_id, size, seconds, False, str(log_path))


def _remove_stage_leftovers(buildah: Buildah, image_ids: list[str]) -> None:
    """buildah 1.28 leaves the working container of a stage that has no instruction of its own (the smoke
    Dockerfile's `FROM ${KUBECTL_IMAGE} AS kubectl`); remove those of the stand-ins only this image uses (never of
    the base, which other builds running now may be using)."""
    for item in json.loads(buildah.run(["containers", "--json"]) or "null") or []:
        if str(item.get("imageid", "")).removeprefix("sha256:") in image_ids:
            with contextlib.suppress(DevstackError):
                buildah.run(["rm", str(item["id"])])


def _prune(buildah: Buildah, spec: ImageSpec, keep: str) -> None:
    """Remove all but the newest KEEP_PER_IMAGE builds of `spec` (vfs stores every image as full copies)."""
    for item in buildah.images(spec.repository)[KEEP_PER_IMAGE:]:
        if keep in item.get("names", []):
            continue
        try:
            buildah.run(["rmi", str(item["id"])])
        except DevstackError as error:  # in use by a container of a running test: keep it
            log.info("kept %s: %s", item.get("names"), error)


def build_images(
    names: Sequence[str] = (), parallel: int = PARALLEL, buildah: Buildah | None = None
) -> list[BuildResult]:
    """Build (or find) the named images, every one when none is named, into `buildah`'s storage (the project's
    by default; bench/bench_images.py passes an empty one to measure a cold build); results in catalog order."""
    specs = select(tuple(names))
    ensure_tools()
    buildah = buildah or Buildah.default()
    base = base_image.ensure_base(buildah)
    stand_ins = {BASE_ARG: base.reference}
    if any(KUBECTL_ARG in spec.base_args for spec in specs):
        stand_ins[KUBECTL_ARG] = ensure_kubectl_image(buildah)

    def build(spec: ImageSpec) -> BuildResult:
        return build_image(buildah, spec, {name: stand_ins[name] for name in spec.base_args})

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = {spec.name: pool.submit(build, spec) for spec in specs}
        errors = []
        results = []
        for name, future in futures.items():
            try:
                results.append(future.result())
            except DevstackError as error:
                errors.append(f"{name}: {error}")
    if errors:
        raise DevstackError("; ".join(errors))
    return results
