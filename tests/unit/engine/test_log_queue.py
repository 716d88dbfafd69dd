"""The log queue's pure behaviour, with an in-memory sink: order kept, a full buffer drops after the write timeout
and counts it, nothing is dropped before 1.12 (unbounded), a failed send is counted and not retried."""

from __future__ import annotations

import asyncio

from devstack.engine.logger import LogEvent, LogQueue, ce_time
from devstack.engine.metrics import EngineMetrics


class MemorySink:
    name = "memory"

    def __init__(self, fail: bool = False, gate: asyncio.Event | None = None) -> None:
        self.sent: list[LogEvent] = []
        self.fail = fail
        self.gate = gate
        self.calls = 0

    async def start(self) -> None:
        return None

    async def send(self, event: LogEvent) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("collector down")
        self.sent.append(event)

    async def close(self) -> None:
        return None


def event(i: int, kind: str = "request") -> LogEvent:
    return LogEvent(kind, b"{}", "application/json", f"puid-{i}", "classifier", "http://127.0.0.1:9/")


def value(metrics: EngineMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_events_are_sent_in_order_by_one_worker() -> None:
    sink, metrics = MemorySink(), EngineMetrics()
    queue = LogQueue(sink, metrics, buffer_size=100, write_timeout_ms=2000, workers=1)
    await queue.start()
    for i in range(50):
        queue.offer(event(i))
    await queue.stop(drain_s=5)
    assert [e.request_id for e in sink.sent] == [f"puid-{i}" for i in range(50)]
    assert value(metrics, "seldon_engine_logger_sent_total", sink="memory", kind="request") == 50


async def test_a_full_buffer_drops_after_the_write_timeout_and_counts_it() -> None:
    gate = asyncio.Event()
    sink, metrics = MemorySink(gate=gate), EngineMetrics()
    queue = LogQueue(sink, metrics, buffer_size=2, write_timeout_ms=50, workers=1)
    await queue.start()
    for i in range(6):  # one in the worker, two buffered, three wait 50 ms and are dropped
        queue.offer(event(i))
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    gate.set()
    await queue.stop(drain_s=5)
    assert len(sink.sent) == 3
    assert value(metrics, "seldon_engine_logger_dropped_total", kind="request") == 3


async def test_a_zero_timeout_drops_at_once() -> None:
    gate = asyncio.Event()
    sink, metrics = MemorySink(gate=gate), EngineMetrics()
    queue = LogQueue(sink, metrics, buffer_size=1, write_timeout_ms=0, workers=1)
    await queue.start()
    for i in range(4):
        queue.offer(event(i))
        await asyncio.sleep(0)
    assert value(metrics, "seldon_engine_logger_dropped_total", kind="request") == 2
    gate.set()
    await queue.stop(drain_s=5)


async def test_before_1_12_nothing_is_dropped() -> None:
    gate = asyncio.Event()
    sink, metrics = MemorySink(gate=gate), EngineMetrics()
    queue = LogQueue(sink, metrics, buffer_size=1, write_timeout_ms=0, workers=5, bounded=False)
    await queue.start()
    for i in range(200):
        queue.offer(event(i))
    gate.set()
    await queue.stop(drain_s=5)
    assert len(sink.sent) == 200 and value(metrics, "seldon_engine_logger_dropped_total", kind="request") == 0


async def test_a_failed_send_is_counted_once_and_not_retried() -> None:
    sink, metrics = MemorySink(fail=True), EngineMetrics()
    queue = LogQueue(sink, metrics, buffer_size=10, write_timeout_ms=100, workers=2)
    await queue.start()
    for i in range(3):
        queue.offer(event(i, "response"))
    await queue.stop(drain_s=5)
    assert sink.calls == 3
    assert value(metrics, "seldon_engine_logger_send_errors_total", sink="memory", kind="response") == 3


def test_ce_time_is_rfc3339_nano_with_trailing_zeros_cut() -> None:
    """rest/12-batch-3-response.json: Ce-Time 2026-12-01T21:59:14.23361695Z (8 digits: a trailing zero cut)."""
    assert ce_time(1_796_162_354_233_616_950) == "2026-12-01T21:59:14.23361695Z"
    assert ce_time(1_796_162_352_635_719_308) == "2026-12-01T21:59:12.635719308Z"
    assert ce_time(1_796_162_354_000_000_000) == "2026-12-01T21:59:14Z"
