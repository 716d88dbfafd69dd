"""Pure logic of the in-memory join: the events of one document meet in memory and the document is written once.

The executor logs a request, its response milliseconds later and (sometimes) a feedback seconds or minutes later;
the collector keys every event by request id, so one document's events arrive on one partition, in order. The
indexer keeps the parts of each document in a `JoinBuffer` until its request and response are both there (or a
configurable wait, `INDEXER_JOIN_WAIT_S`, has passed) and writes the complete document with `create`, its derived
fields computed here by `derive`, the Python twin of the painless merge script (`core.MERGE_SCRIPT`): the same
document for every arrival order, proved against the real engine in the integration tests.

Late events (a feedback after its document was written, a response after the wait) take one of two paths:
- the document is in `RecentDocuments` (written by this process a moment ago, with the `_seq_no` and
  `_primary_term` the engine answered): the merged document is written with `index` guarded by
  `if_seq_no`/`if_primary_term`, as cheap as a create and exact (a conflict means someone else changed it);
- otherwise, or after a conflict, the scripted merge (`core.bulk_action`) does it in the engine, as before.

Direct executor logging has no key: the events of one request may sit on different partitions and even in
different indexer replicas. Each replica then writes what it has (`create`), the second gets 409 and merges:
correct on the merge path, only slower.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from feedback.seldon import EventKind

# One message of the capture topic, as the join tracks it: (topic, partition, offset).
MessageRef = tuple[str, int, int]


def derive(source: dict[str, Any], mode_hint: str) -> dict[str, Any]:
    """The fields that depend on several events, computed from the merged fields exactly as `MERGE_SCRIPT` does in
    the engine (same order of rules, same types). Changes `source` in place and returns it."""
    s = source
    s["mode"] = "batch" if s.get("batch_id") is not None else mode_hint
    if s.get("request_time_us") is not None and s.get("response_time_us") is not None:
        s["latency_ms"] = (int(s["response_time_us"]) - int(s["request_time_us"])) / 1000.0
    for name in ("request_time", "response_time", "feedback_time"):
        if s.get(name) is not None:
            s["@timestamp"] = s[name]
            break
    truth_index, class_names = s.get("truth_index"), s.get("class_names")
    if truth_index is not None and class_names is not None and 0 <= int(truth_index) < len(class_names):
        s["truth_label"] = class_names[int(truth_index)]
    if truth_index is not None and s.get("predicted_index") is not None:
        s["correct"] = int(truth_index) == int(s["predicted_index"])
    if s.get("response_raw") is not None:
        s["outcome"] = "error" if s.get("error") is not None else "ok"
        s.pop("response_overdue", None)
    elif s.get("request_raw") is not None:
        s["outcome"] = "no_response" if s.get("response_overdue") is True else "pending"
    if s.get("request_raw") is not None or s.get("response_raw") is not None:
        s.pop("orphan_reason", None)
        s.pop("orphan_candidates", None)
    if s.get("feedback_raw") is not None and s.get("request_raw") is not None and s.get("feedback_join") is None:
        s["feedback_join"] = "puid"
    return s


def merged(base: dict[str, Any], parts: Iterable[dict[str, Any]], mode_hint: str) -> dict[str, Any]:
    """`base` (a stored document, or {}) with every part's fields laid over it in order, then derived."""
    source = dict(base)
    for fields in parts:
        source.update(fields)
    return derive(source, mode_hint)


@dataclass
class PendingDocument:
    """The parts of one document seen so far, in arrival order, and where each came from."""

    doc_id: str
    first_seen: float  # monotonic seconds
    mode_hint: str = "realtime"
    parts: list[tuple[MessageRef, EventKind, dict[str, Any]]] = field(default_factory=list)

    @property
    def kinds(self) -> set[EventKind]:
        return {kind for _, kind, _ in self.parts}

    @property
    def complete(self) -> bool:
        """Request and response are both there: nothing else is expected soon (a feedback comes seconds later)."""
        kinds = self.kinds
        return EventKind.REQUEST in kinds and EventKind.RESPONSE in kinds

    @property
    def sources(self) -> list[MessageRef]:
        """The message of each part, aligned with `fields()` (a message gives a document at most one part)."""
        return [ref for ref, _, _ in self.parts]

    def fields(self) -> list[dict[str, Any]]:
        return [fields for _, _, fields in self.parts]


class JoinBuffer:
    """Documents waiting for their other events, oldest first."""

    def __init__(self) -> None:
        self._pending: OrderedDict[str, PendingDocument] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._pending

    def add(
        self, ref: MessageRef, kind: EventKind, doc_id: str, fields: dict[str, Any], mode_hint: str, now: float
    ) -> None:
        pending = self._pending.get(doc_id)
        if pending is None:
            pending = self._pending[doc_id] = PendingDocument(doc_id, now)
        pending.mode_hint = mode_hint
        pending.parts.append((ref, kind, fields))

    def take_due(self, now: float, wait_s: float, limit: int | None = None) -> list[PendingDocument]:
        """Remove and return the documents to write now: complete ones, and every one waiting `wait_s` or longer.
        With `limit` (a full buffer), the oldest are taken as well until at most `limit` remain."""
        due = [doc for doc in self._pending.values() if doc.complete or now - doc.first_seen >= wait_s]
        for doc in due:
            del self._pending[doc.doc_id]
        if limit is not None:
            while len(self._pending) > limit:
                due.append(self._pending.popitem(last=False)[1])
        return due

    def take_all(self) -> list[PendingDocument]:
        due = list(self._pending.values())
        self._pending.clear()
        return due

    def drop_partitions(self, partitions: set[tuple[str, int]]) -> None:
        """Forget the parts that came from `partitions` (revoked or lost: their new owner replays them); parts of
        other partitions stay and are written as usual (a merge, whatever the other owner writes meanwhile)."""
        for doc_id in list(self._pending):
            pending = self._pending[doc_id]
            pending.parts = [part for part in pending.parts if (part[0][0], part[0][1]) not in partitions]
            if not pending.parts:
                del self._pending[doc_id]

    def oldest_age(self, now: float) -> float:
        first = next(iter(self._pending.values()), None)
        return 0.0 if first is None else now - first.first_seen


@dataclass
class Written:
    """A document this process wrote, as the engine acknowledged it (for exact overwrites of late events)."""

    index: str
    seq_no: int
    primary_term: int
    source: dict[str, Any]
    size: int


class RecentDocuments:
    """The last documents this process wrote, bounded in bytes (least recently written evicted first)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Written] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, doc_id: str) -> Written | None:
        return self._items.get(doc_id)

    def put(self, doc_id: str, written: Written) -> None:
        if self.max_bytes <= 0 or written.size > self.max_bytes:
            self.forget(doc_id)
            return
        self.forget(doc_id)
        self._items[doc_id] = written
        self._bytes += written.size
        while self._bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= evicted.size

    def forget(self, doc_id: str) -> None:
        old = self._items.pop(doc_id, None)
        if old is not None:
            self._bytes -= old.size

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
