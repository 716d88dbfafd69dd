"""The model version: a hash of everything that decides the trained artifacts. Standard library only.

Training data, training and pipeline code, and the pinned requirements go in; the same inputs always give
the same version, so a local stack can cache trained artifacts under it and a served prediction can be
traced back to exactly what produced it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PIPELINE_VERSION = "1.0.0"
BUILD_CONTEXT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = BUILD_CONTEXT / "data" / "comments.csv"


def training_inputs(context: Path = BUILD_CONTEXT, data: Path = DEFAULT_DATA) -> list[Path]:
    code = sorted((context / "textclf").glob("*.py"))
    return [data, context / "train.py", context / "requirements.txt", *code]


def fingerprint(context: Path = BUILD_CONTEXT, data: Path = DEFAULT_DATA) -> str:
    digest = hashlib.sha256()
    for path in training_inputs(context, data):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def model_version(context: Path = BUILD_CONTEXT, data: Path = DEFAULT_DATA) -> str:
    """e.g. `1.0.0+3f2a9c1d0b7e`: the pipeline version plus 12 hex digits of the inputs' hash."""
    return f"{PIPELINE_VERSION}+{fingerprint(context, data)[:12]}"
