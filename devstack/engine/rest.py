"""The REST server (executor/api/rest): Seldon protocol routes, probes and metrics, answering as Go's net/http does.

Routes: `POST|OPTIONS /api/v1.0|v0.1/predictions` and `/feedback`, `GET /ready`, `/live`, and the Prometheus path
(`--prometheus_path`, default /metrics). With `--transport grpc` only the probes and metrics are served.

What each rule follows (rest/client-exchanges-receiver.json unless named otherwise):
- puid: the request's `Seldon-Puid` header, else a new UUID v4; returned as the `Seldon-Puid` response header,
  passed to the model as that header, never written into a body (README "puid"; every exchange there).
- The body goes to the model's `/predict` (feedback: `/send-feedback`) byte for byte with the incoming headers
  except Content-Type, then the request's own Content-Type; the model's answer comes back byte for byte with its
  Content-Type (`predict-1`: the model's trailing newline kept), HTML-escaped as Go's json.HTMLEscape does.
- Response headers: `Access-Control-Allow-Headers`, `-Methods: OPTIONS,POST`, `-Origin: *`, `Content-Type`,
  `Seldon-Puid`, `X-Content-Type-Options: nosniff`, sorted by name as Go writes a header map, then `Date`,
  `Content-Length`, and `Connection: close` when the client asked for it; no `Server` header.
- A non-200 model answer is passed on with the model's status and body, but without its Content-Type: Go sniffs
  one (`invalid-json`: 400, `text/plain; charset=utf-8`, placed after Content-Length); no response event.
- Unknown path: `404 page not found` as gorilla/mux answers; wrong method: 405 with no body.
- Ours, with no recording (the real executor reads any size and answers 500 for an unreachable model): a body over
  `--max-body-bytes` gets 413 naming the limit, an unreachable model 503 (504 on its timeout) with the reason,
  both as a Seldon status message; readiness says why it is false.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from devstack.engine.logger import loggable_puid
from devstack.engine.metrics import EngineMetrics
from devstack.engine.predictor import (
    PUID_HEADER,
    ModelRefused,
    ModelRestClient,
    ModelUnavailable,
    Payload,
    Predictor,
    forwarded_headers,
    model_ready,
    skips_logging,
)

log = logging.getLogger(__name__)

ALLOWED_HEADERS = "Accept, Accept-Encoding, Authorization, Content-Length, Content-Type, X-CSRF-Token"
CORS_HEADERS = (
    ("Access-Control-Allow-Headers", ALLOWED_HEADERS),
    ("Access-Control-Allow-Methods", "OPTIONS,POST"),
    ("Access-Control-Allow-Origin", "*"),
)  # fmt: skip
NOSNIFF = ("X-Content-Type-Options", "nosniff")
SNIFFED = web.ResponseKey("go_sniffed_content_type", str)  # the Content-Type Go would sniff (after Content-Length)
_FRAMING = ("Date", "Content-Length", "Connection", "Transfer-Encoding", "Server")


@dataclass
class RestContext:
    predictor: Predictor
    model: ModelRestClient
    metrics: EngineMetrics
    max_body_bytes: int


CONTEXT = web.AppKey("engine", RestContext)


def html_escape(body: bytes) -> bytes:
    """Go's json.HTMLEscape: <, >, & and U+2028/U+2029 become \\u003c, \\u003e, \\u0026, \\u2028, \\u2029."""
    if b"<" not in body and b">" not in body and b"&" not in body and b"\xe2\x80" not in body:
        return body
    return (
        body.replace(b"<", b"\\u003c")
        .replace(b">", b"\\u003e")
        .replace(b"&", b"\\u0026")
        .replace(b"\xe2\x80\xa8", b"\\u2028")
        .replace(b"\xe2\x80\xa9", b"\\u2029")
    )


_HTML_PREFIXES = tuple(
    tag.encode()
    for tag in (
        "<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1", "<DIV", "<FONT", "<TABLE", "<A", "<STYLE",
        "<TITLE", "<B", "<BODY", "<BR", "<P", "<!--",
    )
)  # fmt: skip
_BINARY = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def sniff_content_type(body: bytes) -> str | None:
    """The part of Go's http.DetectContentType that error bodies reach: HTML, plain text or binary; None when empty."""
    if not body:
        return None
    head = body[:512].lstrip(b"\t\n\x0c\r ")
    upper = head.upper()
    for prefix in _HTML_PREFIXES:
        if upper.startswith(prefix) and len(upper) > len(prefix) and upper[len(prefix)] in b" >":
            return "text/html; charset=utf-8"
    if head.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    if any(byte in _BINARY for byte in body[:512]):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def go_header_order(response: web.StreamResponse) -> None:
    """Rewrite the headers in the order Go's net/http writes them: the handler's headers sorted by name, then
    Date, Content-Length, a sniffed Content-Type, Connection (and no Server header)."""
    headers = response.headers
    sniffed = response.get(SNIFFED)
    framing = {name: headers.get(name) for name in _FRAMING}
    skip = {*_FRAMING, "Content-Type"} if sniffed else set(_FRAMING)
    own = sorted((name, value) for name, value in headers.items() if name not in skip)
    ordered: CIMultiDict[str] = CIMultiDict(own)
    for name in ("Date", "Content-Length"):
        if framing[name] is not None:
            ordered[name] = framing[name]
    if sniffed:
        ordered["Content-Type"] = sniffed
    for name in ("Connection", "Transfer-Encoding"):
        if framing[name] is not None:
            ordered[name] = framing[name]
    headers.clear()
    headers.extend(ordered)


def status_body(code: int, info: str, reason: str) -> bytes:
    """A Seldon status message: {"status": {"code", "info", "reason", "status": "FAILURE"}}."""
    return json.dumps({"status": {"code": code, "info": info, "reason": reason, "status": "FAILURE"}}).encode()


