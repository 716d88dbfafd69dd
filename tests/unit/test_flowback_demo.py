"""The flow back demo's pure parts: the canary split and the post-shift traffic."""

from __future__ import annotations

import pytest

from devstack.drift_traffic import COINS
from devstack.flowback_demo import in_canary
from devstack.flowback_traffic import drifted_feedback


@pytest.mark.parametrize(("percent", "n"), [(1, 100), (10, 400), (50, 301), (99, 1000)])
def test_the_canary_gets_exactly_its_share_spread_over_the_run(percent: int, n: int) -> None:
    routed = [in_canary(i, percent) for i in range(n)]
    assert sum(routed) == n * percent // 100
    first_half = sum(routed[: n // 2])
    assert abs(first_half - sum(routed) / 2) <= 1  # spread evenly, not all at the start


def test_post_shift_rows_are_seeded_labelled_and_mixed_at_the_share() -> None:
    stationary = [(f"kept comment {i}", i % 2) for i in range(1000)]
    rows = drifted_feedback(stationary, 500, 0.4, seed=3)
    assert rows == drifted_feedback(stationary, 500, 0.4, seed=3)
    assert rows != drifted_feedback(stationary, 500, 0.4, seed=4)
    shifted = [row for row in rows if row not in stationary]
    assert 0.33 < len(shifted) / len(rows) < 0.47
    assert all(label == 1 for _, label in shifted)
    kept = [row for row in rows if row in stationary]
    assert len(kept) == len(set(kept))  # stationary rows are drawn without replacement
    exhausted = drifted_feedback(stationary[:10], 50, 0.0, seed=1)
    assert sorted(exhausted[:10]) == sorted(stationary[:10]) and all(label == 1 for _, label in exhausted[10:])


def test_the_shifted_rows_are_the_monitors_spam_wave() -> None:
    rows = drifted_feedback([("kept comment", 0)], 40, 1.0, seed=5)
    assert all(label == 1 and any(coin.lower() in text.lower() for coin in COINS) for text, label in rows)
