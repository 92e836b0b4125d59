"""OpenTelemetry and logging set-up shared by every service process.

Traces use W3C trace context everywhere (HTTP headers, Kafka headers, outbox rows). Export is OTLP/HTTP
(`otlp_export`), configured by the standard `OTEL_*` variables. `OTEL_TRACES_SAMPLER=always_off` turns
tracing off and keeps metrics; `OTEL_SDK_DISABLED=true` turns both off. Spans are batched (a synchronous
processor would cost several times the throughput). Logs are JSON lines carrying trace and span ids; no
personal data goes into either: ids only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured: TracerProvider | None = None


def setup_tracing(service_name: str) -> TracerProvider:
    """Install the global tracer provider once per process."""
    global _configured
    if _configured is not None:
        return _configured
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true"
    if not disabled and (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        from komponent_runtime.otlp_export import SpanExporter

        # Every 200 ms unless OTEL_BSP_SCHEDULE_DELAY says otherwise (an explicit argument would win over it).
        delay = None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY") else 200
        provider.add_span_processor(BatchSpanProcessor(SpanExporter(), schedule_delay_millis=delay))
    trace.set_tracer_provider(provider)
    _configured = provider
    return provider


def shutdown_tracing() -> None:
    if _configured is not None:
        _configured.force_flush()
        _configured.shutdown()


def current_trace_headers() -> dict[str, str]:
    """The W3C `traceparent`/`tracestate` of the active span, to store in an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def continuing_trace(headers: dict[str, str]) -> Iterator[None]:
    """The stored context (an event's `trace_headers`) is the current one inside the block: spans started
    and outbox rows written there continue that trace."""
    token = context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        context.detach(token)


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line, with the active trace and span ids and any `extra=` fields."""

    _STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service_name,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(service_name: str, level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
    # aiokafka is chatty at INFO about group membership; warnings still show.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # FastStream installs its own coloured handler at import and stops propagation: route its lines
    # through ours so every line is JSON with trace ids.
    faststream_logger = logging.getLogger("faststream")
    faststream_logger.handlers.clear()
    faststream_logger.propagate = True