def error_response(status: int, body: bytes) -> web.Response:
    """respondWithError: the status, the body, and a Content-Type Go sniffs (set after WriteHeader, so ignored)."""
    response = web.Response(status=status, body=html_escape(body))
    sniffed = sniff_content_type(body)
    if sniffed:
        response[SNIFFED] = sniffed  # aiohttp's default (application/octet-stream) is replaced by go_header_order
    return response


def success_response(body: bytes, content_type: str) -> web.Response:
    response = web.Response(status=200, body=html_escape(body))
    response.headers["Content-Type"] = content_type
    return response


@web.middleware
async def seldon_headers(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):  # type: ignore[no-untyped-def]
    """puidHeader, xssMiddleware and handleCORSRequests of the real REST server, for the /api routes."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    puid = request.headers.get(PUID_HEADER) or str(uuid.uuid4())
    request["puid"] = puid
    if request.method == "OPTIONS" and getattr(request.match_info, "http_exception", None) is None:
        response: web.StreamResponse = web.Response(status=200)
    else:
        response = await handler(request)
    for name, value in (*CORS_HEADERS, (PUID_HEADER, puid), NOSNIFF):
        response.headers[name] = value
    return response


@web.middleware
async def go_not_found(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):  # type: ignore[no-untyped-def]
    """gorilla/mux's answers for an unknown path (404 page not found) and a wrong method (405, empty)."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        _count(request, "other", 405)
        return web.Response(status=405)
    except web.HTTPNotFound:
        _count(request, "other", 404)
        response = web.Response(status=404, body=b"404 page not found\n")
        response.headers["Content-Type"] = "text/plain; charset=utf-8"
        response.headers[NOSNIFF[0]] = NOSNIFF[1]
        return response


def _count(request: web.Request, route: str, code: int) -> None:
    request.app[CONTEXT].metrics.requests.labels(route, str(code)).inc()


async def _read_body(request: web.Request, limit: int) -> bytes | web.Response:
    declared = request.content_length
    too_large = status_body(
        413,
        f"the request body has {declared if declared is not None else 'more than ' + str(limit)} bytes, more than "
        f"the engine's limit of {limit} bytes (--max-body-bytes); send a smaller body or raise the limit",
        "REQUEST_TOO_LARGE",
    )
    if declared is not None and declared > limit:
        return error_response(413, too_large)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, too_large)


def _unavailable(exc: ModelUnavailable) -> web.Response:
    if exc.timed_out:
        return error_response(504, status_body(504, exc.reason, "MODEL_TIMEOUT"))
    return error_response(503, status_body(503, exc.reason, "MODEL_UNAVAILABLE"))


def _handler(route: str, model_path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        began = time.perf_counter()
        ctx = request.app[CONTEXT]
        response = await _call_model(request, ctx, route, model_path)
        ctx.metrics.requests.labels(route, str(response.status)).inc()
        ctx.metrics.request_seconds.labels(route).observe(time.perf_counter() - began)
        return response

    return handle


async def _call_model(request: web.Request, ctx: RestContext, route: str, model_path: str) -> web.StreamResponse:
    body = await _read_body(request, ctx.max_body_bytes)
    if isinstance(body, web.Response):
        return body
    puid: str = request["puid"]
    payload = Payload(
        body,
        request.headers.get("Content-Type", ""),
        gzipped=request.headers.get("Content-Encoding", "").strip().lower() == "gzip",
    )
    incoming = [(k, v) for k, v in request.headers.items() if k.lower() != PUID_HEADER.lower()]
    headers = forwarded_headers([*incoming, (PUID_HEADER, puid)], payload.content_type)
    skip = skips_logging(request.headers, ctx.predictor.behaviour)

    async def call(p: Payload):  # type: ignore[no-untyped-def]
        return await ctx.model.post(model_path, p, headers)

    try:
        if route == "feedback":
            answer = await ctx.predictor.feedback(payload, puid, skip, call)
        else:
            answer = await ctx.predictor.predict(payload, puid, skip, call)
    except ModelRefused as refused:
        return error_response(refused.answer.status, refused.answer.body)
    except ModelUnavailable as exc:
        log.error("%s %s: %s", route, loggable_puid(puid), exc.reason)
        return _unavailable(exc)
    return success_response(answer.body, answer.content_type)


async def ready(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    reason = await model_ready(ctx.predictor.node.endpoint)
    _count(request, "ready", 503 if reason else 200)
    if reason:
        return web.Response(status=503, text=f"not ready: {reason}\n")
    return web.Response(status=200)


async def live(request: web.Request) -> web.Response:
    _count(request, "live", 200)
    return web.Response(status=200)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[CONTEXT].metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def _finish_headers(_request: web.Request, response: web.StreamResponse) -> None:
    go_header_order(response)


def create_app(ctx: RestContext, prometheus_path: str = "/metrics", probes_only: bool = False) -> web.Application:
    app = web.Application(middlewares=[go_not_found, seldon_headers], client_max_size=ctx.max_body_bytes)
    app[CONTEXT] = ctx
    app.router.add_get("/ready", ready, allow_head=False)
    app.router.add_get("/live", live, allow_head=False)
    app.router.add_get(prometheus_path, metrics, allow_head=False)
    if not probes_only:
        for version in ("v1.0", "v0.1"):
            for route, model_path in (("predictions", "/predict"), ("feedback", "/send-feedback")):
                handler = _handler(route, model_path)
                app.router.add_post(f"/api/{version}/{route}", handler)
                app.router.add_route("OPTIONS", f"/api/{version}/{route}", handler)
    app.on_response_prepare.append(_finish_headers)
    return app
