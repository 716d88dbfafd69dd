"""Bearer-token check of the producer listener (feedback from tools other than Seldon, e.g. a labelling tool).

Pure logic: the tokens come from a file (a mounted Secret), the check compares in constant time and never returns
or logs the token it was given. Seldon's own executors post to the event listener, which has no token (the
executor's logger cannot send one); the network (NetworkPolicy, mesh AuthorizationPolicy) decides who reaches it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

MIN_TOKEN_CHARS = 32
REALM = "feedback-collector"


class TokenFileError(ValueError):
    """The token file is missing, unreadable or holds no usable token; the message names the file and the fix."""


@dataclass(frozen=True)
class AuthRefusal:
    """Why a request to the producer listener was refused (401); `reason` is the metric label."""

    reason: str  # missing_token | malformed_authorization | invalid_token
    message: str


def load_tokens(path: Path, variable: str = "COLLECTOR_PRODUCER_TOKEN_FILE") -> tuple[bytes, ...]:
    """The accepted tokens: one per line (several while a token is rotated), blank lines ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenFileError(
            f"{variable}={path} cannot be read ({exc.strerror or exc}); mount the Secret holding the producer token "
            "there, or leave COLLECTOR_PRODUCER_PORT unset to turn the producer listener off"
        ) from None
    except UnicodeDecodeError:
        raise TokenFileError(f"{variable}={path} is not UTF-8 text; write the token as text, one per line") from None
    tokens = [line.strip() for line in text.splitlines() if line.strip()]
    if not tokens:
        raise TokenFileError(f"{variable}={path} holds no token; write one token per line (e.g. openssl rand -hex 32)")
    for number, token in enumerate(tokens, start=1):
        if len(token) < MIN_TOKEN_CHARS:
            raise TokenFileError(
                f"{variable}={path}: the token on line {number} has {len(token)} characters, fewer than "
                f"{MIN_TOKEN_CHARS}; make a longer one (e.g. openssl rand -hex 32)"
            )
        if any(ch.isspace() for ch in token) or not token.isprintable():
            raise TokenFileError(
                f"{variable}={path}: the token on line {number} contains spaces or control characters; a bearer "
                "token is one printable word"
            )
    return tuple(token.encode("utf-8") for token in tokens)


def check_bearer(authorization: str | None, tokens: tuple[bytes, ...]) -> AuthRefusal | None:
    """None when `authorization` is "Bearer <one of tokens>", else the refusal. Every configured token is compared
    (hmac.compare_digest), so the time taken says nothing about which token or how much of it matched."""
    if authorization is None or not authorization.strip():
        return AuthRefusal(
            "missing_token",
            "this listener needs a token: send the header 'Authorization: Bearer <token>' with the producer token "
            "from the collector's Secret",
        )
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials or " " in credentials:
        return AuthRefusal(
            "malformed_authorization",
            "the Authorization header is not 'Bearer <token>'; send exactly 'Authorization: Bearer <token>'",
        )
    given = credentials.encode("utf-8", errors="surrogateescape")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token)
    if not matched:
        return AuthRefusal(
            "invalid_token",
            "the bearer token is not one the collector accepts; use the current producer token from the collector's "
            "Secret (it may have been rotated)",
        )
    return None


def challenge(refusal: AuthRefusal) -> str:
    """The WWW-Authenticate header of a 401 (RFC 6750)."""
    if refusal.reason == "missing_token":
        return f'Bearer realm="{REALM}"'
    return f'Bearer realm="{REALM}", error="invalid_token"'
