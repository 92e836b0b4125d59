"""One SERVER span and one duration measurement per HTTP request, continuing the caller's W3C trace.

Why not opentelemetry-instrumentation-fastapi: per request it matched every route a second time to name
the span, set a dozen attributes, and fed four instruments (two semantic-convention generations of the
duration histogram and of active requests). Profiled at load that was most of registration's tracing
cost, and a good part of its cost with tracing off. This middleware keeps what ops use: the span, named
`METHOD route` once routing has matched, with the method (`_OTHER` for unknown ones), path, route and
status, an error for 5xx; and `http.server.request.duration` by method, route and status.
"""

from __future__ import annotations

import time

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from komponent_runtime import metrics as komponent_metrics

_TRACE_HEADERS = {b"traceparent": "traceparent", b"tracestate": "tracestate"}
# Any other method is `_OTHER` (as the semantic conventions say): a client inventing methods must not
# grow the histogram's label sets without bound.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


class TracedRequests:
    """Pure ASGI (no per-request task or body buffering); paths starting with one of `untraced_prefixes`
    (health probes, scrapes) pass straight through."""

    def __init__(
        self,
        app: ASGIApp,
        untraced_prefixes: tuple[str, ...] = (),
        tracer: trace.Tracer | None = None,
        meter: metrics.Meter | None = None,
    ) -> None:
        self.app = app
        self.untraced_prefixes = untraced_prefixes
        self.tracer = tracer or trace.get_tracer("komponent_runtime.http")
        self.request_duration = (meter or komponent_metrics.meter).create_histogram(
            "http.server.request.duration",
            unit="s",
            description="HTTP requests served, by method, route and status",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(self.untraced_prefixes):
            await self.app(scope, receive, send)
            return
        carrier = {
            _TRACE_HEADERS[name]: value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADERS
        }
        method: str = scope["method"] if scope["method"] in _KNOWN_METHODS else "_OTHER"
        started = time.perf_counter()
        span = self.tracer.start_span(
            method if method != "_OTHER" else "HTTP",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        )
        status = 500  # what the client gets if the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, send_with_status)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            context.detach(token)
            route = getattr(scope.get("route"), "path", None)
            if route is not None:
                span.update_name(f"{method if method != '_OTHER' else 'HTTP'} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            attributes: dict[str, str | int] = {
                "http.request.method": method,
                "http.response.status_code": status,
            }
            if route is not None:
                attributes["http.route"] = route
            self.request_duration.record(time.perf_counter() - started, attributes)
