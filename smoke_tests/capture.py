"""Collect this run's events from the capture topic until each expected (request id, type) pair has arrived."""

from __future__ import annotations

import time

from smoke_tests.sinks import CaptureEvent, TopicReader, capture_event
from smoke_tests.target import Target


def collect_events(
    reader: TopicReader,
    request_ids: set[str],
    event_types: set[str],
    target: Target,
    settle_s: float = 2.0,
) -> list[CaptureEvent]:
    """Events for `request_ids` read from where `reader` started, until all `event_types` of every id arrived
    (then `settle_s` more to catch duplicates) or `limits.index_timeout_s` passed."""
    events: list[CaptureEvent] = []
    seen: set[tuple[str, str]] = set()
    wanted = {(rid, kind) for rid in request_ids for kind in event_types}
    deadline = time.monotonic() + target.limits.index_timeout_s
    settled_at: float | None = None
    while time.monotonic() < deadline:
        for message in reader.read(1.0):
            event = capture_event(message)
            if event is None or event.request_id not in request_ids:
                continue
            events.append(event)
            seen.add((event.request_id, event.event_type))
        if wanted <= seen:
            settled_at = settled_at or time.monotonic() + settle_s
            if time.monotonic() >= settled_at:
                break
    return events
