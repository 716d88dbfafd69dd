"""From statistics to breaches and alarms, so that stationary traffic does not alarm.

1. Within one window and group, the p-value tests are corrected together: Benjamini-Hochberg (scipy's
   `false_discovery_control`) or Bonferroni, at level `fdr`. A test is a breach when its adjusted p-value is at
   most `fdr`; a score metric (PSI, domain AUC) when its value exceeds its threshold.
2. A breach becomes an alarm only when the same metric of the same group also breached in the
   `consecutive_windows - 1` windows right before (a window without data breaks the run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats


def adjusted_p_values(p_values: Mapping[str, float], method: str) -> dict[str, float]:
    if not p_values:
        return {}
    names = list(p_values)
    raw = np.clip(np.asarray([p_values[name] for name in names], dtype=float), 0.0, 1.0)
    if method == "bonferroni":
        adjusted = np.minimum(raw * raw.size, 1.0)
    elif method == "bh":
        adjusted = stats.false_discovery_control(raw, method="bh")
    else:
        raise ValueError(f"unknown multiple-testing method {method!r}; use bh or bonferroni")
    return {name: float(value) for name, value in zip(names, adjusted, strict=True)}


def is_alarm(breach: bool, previous: Sequence[bool | None], consecutive: int) -> bool:
    """`previous`: the breach flags of the windows right before this one, nearest first (None: no data there)."""
    if not breach:
        return False
    needed = consecutive - 1
    return len(previous) >= needed and all(flag is True for flag in previous[:needed])
