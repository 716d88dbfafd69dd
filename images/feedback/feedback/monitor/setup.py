"""`python -m feedback.monitor setup`: the privileged step that installs the monitor index's template, creates the
index and writes the setup's marker into its mapping (idempotent, versioned like the indexer's setup), so the
monitor itself only reads the capture index and writes its own documents.

Exit codes: 0 done, 1 the engine refused or stayed unreachable until MONITOR_SETUP_TIMEOUT_S, 2 invalid settings.
"""

from __future__ import annotations

import logging
import time

from feedback.config import SettingsError
from feedback.indexer.search_io import SearchUnavailable, create_backend, status_of
from feedback.monitor.search_io import TEMPLATE_VERSION, MonitorStore
from feedback.monitor.settings import MonitorSetupSettings

log = logging.getLogger("feedback.monitor.setup")


def run_setup(settings: MonitorSetupSettings, store: MonitorStore) -> int:
    deadline = time.monotonic() + settings.timeout_s
    delay = 0.5
    while True:
        try:
            changed = store.install(settings.index_shards, settings.index_replicas)
        except SearchUnavailable as exc:
            status = status_of(exc.__cause__)
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                log.error(
                    "setup refused (%d): the setup's credentials may not manage index templates or the index %s; "
                    "use the admin credentials (on Kubernetes the Secret of search.setup): %s",
                    status,
                    settings.index,
                    exc,
                )
                return 1
            if time.monotonic() + delay > deadline:
                log.error("setup failed: the search engine stayed unavailable for %.0f s: %s", settings.timeout_s, exc)
                return 1
            log.warning("search engine unavailable, setup retried in %.1f s: %s", delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        log.info(
            "setup of %s (version %d): %s", settings.index, TEMPLATE_VERSION, "; ".join(changed) or "complete already"
        )
        return 0


def main() -> int:
    from feedback.indexer.main import configure_logging

    try:
        settings = MonitorSetupSettings.from_env()
    except SettingsError as exc:
        configure_logging("error")
        log.error("invalid configuration: %s", exc)
        return 2
    configure_logging(settings.log_level)
    backend = create_backend(settings.search)
    try:
        return run_setup(settings, MonitorStore(backend, capture_index="", index=settings.index))
    finally:
        backend.close()
