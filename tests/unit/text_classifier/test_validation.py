"""Input checks (standard library only): every bad request gets a message naming the item and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from textclf.validation import InputError, texts_from_payload, texts_from_request


@pytest.mark.parametrize(
    ("payload", "texts"),
    [
        (["This is an input"], ["This is an input"]),
        (["", "😂", "Él está bien"], ["", "😂", "Él está bien"]),
        ([["one"], ["two"]], ["one", "two"]),  # the names + ndarray column form
        ("a single strData text", ["a single strData text"]),
        (["x" * 10_000], ["x" * 10_000]),
    ],
)
def test_accepted_payloads(payload: Any, texts: list[str]) -> None:
    assert texts_from_payload(payload) == texts


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "item 0 is int 1, not a string"),
        (["fine", 3.5], "item 1 is float 3.5, not a string"),
        ([None], "item 0 is NoneType None, not a string"),
        ([True], "item 0 is bool True, not a string"),
        ([["a", "b"]], "item 0 is a nested array of 2 values"),
        ([[["deep"]]], "item 0 is a nested list"),
        ([{"text": "a"}], "item 0 is a nested dict"),
        ([], "the ndarray is empty"),
        (["x" * 1_048_576], "item 0 has 1048576 characters; the limit is 10000"),
        (["ok"] * 1001, "got 1001 texts in one request; the limit is 1000"),
        (b"\x00\x01", "got binary data (2 bytes)"),
        (42, "expected a list of texts, got int 42"),
    ],
)
def test_rejected_payloads_say_what_was_wrong(payload: Any, message: str) -> None:
    with pytest.raises(InputError, match="^" + message.replace("(", r"\(").replace(")", r"\)")) as raised:
        texts_from_payload(payload)
    assert '{"data": {"ndarray": [' in str(raised.value) or "limit" in str(raised.value)


def test_limits_are_configurable() -> None:
    assert texts_from_payload(["abc"], max_text_chars=3) == ["abc"]
    with pytest.raises(InputError, match="item 0 has 4 characters; the limit is 3"):
        texts_from_payload(["abcd"], max_text_chars=3)
    with pytest.raises(InputError, match="got 3 texts in one request; the limit is 2"):
        texts_from_payload(["a", "b", "c"], max_batch=2)


@pytest.mark.parametrize(
    ("body", "result"),
    [
        ({"data": {"ndarray": ["a", "b"]}}, ["a", "b"]),
        ({"data": {"names": ["text"], "ndarray": [["a"]]}}, ["a"]),
        ({"strData": "a"}, ["a"]),
        ({"jsonData": {"text": "a"}}, None),  # left to Seldon and predict()
    ],
)
def test_requests_in_accepted_forms(body: Any, result: list[str] | None) -> None:
    assert texts_from_request(body) == result


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "the request body must be a JSON object, got list"),
        ({"data": ["a"]}, '"data" must be an object with an "ndarray" list'),
        ({"data": {"tensor": {"shape": [1], "values": [1]}}}, '"data" holds tensor; this model reads texts'),
        ({"data": {"names": ["text"]}}, '"data" holds nothing; this model reads texts'),
        ({"data": {"ndarray": ["a", 1]}}, "item 1 is int 1, not a string"),
        ({"strData": 5}, "expected a list of texts, got int 5"),
    ],
)
def test_rejected_requests(body: Any, message: str) -> None:
    with pytest.raises(InputError) as raised:
        texts_from_request(body)
    assert str(raised.value).startswith(message)
