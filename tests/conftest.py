"""The fixtures of tests/ live in `tests/fixtures/`, one module per component, loaded as plugins by the
repository's root `conftest.py` (so that `pytest smoke_tests` in the same session shares the same servers)."""
