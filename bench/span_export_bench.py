"""CPU per span of turning finished spans into an OTLP request: the OpenTelemetry library's encoder (the
baseline) against `komponent_runtime.otlp_export.encode_spans`, in the same run, on the same spans.

The spans are what a consumer makes for each event: a CONSUMER span continuing a remote parent, with the
eight attributes `komponent_runtime.consuming` sets, a unique event id and offset each. CPU is the
thread's own (`time.thread_time`), best of five rounds; batches of 512 as the BatchSpanProcessor sends.

    .venv/bin/python bench/span_export_bench.py [--spans 10240]
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable, Sequence

from cpu_timing import best_cpu_us_per_item
from komponent_runtime.otlp_export import encode_spans
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

BATCH = 512


def consumer_spans(count: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "notifications"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("komponent_runtime.consuming")
    parent = propagate.extract({"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"})
    for offset in range(count):
        tracer.start_span(
            "registration.events process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": "registration.events",
                "messaging.destination.partition.id": str(offset % 12),
                "messaging.kafka.offset": offset,
                "messaging.consumer.group.name": "notifications.registration-emails",
                "cloudevents.event_id": str(uuid.uuid4()),
                "cloudevents.event_type": "dk.komponent.registration.confirmed.v1",
            },
        ).end()
    return list(memory.get_finished_spans())


def cpu_us_per_span(encode: Callable[[Sequence[ReadableSpan]], bytes], spans: list[ReadableSpan]) -> float:
    def run_once() -> None:
        for i in range(0, len(spans), BATCH):
            encode(spans[i : i + BATCH])

    return best_cpu_us_per_item(run_once, len(spans))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=10_240)
    args = parser.parse_args()
    spans = consumer_spans(args.spans)
    same = all(
        encode_spans(spans[i : i + BATCH]) == library_encode_spans(spans[i : i + BATCH]).SerializeToString()
        for i in range(0, len(spans), BATCH)
    )
    library = cpu_us_per_span(lambda batch: library_encode_spans(batch).SerializeToString(), spans)
    ours = cpu_us_per_span(encode_spans, spans)
    size = len(encode_spans(spans[:BATCH])) / BATCH
    print(f"{len(spans)} consumer spans in batches of {BATCH}, {size:.0f} bytes per span encoded")
    print(f"  library encoder + SerializeToString (baseline)  {library:6.1f} µs CPU per span")
    print(f"  komponent_runtime.otlp_export.encode_spans      {ours:6.1f} µs CPU per span")
    print(f"  ratio ours / library                            {ours / library:6.3f}")
    print(f"  same bytes as the library                       {same}")


if __name__ == "__main__":
    main()
