"""Run an image the way a rendered pod spec runs it: its user and group, read-only root filesystem, the emptyDir
folders it mounts writable, its command. Shared by the image tests, which take those from `helm template` of our
charts (and smoke_tests/k8s/job.yaml) instead of repeating them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from devstack.images.containers import Container, HostMount, RunOptions

# the variables our services read (images/feedback/README.md): everything else of the host's environment stays out
SERVICE_PREFIXES = ("KAFKA_", "CAPTURE_", "COLLECTOR_", "INDEXER_", "LOG_")


def security(pod: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A securityContext field: the container's, else the pod's."""
    return (container.get("securityContext") or {}).get(key, (pod.get("securityContext") or {}).get(key))


def user_of(pod: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    uid = security(pod, container, "runAsUser")
    gid = security(pod, container, "runAsGroup")
    if uid is None:
        return None
    return f"{uid}:{gid}" if gid is not None else str(uid)


def empty_dir_mounts(pod: Mapping[str, Any], container: Mapping[str, Any]) -> tuple[str, ...]:
    """The container's mount paths of the pod's emptyDir volumes (the only writable folders it gets)."""
    empty = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
    return tuple(mount["mountPath"] for mount in container.get("volumeMounts", []) if mount["name"] in empty)


def options_from_pod(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    env: Mapping[str, str],
    mounts: tuple[HostMount, ...] = (),
    network: str = "host",
) -> RunOptions:
    """RunOptions for `container` of `pod` (a pod spec), with `env` in place of what its ConfigMaps would give."""
    return RunOptions(
        user=user_of(pod, container),
        env=dict(env),
        read_only_root=bool(security(pod, container, "readOnlyRootFilesystem")),
        writable=empty_dir_mounts(pod, container),
        mounts=mounts,
        network=network,
    )


def service_env(environment: Mapping[str, str]) -> dict[str, str]:
    """The service's own variables out of a local server's process environment (devstack.servers.feedback)."""
    return {name: value for name, value in environment.items() if name.startswith(SERVICE_PREFIXES)}


def pod_of(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return dict(obj["spec"]["template"]["spec"])
    raise AssertionError(f"no {kind} {name} in the rendered objects")


def container_of(pod: Mapping[str, Any], name: str) -> dict[str, Any]:
    for container in pod["containers"]:
        if container["name"] == name:
            return dict(container)
    raise AssertionError(f"no container {name} in {[c['name'] for c in pod['containers']]}")


@contextlib.contextmanager
def stopped_at_the_end(boxes: list[Container]) -> Iterator[None]:
    """Every container put in `boxes` is stopped (last first) when the block ends, also on failure."""
    try:
        yield
    finally:
        for box in reversed(boxes):
            box.stop()
