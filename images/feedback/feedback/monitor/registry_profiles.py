"""Reference profiles of registered model versions, read from the flow back's registry in the object store.

A canary predictor serves a version the flow back registered (`registry/<model>/<version>/`); its image ships no
profile the chart's init containers could copy. When a document carries a model version the profile folder does
not know, the monitor looks it up here: the version's `registration.json` (written last, so a registered version is
complete) lists `profile.json` with its sha256 and size; the profile is downloaded, checked against both, parsed
and kept for the life of the process (versions are immutable). A version that is not registered, or a lookup that
failed (store unreachable, corrupt or invalid profile), is asked again only after `retry_s`, so a window per group
costs at most one lookup per `retry_s`; every failure is logged, kept in `errors` and counted by reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable

from feedback.flowback.dataset import sha256
from feedback.flowback.errors import FlowbackError
from feedback.flowback.registry import Registry, is_name
from feedback.monitor.profiles import Profile, ProfileError, parse_profile

log = logging.getLogger(__name__)

PROFILE_FILE = "profile.json"
# Why a lookup gave no profile: `not_registered` is no error (a version the registry never had); the others are.
FAILURES = ("store", "no_profile_file", "corrupt", "invalid")


class RegistryProfiles:
    """Profiles by model version from one registry (one bucket, one model name)."""

    def __init__(
        self,
        registry: Registry,
        retry_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.retry_s = retry_s
        self.clock = clock
        self.on_failure = on_failure  # called with the reason of every failed lookup (the monitor's counter)
        self._loaded: dict[str, Profile] = {}
        self._retry_at: dict[str, float] = {}  # version -> when to ask again
        self.errors: dict[str, str] = {}  # version -> why its last lookup failed
        self.failures: Counter[str] = Counter()
        self.lookups = 0

    @property
    def versions(self) -> list[str]:
        return sorted(self._loaded)

    def get(self, version: str) -> Profile | None:
        found = self._loaded.get(version)
        if found is not None:
            return found
        if self.clock() < self._retry_at.get(version, float("-inf")):
            return None
        self.lookups += 1
        try:
            profile = self._fetch(version)
        except _LookupFailed as failed:
            self._retry_at[version] = self.clock() + self.retry_s
            self.errors[version] = failed.message
            self.failures[failed.reason] += 1
            if self.on_failure is not None:
                self.on_failure(failed.reason)
            log.warning("no registry profile for model version %s (%s): %s", version, failed.reason, failed.message)
            return None
        if profile is None:
            self._retry_at[version] = self.clock() + self.retry_s
            return None
        self._loaded[version] = profile
        self.errors.pop(version, None)
        self._retry_at.pop(version, None)
        log.info("reference profile of model version %s loaded from %s", version, profile.source)
        return profile

    def _fetch(self, version: str) -> Profile | None:
        if not is_name(version):
            return None  # not a version the registry can hold (e.g. an empty or free-text model_version tag)
        try:
            registration = self.registry.registration(version)
        except FlowbackError as exc:  # the store or the bucket is unreachable
            raise _LookupFailed("store", self._unreadable(exc)) from None
        except (ValueError, KeyError, TypeError) as exc:  # registration.json that is not the registry's
            raise _LookupFailed("invalid", f"{self.registry.describe(version)}/registration.json: {exc}") from None
        if registration is None:
            return None  # not registered (yet): asked again after retry_s
        source = f"{self.registry.describe(version)}/{PROFILE_FILE}"
        expected = registration.files.get(PROFILE_FILE)
        if expected is None:
            raise _LookupFailed(
                "no_profile_file", f"{source}: the version is registered without a profile; retrain it with retrain.py"
            )
        try:
            data = self.registry.store.get(self.registry.file_key(version, PROFILE_FILE))
        except FlowbackError as exc:
            raise _LookupFailed("store", self._unreadable(exc)) from None
        if data is None or sha256(data) != expected.get("sha256") or len(data) != expected.get("bytes"):
            got = "missing" if data is None else f"sha256 {sha256(data)[:12]}... ({len(data)} bytes)"
            raise _LookupFailed(
                "corrupt",
                f"{source} is {got}, registered {str(expected.get('sha256'))[:12]}... ({expected.get('bytes')} "
                "bytes); register the version again from its artifacts",
            )
        try:
            profile = parse_profile(json.loads(data), source)
        except (ProfileError, ValueError) as exc:
            raise _LookupFailed("invalid", str(exc)) from None
        if profile.model_version != version:
            raise _LookupFailed(
                "invalid", f"{source}: its model_version is {profile.model_version!r}, not the registered {version!r}"
            )
        return profile

    def _unreadable(self, exc: FlowbackError) -> str:
        return (
            f"the registry {self.registry.store.describe()} cannot be read (MONITOR_REGISTRY_S3_ENDPOINT, "
            f"MONITOR_REGISTRY_BUCKET, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): {exc}"
        )


class _LookupFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
