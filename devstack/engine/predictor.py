"""Walking the (single-node) graph: log, call the model, log; the model's REST client and the readiness check.

The transport servers (rest.py, grpc_api.py, kafka_api.py) hand `Predictor` a payload, the puid and how to call
the model; it applies the executor's logging rules (predictor/predictor_process.go, README "What is logged and
when"), which every transport shares:
- the request event is queued before the model is called (mode `request` or `all`): rest/15-invalid-json-request.json
  is logged although the model refused it;
- the response event only after the model answered 200 (mode `response` or `all`): no response event follows
  rest/15-*;
- feedback is logged before the model's send-feedback, in modes `response` and `all`, from 1.4.0
  (versions/v1.3.0 has none), and only with a puid: a gRPC SendFeedback without `seldon-puid` metadata logs nothing
  (README "gRPC");
- `Seldon-Skip-Logging: <true>` skips all of it, from 1.13.0 (README versions table).

    predictor = Predictor(spec, behaviour, log_queue)
    answer = await predictor.predict(Payload(body, "application/json"), puid, skip_logging=False, call=model.predict)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import aiohttp

from devstack.engine.logger import LogEvent, LogQueue
from devstack.engine.spec import Endpoint, PredictorSpec
from devstack.engine.versions import Behaviour

log = logging.getLogger(__name__)

SKIP_LOGGING_HEADER = "Seldon-Skip-Logging"
PUID_HEADER = "Seldon-Puid"
MODEL_TIMEOUT_S = 120.0
# not forwarded to the model: framing and hop-by-hop headers, which belong to one connection
_NOT_FORWARDED = frozenset(
    h.lower()
    for h in (
        "Content-Type", "Content-Length", "Host", "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Expect",
    )
)  # fmt: skip


@dataclass(frozen=True)
class Payload:
    body: bytes
    content_type: str
    gzipped: bool = False


@dataclass(frozen=True)
class ModelAnswer:
    status: int  # the model's HTTP status (gRPC answers are 200 or raise)
    body: bytes
    content_type: str


class ModelUnavailable(Exception):
    """The model could not be reached or did not answer in time; `reason` says which and where."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class ModelRefused(Exception):
    """The model answered, but not 200: the engine passes that answer on and logs no response event."""

    def __init__(self, answer: ModelAnswer) -> None:
        super().__init__(f"the model answered {answer.status}")
        self.answer = answer

    def summary(self) -> str:
        """What the engine logs about the refusal: the status, the Seldon error code (`status.reason`, such as
        MICROSERVICE_BAD_DATA) and the body's size. The model's `info` text often quotes the input (a bad field's
        value), so it goes back to the client only, never into the engine's log."""
        code = seldon_error_code(self.answer.body)
        size = len(self.answer.body)
        return f"the model answered {self.answer.status} ({code or 'no Seldon error code'}, {size} bytes)"


SELDON_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def seldon_error_code(body: bytes) -> str | None:
    """`status.reason` of a Seldon error answer when it is an upper-case code, else None (never free text)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    status = document.get("status") if isinstance(document, dict) else None
    reason = status.get("reason") if isinstance(status, dict) else None
    return reason if isinstance(reason, str) and SELDON_ERROR_CODE.fullmatch(reason) else None


def parse_go_bool(value: str | None) -> bool:
    """strconv.ParseBool's true values (anything else is false, as a failed parse is upstream)."""
    return (value or "").strip() in ("1", "t", "T", "TRUE", "true", "True")


def skips_logging(headers: Mapping[str, str], behaviour: Behaviour) -> bool:
    return behaviour.honours_skip_logging and parse_go_bool(headers.get(SKIP_LOGGING_HEADER))


def forwarded_headers(headers: Iterable[tuple[str, str]], content_type: str) -> list[tuple[str, str]]:
    """The model call's headers: the incoming ones except Content-Type and hop-by-hop ones, then the payload's
    own Content-Type (README "REST server": "all incoming HTTP headers except Content-Type copied")."""
    out = [(name, value) for name, value in headers if name.lower() not in _NOT_FORWARDED]
    if content_type:
        out.append(("Content-Type", content_type))
    return out


class Predictor:
    def __init__(self, spec: PredictorSpec, behaviour: Behaviour, log_queue: LogQueue | None) -> None:
        self.spec = spec
        self.behaviour = behaviour
        self.log_queue = log_queue
        self.node = spec.graph

    def _log(self, kind: str, payload: Payload | ModelAnswer, puid: str) -> None:
        assert self.log_queue is not None and self.node.logger is not None
        self.log_queue.offer(
            LogEvent(
                kind=kind,
                body=payload.body,
                content_type=payload.content_type,
                request_id=puid,
                model_id=self.node.name,
                url=self.node.logger.url,
                gzipped=isinstance(payload, Payload) and payload.gzipped,
            )
        )

    def _logger(self, skip_logging: bool):  # type: ignore[no-untyped-def]
        if skip_logging or self.log_queue is None:
            return None
        return self.node.logger

    async def predict(
        self, request: Payload, puid: str, skip_logging: bool, call: Callable[[Payload], Awaitable[ModelAnswer]]
    ) -> ModelAnswer:
        """Log the request, call the model, log its 200 answer; ModelUnavailable / ModelRefused otherwise."""
        logger = self._logger(skip_logging)
        if logger is not None and logger.logs_requests:
            self._log("request", request, puid)
        answer = await call(request)
        if answer.status != 200:
            raise ModelRefused(answer)
        if logger is not None and logger.logs_responses:
            self._log("response", answer, puid)
        return answer

    async def feedback(
        self,
        request: Payload,
        puid: str | None,
        skip_logging: bool,
        call: Callable[[Payload], Awaitable[ModelAnswer]],
    ) -> ModelAnswer:
        """Log the feedback (with a puid, modes response/all, from 1.4.0), then call the model's send-feedback."""
        logger = self._logger(skip_logging)
        if logger is not None and logger.logs_feedback and self.behaviour.logs_feedback and puid is not None:
            self._log("feedback", request, puid)
        answer = await call(request)
        if answer.status != 200:
            raise ModelRefused(answer)
        return answer


class ModelRestClient:
    """The model's REST API (`/predict`, `/send-feedback` on the node's httpPort), one pooled session."""

    def __init__(self, endpoint: Endpoint, timeout_s: float = MODEL_TIMEOUT_S) -> None:
        self.endpoint = endpoint
        self.base = f"http://{endpoint.host}:{endpoint.http_port}"
        self.timeout_s = timeout_s
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            auto_decompress=False,
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def post(self, path: str, payload: Payload, headers: list[tuple[str, str]]) -> ModelAnswer:
        assert self.session is not None, "ModelRestClient.start() first"
        url = self.base + path
        try:
            async with self.session.post(url, data=payload.body, headers=headers) as answer:
                body = await answer.read()
                return ModelAnswer(answer.status, body, answer.headers.get("Content-Type", ""))
        except TimeoutError:
            raise ModelUnavailable(f"the model at {url} did not answer within {self.timeout_s:.0f} s", True) from None
        except aiohttp.ClientError as exc:
            raise ModelUnavailable(f"the model at {url} cannot be reached ({exc})") from None


async def model_ready(endpoint: Endpoint, timeout_s: float = 1.0) -> str | None:
    """None when the model's service port accepts a TCP connection (the executor's readiness check), else why not."""
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.service_port), timeout_s
        )
    except (OSError, TimeoutError) as exc:
        return f"model {endpoint.host}:{endpoint.service_port} not reachable: {exc or type(exc).__name__}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None
