"""`python -m feedback.collector`: run the collector with settings from the environment."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from feedback.collector.app import create_app
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
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
