"""A model registry in the object store: `registry/<model>/<version>/` holds the artifacts plus `registration.json`.

```
registry/<model>/<version>/model.joblib, metadata.json, profile.json, ...   the artifacts, as the trainer wrote them
registry/<model>/<version>/registration.json   files with sha256 and size, the metadata's lineage; written LAST
registry/<model>/<version>/evaluation.json, evaluation.html                  written by `evaluate`
registry/<model>/aliases/<alias>.json          {"version": ...}: `serving` (the main predictor), `candidate` (canary)
```

A version exists only once its `registration.json` is written, after every file: a crash or an error mid-upload
leaves no version (and the next attempt overwrites the partial files). Versions are immutable: registering other
bytes under an existing version is refused. Every download is checked against the recorded sha256, so a corrupt or
replaced artifact is an error that names the file, never a model silently served or evaluated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedback.flowback.dataset import canonical_json, sha256
from feedback.flowback.errors import FlowbackError
from feedback.flowback.store import ObjectStore

REGISTRY_PREFIX = "registry"
REGISTRATION_FILE = "registration.json"
METADATA_FILE = "metadata.json"
REQUIRED_FILES = ("model.joblib", METADATA_FILE)
ALIASES = ("serving", "candidate")
REPORT_FILES = ("evaluation.json", "evaluation.html")  # added after registration; not artifacts
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def is_name(value: str) -> bool:
    """Whether `value` can be a model name or version in the registry's keys."""
    return bool(_SAFE.match(value))


def _check_name(value: str, what: str) -> str:
    if not _SAFE.match(value):
        raise FlowbackError(f"{what} {value!r} must be 1-128 letters, digits, '.', '_', '+' or '-'")
    return value


@dataclass(frozen=True)
class Registration:
    model: str
    version: str
    files: dict[str, dict[str, Any]]
    metadata: dict[str, Any]


class Registry:
    def __init__(self, store: ObjectStore, model: str) -> None:
        self.store = store
        self.model = _check_name(model, "model name")

    def _prefix(self, version: str) -> str:
        return f"{REGISTRY_PREFIX}/{self.model}/{_check_name(version, 'model version')}"

    def file_key(self, version: str, name: str) -> str:
        """The object key of file `name` of `version`."""
        return f"{self._prefix(version)}/{name}"

    def describe(self, version: str) -> str:
        return self.store.describe(self._prefix(version))

    def registration(self, version: str) -> Registration | None:
        raw = self.store.get(f"{self._prefix(version)}/{REGISTRATION_FILE}")
        if raw is None:
            return None
        record = json.loads(raw)
        return Registration(self.model, version, record["files"], record["metadata"])

    def require(self, version: str) -> Registration:
        found = self.registration(version)
        if found is None:
            known = ", ".join(self.versions()) or "none"
            raise FlowbackError(f"{self.describe(version)} is not a registered version (registered: {known})")
        return found

    def versions(self) -> list[str]:
        prefix = f"{REGISTRY_PREFIX}/{self.model}/"
        return sorted(
            key[len(prefix) :].split("/")[0]
            for key in self.store.keys(prefix)
            if key.endswith(f"/{REGISTRATION_FILE}") and key.count("/") == 3
        )

    def register(self, artifacts: Path) -> tuple[Registration, bool]:
        """Upload the artifacts folder as the version its metadata.json names; (registration, newly written)."""
        missing = [name for name in REQUIRED_FILES if not (artifacts / name).is_file()]
        if missing:
            raise FlowbackError(f"{artifacts}: missing {', '.join(missing)}; train the model into this folder first")
        try:
            metadata = json.loads((artifacts / METADATA_FILE).read_text(encoding="utf-8"))
            version = str(metadata["version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise FlowbackError(f"{artifacts / METADATA_FILE}: not the trainer's metadata ({exc}); retrain") from None
        files = {
            path.name: path.read_bytes()
            for path in sorted(artifacts.iterdir())
            if path.is_file() and not path.name.startswith(".") and path.name not in (REGISTRATION_FILE, *REPORT_FILES)
        }
        record = {
            "model": self.model,
            "version": version,
            "files": {name: {"sha256": sha256(data), "bytes": len(data)} for name, data in files.items()},
            "metadata": {
                key: metadata.get(key)
                for key in ("version", "parent_version", "dataset", "class_names", "held_out_metrics", "params")
                if key in metadata
            },
        }
        existing = self.registration(version)
        if existing is not None:
            if existing.files == record["files"]:
                return existing, False
            raise FlowbackError(
                f"{self.describe(version)} is already registered with other files; versions are immutable: "
                "a changed input gives a new version, so retrain instead of overwriting"
            )
        prefix = self._prefix(version)
        for name, data in files.items():
            self.store.put(f"{prefix}/{name}", data)
        self.store.put(f"{prefix}/{REGISTRATION_FILE}", canonical_json(record), "application/json")
        return Registration(self.model, version, record["files"], record["metadata"]), True

    def fetch(self, version: str, destination: Path) -> Registration:
        """Download a version's artifacts into `destination`, each checked against its recorded sha256."""
        registration = self.require(version)
        destination.mkdir(parents=True, exist_ok=True)
        prefix = self._prefix(version)
        for name, expected in sorted(registration.files.items()):
            data = self.store.get(f"{prefix}/{name}")
            if data is None:
                raise FlowbackError(f"{self.store.describe(f'{prefix}/{name}')} is missing; register the version again")
            if sha256(data) != expected["sha256"] or len(data) != expected["bytes"]:
                raise FlowbackError(
                    f"{self.store.describe(f'{prefix}/{name}')} is corrupt: sha256 {sha256(data)[:12]}... "
                    f"({len(data)} bytes), registered {expected['sha256'][:12]}... ({expected['bytes']} bytes); "
                    "register the version again from its artifacts or retrain"
                )
            (destination / name).write_bytes(data)
        return registration

    def put_report(self, version: str, name: str, data: bytes, content_type: str) -> str:
        if name not in REPORT_FILES:
            raise FlowbackError(f"{name!r} is not a report file ({', '.join(REPORT_FILES)})")
        self.require(version)
        key = f"{self._prefix(version)}/{name}"
        self.store.put(key, data, content_type)
        return self.store.describe(key)

    def report(self, version: str, name: str) -> bytes | None:
        return self.store.get(f"{self._prefix(version)}/{name}")

    def _alias_key(self, alias: str) -> str:
        if alias not in ALIASES:
            raise FlowbackError(f"alias {alias!r} is not one of {', '.join(ALIASES)}")
        return f"{REGISTRY_PREFIX}/{self.model}/aliases/{alias}.json"

    def alias(self, alias: str) -> str | None:
        raw = self.store.get(self._alias_key(alias))
        return None if raw is None else str(json.loads(raw)["version"])

    def set_alias(self, alias: str, version: str) -> None:
        self.require(version)
        self.store.put(self._alias_key(alias), canonical_json({"version": version}), "application/json")

    def clear_alias(self, alias: str) -> None:
        self.store.delete(self._alias_key(alias))
