"""How the engine writes answers as Go's net/http does: header order, HTML escaping, sniffed error types."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from devstack.engine.rest import SNIFFED, go_header_order, html_escape, sniff_content_type, status_body


def test_headers_come_sorted_then_date_length_sniffed_type_connection() -> None:
    """rest/client-exchanges-receiver.json, invalid-json: sorted handler headers, then Date, Content-Length, the
    sniffed Content-Type, Connection; no Server header."""
    response = web.Response(status=400, body=b"{}")
    for name, value in (
        ("Seldon-Puid", "p"),
        ("Access-Control-Allow-Origin", "*"),
        ("X-Content-Type-Options", "nosniff"),
        ("Connection", "close"),
        ("Content-Length", "2"),
        ("Date", "Tue, 01 Dec 2026 21:59:14 GMT"),
        ("Server", "Python/3.11 aiohttp"),
        ("Content-Type", "application/octet-stream"),
    ):
        response.headers[name] = value
    response[SNIFFED] = "text/plain; charset=utf-8"
    go_header_order(response)
    assert list(response.headers.items()) == [
        ("Access-Control-Allow-Origin", "*"),
        ("Seldon-Puid", "p"),
        ("X-Content-Type-Options", "nosniff"),
        ("Date", "Tue, 01 Dec 2026 21:59:14 GMT"),
        ("Content-Length", "2"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Connection", "close"),
    ]


def test_a_success_keeps_its_content_type_among_the_sorted_headers() -> None:
    response = web.Response(status=200, body=b"{}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Type"] = "application/json"
    response.headers["Content-Length"] = "2"
    go_header_order(response)
    assert list(response.headers) == ["Content-Type", "X-Content-Type-Options", "Content-Length"]


@pytest.mark.parametrize(
    ("body", "escaped"),
    [
        (b'{"data":{"ndarray":[[0.5,0.5]]}}', b'{"data":{"ndarray":[[0.5,0.5]]}}'),
        (b'{"text":"<b>a & b</b>"}', b'{"text":"\\u003cb\\u003ea \\u0026 b\\u003c/b\\u003e"}'),
        ('{"t":"x\u2028y\u2029"}'.encode(), b'{"t":"x\\u2028y\\u2029"}'),
    ],
)
def test_answers_are_html_escaped_like_json_htmlescape(body: bytes, escaped: bytes) -> None:
    assert html_escape(body) == escaped
    assert json.loads(html_escape(body)) == json.loads(body), "the escaped answer means the same JSON"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"status":{"code":-1}}\n', "text/plain; charset=utf-8"),
        (b"  <html><body>oops</body></html>", "text/html; charset=utf-8"),
        (b"<?xml version='1.0'?><a/>", "text/xml; charset=utf-8"),
        (b"\x00\x01binary", "application/octet-stream"),
        (b"", None),
    ],
)
def test_error_bodies_get_the_type_go_sniffs(body: bytes, kind: str | None) -> None:
    assert sniff_content_type(body) == kind


def test_a_status_message_says_what_failed() -> None:
    assert json.loads(status_body(503, "model down", "MODEL_UNAVAILABLE")) == {
        "status": {"code": 503, "info": "model down", "reason": "MODEL_UNAVAILABLE", "status": "FAILURE"}
    }
