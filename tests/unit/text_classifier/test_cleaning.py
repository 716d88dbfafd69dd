"""Text cleaning (standard library only): what reaches the tokenizer for the inputs comments really contain."""

from __future__ import annotations

from pathlib import Path

import pytest
from textclf.cleaning import clean_text, url_replacement
from textclf.dataset import read_labelled_csv

DATA = Path(__file__).resolve().parents[3] / "images" / "text-classifier" / "data" / "comments.csv"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("", ""),
        ("   \n\t ", ""),
        ("?!... ---", ""),
        ("Hello, world!", "Hello world"),
        ("&lt;b&gt;bold&lt;/b&gt; &amp; more", "bold more"),
        ("&amp;gt; quoted twice-escaped title", "quoted twice escaped title"),
        ("<p>Text in a <a href='x'>tag</a></p>", "Text in a tag"),
        ("see https://www.youtube.com/watch?v=abc now", "see URL youtube now"),
        ("[the paper](https://doi.org/10.1038/s41586) says", "the paper URL doi says"),
        ("www.example.org/page, then more", "URL example then more"),
        ("great 😂😂", "great 😂😂"),
        ("¿Qué tal? Él está bien.", "Qué tal Él está bien"),
        ("これは面白い研究ですね。", "これは面白い研究ですね"),
        ("Очень интересно, спасибо!", "Очень интересно спасибо"),
        ("don\u2019t 'quote' me", "don't quote me"),
        ("a\x00b\u200bc", "a b c"),
        ("\uff46\uff55\uff4c\uff4c width", "full width"),  # full-width letters (NFKC)
        ("EDIT:\n\ntypo", "EDIT typo"),
        ("1,500 people (95%)", "1 500 people 95"),
    ],
)
def test_clean_text(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned


@pytest.mark.parametrize(
    ("url", "replacement"),
    [
        ("https://pubmed.ncbi.nlm.nih.gov/3123/", " URL nih "),
        ("https://t.me/x", " URL t "),
        ("http://localhost:8000/x", " URL localhost "),
        ("https://", " URL "),
    ],
)
def test_url_keeps_only_the_site_name(url: str, replacement: str) -> None:
    assert url_replacement(url) == replacement


def test_cleaning_every_shipped_comment_leaves_plain_words() -> None:
    texts = [text for text, _ in read_labelled_csv(DATA)]
    assert len(texts) == 6000
    for text in texts:
        cleaned = clean_text(text)
        assert clean_text(cleaned) == cleaned, text  # idempotent
        assert not any(marker in cleaned for marker in ("<", ">", "&", "http", "  ", "\n")), text
        assert cleaned == "" or len(cleaned.split()) >= 1


def test_cleaning_a_megabyte_of_text_is_linear_not_catastrophic() -> None:
    import time

    started = time.monotonic()
    cleaned = clean_text("<" * 200_000 + "[" * 200_000 + "a " * 300_000)
    assert time.monotonic() - started < 10
    assert cleaned.startswith("a a")
