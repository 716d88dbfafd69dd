"""The producer listener's token check and settings (pure logic, no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from feedback.collector.auth import MIN_TOKEN_CHARS, check_bearer, load_tokens
from feedback.collector.settings import CollectorSettings
from feedback.config import SettingsError

TOKEN = "c" * 64
ENV = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}


def token_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "token"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_token"),
        ("   ", "missing_token"),
        (TOKEN, "malformed_authorization"),
        (f"Token {TOKEN}", "malformed_authorization"),
        ("Bearer ", "malformed_authorization"),
        (f"Bearer {TOKEN} {TOKEN}", "malformed_authorization"),
        (f"Bearer {TOKEN.upper()}", "invalid_token"),
        (f"Bearer {TOKEN[:32]}", "invalid_token"),
        ("Bearer é" + "c" * 63, "invalid_token"),
    ],
)
def test_refusals_name_the_reason_and_never_the_token(header: str | None, reason: str) -> None:
    refusal = check_bearer(header, (TOKEN.encode(),))
    assert refusal is not None and refusal.reason == reason
    assert TOKEN not in refusal.message and TOKEN[:32] not in refusal.message
    assert "Bearer <token>" in refusal.message or "current producer token" in refusal.message


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"  BEARER   {TOKEN}  "])
def test_the_right_token_passes(header: str) -> None:
    assert check_bearer(header, (b"x" * 40, TOKEN.encode())) is None


def test_tokens_are_read_one_per_line(tmp_path: Path) -> None:
    assert load_tokens(token_file(tmp_path, f"\n{TOKEN}\r\n  {'d' * 40}  \n")) == (TOKEN.encode(), b"d" * 40)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no token"),
        ("\n \n", "holds no token"),
        ("short\n", f"fewer than {MIN_TOKEN_CHARS}"),
        (f"{TOKEN}\n{'e' * 20} {'e' * 20}\n", "line 2 contains spaces"),
    ],
)
def test_bad_token_files_are_refused_at_start(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        CollectorSettings.from_env(
            {**ENV, "COLLECTOR_PRODUCER_PORT": "8081", "COLLECTOR_PRODUCER_TOKEN_FILE": str(token_file(tmp_path, text))}
        )
    assert "COLLECTOR_PRODUCER_TOKEN_FILE" in str(caught.value)


def test_a_missing_token_file_names_the_variable(tmp_path: Path) -> None:
    env = {**ENV, "COLLECTOR_PRODUCER_PORT": "8081", "COLLECTOR_PRODUCER_TOKEN_FILE": str(tmp_path / "absent")}
    with pytest.raises(SettingsError, match=r"COLLECTOR_PRODUCER_TOKEN_FILE=.*absent cannot be read"):
        CollectorSettings.from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COLLECTOR_PRODUCER_PORT": "8081"}, "needs COLLECTOR_PRODUCER_TOKEN_FILE"),
        ({"COLLECTOR_PRODUCER_TOKEN_FILE": "/x"}, "COLLECTOR_PRODUCER_PORT is not"),
        ({"COLLECTOR_METRICS_PORT": "8080"}, r"ports must differ \(COLLECTOR_PORT=8080, COLLECTOR_METRICS_PORT=8080\)"),
        (
            {"COLLECTOR_PRODUCER_PORT": "9090", "COLLECTOR_PRODUCER_TOKEN_FILE": "TOKEN"},
            "COLLECTOR_PRODUCER_PORT=9090",
        ),
        (
            {
                "COLLECTOR_PRODUCER_PORT": "8081",
                "COLLECTOR_PRODUCER_TOKEN_FILE": "TOKEN",
                "COLLECTOR_PRODUCER_EVENT_TYPES": "feedback,metrics",
            },
            "must list some of request, response, feedback",
        ),
    ],
)
def test_listener_settings_are_checked(tmp_path: Path, env: dict[str, str], message: str) -> None:
    path = str(token_file(tmp_path, TOKEN))
    env = {name: path if value == "TOKEN" else value for name, value in env.items()}
    with pytest.raises(SettingsError, match=message):
        CollectorSettings.from_env({**ENV, **env})


def test_defaults_separate_metrics_and_leave_the_producer_listener_off(tmp_path: Path) -> None:
    settings = CollectorSettings.from_env(ENV)
    assert (settings.port, settings.metrics_port, settings.producer) == (8080, 9090, None)
    on = CollectorSettings.from_env(
        {
            **ENV,
            "COLLECTOR_PRODUCER_PORT": "8081",
            "COLLECTOR_PRODUCER_TOKEN_FILE": str(token_file(tmp_path, TOKEN)),
        }
    )
    assert on.producer is not None and on.producer.event_kinds == ("feedback",) and on.producer.port == 8081
    assert TOKEN not in repr(on)
