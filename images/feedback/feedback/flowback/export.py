"""Export: the capture documents with ground truth of one time range become a versioned dataset in the object store.

    python -m feedback.flowback export --start 2026-12-01T00:00:00Z --end 2026-12-02T00:00:00Z \
        --deployment text-classifier [--model-version V] [--sample-rate 0.5] [--held-out-percent 20]

Reads every document of the range (`@timestamp`, the request time, start inclusive, end exclusive) that has a
`truth`, from one point in time of the index (so concurrent indexing cannot change a running export), in the order
of its natural key (request id, node, instance) with `search_after`, turns each into a row
(`dataset.row_from_document`), splits rows into train and held-out by a hash of the text, and writes
`datasets/<deployment>/<hash>/{train.csv,held_out.csv,manifest.json}`: the data files first, the manifest last, so
a dataset whose manifest exists is complete. The same range gives the same files and the same hash; exporting it
again finds the manifest and writes nothing.

Sampling: `--sample-rate` keeps request ids with the collector's own rule (SHA-256 of the id), so a lower rate
keeps a subset of what a higher one keeps, and the whole request stays together. Redaction: the texts in the index
were redacted by the collector (or the indexer, for direct Kafka logging); the export applies FLOWBACK_REDACT_* again.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from feedback.collector.core import sampled_in
from feedback.flowback import dataset
from feedback.flowback.errors import FlowbackError
from feedback.flowback.store import ObjectStore
from feedback.indexer.search_io import SearchBackend, SearchUnavailable
from feedback.redaction import Redactor

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
PIT_KEEP_ALIVE = "5m"  # how long the snapshot lives after each page (an export reads the next page well before)
SORT = [{"request_id": "asc"}, {"node": "asc"}, {"instance": "asc"}]
SOURCE_FIELDS = [
    "request_id",
    "node",
    "instance",
    "input_text",
    "truth",
    "truth_index",
    "truth_label",
    "class_names",
    "model_version",
    "predictor",
    "request_time",
    "@timestamp",
    "response_raw.meta.tags.model_version",
]
DATASETS_PREFIX = "datasets"


def parse_time(value: str, flag: str) -> datetime:
    """An ISO-8601 time with a zone (`2026-12-01T00:00:00Z`), as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FlowbackError(f"{flag} {value!r} is not an ISO-8601 time; write e.g. 2026-12-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise FlowbackError(f"{flag} {value!r} has no time zone; add Z (UTC) or an offset such as +01:00")
    return parsed.astimezone(UTC)


LOOKBACK = re.compile(r"^-([1-9][0-9]*)([smhd])$")
LOOKBACK_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_range(start: str, end: str) -> tuple[datetime, datetime]:
    """`--start` and `--end` as UTC times; a start written as a lookback before the end (`-24h`, `-7d`; units s, m,
    h, d) is resolved against the end, so a scheduled run passing its scheduled time as the end exports a fixed
    range however often a step is retried."""
    end_time = parse_time(end, "--end")
    lookback = LOOKBACK.match(start.strip())
    if lookback is None:
        if start.strip().startswith("-"):
            raise FlowbackError(
                f"--start {start!r} is neither an ISO-8601 time nor a lookback; write e.g. 2026-12-01T00:00:00Z or "
                "-24h (a number and one of s, m, h, d)"
            )
        return parse_time(start, "--start"), end_time
    amount, unit = int(lookback.group(1)), lookback.group(2)
    return end_time - timedelta(seconds=amount * LOOKBACK_UNITS[unit]), end_time


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ExportRequest:
    start: datetime
    end: datetime
    deployment: str
    namespace: str | None = None
    predictor: str | None = None
    model_version: str | None = None
    class_names: tuple[str, ...] = dataset.DEFAULT_CLASS_NAMES
    sample_rate: float = 1.0
    held_out_percent: int = dataset.DEFAULT_HELD_OUT_PERCENT
    drop_unknown_labels: bool = False

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise FlowbackError(f"--end {iso(self.end)} must be after --start {iso(self.start)}: the range is empty")
        if not self.deployment.strip():
            raise FlowbackError("--deployment is required: the SeldonDeployment whose documents to export")
        if not 0.0 < self.sample_rate <= 1.0:
            raise FlowbackError(f"--sample-rate {self.sample_rate:g} must be above 0 and at most 1")
        if not 1 <= self.held_out_percent <= 50:
            raise FlowbackError(f"--held-out-percent {self.held_out_percent} must be from 1 to 50")
        if len(set(self.class_names)) < 2:
            raise FlowbackError(f"--class-names {','.join(self.class_names)} must name at least two distinct classes")

    def filters(self, with_truth: bool = True) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = [
            {"range": {"@timestamp": {"gte": iso(self.start), "lt": iso(self.end)}}},
            {"term": {"deployment": self.deployment}},
        ]
        for field, value in (
            ("namespace", self.namespace),
            ("predictor", self.predictor),
            ("model_version", self.model_version),
        ):
            if value:
                clauses.append({"term": {field: value}})
        if with_truth:
            clauses.append({"exists": {"field": "truth"}})
        return clauses

    def query(self) -> dict[str, Any]:
        """What decides the dataset's content (part of its hash): the search, the classes and the sampling."""
        return {
            "index_query": {"bool": {"filter": self.filters()}},
            "sort": SORT,
            "class_names": list(self.class_names),
            "sample_rate": self.sample_rate,
            "drop_unknown_labels": self.drop_unknown_labels,
        }


def search_body(request: ExportRequest, after: Sequence[Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "size": PAGE_SIZE,
        "query": {"bool": {"filter": request.filters()}},
        "sort": SORT,
        "_source": SOURCE_FIELDS,
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = list(after)
    return body


class Snapshot:
    """A point in time of the index (Elasticsearch `_pit`, OpenSearch `_search/point_in_time`): every page and
    count of one export reads the index as it was when the export began, so documents indexed, updated or deleted
    meanwhile (the indexer keeps writing) cannot shift `search_after` pages or change the dataset. Closed on exit;
    if closing fails the engine drops it after `keep_alive` anyway."""

    def __init__(self, backend: SearchBackend, index: str, keep_alive: str = PIT_KEEP_ALIVE) -> None:
        self.backend = backend
        self.index = index
        self.keep_alive = keep_alive
        self.pit_id: str | None = None

    def __enter__(self) -> Snapshot:
        self.pit_id = self.backend.open_point_in_time(self.index, self.keep_alive)
        return self

    def __exit__(self, *_: object) -> None:
        if self.pit_id is None:
            return
        try:
            self.backend.close_point_in_time(self.pit_id)
        except SearchUnavailable as exc:
            log.warning(
                "could not close the point in time of %s (it expires after %s): %s", self.index, self.keep_alive, exc
            )
        self.pit_id = None

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.pit_id is None:  # the index does not exist: nothing was there when the export began
            return {"hits": {"hits": [], "total": {"value": 0}}}
        answer = self.backend.search_point_in_time(self.pit_id, self.keep_alive, body)
        self.pit_id = str(answer.get("pit_id") or self.pit_id)  # an engine may hand out a new id per search
        return answer


def documents(snapshot: Snapshot, request: ExportRequest) -> Iterator[dict[str, Any]]:
    """Every matching document's `_source` in the snapshot, in natural-key order, one page at a time."""
    after: list[Any] | None = None
    while True:
        hits = snapshot.search(search_body(request, after))["hits"]["hits"]
        for hit in hits:
            yield hit["_source"]
        if len(hits) < PAGE_SIZE:
            return
        after = hits[-1]["sort"]


def count(snapshot: Snapshot, request: ExportRequest, with_truth: bool) -> int:
    body = {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": request.filters(with_truth)}}}
    total = snapshot.search(body)["hits"].get("total", {"value": 0})
    return int(total["value"] if isinstance(total, dict) else total)


@dataclass(frozen=True)
class ExportResult:
    manifest: dict[str, Any]
    prefix: str
    written: bool  # False when the same dataset was already in the store

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])


def dataset_prefix(deployment: str, content_hash: str) -> str:
    return f"{DATASETS_PREFIX}/{deployment}/{content_hash[:16]}"


def build(backend: SearchBackend, index: str, request: ExportRequest, redactor: Redactor) -> tuple[dict, dict]:
    """(manifest, files) of the range as the index was when the export began, or FlowbackError saying why there is
    nothing to export."""
    with Snapshot(backend, index) as snapshot:
        return _build(snapshot, index, request, redactor)


def _build(snapshot: Snapshot, index: str, request: ExportRequest, redactor: Redactor) -> tuple[dict, dict]:
    rows: list[dataset.FeedbackRow] = []
    skipped: Counter[str] = Counter()
    unknown_examples: list[str] = []
    redacted = 0
    seen = 0
    for source in documents(snapshot, request):
        seen += 1
        if request.sample_rate < 1.0 and not sampled_in(str(source.get("request_id", "")), request.sample_rate):
            skipped[dataset.SAMPLED_OUT] += 1
            continue
        row, reason, was_redacted = dataset.row_from_document(source, request.class_names, redactor)
        if row is None:
            skipped[str(reason)] += 1
            if reason == dataset.UNKNOWN_LABEL and len(unknown_examples) < 3:
                unknown_examples.append(f"{source.get('request_id')} truth={source.get('truth')!r}")
            continue
        redacted += int(was_redacted)
        rows.append(row)
    where = f"index {index!r}, deployment {request.deployment!r}, {iso(request.start)} to {iso(request.end)}"
    if seen == 0:
        total = count(snapshot, request, with_truth=False)
        if total == 0:
            raise FlowbackError(f"no documents at all in {where}: check the range, the deployment and FLOWBACK_INDEX")
        raise FlowbackError(
            f"none of the {total} documents in {where} has ground truth: send feedback (POST /api/v1.0/feedback "
            "with the prediction's Seldon-Puid) before exporting, or choose another range"
        )
    if skipped[dataset.UNKNOWN_LABEL] and not request.drop_unknown_labels:
        raise FlowbackError(
            f"{skipped[dataset.UNKNOWN_LABEL]} of {seen} documents in {where} have a truth that is not one of the "
            f"classes {','.join(request.class_names)} (e.g. {'; '.join(unknown_examples)}); fix the feedback, pass "
            "--class-names, or pass --drop-unknown-labels to export the rest (they are counted in the manifest)"
        )
    if not rows:
        raise FlowbackError(f"{seen} documents with ground truth in {where}, but none is usable: {dict(skipped)}")
    train, held_out = dataset.split(rows, request.held_out_percent)
    files = dataset.dataset_files(train, held_out)
    manifest = dataset.build_manifest(
        query={"index": index, **request.query()},
        files=files,
        train=train,
        held_out=held_out,
        class_names=request.class_names,
        held_out_percent=request.held_out_percent,
        documents=seen,
        skipped=skipped,
        redacted=redacted,
        provenance={
            "time_range": {"start": iso(request.start), "end": iso(request.end)},
            "deployment": request.deployment,
            "namespace": request.namespace,
            "predictor": request.predictor,
            "model_version": request.model_version,
            "redaction": {
                "active": redactor.active,
                "fields": sorted(redactor.fields),
                "patterns": list(redactor.builtins),
            },
        },
    )
    return manifest, files


def export(
    backend: SearchBackend, store: ObjectStore, index: str, request: ExportRequest, redactor: Redactor
) -> ExportResult:
    manifest, files = build(backend, index, request, redactor)
    prefix = dataset_prefix(request.deployment, manifest["content_hash"])
    manifest_key = f"{prefix}/{dataset.MANIFEST_FILE}"
    manifest_bytes = dataset.canonical_json(manifest)
    existing = store.get(manifest_key)
    if existing == manifest_bytes:
        log.info("dataset %s already exported", store.describe(prefix))
        return ExportResult(manifest, prefix, written=False)
    for name, data in sorted(files.items()):
        store.put(f"{prefix}/{name}", data, "text/csv")
    store.put(manifest_key, manifest_bytes, "application/json")  # last: a dataset with a manifest is complete
    log.info("exported %d rows to %s", manifest["counts"]["rows"], store.describe(prefix))
    return ExportResult(manifest, prefix, written=True)
