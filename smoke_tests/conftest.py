"""Smoke-suite fixtures: the target, and readers for where its data lands.

The target comes from `SMOKE_TARGET` (a YAML/JSON file) and/or `SMOKE_*` variables (see `target.py`). With
neither set, the suite asks for a fixture named `smoke_local_target`: in a checkout the repository's root
conftest.py provides it (the local stack, started once per test session and shared with tests/); in an
installation of the suite alone (its image, the in-cluster Job) there is none, and a missing target is an error
that says how to give one. The suite imports only its own modules and its requirements.txt.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smoke_tests import target as target_module
from smoke_tests.sinks import SearchReader, s3_client
from smoke_tests.target import Target

LOCAL_TARGET_FIXTURE = "smoke_local_target"


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The deployment under test: from SMOKE_TARGET / SMOKE_* variables, else the local stack of this checkout."""
    loaded = target_module.load()
    if loaded is not None:
        return loaded
    try:
        return request.getfixturevalue(LOCAL_TARGET_FIXTURE)
    except pytest.FixtureLookupError as exc:
        if exc.argname != LOCAL_TARGET_FIXTURE:
            raise
    raise pytest.UsageError(
        "no smoke target: set SMOKE_TARGET=<file> (python -m smoke_tests.from_pulumi writes one; a kept local "
        "stack writes target.yaml) or the SMOKE_* variables (docs/smoke-tests.md), or run the suite from a "
        f"checkout, whose root conftest.py starts the local stack (fixture {LOCAL_TARGET_FIXTURE})"
    )


@pytest.fixture(scope="session")
def search_reader(target: Target) -> SearchReader:
    return SearchReader(target.search)


@pytest.fixture(scope="session")
def object_store(target: Target) -> Iterator[object]:
    yield s3_client(target.object_store)
