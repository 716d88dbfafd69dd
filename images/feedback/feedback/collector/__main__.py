"""`python -m feedback.collector`: run the collector with settings from the environment."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from feedback.collector.app import create_apps
from feedback.collector.settings import CollectorSettings
from feedback.config import SettingsError

log = logging.getLogger("feedback.collector")


def main() -> int:
    try:
        settings = CollectorSettings.from_env()
    except SettingsError as exc:
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
        log.error("invalid configuration: %s", exc)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    log.info(
        "collector listening on %s: events :%d, metrics and probes :%d, producers %s; topic %s, sampling rate %g, "
        "redaction %s, Seldon protos %s",
        settings.host,
        settings.port,
        settings.metrics_port,
        f":{settings.producer.port} (bearer token, {','.join(settings.producer.event_kinds)})"
        if settings.producer
        else "off",
        settings.topic,
        settings.sampling_rate,
        "on" if settings.redactor.active else "off",
        settings.protos.version if settings.protos else "none",
    )
    asyncio.run(serve(settings))
    return 0


async def serve(settings: CollectorSettings) -> None:
    """Serve until SIGTERM/SIGINT, then drain: /readyz answers 503 for COLLECTOR_DRAIN_S while events are still
    taken (the load balancer stops sending), then the event listeners close, requests in flight get up to
    COLLECTOR_SHUTDOWN_TIMEOUT_S, and last the ops listener closes and the producer is flushed. The chart's grace
    period covers all of it."""
    apps = create_apps(settings)
    # The ops app owns the producer: set up first, cleaned up last.
    ops = await _start(apps.ops, settings.host, settings.metrics_port, settings.shutdown_timeout_s)
    listeners = [await _start(apps.events, settings.host, settings.port, settings.shutdown_timeout_s)]
    if apps.producers is not None and settings.producer is not None:
        listeners.append(
            await _start(apps.producers, settings.host, settings.producer.port, settings.shutdown_timeout_s)
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    apps.state.draining.set()
    log.info("stopping: readiness 503 for %.1f s while events in flight finish", settings.drain_s)
    await asyncio.sleep(settings.drain_s)
    for runner in listeners:
        await runner.cleanup()
    await ops.cleanup()
    log.info("stopped")


async def _start(app: web.Application, host: str, port: int, shutdown_timeout_s: float) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, shutdown_timeout=shutdown_timeout_s)
    await site.start()
    return runner


if __name__ == "__main__":
    sys.exit(main())
