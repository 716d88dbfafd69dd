"""Register, promote, roll back: the registry's `candidate` and `serving` aliases, moved only by the rule's decision.

- `register --candidate V`: V's evaluation passed the promotion rule -> alias `candidate` = V (the canary's model);
  a failed or missing evaluation changes nothing and says why.
- `promote`: alias `serving` = the candidate, alias `candidate` removed (the canary becomes the main predictor).
- `rollback`: alias `candidate` removed (the canary goes away); `serving` is untouched.
"""

from __future__ import annotations

import json

from feedback.flowback.errors import FlowbackError
from feedback.flowback.registry import Registry


def register(registry: Registry, candidate: str) -> str:
    registry.require(candidate)
    raw = registry.report(candidate, "evaluation.json")
    if raw is None:
        raise FlowbackError(f"{registry.describe(candidate)} has no evaluation; run `evaluate --candidate {candidate}`")
    decision = json.loads(raw)["decision"]
    if not decision["promote"]:
        failed = "; ".join(check["detail"] for check in decision["checks"] if not check["passed"])
        raise FlowbackError(f"{candidate} fails the promotion rule, aliases unchanged: {failed}")
    registry.set_alias("candidate", candidate)
    return candidate


def promote(registry: Registry) -> tuple[str | None, str]:
    """(previous serving version, new serving version)."""
    candidate = registry.alias("candidate")
    if candidate is None:
        raise FlowbackError(f"{registry.model} has no candidate to promote; `register` one that passed its evaluation")
    previous = registry.alias("serving")
    registry.set_alias("serving", candidate)
    registry.clear_alias("candidate")
    return previous, candidate


def rollback(registry: Registry) -> str:
    candidate = registry.alias("candidate")
    if candidate is None:
        raise FlowbackError(f"{registry.model} has no candidate to roll back")
    registry.clear_alias("candidate")
    return candidate
