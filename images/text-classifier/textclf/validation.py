"""Check what a client sent before it reaches the model, and say precisely what is wrong.

Standard library only. The classifier takes texts: a JSON list of strings (`{"data": {"ndarray": ["a",
"b"]}}`), a column of one string per row (`[["a"], ["b"]]`, as the names/ndarray form sends it) or a single
string (`{"strData": "a"}`). Anything else raises `InputError` with a message that names the bad item and
shows the accepted form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DEFAULT_MAX_TEXT_CHARS = 10_000  # reddit's own limit for one comment
DEFAULT_MAX_BATCH = 1_000
EXAMPLE = '{"data": {"ndarray": ["first text", "second text"]}}'


class InputError(ValueError):
    """The request cannot be classified; the message says what was wrong and how to fix it."""


def _describe(value: Any) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} {shown}"


def texts_from_payload(
    payload: Any,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> list[str]:
    """The list of texts in `payload` (a str, a list of str, or a column of one str per row).

    `payload` is plain Python (call `.tolist()` on a numpy array first). Raises InputError.
    """
    if isinstance(payload, (bytes, bytearray)):
        raise InputError(f"got binary data ({len(payload)} bytes); send texts as JSON strings, e.g. {EXAMPLE}")
    rows: Sequence[Any] = [payload] if isinstance(payload, str) else payload
    if not isinstance(rows, (list, tuple)):
        raise InputError(f"expected a list of texts, got {_describe(payload)}; send e.g. {EXAMPLE}")
    if not rows:
        raise InputError(f"the ndarray is empty; send at least one text, e.g. {EXAMPLE}")
    if len(rows) > max_batch:
        raise InputError(f"got {len(rows)} texts in one request; the limit is {max_batch}: split the batch")
    texts: list[str] = []
    for index, row in enumerate(rows):
        item = row
        if isinstance(row, (list, tuple)):
            if len(row) != 1:
                raise InputError(
                    f"item {index} is a nested array of {len(row)} values; send one text per item, "
                    f'either a flat list of strings or one string per row ([["text"]]), e.g. {EXAMPLE}'
                )
            item = row[0]
        if isinstance(item, (list, tuple, dict)):
            kind = type(item).__name__
            raise InputError(f"item {index} is a nested {kind}; send a flat list of strings, e.g. {EXAMPLE}")
        if not isinstance(item, str):
            shown = _describe(item)
            raise InputError(f"item {index} is {shown}, not a string; send texts as JSON strings, e.g. {EXAMPLE}")
        if len(item) > max_text_chars:
            raise InputError(
                f"item {index} has {len(item)} characters; the limit is {max_text_chars}: truncate or split the text"
            )
        texts.append(item)
    return texts


def texts_from_request(
    body: Any,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> list[str] | None:
    """Validate a decoded JSON prediction request; return its texts, or None for a form this module leaves to Seldon.

    Checks the raw JSON (before Seldon turns it into a numpy array, which would silently make `["a", 1]` a
    list of strings and fail on ragged rows with an internal error).
    """
    if not isinstance(body, dict):
        raise InputError(f"the request body must be a JSON object, got {_describe(body)}; send e.g. {EXAMPLE}")
    if "strData" in body:
        return texts_from_payload(body["strData"], max_text_chars, max_batch)
    if "data" not in body:
        return None  # jsonData, binData and friends: predict() reports them
    data = body["data"]
    if not isinstance(data, dict):
        raise InputError(f'"data" must be an object with an "ndarray" list, got {_describe(data)}; send e.g. {EXAMPLE}')
    if "ndarray" not in data:
        kinds = ", ".join(sorted(key for key in data if key != "names")) or "nothing"
        raise InputError(f'"data" holds {kinds}; this model reads texts from "data.ndarray", e.g. {EXAMPLE}')
    return texts_from_payload(data["ndarray"], max_text_chars, max_batch)
