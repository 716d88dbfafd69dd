"""The held-out split, decided by a hash of each text: stable across runs, machines and row order.

Standard library only, so a test can rebuild exactly the rows `train.py` held out. Equal texts always land
on the same side, so a duplicate comment never leaks from training into the held-out set.
"""

from __future__ import annotations

import hashlib

HELD_OUT_PERCENT = 20
SALT = "text-classifier-split-v1"


def is_held_out(text: str, percent: int = HELD_OUT_PERCENT) -> bool:
    digest = hashlib.sha256(f"{SALT}\0{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def split_rows(rows: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train, held_out) rows."""
    train = [row for row in rows if not is_held_out(row[0])]
    held_out = [row for row in rows if is_held_out(row[0])]
    return train, held_out
