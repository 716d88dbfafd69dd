"""Read the labelled CSV (header `text,label`, label 0 = kept, 1 = removed). Standard library only."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

LABELS = (0, 1)


class DatasetError(ValueError):
    """The CSV cannot be used for training; the message names the file, the row and the fix."""


def read_labelled_csv(path: Path, *, both_labels: bool = True) -> list[tuple[str, int]]:
    """The (text, label) rows; `both_labels=False` accepts a file of one label (exported feedback may be)."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file; pass --data with a CSV that has the columns text,label")
    rows: list[tuple[str, int]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: the header must contain text,label; it is {reader.fieldnames}")
        for line, record in enumerate(reader, start=2):
            label = (record["label"] or "").strip()
            if label not in {"0", "1"}:
                raise DatasetError(f"{path}:{line}: label must be 0 (kept) or 1 (removed), got {label!r}")
            rows.append((record["text"] or "", int(label)))
    if not rows:
        raise DatasetError(f"{path}: no rows after the header; it needs at least one text,label row")
    if both_labels and len({label for _, label in rows}) < len(LABELS):
        raise DatasetError(f"{path}: both labels 0 and 1 must occur; found {sorted({label for _, label in rows})}")
    return rows


def file_digest(*paths: Path) -> str:
    """sha256 over the given files' bytes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
