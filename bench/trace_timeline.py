"""Where a registration's time goes: the spans of every registration's trace, as a median timeline.

Starts the platform the way `bench/e2e_bench.py` does, with tracing on (100 % sampling) and the OTLP
receiver keeping what it gets, sends registrations at fixed rates (half over HTTP, half over Kafka), and
prints, per trace shape (the HTTP path and the Kafka path differ), each span's median start and end in
milliseconds after the trace's first span. Gaps between one span's end and the next one's start are
time spent outside any span: Kafka hops, outbox relay wake-ups, waiting for a sender round.

    .venv/bin/python bench/trace_timeline.py [--rates 20,100] [--seconds 10]

Needs the local stack (`./dev infra`); run it alone, under `flock /tmp/komponent-bench.lock` when other
benchmarks may run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import defaultdict
from pathlib import Path

import e2e_bench as bench
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# (trace id, service, span name, start ns, end ns)
Span = tuple[str, str, str, int, int]


def read_spans(path: Path) -> list[Span]:
    data, spans, at = path.read_bytes(), [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        request = ExportTraceServiceRequest.FromString(data[at + 4 : at + 4 + size])
        at += 4 + size
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"),
                "?",
            )
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    spans.append(
                        (s.trace_id.hex(), service, s.name, s.start_time_unix_nano, s.end_time_unix_nano)
                    )
    return spans


def timelines(spans: list[Span], prefix: str) -> None:
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span[0]].append(span)
    shapes: dict[tuple[tuple[str, str], ...], list[list[tuple[float, float]]]] = defaultdict(list)
    for trace_spans in by_trace.values():
        trace_spans.sort(key=lambda s: s[3])
        first = trace_spans[0][3]
        shape = tuple((s[1], s[2].replace(prefix, "")) for s in trace_spans)
        shapes[shape].append([((s[3] - first) / 1e6, (s[4] - first) / 1e6) for s in trace_spans])
    for shape, rows in sorted(shapes.items(), key=lambda kv: -len(kv[1]))[:2]:
        print(f"\n  {len(rows)} traces of this shape; median ms after the first span's start:")
        print(f"  {'start':>8} {'end':>8} {'took':>7}  service        span")
        for i, (service, name) in enumerate(shape):
            start = statistics.median(r[i][0] for r in rows)
            end = statistics.median(r[i][1] for r in rows)
            print(f"  {start:8.2f} {end:8.2f} {end - start:7.2f}  {service:<14} {name}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="20,100", help="registrations per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    await bench.ensure_stack()
    async with bench.probe_platform("trace-timeline", True, 10, spans_out=Path("spans.bin")) as (
        platform,
        gen,
        courses,
    ):
        spans_path = platform.spans_out
        assert spans_path is not None
        for rate in (float(r) for r in args.rates.split(",")):
            before = len(read_spans(spans_path)) if spans_path.exists() else 0
            step = await gen.step("spread100", f"{rate:.0f}/s", courses, rate, args.seconds, 4)
            await asyncio.sleep(2)  # the last batches of spans
            print(f"\n== {rate:.0f}/s: latency to the SMTP server's acceptance p50 {step.p50_ms:.1f} ms")
            timelines(read_spans(spans_path)[before:], platform.prefix)


if __name__ == "__main__":
    asyncio.run(main())
