"""Skip, with the reason, the checks a target cannot support."""

from __future__ import annotations

import pytest

from smoke_tests.target import Target


def needs_capture(target: Target) -> None:
    """Skip when the real-time endpoint is the bare model: no Seldon executor logs its traffic."""
    if not target.realtime.executor:
        pytest.skip(
            f"target {target.name}: {target.realtime.rest_url} is the bare model (realtime.executor: false), no "
            "Seldon executor logs its traffic; test_pipeline.py checks the capture path from the collector on"
        )


def batch_needs_capture(target: Target) -> None:
    """Skip when the batch processor calls the bare model: no Seldon executor logs its requests."""
    if target.batch is not None and not target.batch.executor:
        pytest.skip(
            f"target {target.name}: the batch processor calls the bare model at {target.batch.rest_host} "
            "(batch.executor: false); no Seldon executor logs its requests"
        )
