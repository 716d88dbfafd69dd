"""Test-run-wide fixtures.

Each component keeps its fixtures in its own module under `tests/fixtures/`; every module there is loaded
as a pytest plugin, so a fixture such as `kafka`, `search` or `s3` (real servers on 127.0.0.1, started once
per test run and stopped at the end even on failure) is available to every test.
"""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
