"""Redaction of personal data: JSON values (by field name and by pattern), JSON keys, selected event headers, and
raw bytes that are not JSON at all (a poison message on its way to the dead-letter topic).

Applied by the collector before an event leaves the process (Kafka never sees the original), and by the indexer
for events that reach Kafka without the collector (the executor's direct Kafka logging) and for everything it
dead-letters. Both read the same settings shape (`redactor_from_env(env, "COLLECTOR")` / `"INDEXER"`):

    <PREFIX>_REDACT_FIELDS        field names whose values are replaced (anywhere in the document)
    <PREFIX>_REDACT_PATTERNS      built-in patterns applied to every string value and key: email, phone
    <PREFIX>_REDACT_REGEXES       JSON array of extra regular expressions, matches replaced in values and keys
    <PREFIX>_REDACT_KEY_REGEXES   JSON array of regular expressions: a JSON key that matches is replaced as a whole
    <PREFIX>_REDACT_HEADERS       CloudEvent attributes / Kafka headers whose values get the patterns ("*": all
                                  but the structural ones; "none": no header)
    <PREFIX>_REDACT_HASH_KEY      secret key of the pseudonym a redacted request id gets (HMAC-SHA256)
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from feedback.config import SettingsError, env_list, env_optional, env_regex_list

# E-mail addresses: a pragmatic subset of RFC 5322 that matches what people type.
EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
# Phone numbers: an optional +, then digits with spaces, dots, dashes or brackets; 7 to 15 digits in total
# (E.164 allows at most 15), checked in `_phone`, which also leaves decimals (0.987654) and dates (2024-05-01)
# alone; plain numbers of 6 digits or fewer are never touched.
PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?:\+|00)?\d[\d\s().-]{5,}\d(?![\w])")

BUILTIN_PATTERNS = ("email", "phone")
DEFAULT_PATTERNS = ("email", "phone")

# Headers whose values a caller can choose. The executor (v1.17.1, ../shared/reference/seldon-executor-1.17.1/
# rest/*.json and kafka-log/*.json) sets Ce-Requestid / requestid from the client's Seldon-Puid header and
# Ce-Traceparent from the client's trace context; everything else it sends (Ce-Modelid, Ce-Namespace,
# Ce-Inferenceservicename, Ce-Endpoint, Ce-Protocol, Ce-Source, Ce-Type, Ce-Id, Ce-Time) comes from the
# deployment or the executor itself. `subject` and `tracestate` are the other free-text CloudEvent attributes.
DEFAULT_HEADERS = ("requestid", "subject", "traceparent", "tracestate")
# Never redacted, even with "*": validated or generated values the pipeline depends on (a redacted type or time
# would turn a good event into a poison message).
STRUCTURAL_HEADERS = frozenset({"id", "specversion", "type", "time", "datacontenttype", "content-type", "transport"})
REQUEST_ID_HEADER = "requestid"
PSEUDONYM_HEX_CHARS = 16  # 64 bits: distinct redacted request ids stay distinct (join keys must not collide)

NOT_PHONE = re.compile(r"\d+\.\d+|\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")  # decimals and dates
REDACTED_KEY = "[REDACTED:key]"
KEY_CACHE_ENTRIES = 10_000  # distinct JSON keys / header names remembered per redactor (then forgotten at once)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if NOT_PHONE.fullmatch(text):
        return text
    digits = sum(char.isdigit() for char in text)
    if 7 <= digits <= 15:
        return "[REDACTED:phone]"
    return text


# Identifiers whose digit groups look like phone numbers to the pattern (the executor's UUID request ids:
# bbc89d3a-8a32-4691-8643-a5e161811a67 has "4691-8643"; W3C traceparents): the phone pattern skips them.
IDENTIFIER = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\b"
)


def _outside_identifiers(text: str, apply: Callable[[str], str]) -> str:
    if "-" not in text:
        return apply(text)
    if IDENTIFIER.fullmatch(text):
        return text  # the executor's request ids: a UUID and nothing else
    if not IDENTIFIER.search(text):
        return apply(text)
    parts, last = [], 0
    for match in IDENTIFIER.finditer(text):
        parts += [apply(text[last : match.start()]), match.group(0)]
        last = match.end()
    parts.append(apply(text[last:]))
    return "".join(parts)


def _remembered(memo: dict[str, Any], key: str, compute: Callable[[str], Any]) -> Any:
    """`compute(key)`, remembered in `memo` (cleared at once when it holds KEY_CACHE_ENTRIES)."""
    known = memo.get(key)
    if known is None:
        known = compute(key)
        if len(memo) >= KEY_CACHE_ENTRIES:
            memo.clear()
        memo[key] = known
    return known


@functools.lru_cache(maxsize=4096)
def header_attribute(name: str) -> str:
    """`Ce-Requestid`, `ce_requestid` and `requestid` all name the attribute `requestid`."""
    lowered = name.strip().lower()
    if lowered.startswith(("ce-", "ce_")) and len(lowered) > 3:
        return lowered[3:]
    return lowered


@dataclass(frozen=True)
class Redactor:
    """Replaces configured fields (by key name, anywhere in the document), patterns in every string value and
    key, keys matching `key_regexes`, and patterns in the values of the selected headers."""

    fields: frozenset[str] = frozenset()
    builtins: tuple[str, ...] = ()
    regexes: tuple[re.Pattern[str], ...] = ()
    key_regexes: tuple[re.Pattern[str], ...] = ()
    headers: frozenset[str] = frozenset()  # attribute names (header_attribute form); "*" = all but structural
    hash_key: bytes = b""
    _lowered_fields: frozenset[str] = field(init=False, repr=False)
    # JSON keys and header names repeat in every message ("data", "ndarray", "ce_requestid"): their outcome is
    # remembered (bounded), which keeps key and header redaction to a dictionary lookup per key
    _keys: dict[str, str] = field(init=False, repr=False, compare=False)
    _selected: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lowered_fields", frozenset(name.lower() for name in self.fields))
        object.__setattr__(self, "_keys", {})
        object.__setattr__(self, "_selected", {})

    @property
    def active(self) -> bool:
        return bool(self.fields or self.builtins or self.regexes or self.key_regexes)

    @property
    def text_active(self) -> bool:
        """Whether free text (a header, a log detail, a non-JSON payload) can change at all."""
        return bool(self.builtins or self.regexes)

    def redact_text(self, text: str) -> str:
        if "email" in self.builtins and "@" in text:
            text = EMAIL.sub("[REDACTED:email]", text)
        if "phone" in self.builtins:
            text = _outside_identifiers(text, lambda part: PHONE_CANDIDATE.sub(_phone, part))
        for pattern in self.regexes:
            text = pattern.sub("[REDACTED]", text)
        return text

    def redact_key(self, key: str) -> str:
        """A JSON key: replaced as a whole when it matches a key regex, else the value patterns applied to it (so
        a key that is itself an e-mail address or a phone number is replaced)."""
        return _remembered(self._keys, key, self._redact_key)

    def _redact_key(self, key: str) -> str:
        for pattern in self.key_regexes:
            if pattern.search(key):
                return REDACTED_KEY
        return self.redact_text(key)

    def redact(self, value: Any) -> Any:
        """A redacted copy of a parsed JSON value (dicts, lists, strings, numbers). Keys are redacted too; two
        keys that become the same get `#2`, `#3`, ... so no value is lost and the structure stays."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                new_value = "[REDACTED]" if key.lower() in self._lowered_fields else self.redact(item)
                new_key = self.redact_key(key) if isinstance(key, str) else key
                if new_key in result:
                    number = 2
                    while f"{new_key}#{number}" in result:
                        number += 1
                    new_key = f"{new_key}#{number}"
                result[new_key] = new_value
            return result
        return value

    # ------------------------------------------------------------------------------------------ headers

    def redacts_header(self, name: str) -> bool:
        return _remembered(self._selected, name, self._selects_header)

    def _selects_header(self, name: str) -> bool:
        attribute = header_attribute(name)
        return attribute not in STRUCTURAL_HEADERS and ("*" in self.headers or attribute in self.headers)

    def redact_request_id(self, request_id: str) -> str:
        """The request id with its personal data replaced, plus a pseudonym of the original (a keyed hash), so
        request, response and feedback of one id still join and two redacted ids never collide; unchanged when
        it carries nothing to redact."""
        if not self.text_active or not self.redacts_header(REQUEST_ID_HEADER):
            return request_id
        redacted = self.redact_text(request_id)
        if redacted == request_id:
            return request_id
        original = request_id.encode("utf-8", "surrogateescape")
        digest = hmac.new(self.hash_key, original, hashlib.sha256).hexdigest()
        return f"{redacted}~{digest[:PSEUDONYM_HEX_CHARS]}"

    def redact_header_value(self, name: str, value: str) -> str:
        if not self.text_active or not self.redacts_header(name):
            return value
        if header_attribute(name) == REQUEST_ID_HEADER:
            return self.redact_request_id(value)
        return self.redact_text(value)

    def redact_attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """CloudEvent attributes (name without the `ce-` prefix) with the selected ones redacted."""
        return {
            name: self.redact_header_value(name, value) if isinstance(value, str) else value
            for name, value in attributes.items()
        }

    def redact_kafka_headers(
        self, headers: Sequence[tuple[str, bytes | None]], *, every: bool = False
    ) -> list[tuple[str, bytes]]:
        """Kafka headers with the selected ones (`every`: all of them, structural ones too, as for a dead letter,
        which nothing parses again) redacted; a value that is not UTF-8 is redacted as text with its undecodable
        bytes kept as they are."""
        if not self.text_active:
            return [(name, value or b"") for name, value in headers]
        result = []
        for name, value in headers:
            raw = value or b""
            if every and header_attribute(name) != REQUEST_ID_HEADER:
                raw = self.redact_text(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
            elif every or self.redacts_header(name):
                text = raw.decode("utf-8", "surrogateescape")
                raw = self.redact_header_value(name, text).encode("utf-8", "surrogateescape")
            result.append((name, raw))
        return result

    # ---------------------------------------------------------------------------------- whole payloads

    def redact_bytes(self, value: bytes) -> bytes:
        """A payload of unknown shape (a poison message): JSON is redacted as a document (values and keys), any
        other bytes as text, undecodable bytes kept, so whatever the original was, its copy carries no match."""
        if not self.active:  # (text_active implies active)
            return value
        try:
            document = json.loads(value)
        except (ValueError, RecursionError):
            document = None
        else:
            redacted = self.redact(document)
            if redacted == document:
                return value
            return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        text = value.decode("utf-8", "surrogateescape")
        redacted_text = self.redact_text(text)
        if redacted_text == text:
            return value
        return redacted_text.encode("utf-8", "surrogateescape")


def build_redactor(
    fields: Iterable[str],
    patterns: Iterable[str],
    regexes: Iterable[re.Pattern[str]],
    *,
    patterns_variable: str,
    key_regexes: Iterable[re.Pattern[str]] = (),
    headers: Iterable[str] = (),
    headers_variable: str = "*_REDACT_HEADERS",
    hash_key: str | None = None,
) -> Redactor:
    builtins = tuple(dict.fromkeys(name.lower() for name in patterns))
    if builtins == ("none",):
        builtins = ()
    unknown = [name for name in builtins if name not in BUILTIN_PATTERNS]
    if unknown:
        raise SettingsError(
            f"{patterns_variable}: unknown pattern(s) {', '.join(unknown)}; built-in patterns are "
            f"{', '.join(BUILTIN_PATTERNS)}, or 'none' for neither (use the *_REDACT_REGEXES variable for your own)"
        )
    return Redactor(
        fields=frozenset(fields),
        builtins=builtins,
        regexes=tuple(regexes),
        key_regexes=tuple(key_regexes),
        headers=_header_names(headers, headers_variable),
        hash_key=(hash_key or "").encode("utf-8"),
    )


HEADER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _header_names(names: Iterable[str], variable: str) -> frozenset[str]:
    chosen = [name.strip().lower() for name in names if name.strip()]
    if chosen == ["none"]:
        return frozenset()
    result = set()
    for name in chosen:
        if name == "*":
            result.add("*")
            continue
        attribute = header_attribute(name)
        if name == "none" or not HEADER_NAME.fullmatch(attribute):
            raise SettingsError(
                f"{variable}: {name!r} is not a header name; list CloudEvent attributes or Kafka headers "
                f"comma-separated (e.g. {variable}=requestid,traceparent,userid), '*' for all but "
                f"{', '.join(sorted(STRUCTURAL_HEADERS))}, or 'none'"
            )
        if attribute in STRUCTURAL_HEADERS:
            raise SettingsError(
                f"{variable}: {name!r} cannot be redacted: the pipeline validates it (structural headers: "
                f"{', '.join(sorted(STRUCTURAL_HEADERS))}); remove it from the list"
            )
        result.add(attribute)
    return frozenset(result)


def redactor_from_env(
    env: Mapping[str, str], prefix: str, default_patterns: tuple[str, ...] = DEFAULT_PATTERNS
) -> Redactor:
    """The `<prefix>_REDACT_*` settings (the same shape for the collector and the indexer), validated."""
    return build_redactor(
        env_list(env, f"{prefix}_REDACT_FIELDS"),
        env_list(env, f"{prefix}_REDACT_PATTERNS", default_patterns),
        env_regex_list(env, f"{prefix}_REDACT_REGEXES"),
        patterns_variable=f"{prefix}_REDACT_PATTERNS",
        key_regexes=env_regex_list(env, f"{prefix}_REDACT_KEY_REGEXES"),
        headers=env_list(env, f"{prefix}_REDACT_HEADERS", DEFAULT_HEADERS),
        headers_variable=f"{prefix}_REDACT_HEADERS",
        hash_key=env_optional(env, f"{prefix}_REDACT_HASH_KEY"),
    )
