"""Fixtures for every suite run from this checkout (tests/ and smoke_tests/ alike).

Each component keeps its fixtures in its own module under `tests/fixtures/`; every module there is loaded as a
pytest plugin here, at the root, so that one test session has one set of real servers (`kafka`, `search`, `s3`,
the `local_stack` loop, ...), started once and stopped at the end even on failure, whichever suites it collects.
The smoke suite finds the local stack through the `smoke_local_target` fixture; outside a checkout (its image,
the in-cluster Job) this file is absent and the suite needs SMOKE_TARGET or SMOKE_* variables.
"""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "tests" / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
