"""Pure logic of the export: a capture document with ground truth becomes a dataset row, rows become canonical
CSV files, and the files plus the query become a manifest whose hash names the dataset.

Determinism: rows are sorted by the document's natural key (request id, node, instance), CSV is written with fixed
columns, `\\n` line ends and UTF-8, the manifest is canonical JSON (sorted keys, no whitespace), and the hash covers
the query, the files' bytes and the split rule, never the time of the export run. The same range exported twice
gives the same bytes and the same hash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from feedback.redaction import Redactor

DATASET_FORMAT = 1
SPLIT_SALT = "flowback-feedback-split-v1"
DEFAULT_HELD_OUT_PERCENT = 20
DEFAULT_CLASS_NAMES = ("t:0", "t:1")
COLUMNS = ("text", "label", "request_id", "node", "instance", "model_version", "predictor", "request_time")
TRAIN_FILE = "train.csv"
HELD_OUT_FILE = "held_out.csv"
MANIFEST_FILE = "manifest.json"
UNKNOWN_VERSION = "unknown"
# Why a document with ground truth is not a row; each is counted in the manifest (`skipped`).
NO_TEXT = "no_text"  # a feedback the indexer could not join to its prediction (orphan): there is no input text
UNKNOWN_LABEL = "unknown_label"  # the truth is not one of the model's classes
SAMPLED_OUT = "sampled_out"  # the export's own sampling rate dropped the request id


@dataclass(frozen=True, order=True)
class FeedbackRow:
    """One exported row. The order is the natural key, so sorting rows is sorting documents by their `_id`."""

    request_id: str
    node: str
    instance: int
    text: str
    label: int
    model_version: str
    predictor: str
    request_time: str

    def values(self) -> list[str]:
        return [
            self.text,
            str(self.label),
            self.request_id,
            self.node,
            str(self.instance),
            self.model_version,
            self.predictor,
            self.request_time,
        ]


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_held_out(text: str, percent: int) -> bool:
    """The feedback's held-out rows, by a hash of the text (the rule of textclf/split.py, another salt): equal texts
    always land on the same side, so a repeated comment never leaks from training into evaluation."""
    digest = hashlib.sha256(f"{SPLIT_SALT}\0{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def model_version_of(source: Mapping[str, Any]) -> str:
    """The serving model's version: the indexed `model_version`, else the response's `meta.tags.model_version`."""
    version = source.get("model_version")
    if not version:
        tags = ((source.get("response_raw") or {}).get("meta") or {}).get("tags") or {}
        version = tags.get("model_version") if isinstance(tags, dict) else None
    return str(version).strip() if isinstance(version, (str, int, float)) and str(version).strip() else UNKNOWN_VERSION


def label_of(source: Mapping[str, Any], class_names: Sequence[str]) -> int | None:
    """The truth as an index into `class_names`, or None when it is not one of them (an unknown label)."""
    index = source.get("truth_index")
    names = source.get("class_names")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(class_names):
        if not names or list(names)[index : index + 1] == [class_names[index]]:
            return index
        return None
    truth = source.get("truth_label") or source.get("truth")
    if isinstance(truth, str) and truth in class_names:
        return list(class_names).index(truth)
    return None


def row_from_document(
    source: Mapping[str, Any], class_names: Sequence[str], redactor: Redactor
) -> tuple[FeedbackRow | None, str | None, bool]:
    """(row, None, redacted) for a usable document, else (None, skip reason, False)."""
    text = source.get("input_text")
    if not isinstance(text, str) or not text.strip():
        return None, NO_TEXT, False
    label = label_of(source, class_names)
    if label is None:
        return None, UNKNOWN_LABEL, False
    redacted_text = redactor.redact_text(text) if redactor.active else text
    row = FeedbackRow(
        request_id=str(source.get("request_id", "")),
        node=str(source.get("node", "")),
        instance=int(source.get("instance") or 0),
        text=redacted_text,
        label=label,
        model_version=model_version_of(source),
        predictor=str(source.get("predictor") or ""),
        request_time=str(source.get("request_time") or source.get("@timestamp") or ""),
    )
    return row, None, redacted_text != text


def csv_bytes(rows: Iterable[FeedbackRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for row in sorted(rows):
        writer.writerow(row.values())
    return out.getvalue().encode("utf-8")


def split(rows: Iterable[FeedbackRow], held_out_percent: int) -> tuple[list[FeedbackRow], list[FeedbackRow]]:
    ordered = sorted(rows)
    held_out = [row for row in ordered if is_held_out(row.text, held_out_percent)]
    train = [row for row in ordered if not is_held_out(row.text, held_out_percent)]
    return train, held_out


def label_counts(rows: Iterable[FeedbackRow], class_names: Sequence[str]) -> dict[str, int]:
    counts = Counter(class_names[row.label] for row in rows)
    return {name: counts.get(name, 0) for name in class_names}


def dataset_files(train: list[FeedbackRow], held_out: list[FeedbackRow]) -> dict[str, bytes]:
    return {TRAIN_FILE: csv_bytes(train), HELD_OUT_FILE: csv_bytes(held_out)}


def content_hash(query: Mapping[str, Any], files: Mapping[str, bytes], split_rule: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the query, each file's sha256 and the split rule: the dataset's name."""
    return sha256(
        canonical_json(
            {
                "format": DATASET_FORMAT,
                "query": query,
                "files": {name: sha256(data) for name, data in sorted(files.items())},
                "split": split_rule,
            }
        )
    )


def build_manifest(
    *,
    query: Mapping[str, Any],
    files: Mapping[str, bytes],
    train: list[FeedbackRow],
    held_out: list[FeedbackRow],
    class_names: Sequence[str],
    held_out_percent: int,
    documents: int,
    skipped: Mapping[str, int],
    redacted: int,
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything a reader needs to trust and reproduce the dataset; no time of the export run."""
    split_rule = {"by": "sha256(salt, text)", "salt": SPLIT_SALT, "held_out_percent": held_out_percent}
    rows = train + held_out
    row_counts = {TRAIN_FILE: len(train), HELD_OUT_FILE: len(held_out)}
    return {
        "format": DATASET_FORMAT,
        "content_hash": content_hash(query, files, split_rule),
        "query": dict(query),
        "class_names": list(class_names),
        "split": split_rule,
        "counts": {
            "documents_with_truth": documents,
            "rows": len(rows),
            "per_label": label_counts(rows, class_names),
            "per_split": {
                "train": {"rows": len(train), "per_label": label_counts(train, class_names)},
                "held_out": {"rows": len(held_out), "per_label": label_counts(held_out, class_names)},
            },
            "skipped": {reason: skipped.get(reason, 0) for reason in (NO_TEXT, UNKNOWN_LABEL, SAMPLED_OUT)},
            "redacted_texts": redacted,
        },
        "source_model_versions": dict(sorted(Counter(row.model_version for row in rows).items())),
        "files": {
            name: {"sha256": sha256(data), "bytes": len(data), "rows": row_counts.get(name, 0)}
            for name, data in sorted(files.items())
        },
        "columns": list(COLUMNS),
        "provenance": dict(provenance),
    }
