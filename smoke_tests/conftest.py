"""Smoke-suite fixtures: the target, and readers for where its data lands.

The target comes from `SMOKE_TARGET` (a YAML/JSON file) and/or `SMOKE_*` variables (see `target.py`). With
neither set, the suite runs against the local stack, which the `local_stack` fixture (tests/fixtures/
local_stack.py) starts once per test session; in an installation without `tests/` (the in-cluster Job) a
missing target is an error that says how to give one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smoke_tests import target as target_module
from smoke_tests.sinks import SearchReader, s3_client
from smoke_tests.target import Target

_LOCAL_STACK_PLUGIN = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "local_stack.py"
# when only smoke_tests/ is collected, tests/conftest.py is not loaded: bring the local-stack fixture ourselves
pytest_plugins = (
    ["tests.fixtures.servers", "tests.fixtures.local_stack"]
    if _LOCAL_STACK_PLUGIN.exists() and (_LOCAL_STACK_PLUGIN.parent / "servers.py").exists()
    else []
)


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The deployment under test: from SMOKE_TARGET / SMOKE_* variables, else the local stack."""
    loaded = target_module.load()
    if loaded is not None:
        return loaded
    if "local_stack" in request.fixturenames or _LOCAL_STACK_PLUGIN.exists():
        return request.getfixturevalue("local_stack")
    raise pytest.UsageError(
        "no smoke target: set SMOKE_TARGET=<file> (python -m smoke_tests.from_pulumi writes one) "
        "or the SMOKE_* variables (docs/smoke-tests.md)"
    )


@pytest.fixture(scope="session")
def search_reader(target: Target) -> SearchReader:
    return SearchReader(target.search)


@pytest.fixture(scope="session")
def object_store(target: Target) -> Iterator[object]:
    yield s3_client(target.object_store)
