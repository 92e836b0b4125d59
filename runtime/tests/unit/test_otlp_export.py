"""Span export: the direct encoder writes the official encoder's bytes for every kind of span content,
and the exporter delivers them to an OTLP/HTTP receiver (falling back to the library's encoder for what
it cannot encode)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from komponent_runtime.otlp_export import SpanExporter, encode_spans
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

REMOTE_PARENT = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "abc"), ("other", "1")]),
)
LINKED = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def _recorded(make: Any) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "registration", "deployment": "test"}, "https://schema/1")
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    make(provider)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _every_kind_of_content(provider: TracerProvider) -> None:
    consuming = provider.get_tracer("komponent_runtime.consuming")
    billing = provider.get_tracer("komponent_billing", "1.2.3", schema_url="https://schema/2")
    parent = trace.set_span_in_context(trace.NonRecordingSpan(REMOTE_PARENT))
    consumer = consuming.start_span(
        "registration.events process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.kafka.offset": 41, "partition": "3"},
    )
    with trace.use_span(consumer, end_on_exit=True):
        with billing.start_as_current_span(
            "issue invoice", links=[Link(LINKED, {"why": "billable", "n": 2}), Link(REMOTE_PARENT)]
        ) as issue:
            issue.set_attributes(
                {
                    "ok": True,
                    "not_ok": False,
                    "zero": 0,
                    "negative": -7,
                    "large": 2**62,
                    "ratio": 0.25,
                    "empty": "",
                    "names": ["a", "b"],
                    "numbers": [1, -2, 3],
                    "flags": [True, False],
                    "floats": [1.5, -0.0],
                    "unicode": "Æblegrød – 5.500 kr.",
                }
            )
            issue.add_event("retry", {"attempt": 2})
            issue.add_event("")
            issue.set_status(Status(StatusCode.ERROR, "PostgreSQL went away"))
        try:
            with consuming.start_as_current_span("smtp send", kind=SpanKind.CLIENT):
                raise RuntimeError("421 try later")
        except RuntimeError:
            pass
    provider.get_tracer("komponent_runtime.http").start_span("GET", kind=SpanKind.SERVER).end()
    provider.get_tracer("komponent_runtime.outbox").start_span("", kind=SpanKind.PRODUCER).end()


def test_the_bytes_are_the_official_encoders_for_every_kind_of_content() -> None:
    spans = _recorded(_every_kind_of_content)
    assert len(spans) == 5
    assert encode_spans(spans) == official_encode_spans(spans).SerializeToString()
    # and they read back as the spans they came from
    request = ExportTraceServiceRequest.FromString(encode_spans(spans))
    names = [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted(names) == sorted(s.name for s in spans)


def test_an_empty_batch_is_an_empty_request() -> None:
    assert encode_spans([]) == official_encode_spans([]).SerializeToString() == b""


_scalars = st.one_of(
    st.text(max_size=30),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
)
_attribute_values = st.one_of(
    _scalars,
    st.lists(st.text(max_size=10), max_size=4),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=4),
    st.lists(st.booleans(), max_size=4),
    st.lists(st.floats(allow_nan=False), max_size=4),
)


@settings(max_examples=200, deadline=None)
@given(
    attributes=st.dictionaries(st.text(min_size=1, max_size=20), _attribute_values, max_size=8),
    name=st.text(max_size=40),
)
def test_any_attributes_and_names_encode_as_the_official_encoder_does(
    attributes: dict[str, Any], name: str
) -> None:
    spans = _recorded(lambda p: p.get_tracer("t").start_span(name, attributes=attributes).end())
    assert encode_spans(spans) == official_encode_spans(spans).SerializeToString()


def test_nan_is_encoded_as_nan() -> None:
    spans = _recorded(lambda p: p.get_tracer("t").start_span("n", attributes={"x": math.nan}).end())
    request = ExportTraceServiceRequest.FromString(encode_spans(spans))
    value = request.resource_spans[0].scope_spans[0].spans[0].attributes[0].value.double_value
    assert math.isnan(value)


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append((self.headers["Content-Type"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces", _Receiver.bodies
    server.shutdown()


def _names(body: bytes) -> list[str]:
    request = ExportTraceServiceRequest.FromString(body)
    return [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_the_exporter_posts_the_encoded_batch(receiver: tuple[str, list[tuple[str, bytes]]]) -> None:
    endpoint, bodies = receiver
    spans = _recorded(_every_kind_of_content)
    assert SpanExporter(endpoint=endpoint).export(spans) is SpanExportResult.SUCCESS
    ((content_type, body),) = bodies
    assert content_type == "application/x-protobuf"
    assert body == encode_spans(spans)


def test_a_span_it_cannot_encode_goes_through_the_librarys_encoder(
    receiver: tuple[str, list[tuple[str, bytes]]],
) -> None:
    endpoint, bodies = receiver
    (span,) = _recorded(lambda p: p.get_tracer("t").start_span("odd").end())
    odd = ReadableSpan(
        name="odd",
        context=span.context,
        resource=span.resource,
        # The SDK never keeps an object as a value; a bug might.
        attributes={"fine": "yes", "object": object()},  # type: ignore[dict-item]
        start_time=span.start_time,
        end_time=span.end_time,
    )
    assert SpanExporter(endpoint=endpoint).export([odd]) is SpanExportResult.SUCCESS
    ((_, body),) = bodies
    assert _names(body) == ["odd"]


def test_a_shut_down_exporter_refuses(receiver: tuple[str, list[tuple[str, bytes]]]) -> None:
    endpoint, bodies = receiver
    exporter = SpanExporter(endpoint=endpoint)
    exporter.shutdown()  # type: ignore[no-untyped-call]
    spans = _recorded(lambda p: p.get_tracer("t").start_span("late").end())
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert bodies == []
