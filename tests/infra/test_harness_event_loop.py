"""The mocks harness runs the program even after `asyncio.run()` left the main thread without an event loop (in
`make test` an earlier suite does; every program test then failed with "There is no current event loop")."""

from __future__ import annotations

import asyncio

from tests.infra.harness import run_program


def test_the_program_runs_under_mocks_after_asyncio_run_cleared_the_loop() -> None:
    async def nothing() -> int:
        return 1

    assert asyncio.run(nothing()) == 1
    run = run_program("dev")
    assert run.registrations, "the program registered its resources"
