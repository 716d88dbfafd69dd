"""The one error of the flow back: what was wrong and how to fix it, printed as `error: ...` with exit code 1."""

from __future__ import annotations


class FlowbackError(Exception):
    """A step cannot go on; the message names the input that was wrong and the fix. Nothing half-written stays."""
