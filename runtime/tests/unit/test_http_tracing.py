"""The HTTP edge's own tracing: one SERVER span per request in the caller's trace, named by route once
routing matched, 5xx as errors, probes untraced, and a duration measurement by method, route and status."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from komponent_runtime.http_tracing import TracedRequests
from komponent_runtime.telemetry import current_trace_headers
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@dataclass
class Traced:
    client: httpx.AsyncClient
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def durations(self) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        if data is None:  # nothing measured yet
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "http.server.request.duration"
            for point in metric.data.data_points
            if isinstance(point, HistogramDataPoint)
        ]


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/registrations/{registration_id}")
    async def registration(registration_id: str) -> dict[str, object]:
        # What a route stores in an outbox row: the request span's context.
        return {"id": registration_id, "trace_headers": current_trace_headers()}

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("boom")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    return app


@pytest.fixture
def traced() -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    app = _app()
    app.add_middleware(
        TracedRequests,
        untraced_prefixes=("/health/",),
        tracer=tracer_provider.get_tracer("test"),
        meter=meter_provider.get_meter("test"),
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    yield Traced(httpx.AsyncClient(transport=transport, base_url="http://test"), exporter, reader)
    meter_provider.shutdown()
    tracer_provider.shutdown()


async def test_a_request_continues_the_callers_trace_in_one_server_span_named_by_route(
    traced: Traced,
) -> None:
    answer = await traced.client.get(
        "/registrations/r-1", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    )
    assert answer.status_code == 200
    (span,) = traced.spans()
    assert span.kind is SpanKind.SERVER
    assert span.name == "GET /registrations/{registration_id}"
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/registrations/r-1",
        "http.route": "/registrations/{registration_id}",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET
    # The route ran inside the span: what it stores continues this span.
    stored = answer.json()["trace_headers"]["traceparent"]
    assert stored == f"00-{CALLER_TRACE}-{format(span.context.span_id, '016x')}-01"


async def test_without_a_traceparent_the_request_starts_a_trace(traced: Traced) -> None:
    await traced.client.get("/registrations/r-2")
    (span,) = traced.spans()
    assert span.parent is None and span.context.trace_id != 0


async def test_a_4xx_is_not_an_error_but_a_5xx_is_with_the_exception_recorded(traced: Traced) -> None:
    assert (await traced.client.get("/missing")).status_code == 404
    assert (await traced.client.get("/broken")).status_code == 500
    missing, broken = traced.spans()
    assert missing.attributes is not None and missing.attributes["http.response.status_code"] == 404
    assert missing.status.status_code is StatusCode.UNSET
    assert broken.attributes is not None and broken.attributes["http.response.status_code"] == 500
    assert broken.status.status_code is StatusCode.ERROR
    assert [event.name for event in broken.events] == ["exception"]


async def test_an_unrouted_path_keeps_the_method_as_name_and_has_no_route(traced: Traced) -> None:
    assert (await traced.client.post("/nowhere")).status_code == 404
    (span,) = traced.spans()
    assert span.name == "POST"
    assert span.attributes is not None and "http.route" not in span.attributes


async def test_health_probes_are_not_traced_or_measured(traced: Traced) -> None:
    assert (await traced.client.get("/health/live")).status_code == 200
    assert traced.spans() == []
    assert traced.durations() == []


async def test_each_request_is_measured_by_method_route_and_status(traced: Traced) -> None:
    for path in ("/registrations/a", "/registrations/b", "/missing"):
        await traced.client.get(path)
    by_labels = {tuple(sorted((point.attributes or {}).items())): point.count for point in traced.durations()}
    assert by_labels == {
        (
            ("http.request.method", "GET"),
            ("http.response.status_code", 200),
            ("http.route", "/registrations/{registration_id}"),
        ): 2,
        (("http.request.method", "GET"), ("http.response.status_code", 404), ("http.route", "/missing")): 1,
    }


async def test_an_unknown_method_is_named_other_so_clients_cannot_multiply_label_sets(traced: Traced) -> None:
    for method in ("FOO1", "FOO2", "PROPFIND"):
        assert (await traced.client.request(method, "/registrations/r-3")).status_code == 405
    names = {span.name for span in traced.spans()}
    methods = {(span.attributes or {}).get("http.request.method") for span in traced.spans()}
    assert names == {"HTTP /registrations/{registration_id}"} and methods == {"_OTHER"}
    (point,) = traced.durations()
    assert (point.attributes or {})["http.request.method"] == "_OTHER" and point.count == 3
