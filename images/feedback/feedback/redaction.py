"""Redaction of personal data in JSON payloads: configured field names and text patterns.

Applied by the collector before an event leaves the process (Kafka never sees the original), and optionally by
the indexer for events that reach Kafka without the collector (the executor's direct Kafka logging).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from feedback.config import SettingsError

# E-mail addresses: a pragmatic subset of RFC 5322 that matches what people type.
EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
# Phone numbers: an optional +, then digits with spaces, dots, dashes or brackets; 7 to 15 digits in total
# (E.164 allows at most 15), checked in `_phone`, which also leaves decimals (0.987654) and dates (2024-05-01)
# alone; plain numbers of 6 digits or fewer are never touched.
PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?:\+|00)?\d[\d\s().-]{5,}\d(?![\w])")

BUILTIN_PATTERNS = ("email", "phone")


NOT_PHONE = re.compile(r"\d+\.\d+|\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")  # decimals and dates


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if NOT_PHONE.fullmatch(text):
        return text
    digits = sum(char.isdigit() for char in text)
    if 7 <= digits <= 15:
        return "[REDACTED:phone]"
    return text


@dataclass(frozen=True)
class Redactor:
    """Replaces configured fields (by key name, anywhere in the document) and patterns in every string value."""

    fields: frozenset[str] = frozenset()
    builtins: tuple[str, ...] = ()
    regexes: tuple[re.Pattern[str], ...] = ()
    _lowered_fields: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lowered_fields", frozenset(name.lower() for name in self.fields))

    @property
    def active(self) -> bool:
        return bool(self.fields or self.builtins or self.regexes)

    def redact_text(self, text: str) -> str:
        if "email" in self.builtins and "@" in text:
            text = EMAIL.sub("[REDACTED:email]", text)
        if "phone" in self.builtins:
            text = PHONE_CANDIDATE.sub(_phone, text)
        for pattern in self.regexes:
            text = pattern.sub("[REDACTED]", text)
        return text

    def redact(self, value: Any) -> Any:
        """A redacted copy of a parsed JSON value (dicts, lists, strings, numbers)."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        if isinstance(value, dict):
            return {
                key: ("[REDACTED]" if key.lower() in self._lowered_fields else self.redact(item))
                for key, item in value.items()
            }
        return value


def build_redactor(
    fields: Iterable[str], patterns: Iterable[str], regexes: Iterable[re.Pattern[str]], *, patterns_variable: str
) -> Redactor:
    builtins = tuple(dict.fromkeys(name.lower() for name in patterns))
    unknown = [name for name in builtins if name not in BUILTIN_PATTERNS]
    if unknown:
        raise SettingsError(
            f"{patterns_variable}: unknown pattern(s) {', '.join(unknown)}; built-in patterns are "
            f"{', '.join(BUILTIN_PATTERNS)} (use the *_REDACT_REGEXES variable for your own)"
        )
    return Redactor(fields=frozenset(fields), builtins=builtins, regexes=tuple(regexes))
