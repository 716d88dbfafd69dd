"""Polling with a deadline and growing sleeps, separating "not there yet" from "wrong"."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float,
    what: str,
    first_sleep: float = 0.2,
    max_sleep: float = 3.0,
) -> T:
    """Call `observe()` until `done(value)` or `timeout` s passed; return the last value either way.

    The caller asserts on the returned value, so a failure shows what was last seen instead of a bare timeout.
    Errors raised by `observe` while waiting (a service still starting) are retried; the last one is raised
    if nothing was ever observed.
    """
    deadline = time.monotonic() + timeout
    sleep = first_sleep
    last_error: Exception | None = None
    have_value = False
    value: T | None = None
    while True:
        try:
            value = observe()
            have_value = True
            last_error = None
            if done(value):
                return value
        except Exception as exc:  # observed service not reachable yet; keep polling until the deadline
            last_error = exc
        if time.monotonic() >= deadline:
            if not have_value and last_error is not None:
                raise AssertionError(f"{what}: nothing observed within {timeout:.0f} s; last error: {last_error}")
            if last_error is not None:
                raise AssertionError(f"{what}: observing failed at the deadline ({timeout:.0f} s): {last_error}")
            return value  # type: ignore[return-value]
        time.sleep(min(sleep, max(0.0, deadline - time.monotonic())))
        sleep = min(sleep * 1.6, max_sleep)
