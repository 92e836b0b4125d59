"""The HTTP edge every service shares: error format, body limit, health endpoints, tracing.

Invalid input gets 422 with one entry per problem naming the field and the rule, e.g.
`{"errors": [{"field": "participant.email", "rule": "value_error", "message": "…"}]}`; the input values
are not echoed (they may be personal data).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from komponent_runtime.http_tracing import TracedRequests
from komponent_runtime.transient import TRANSIENT_ERRORS

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in {"body", "query", "path", "header"}:
            loc = loc[1:] if loc[0] == "body" else loc
        errors.append(
            {"field": ".".join(loc) or "<body>", "rule": str(err.get("type")), "message": str(err.get("msg"))}
        )
    return errors


log = logging.getLogger(__name__)

MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024
# While PostgreSQL restarts: a crash recovery here takes a few seconds.
RETRY_AFTER_UNAVAILABLE_SECONDS = 2


class BodyLimit:
    """Reject oversized bodies early (413), before they are read into memory; and header floods (431).

    A declared Content-Length over the limit is answered at once. A body without one (chunked) is counted
    as it arrives: past the limit the 413 is sent right there and the app is told the client went away, so
    it stops reading (FastAPI turns an exception raised while reading into its own 400, so raising is not
    enough), and whatever the app tries to send after that is dropped.
    uvicorn's h11 parser does not bound a request head that arrives in one read, so the header count and
    size are checked here too."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers = scope.get("headers") or ()
        if len(raw_headers) > MAX_HEADERS or sum(len(k) + len(v) for k, v in raw_headers) > MAX_HEADER_BYTES:
            await _refuse(send, 431, "<headers>", "max_size", "request headers too many or too large")
            return
        declared = dict(raw_headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        seen = 0
        refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                refused = True
                await self._too_large(send)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _too_large(self, send: Send) -> None:
        await _refuse(send, 413, "<body>", "max_size", "request body too large")


async def _refuse(send: Send, status: int, field: str, rule: str, message: str) -> None:
    body = json.dumps({"errors": [{"field": field, "rule": rule, "message": message}]}, separators=(",", ":"))
    encoded = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(encoded)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": encoded})


_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


def _nul_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield ".".join(path) or "<body>"
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                yield ".".join((*path, key.replace("\x00", "\\u0000")))
            yield from _nul_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*path, str(index)))


class RefuseNul:
    """Refuse text containing NUL (U+0000) with 422 naming the field, before any handler sees it.

    PostgreSQL `text` and `jsonb` cannot hold NUL, so such input would otherwise fail deep inside a use case
    (500) or, once accepted into an event, in every consumer downstream. Checked: query parameters and JSON
    bodies (only parsed when the raw body contains an escaped `\\u0000`; a raw NUL byte is invalid JSON and
    already answered 422 by the request parser)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = [
            name.replace("\x00", "\\u0000") or "<query>"
            for name, value in parse_qsl(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            )
            if "\x00" in name or "\x00" in value
        ]
        if "\x00" in scope.get("path", ""):
            fields.append("<path>")
        if fields:
            await _nul_refused(send, fields)
            return
        content_type = dict(scope.get("headers") or ()).get(b"content-type", b"")
        if b"json" not in content_type or scope.get("method") not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        # Buffer the body (BodyLimit, outside this middleware, bounds it) and hand it on unchanged.
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if _ESCAPED_NUL.search(body):
            try:
                fields = sorted(set(_nul_paths(json.loads(body))))
            except ValueError:
                fields = []  # not JSON: the request parser names the problem
            if fields:
                await _nul_refused(send, fields)
                return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


async def _nul_refused(send: Send, fields: list[str]) -> None:
    errors = [
        {"field": f, "rule": "nul_character", "message": "text must not contain the NUL character (U+0000)"}
        for f in fields
    ]
    body = json.dumps({"errors": errors}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def backing_service_away(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After, not a 500 with a traceback, while PostgreSQL (or the network to it) is away:
    nothing was stored, the same request may simply be sent again."""
    log.warning(
        "request refused: a backing service is away",
        extra={"path": request.url.path, "error": type(exc).__name__},
    )
    return JSONResponse(
        status_code=503,
        content={"error": "service_unavailable", "detail": "a backing service is unavailable; retry"},
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)},
    )


def make_http_app(
    title: str,
    *,
    readiness: ReadinessCheck,
    max_body_bytes: int = 64 * 1024,
    description: str = "",
) -> FastAPI:
    # FastAPI's own telemetry stays off: `TracedRequests` traces and measures each request once, without
    # the query string (`/emails?recipient=` carries an address) or per-operation spans.
    app = FastAPI(
        title=title,
        description=description,
        version="1.0",
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"errors": field_errors(exc)})

    for error in TRANSIENT_ERRORS:
        app.add_exception_handler(error, backing_service_away)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        checks = await readiness()
        return JSONResponse(status_code=200 if all(checks.values()) else 503, content={"checks": checks})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RefuseNul)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)  # before RefuseNul reads the body
    # Outermost: refused bodies and header floods are traced too.
    app.add_middleware(TracedRequests, untraced_prefixes=("/health/", "/metrics"))
    return app
