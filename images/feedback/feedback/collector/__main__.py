"""`python -m feedback.collector`: run the collector with settings from the environment."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from feedback.collector.app import DRAINING, create_app
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
        "collector listening on %s:%d, topic %s, sampling rate %g, redaction %s, Seldon protos %s",
        settings.host,
        settings.port,
        settings.topic,
        settings.sampling_rate,
        "on" if settings.redactor.active else "off",
        settings.protos.version if settings.protos else "none",
    )
    asyncio.run(serve(settings))
    return 0


async def serve(settings: CollectorSettings) -> None:
    """Serve until SIGTERM/SIGINT, then drain: /readyz answers 503 for COLLECTOR_DRAIN_S while events are still
    taken (the load balancer stops sending), then the listener closes, requests in flight get up to
    COLLECTOR_SHUTDOWN_TIMEOUT_S, and the producer is flushed. The chart's grace period covers all of it."""
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, shutdown_timeout=settings.shutdown_timeout_s)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    app[DRAINING].set()
    log.info("stopping: readiness 503 for %.1f s while events in flight finish", settings.drain_s)
    await asyncio.sleep(settings.drain_s)
    await runner.cleanup()
    log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
