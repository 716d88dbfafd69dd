"""The promotion rule: when a candidate may replace the serving model. Pure logic.

The rule comes from a JSON file (`--rule rule.json`, the chart's `evaluate.rule` values) whose keys are the fields
of `PromotionRule`; a missing key keeps its default, an unknown key or a bad value is an error naming it. The
default reads: not worse on the shipped held-out set by more than one point, and better on the feedback's held-out
rows by at least two points with the interval of the paired difference above zero, on at least 30 rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from feedback.flowback.errors import FlowbackError
from feedback.flowback.statistics import Difference


@dataclass(frozen=True)
class PromotionRule:
    confidence: float = 0.95  # level of every interval in the report
    held_out_max_drop: float = 0.01  # (a) candidate - serving accuracy on the shipped held-out set >= -this
    feedback_min_gain: float = 0.02  # (b) candidate - serving accuracy on the feedback's held-out rows >= this
    feedback_significant: bool = True  # (b) also needs the lower bound of that difference's interval above 0
    min_feedback_rows: int = 30  # (b) fewer held-out feedback rows: no promotion, whatever the numbers

    def __post_init__(self) -> None:
        checks = [
            (0.5 <= self.confidence < 1.0, "confidence must be from 0.5 to below 1"),
            (0.0 <= self.held_out_max_drop <= 1.0, "held_out_max_drop must be from 0 to 1"),
            (-1.0 <= self.feedback_min_gain <= 1.0, "feedback_min_gain must be from -1 to 1"),
            (isinstance(self.feedback_significant, bool), "feedback_significant must be true or false"),
            (isinstance(self.min_feedback_rows, int) and self.min_feedback_rows >= 1, "min_feedback_rows must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise FlowbackError(f"promotion rule: {message} (got {asdict(self)})")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], where: str) -> PromotionRule:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise FlowbackError(
                f"{where}: unknown key(s) {', '.join(unknown)}; the rule's keys are {', '.join(sorted(known))}"
            )
        for name in ("confidence", "held_out_max_drop", "feedback_min_gain"):
            if name in values and (isinstance(values[name], bool) or not isinstance(values[name], (int, float))):
                raise FlowbackError(f"{where}: {name} must be a number, got {values[name]!r}")
        if "min_feedback_rows" in values and (
            isinstance(values["min_feedback_rows"], bool) or not isinstance(values["min_feedback_rows"], int)
        ):
            raise FlowbackError(
                f"{where}: min_feedback_rows must be a whole number, got {values['min_feedback_rows']!r}"
            )
        return cls(**values)

    @classmethod
    def from_file(cls, path: Path | None) -> PromotionRule:
        if path is None:
            return cls()
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise FlowbackError(f"--rule {path}: cannot read it ({exc.strerror})") from None
        except ValueError as exc:
            raise FlowbackError(f"--rule {path}: not JSON ({exc})") from None
        if not isinstance(values, dict):
            raise FlowbackError(f"--rule {path}: must be a JSON object of the rule's keys")
        return cls.from_mapping(values, f"--rule {path}")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(rule: PromotionRule, held_out: Difference, feedback: Difference) -> tuple[bool, list[Check]]:
    """(promote, the checks in order). A check on an empty set fails and says so."""
    checks = [
        Check(
            "held_out_not_worse",
            not math.isnan(held_out.difference) and held_out.difference >= -rule.held_out_max_drop,
            f"shipped held-out: candidate - serving = {held_out.difference:+.4f} "
            f"(must be >= {-rule.held_out_max_drop:+.4f})",
        ),
        Check(
            "feedback_rows",
            feedback.rows >= rule.min_feedback_rows,
            f"feedback held-out rows: {feedback.rows} (must be >= {rule.min_feedback_rows})",
        ),
        Check(
            "feedback_better",
            not math.isnan(feedback.difference) and feedback.difference >= rule.feedback_min_gain,
            f"feedback held-out: candidate - serving = {feedback.difference:+.4f} "
            f"(must be >= {rule.feedback_min_gain:+.4f})",
        ),
    ]
    if rule.feedback_significant:
        checks.append(
            Check(
                "feedback_significant",
                not math.isnan(feedback.difference) and feedback.low > 0,
                f"feedback held-out: {rule.confidence:.0%} interval of the difference [{feedback.low:+.4f}, "
                f"{feedback.high:+.4f}] (its lower bound must be above 0)",
            )
        )
    return all(check.passed for check in checks), checks
