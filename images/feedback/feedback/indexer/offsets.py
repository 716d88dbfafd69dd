"""Pure logic of what may be committed: per partition, the messages consumed and not yet safe.

A message is safe once every document it contributed to was acknowledged by the search engine, or it was
acknowledged by the dead-letter topic. Documents wait in the join buffer, so messages become safe out of order;
the committed position of a partition is just after the longest run of safe messages from its start, so the
lowest offset still buffered (or in flight) is never passed: a crash replays it, and nothing is skipped.

`OffsetTracker.committable()` returns, per partition, the last message object of that run; the indexer hands it
to `store_offsets(message=...)`, which stores its offset + 1 (offsets are never computed by hand).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

Partition = tuple[str, int]


@dataclass
class _Entry:
    offset: int
    message: Any
    outstanding: int


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[Partition, deque[_Entry]] = {}
        self._by_offset: dict[tuple[str, int, int], _Entry] = {}

    def add(self, message: Any, outstanding: int) -> None:
        """A consumed message that becomes safe after `outstanding` acknowledgements (0: safe already)."""
        entry = _Entry(message.offset(), message, outstanding)
        partition = (message.topic(), message.partition())
        self._partitions.setdefault(partition, deque()).append(entry)
        self._by_offset[(partition[0], partition[1], entry.offset)] = entry

    def acknowledge(self, topic: str, partition: int, offset: int, count: int = 1) -> None:
        entry = self._by_offset.get((topic, partition, offset))
        if entry is not None:
            entry.outstanding = max(0, entry.outstanding - count)

    def committable(self) -> tuple[dict[Partition, Any], list[Any]]:
        """Per partition with progress: the last message of the safe run from the start; and every message of
        those runs (removed from tracking)."""
        last_by_partition: dict[Partition, Any] = {}
        released: list[Any] = []
        for partition, entries in self._partitions.items():
            while entries and entries[0].outstanding == 0:
                entry = entries.popleft()
                del self._by_offset[(partition[0], partition[1], entry.offset)]
                released.append(entry.message)
                last_by_partition[partition] = entry.message
        return last_by_partition, released

    def pending(self, partition: Partition) -> int:
        return len(self._partitions.get(partition, ()))

    def oldest_pending_timestamp_ms(self, partition: Partition) -> int | None:
        """Broker timestamp of the first message not yet safe (the lag age of the partition), None when none."""
        entries = self._partitions.get(partition)
        if not entries:
            return None
        timestamp_type, timestamp = entries[0].message.timestamp()
        return timestamp if timestamp_type else None

    def drop(self, partitions: set[Partition]) -> None:
        """Forget revoked or lost partitions (their new owner replays what was not committed)."""
        for partition in partitions:
            for entry in self._partitions.pop(partition, ()):
                self._by_offset.pop((partition[0], partition[1], entry.offset), None)

    def total(self) -> int:
        return len(self._by_offset)
