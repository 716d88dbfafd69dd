"""`python -m feedback.indexer setup`: the privileged step that prepares the search engine for the indexer, so the
indexer itself never needs more than writing documents into its index.

It installs the capture index's template (versioned: only over an older or different one, never over a newer one),
creates the capture index, adds the mapping's fields to an index made by an older version, writes the setup's
marker (`_meta.setup_version`) into the index's mapping and stores the merge script. Every step is idempotent: run
it again after every upgrade (on Kubernetes the chart's setup Job does, with the admin credentials; the indexer's
own user cannot). The indexer at start only reads the marker (`setup_problem`) and refuses to consume, with a
reason naming this command, until the setup of its version is there.

Exit codes: 0 done, 1 the engine refused or stayed unreachable until INDEXER_SETUP_TIMEOUT_S, 2 invalid settings.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from feedback.config import SettingsError
from feedback.indexer.core import (
    MERGE_SCRIPT_ID,
    TEMPLATE_VERSION,
    index_template,
    mapping_properties,
    setup_meta,
    stored_script,
)
from feedback.indexer.search_io import SearchBackend, SearchUnavailable, create_backend, status_of
from feedback.indexer.settings import SetupSettings

log = logging.getLogger("feedback.indexer.setup")

SETUP_COMMAND = "python -m feedback.indexer setup"
SETUP_HINT = (
    f"run `{SETUP_COMMAND}` with credentials that may manage index templates, stored scripts and the index "
    "(on Kubernetes the feedback-pipeline chart's setup Job does it)"
)


def template_name(index: str) -> str:
    return f"{index}-template"


def same_template(installed: dict[str, Any], ours: dict[str, Any]) -> bool:
    """True when the installed template is ours, same version and same settings (shards, replicas, refresh)."""
    if int(installed.get("version") or 0) != ours["version"]:
        return False
    settings = (installed.get("template") or {}).get("settings") or {}
    index_settings = settings.get("index", settings)
    wanted = ours["template"]["settings"]
    return all(str(index_settings.get(name)) == str(value) for name, value in wanted.items())


def install(settings: SetupSettings, backend: SearchBackend) -> list[str]:
    """Everything the indexer needs on the engine; returns what was changed (empty when all was there)."""
    changed: list[str] = []
    name = template_name(settings.index)
    template = index_template(
        settings.index, settings.index_shards, settings.index_replicas, settings.index_refresh_interval
    )
    installed = backend.get_index_template(name)
    installed_version = int((installed or {}).get("version") or 0)
    newer = installed_version > TEMPLATE_VERSION
    if newer:
        log.warning(
            "index template %s has version %d, newer than this setup's %d: kept as it is",
            name,
            installed_version,
            TEMPLATE_VERSION,
        )
    elif installed is not None and same_template(installed, template):
        log.info("index template %s version %d is installed already", name, installed_version)
    else:
        backend.put_index_template(name, template)
        changed.append(f"index template {name} version {TEMPLATE_VERSION} (over {installed_version or 'none'})")
    meta = backend.mapping_meta(settings.index)
    if meta is None and backend.create_index(settings.index):
        changed.append(f"index {settings.index}")
        meta = backend.mapping_meta(settings.index)
    meta = meta or {}
    if int(meta.get("setup_version") or 0) > TEMPLATE_VERSION:
        log.warning("index %s was set up by a newer version (%s): its mapping is kept", settings.index, meta)
    elif not newer:
        backend.put_mapping(settings.index, mapping_properties(), setup_meta())
        if meta != setup_meta():
            changed.append(f"mapping of {settings.index} (setup version {TEMPLATE_VERSION})")
    backend.put_script(MERGE_SCRIPT_ID, stored_script())  # its id changes with its source: never overwrites another's
    return changed


def setup_problem(index: str, backend: SearchBackend) -> str | None:
    """Why the indexer must not start yet (None: the setup of this version, or a newer one, is there). Reads only
    the index's mapping, which the indexer's role may view."""
    meta = backend.mapping_meta(index)
    if meta is None:
        return f"the capture index {index} does not exist (the setup has not run): {SETUP_HINT}"
    version = int(meta.get("setup_version") or 0)
    if version < TEMPLATE_VERSION:
        found = f"version {version}" if version else "no setup marker"
        return (
            f"the capture index {index} has {found}, this indexer needs setup version {TEMPLATE_VERSION}: {SETUP_HINT}"
        )
    return None


def run_setup(settings: SetupSettings, backend: SearchBackend, stop: threading.Event | None = None) -> int:
    """Install with retries while the engine is unreachable, until `settings.timeout_s`; 401/403 fail at once."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + settings.timeout_s
    delay = 0.5
    while True:
        try:
            changed = install(settings, backend)
        except SearchUnavailable as exc:
            status = status_of(exc.__cause__)
            if status in (401, 403):
                log.error(
                    "setup refused (%d): the setup's credentials may not manage index templates, stored scripts or "
                    "the index %s; use the admin credentials (on Kubernetes the Secret of search.setup): %s",
                    status,
                    settings.index,
                    exc,
                )
                return 1
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                log.error("setup refused (%d): %s", status, exc)
                return 1
            if time.monotonic() + delay > deadline or stop.is_set():
                log.error("setup failed: the search engine stayed unavailable for %.0f s: %s", settings.timeout_s, exc)
                return 1
            log.warning("search engine unavailable, setup retried in %.1f s: %s", delay, exc)
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
            continue
        if changed:
            log.info("setup of %s (version %d) done: %s", settings.index, TEMPLATE_VERSION, "; ".join(changed))
        else:
            log.info("setup of %s (version %d) was complete already", settings.index, TEMPLATE_VERSION)
        return 0


def main() -> int:
    from feedback.indexer.main import configure_logging

    try:
        settings = SetupSettings.from_env()
    except SettingsError as exc:
        configure_logging("error")
        log.error("invalid configuration: %s", exc)
        return 2
    configure_logging(settings.log_level)
    backend = create_backend(settings.search)
    try:
        return run_setup(settings, backend)
    finally:
        backend.close()
