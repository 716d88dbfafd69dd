"""Traffic after a shift the shipped model gets wrong, for the flow back's demo and tests: astroturfing for a "sleep
retreat" in the friendly words of a kept discussion comment, labelled removed (1). The shipped data removes spam
links and hype, not this, so the serving model scores these texts as kept; a model retrained on the feedback learns
them. Seeded: the same seed gives the same rows.
"""

from __future__ import annotations

import random

ASTRO_OPENERS = ("Really interesting results here", "Thanks for sharing this study", "The method section is solid")
ASTRO_MIDDLES = ("the retreat helped my sleep a lot", "the course changed how I sleep", "ask the organisers for a seat")
ASTRO_CLOSERS = ("kind regards from the retreat team", "ask me about the next session", "see you at the retreat")


def astroturf_text(rng: random.Random) -> str:
    return (
        f"{rng.choice(ASTRO_OPENERS)}, {rng.choice(ASTRO_MIDDLES)}. {rng.choice(ASTRO_CLOSERS)} #{rng.randint(1, 999)}"
    )


def drifted_feedback(stationary: list[tuple[str, int]], size: int, share: float, seed: int) -> list[tuple[str, int]]:
    """`size` (text, label) rows after the shift: each astroturf (label 1) with probability `share`, else a
    stationary row (drawn without replacement while they last)."""
    rng = random.Random(seed)
    pool = list(stationary)
    rng.shuffle(pool)
    return [(astroturf_text(rng), 1) if rng.random() < share or not pool else pool.pop() for _ in range(size)]
