"""Reference profiles (written by the classifier's train.py, images/text-classifier/textclf/profile.py), found by the
model version a document carries.

The folder holds one `profile.json` per model version, anywhere below it (the chart's init containers copy each
model image's profile to `<dir>/<n>/profile.json`; the local stack points at the model's artifacts). A file that
is not a valid profile is reported and skipped, never fatal: its version then has status `no_profile`. A version
the folder does not know is looked up in the flow back's registry when one is configured (`registry_profiles.py`,
MONITOR_REGISTRY_BUCKET): that is how a canary serving a registered version gets its own profile.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from feedback.monitor.registry_profiles import RegistryProfiles

log = logging.getLogger(__name__)

SUPPORTED_FORMATS = (1,)
HASH_FUNCTIONS: dict[str, Callable[[bytes], int]] = {"crc32": zlib.crc32}


class ProfileError(ValueError):
    """A profile file is not what the monitor can use; the message says which field and why."""


@dataclass(frozen=True)
class Profile:
    model_version: str
    class_names: tuple[str, ...]
    predicted_labels: dict[str, float]
    held_out_accuracy: float
    held_out_rows: int
    confidence: np.ndarray
    text_length: np.ndarray
    oov_rate: np.ndarray
    token_pattern: re.Pattern[str]
    lowercase: bool
    vocabulary: frozenset[str]
    hash_function: Callable[[bytes], int]
    buckets: int
    bucket_shares: np.ndarray
    reference_sample: tuple[str, ...]
    source: str

    def tokens(self, text: str) -> list[str]:
        return self.token_pattern.findall(text.lower() if self.lowercase else text)

    def bucket(self, token: str) -> int:
        return self.hash_function(token.encode("utf-8")) % self.buckets


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], source: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProfileError(f"{source}: field {key!r} is missing or not {getattr(kind, '__name__', kind)}")
    return value


def _numbers(data: dict[str, Any], key: str, source: str) -> np.ndarray:
    values = _require(data, key, list, source)
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ProfileError(f"{source}: field {key!r} must be a list of numbers") from None
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ProfileError(f"{source}: field {key!r} must be a non-empty list of finite numbers")
    return array


def parse_profile(data: Any, source: str) -> Profile:
    """A validated profile; raises ProfileError naming the file and the field."""
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile is a JSON object")
    if data.get("format") not in SUPPORTED_FORMATS:
        raise ProfileError(f"{source}: profile format {data.get('format')!r} is not one of {SUPPORTED_FORMATS}")
    version = _require(data, "model_version", str, source)
    class_names = tuple(str(name) for name in _require(data, "class_names", list, source))
    tokenizer = _require(data, "tokenizer", dict, source)
    try:
        pattern = re.compile(_require(tokenizer, "pattern", str, source))
    except re.error as exc:
        raise ProfileError(f"{source}: tokenizer.pattern is not a regular expression ({exc})") from None
    buckets = _require(data, "token_buckets", dict, source)
    function = HASH_FUNCTIONS.get(str(buckets.get("function")))
    if function is None:
        raise ProfileError(f"{source}: token_buckets.function must be one of {sorted(HASH_FUNCTIONS)}")
    shares = _numbers(buckets, "shares", source)
    count = _require(buckets, "buckets", int, source)
    if count != shares.size:
        raise ProfileError(f"{source}: token_buckets.buckets={count} but {shares.size} shares")
    held_out = _require(data, "held_out", dict, source)
    predicted = _require(data, "predicted_labels", dict, source)
    return Profile(
        model_version=version,
        class_names=class_names,
        predicted_labels={str(k): float(v) for k, v in predicted.items()},
        held_out_accuracy=float(_require(held_out, "accuracy", (int, float), source)),
        held_out_rows=int(_require(held_out, "rows", int, source)),
        confidence=_numbers(data, "confidence", source),
        text_length=_numbers(data, "text_length", source),
        oov_rate=_numbers(data, "oov_rate", source),
        token_pattern=pattern,
        lowercase=bool(tokenizer.get("lowercase", True)),
        vocabulary=frozenset(str(token) for token in _require(data, "vocabulary", list, source)),
        hash_function=function,
        buckets=count,
        bucket_shares=shares,
        reference_sample=tuple(str(text) for text in _require(data, "reference_sample", list, source)),
        source=source,
    )


class ProfileStore:
    """The profiles below a folder, by model version; re-read when a file changes (checked every `refresh()`); a
    version the folder lacks comes from `registry` when one is given (the folder wins for a version in both)."""

    def __init__(self, directory: Path, registry: RegistryProfiles | None = None) -> None:
        self.directory = directory
        self.registry = registry
        self._seen: dict[Path, float] = {}
        self._by_version: dict[str, Profile] = {}
        self.errors: dict[str, str] = {}  # file -> why it was skipped

    def refresh(self) -> None:
        files = {path: path.stat().st_mtime for path in sorted(self.directory.rglob("*.json")) if path.is_file()}
        if files == self._seen:
            return
        by_version: dict[str, Profile] = {}
        errors: dict[str, str] = {}
        for path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and "format" not in data and "model_version" not in data:
                    continue  # another file of the artifacts (metadata.json), not a profile
                profile = parse_profile(data, str(path))
            except (OSError, ValueError) as exc:  # ProfileError and JSONDecodeError are ValueErrors
                errors[str(path)] = str(exc)
                log.warning("skipping profile %s: %s", path, exc)
                continue
            if profile.model_version in by_version:
                log.warning("two profiles for model version %s; using %s", profile.model_version, path)
            by_version[profile.model_version] = profile
        self._seen, self._by_version, self.errors = files, by_version, errors
        log.info("profiles for model versions: %s", ", ".join(sorted(by_version)) or "none")

    def get(self, model_version: str) -> Profile | None:
        found = self._by_version.get(model_version)
        if found is None and self.registry is not None:
            found = self.registry.get(model_version)
        return found

    @property
    def versions(self) -> list[str]:
        registered = self.registry.versions if self.registry is not None else []
        return sorted({*self._by_version, *registered})
