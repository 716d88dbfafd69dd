"""The shipped dataset: reproducible from its generator and seed, readable, split without leakage."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from textclf.dataset import DatasetError, read_labelled_csv
from textclf.split import is_held_out, split_rows

CONTEXT = Path(__file__).resolve().parents[3] / "images" / "text-classifier"
DATA = CONTEXT / "data" / "comments.csv"


def test_generator_and_seed_reproduce_the_shipped_csv_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "comments.csv"
    result = subprocess.run(
        [sys.executable, str(CONTEXT / "generate_comments.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "style ceiling 0.834" in result.stdout
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(DATA.read_bytes()).hexdigest()


def test_dataset_is_large_balanced_enough_and_small_on_disk() -> None:
    rows = read_labelled_csv(DATA)
    removed = sum(label for _, label in rows)
    assert len(rows) == 6000
    assert 0.35 < removed / len(rows) < 0.5
    assert DATA.stat().st_size < 2_000_000


def test_held_out_split_is_a_fifth_and_never_splits_equal_texts() -> None:
    rows = read_labelled_csv(DATA)
    train, held_out = split_rows(rows)
    assert len(train) + len(held_out) == len(rows)
    assert 0.17 < len(held_out) / len(rows) < 0.23
    assert not {text for text, _ in train} & {text for text, _ in held_out}
    assert split_rows(rows[::-1])[1] == held_out[::-1]  # the row order does not change which rows are held out


def test_held_out_rows_are_the_same_in_another_interpreter_with_another_hash_seed() -> None:
    """train.py and the tests rebuild the split in different processes: it must not depend on hash()."""
    texts = [text for text, _ in read_labelled_csv(DATA)]
    probe = (
        "import json, sys; from textclf.split import is_held_out; "
        "print(json.dumps([is_held_out(t) for t in json.load(sys.stdin)]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(CONTEXT), "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(result.stdout) == [is_held_out(text) for text in texts]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("body,removed\nhi,1\n", "the header must contain text,label"),
        ("text,label\nhi,2\n", ":2: label must be 0 (kept) or 1 (removed), got '2'"),
        ("text,label\nhi,1\nho,\n", ":3: label must be 0 (kept) or 1 (removed), got ''"),
        ("text,label\nhi,1\nho,1\n", "both labels 0 and 1 must occur; found [1]"),
        ("text,label\n", "no rows after the header; it needs at least one text,label row"),
    ],
)
def test_bad_csv_is_rejected_with_the_row(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetError) as raised:
        read_labelled_csv(path)
    assert message in str(raised.value)


def test_exported_feedback_may_hold_one_label_but_never_a_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,label,request_id\nbuy now,1,r1\nbuy later,1,r2\n")
    assert read_labelled_csv(path, both_labels=False) == [("buy now", 1), ("buy later", 1)]
    path.write_text("text,label\nbuy now,spam\n")
    with pytest.raises(DatasetError, match="label must be 0"):
        read_labelled_csv(path, both_labels=False)


def test_missing_csv_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file; pass --data with a CSV"):
        read_labelled_csv(tmp_path / "absent.csv")
