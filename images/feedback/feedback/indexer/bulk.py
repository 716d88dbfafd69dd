"""Pure logic of the bulk writes: NDJSON bodies built once (orjson), cut to a size the cluster accepts, and what
each item's answer means.

Three operations, each one line of metadata and one line of body:
- `create` a complete (or timed-out) document with its derived fields: a 409 means the document exists (a late
  event, a replay, the other half of a directly logged request): then the scripted merge;
- `index` guarded by `if_seq_no`/`if_primary_term`: a late event merged with the copy this process wrote; a 409
  means someone else changed the document meanwhile: then the scripted merge;
- `update` with the stored merge script and `scripted_upsert` (`core.bulk_action`): any order, any repetition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson

from feedback.indexer.join import MessageRef

# What the engine needs to answer per item (the rest of a bulk response is dropped by the engine itself).
BULK_FILTER_PATH = (
    "errors,items.*._id,items.*._index,items.*.status,items.*.error,items.*._seq_no,items.*._primary_term"
)


class Op(Enum):
    CREATE = "create"
    INDEX = "index"
    UPDATE = "update"


@dataclass
class BulkOp:
    """One bulk item ready to send, and what it stands for (the messages it carries, the document it writes)."""

    op: Op
    doc_id: str
    index: str
    lines: bytes  # metadata line + body line, each ending in "\n"
    sources: list[MessageRef]
    parts: list[dict[str, Any]]  # the fields of the events, for a fallback to the scripted merge
    mode_hint: str
    document: dict[str, Any] | None = None  # the full document (create, index): kept as the recent copy
    attempts: int = 0
    not_before: float = 0.0  # monotonic time before which a retry is not sent
    alone: bool = False  # sent in a request of its own (finding the item a whole request was refused for)

    @property
    def size(self) -> int:
        return len(self.lines)


def _line(value: Any) -> bytes:
    return orjson.dumps(value) + b"\n"


def create_op(
    doc_id: str,
    index: str,
    document: dict[str, Any],
    sources: list[MessageRef],
    parts: list[dict[str, Any]],
    mode_hint: str,
) -> BulkOp:
    lines = _line({"create": {"_index": index, "_id": doc_id}}) + _line(document)
    return BulkOp(Op.CREATE, doc_id, index, lines, sources, parts, mode_hint, document)


def index_op(
    doc_id: str,
    index: str,
    document: dict[str, Any],
    seq_no: int,
    primary_term: int,
    sources: list[MessageRef],
    parts: list[dict[str, Any]],
    mode_hint: str,
) -> BulkOp:
    meta = {"index": {"_index": index, "_id": doc_id, "if_seq_no": seq_no, "if_primary_term": primary_term}}
    return BulkOp(Op.INDEX, doc_id, index, _line(meta) + _line(document), sources, parts, mode_hint, document)


def update_op(
    doc_id: str,
    index: str,
    script_id: str,
    sources: list[MessageRef],
    parts: list[dict[str, Any]],
    mode_hint: str,
    *,
    create: bool = True,
) -> BulkOp:
    """The scripted merge of all `parts` (in order) into the stored document (created from {} when missing)."""
    fields: dict[str, Any] = {}
    for part in parts:
        fields.update(part)
    body: dict[str, Any] = {"script": {"id": script_id, "params": {"doc": fields, "mode_hint": mode_hint}}}
    if create:
        body.update({"scripted_upsert": True, "upsert": {}})
    meta = {"update": {"_index": index, "_id": doc_id, "retry_on_conflict": 5}}
    return BulkOp(Op.UPDATE, doc_id, index, _line(meta) + _line(body), sources, parts, mode_hint)


def chunks(ops: Iterable[BulkOp], max_bytes: int, max_items: int) -> Iterator[list[BulkOp]]:
    """Consecutive groups of at most `max_items` items and `max_bytes` bytes (an item larger than `max_bytes`
    goes alone: the engine answers 413 and it is dead-lettered). One document id appears at most once per chunk,
    so the items of one document are applied in order across chunks."""
    chunk: list[BulkOp] = []
    ids: set[str] = set()
    size = 0
    for op in ops:
        if op.alone:
            yield [op]
            continue
        if chunk and (len(chunk) >= max_items or size + op.size > max_bytes or op.doc_id in ids):
            yield chunk
            chunk, ids, size = [], set(), 0
        chunk.append(op)
        ids.add(op.doc_id)
        size += op.size
    if chunk:
        yield chunk


def body(chunk: list[BulkOp]) -> bytes:
    return b"".join(op.lines for op in chunk)


# ------------------------------------------------------------------------------------------ item answers


class ItemOutcome(Enum):
    OK = "ok"
    EXISTS = "exists"  # 409 on create/index: merge with the stored document instead
    RETRY = "retry"  # 429, 5xx, read-only blocks, exhausted update conflicts: the cluster may accept it later
    PERMANENT = "permanent"  # the document itself is wrong: dead-letter it
    SCRIPT_MISSING = "script_missing"  # the stored merge script was deleted: reinstall it, then retry
    REFUSED = "refused"  # the cluster refuses our kind of write (e.g. scripts forbidden): not the document's fault
    FORBIDDEN = "forbidden"  # 403 security_exception: the indexer's user lacks a privilege (its role, not the document)
    UNKNOWN = "unknown"  # another 4xx: retried a bounded number of times, then dead-lettered


# Error types whose cause is the document (its fields or values), never the cluster.
DOCUMENT_ERROR_TYPES = frozenset(
    {
        "mapper_parsing_exception",
        "document_parsing_exception",
        "strict_dynamic_mapping_exception",
        "json_parse_exception",
        "x_content_parse_exception",
        "parse_exception",
        "invalid_type_name_exception",
        "max_bytes_length_exceeded_exception",  # an immense term (a keyword above 32 766 bytes)
        "number_format_exception",
        "date_time_parse_exception",
    }
)
DOCUMENT_REASON_MARKERS = ("immense term", "failed to parse", "mapper [", "illegal_state_exception: can't merge")
SCRIPT_REFUSALS = ("cannot execute scripts", "cannot execute [stored] scripts", "scripts of type", "not allowed")


def _types(error: Any) -> list[tuple[str, str]]:
    found = []
    while isinstance(error, dict):
        found.append((str(error.get("type") or ""), str(error.get("reason") or "")))
        error = error.get("caused_by")
    return found


def classify_item(status: int, error: Any, op: Op = Op.UPDATE) -> ItemOutcome:
    """What an item's answer means. Permanent only when the cause is the document; scripts the cluster refuses
    or a deleted script are the cluster's state, not the document's fault, so they never dead-letter a message."""
    if 200 <= status < 300:
        return ItemOutcome.OK
    if status == 409:
        return ItemOutcome.RETRY if op is Op.UPDATE else ItemOutcome.EXISTS
    if status == 429 or status >= 500:
        return ItemOutcome.RETRY
    chain = _types(error)
    types = {name for name, _ in chain}
    reasons = " ".join(reason for _, reason in chain).lower()
    if "script" in reasons and ("unable to find" in reasons or "not found" in reasons or "missing" in reasons):
        return ItemOutcome.SCRIPT_MISSING
    if status == 404 and "resource_not_found_exception" in types:
        return ItemOutcome.SCRIPT_MISSING
    if any(marker in reasons for marker in SCRIPT_REFUSALS) and "script" in reasons:
        return ItemOutcome.REFUSED
    if status == 403 and "security_exception" in types:
        return ItemOutcome.FORBIDDEN
    if status == 403 and "cluster_block_exception" in types:
        return ItemOutcome.RETRY  # read-only index (disk watermark): cleared by the operator
    if status == 413:
        return ItemOutcome.PERMANENT
    if types & DOCUMENT_ERROR_TYPES or any(marker in reasons for marker in DOCUMENT_REASON_MARKERS):
        return ItemOutcome.PERMANENT
    return ItemOutcome.UNKNOWN


# What a search engine's `reason` may name safely: the field (`failed to parse field [batch_index] of type
# [long]`, `mapper [x] cannot be changed`, `dynamic introduction of [x]`). The rest of a reason can quote the
# document ("Preview of field's value: 'alice@example.com'"), so it is never logged or dead-lettered.
FIELD_IN_REASON = re.compile(r"(?:field|mapper|introduction of|property)\s*\[([A-Za-z0-9_.]{1,120})\]")
ERROR_TYPE = re.compile(r"[A-Za-z0-9_.]{1,100}")


def _safe_type(value: Any) -> str:
    text = str(value or "error")
    return text if ERROR_TYPE.fullmatch(text) else "error"


def error_reason(error: Any) -> str:
    """An item error as its error types and the field names it mentions, never the values it quotes, e.g.
    `mapper_parsing_exception (field batch_index) caused by number_format_exception`."""
    if not isinstance(error, dict):
        return _safe_type(error) if isinstance(error, str) else type(error).__name__
    parts = []
    for name, reason in _types(error):
        fields = list(dict.fromkeys(FIELD_IN_REASON.findall(reason)))
        described = _safe_type(name)
        if fields:
            described += f" (field {', '.join(fields[:5])})"
        parts.append(described)
    return " caused by ".join(parts)[:500]


def search_error_detail(status: int | None, info: Any, exception_name: str) -> str:
    """A whole-request search error for logs and dead letters: the exception class, the status and the error
    types and field names of the engine's answer (see `error_reason`), without the text the engine quotes."""
    error = info.get("error") if isinstance(info, dict) else None
    summary = error_reason(error) if error is not None else "no error body"
    return f"{exception_name} {status if status is not None else '-'}: {summary}"


@dataclass(frozen=True)
class ItemAnswer:
    doc_id: str
    status: int
    error: Any = None
    index: str | None = None
    seq_no: int | None = None
    primary_term: int | None = None


@dataclass
class BulkAnswer:
    items: list[ItemAnswer] = field(default_factory=list)


def parse_bulk_answer(answer: dict[str, Any]) -> BulkAnswer:
    """The items of a bulk response (filtered by BULK_FILTER_PATH), in request order."""
    items = []
    for item in answer.get("items") or []:
        _, info = next(iter(item.items()))
        items.append(
            ItemAnswer(
                str(info.get("_id")),
                int(info.get("status", 500)),
                info.get("error"),
                info.get("_index"),
                info.get("_seq_no"),
                info.get("_primary_term"),
            )
        )
    return BulkAnswer(items)
