"""Post-shift traffic with ground truth for the flow back's demo and tests: the monitor's drift scenario (the
crypto-spam wave of devstack/drift_traffic.py, vocabulary the shipped data lacks; moderators remove it) mixed into
shipped comments with their own labels. The shipped model keeps about half of the spam; a model retrained on the
feedback learns it. Seeded: the same seed gives the same rows.
"""

from __future__ import annotations

import random

from devstack.drift_traffic import spam_text

SPAM_TRUTH = 1  # removed, as in the monitor's drift scenario (devstack/demo_drift.py)


def drifted_feedback(stationary: list[tuple[str, int]], size: int, share: float, seed: int) -> list[tuple[str, int]]:
    """`size` (text, label) rows after the shift: each spam (label 1) with probability `share`, else a stationary
    row (drawn without replacement while they last)."""
    rng = random.Random(seed)
    pool = list(stationary)
    rng.shuffle(pool)
    return [(spam_text(rng), SPAM_TRUTH) if rng.random() < share or not pool else pool.pop() for _ in range(size)]
