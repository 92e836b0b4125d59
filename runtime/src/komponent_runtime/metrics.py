"""OpenTelemetry metrics, exported in Prometheus format at `/metrics` (and over OTLP when configured).

The plumbing's own instruments live here: consumer lag per group and partition, outbox backlog and the
age of its oldest row, dead letters, applied and duplicate events. Services create their own domain
instruments (registrations by outcome, emails sent, invoices issued, timer lateness) from `meter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

from komponent_runtime import outbox
from komponent_runtime.broker import client_options
from komponent_runtime.settings import KafkaSettings

log = logging.getLogger(__name__)
meter = metrics.get_meter("komponent")

dead_letters = meter.create_counter(
    "komponent_dead_letters", description="records sent to a dead-letter topic"
)
events_applied = meter.create_counter("komponent_events_applied", description="events applied by a consumer")
events_duplicate = meter.create_counter(
    "komponent_events_duplicate", description="redelivered events dropped by the inbox"
)

_configured = False


def setup_metrics(service_name: str) -> None:
    """Install the meter provider once per process: Prometheus reader, plus OTLP when configured."""
    global _configured
    if _configured:
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    readers: list = [PrometheusMetricReader()]  # type: ignore[type-arg]
    if (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        and os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true"
    ):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=15_000))
    # Exemplars only when asked for: by default the SDK offers every measurement made inside a sampled span
    # to an exemplar reservoir, and the Prometheus text format drops them anyway.
    exemplars = None if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER") else AlwaysOffExemplarFilter()
    metrics.set_meter_provider(
        MeterProvider(
            resource=Resource.create({SERVICE_NAME: service_name}),
            metric_readers=readers,
            exemplar_filter=exemplars,
        )
    )
    _configured = True


class PlumbingGauges:
    """Samples outbox backlog and consumer lag in the background; observable gauges read the samples."""

    def __init__(
        self, pool: asyncpg.Pool, bootstrap: str, groups: Iterable[str], interval: float = 10.0
    ) -> None:
        self._pool = pool
        self._bootstrap = bootstrap
        self._groups = list(groups)
        self._interval = interval
        self.backlog = (0, 0.0)
        self.lag: dict[tuple[str, str, int], int] = {}
        meter.create_observable_gauge(
            "komponent_outbox_backlog", [self._observe_backlog], description="unpublished outbox rows"
        )
        meter.create_observable_gauge(
            "komponent_outbox_oldest_age_seconds",
            [self._observe_age],
            description="age of the oldest unpublished row",
        )
        meter.create_observable_gauge(
            "komponent_consumer_lag",
            [self._observe_lag],
            description="records behind the end of the partition",
        )

    def _observe_backlog(self, _: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.backlog[0])

    def _observe_age(self, _: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.backlog[1])

    def _observe_lag(self, _: CallbackOptions) -> Iterable[Observation]:
        for (group, topic, partition), lag in self.lag.items():
            yield Observation(lag, {"group": group, "topic": topic, "partition": partition})

    async def run(self) -> None:
        # The Kafka clients live as long as the loop: a new client per sample would fetch the whole
        # cluster's metadata every time.
        lag = LagProbe(self._bootstrap)
        try:
            while True:
                with contextlib.suppress(Exception):
                    async with self._pool.acquire() as conn:
                        self.backlog = await outbox.backlog(conn)
                try:
                    self.lag = await lag.sample(self._groups)
                except Exception as exc:  # metrics must never take the service down
                    log.debug("lag sampling failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(self._interval)
        finally:
            await lag.close()


class LagProbe:
    """End offset minus committed offset, per consumer group, topic and partition."""

    def __init__(self, bootstrap: str) -> None:
        settings = KafkaSettings()
        settings.bootstrap_servers = bootstrap
        self._options = client_options(settings)
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None

    async def sample(self, groups: Iterable[str]) -> dict[tuple[str, str, int], int]:
        if self._admin is None or self._probe is None:
            self._admin = AIOKafkaAdminClient(**self._options)
            self._probe = AIOKafkaConsumer(enable_auto_commit=False, **self._options)
            await self._admin.start()
            await self._probe.start()
        committed: dict[tuple[str, TopicPartition], int] = {}
        for group in groups:
            offsets = await self._admin.list_consumer_group_offsets(group)
            committed.update({(group, tp): meta.offset for tp, meta in offsets.items() if meta.offset >= 0})
        ends = await self._probe.end_offsets(list({tp for _, tp in committed})) if committed else {}
        return {(g, tp.topic, tp.partition): max(ends[tp] - off, 0) for (g, tp), off in committed.items()}

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._probe = None


async def consumer_lag(bootstrap: str, groups: Iterable[str]) -> dict[tuple[str, str, int], int]:
    """One-off lag sample (tools and tests)."""
    probe = LagProbe(bootstrap)
    try:
        return await probe.sample(groups)
    finally:
        await probe.close()
