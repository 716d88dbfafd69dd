"""Text cleaning before tokenisation: HTML entities and tags, markdown links, URLs, punctuation.

Standard library only. Cleaning keeps words (in any script), apostrophes inside words, digits and emoji,
and turns everything else into single spaces, so `clean_text` never fails on any string.
"""

from __future__ import annotations

import html
import re
import unicodedata

URL_TOKEN = "URL"

_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]{0,300})\]\(\s*([^)\s]{1,2000})\s*\)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'()\[\]]+", re.IGNORECASE)
_HOST = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([^/:?#]*)", re.IGNORECASE)
_QUOTE_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_LONE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")


def url_replacement(url: str) -> str:
    """`URL` followed by the site's name, e.g. `https://www.youtube.com/watch?v=x` -> `URL youtube`."""
    match = _HOST.match(url)
    labels = [label for label in (match.group(1) if match else "").lower().split(".") if label]
    site = labels[-2] if len(labels) >= 2 else (labels[0] if labels else "")
    site = re.sub(r"[^0-9a-z]", "", site)
    return f" {URL_TOKEN} {site} " if site else f" {URL_TOKEN} "


def _keep(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "So":  # emoji and other pictographs carry meaning in comments
        return True
    return category[0] not in "PSC" or char == "'"


def clean_text(text: str) -> str:
    """Return `text` as plain words separated by single spaces ('' for empty or symbol-only input)."""
    text = unicodedata.normalize("NFKC", text)
    text = html.unescape(html.unescape(text))  # comments are often escaped twice (&amp;gt;)
    text = _TAG.sub(" ", text)
    text = _MARKDOWN_LINK.sub(lambda m: f" {m.group(1)} {url_replacement(m.group(2))}", text)
    text = _URL.sub(lambda m: url_replacement(m.group(0)), text)
    text = text.translate(_QUOTE_APOSTROPHES)
    text = "".join(char if _keep(char) else " " for char in text)
    text = _LONE_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()
