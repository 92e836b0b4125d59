"""Running one service process: the shared lifecycle around a service's composition root.

A service's `app.py` provides `wire(runtime) -> ServiceParts`: it registers its consumers on the broker and
returns its HTTP app and background loops. This module does the rest in one place for all services:
logging, tracing, the pool, migrations, the broker, the outbox relay, health checks and shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
import uvloop
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from komponent_runtime import inbox
from komponent_runtime.broker import broker_publisher, make_broker
from komponent_runtime.clock import Clock, SystemClock
from komponent_runtime.collector import tune_collector
from komponent_runtime.consuming import EventConsumer
from komponent_runtime.database import create_pool, migrate, pending_migrations
from komponent_runtime.http import make_http_app
from komponent_runtime.metrics import PlumbingGauges, setup_metrics
from komponent_runtime.outbox import OutboxRelay
from komponent_runtime.settings import (
    DatabaseSettings,
    HttpSettings,
    KafkaSettings,
    ServiceSettings,
    topic_name,
)
from komponent_runtime.telemetry import setup_logging, setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)
BackgroundLoop = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Runtime:
    """What a composition root gets to build its service from."""

    name: str
    pool: asyncpg.Pool
    broker: KafkaBroker
    clock: Clock
    http_settings: HttpSettings
    migrations: Path
    consumers: list[EventConsumer] = field(default_factory=list)

    def consumer(
        self, purpose: str, topic: str, event_types: set[str] | None = None, *, gather: bool = False
    ) -> EventConsumer:
        """A consumer of `topic` in the group `<service>.<purpose>`. `gather=True` for consumers nobody
        waits on: their events are fetched in larger batches, up to `KAFKA_GATHER_MAX_WAIT_MS` late."""
        kafka = KafkaSettings()
        consumer = EventConsumer(
            self.broker,
            self.pool,
            service=self.name,
            purpose=purpose,
            topic=topic_name(topic),
            event_types=event_types,
            # Isolated topic sets (KAFKA_TOPIC_PREFIX) get isolated groups too: otherwise every platform on
            # one broker joins the same groups, and each start, stop or kill rebalances all of them.
            group_prefix=topic_name(""),
            fetch_max_wait_ms=kafka.gather_max_wait_ms if gather else kafka.fetch_max_wait_ms,
            fetch_min_bytes=kafka.gather_min_bytes if gather else 1,
            commit_interval_ms=kafka.commit_interval_ms,
        )
        self.consumers.append(consumer)
        return consumer

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": False, "broker": False, "migrations": False}
        with contextlib.suppress(Exception):
            async with self.pool.acquire(timeout=2) as conn:
                checks["database"] = await conn.fetchval("SELECT true")
                checks["migrations"] = not await pending_migrations(conn, self.migrations)
        with contextlib.suppress(Exception):
            checks["broker"] = await self.broker.ping(timeout=2)
        return checks

    def http_app(self, title: str, description: str = "") -> FastAPI:
        return make_http_app(
            title,
            readiness=self.readiness,
            max_body_bytes=self.http_settings.max_body_bytes,
            description=description,
        )


@dataclass
class ServiceParts:
    http: FastAPI | None = None
    background: list[BackgroundLoop] = field(default_factory=list)


Wire = Callable[[Runtime], ServiceParts]


async def serve(name: str, migrations: Path, wire: Wire, *, clock: Clock | None = None) -> None:
    service = ServiceSettings(name=name)
    setup_logging(name)
    tracer_provider = setup_tracing(name)
    setup_metrics(name)
    # One span per SQL statement is most of a trace's volume and cost; opt in when chasing the database.
    tracing_on = os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true"
    if tracing_on and os.environ.get("OTEL_INSTRUMENT_DB", "false").lower() == "true":
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument(  # type: ignore[no-untyped-call]
            tracer_provider=tracer_provider
        )
    db = DatabaseSettings()
    pool = await create_pool(db.dsn(service.database_name), min_size=db.pool_min, max_size=db.pool_max)
    async with pool.acquire() as conn:
        applied = await migrate(conn, migrations)
    log.info("migrations up to date", extra={"applied_now": len(applied)})

    broker = make_broker(KafkaSettings(), client_id=name)
    runtime = Runtime(name, pool, broker, clock or SystemClock(), HttpSettings(), migrations)
    parts = wire(runtime)
    relay = OutboxRelay(
        pool,
        broker_publisher(broker),
        poll_seconds=service.outbox_poll_seconds,
    )

    await broker.start()
    gauges = PlumbingGauges(pool, KafkaSettings().bootstrap_servers, [c.group for c in runtime.consumers])
    tasks = [
        asyncio.create_task(relay.run(), name="outbox-relay"),
        asyncio.create_task(gauges.run(), name="gauges"),
        asyncio.create_task(
            _supervised(
                partial(
                    inbox.prune_forever, pool, service.inbox_keep_seconds, service.inbox_prune_every_seconds
                )
            ),
            name="inbox-pruning",
        ),
    ]
    tasks += [
        asyncio.create_task(_supervised(loop), name=getattr(loop, "__name__", "loop"))
        for loop in parts.background
    ]
    tune_collector()  # start-up is done: what it built stays out of the collector's scans
    log.info("service started", extra={"consumers": len(runtime.consumers)})
    try:
        if parts.http is not None:
            http = runtime.http_settings
            server = uvicorn.Server(
                uvicorn.Config(parts.http, host=http.host, port=http.port, log_config=None, access_log=False)
            )
            await server.serve()  # returns on SIGINT/SIGTERM
        else:
            await _until_signalled()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await broker.stop()
        await pool.close()
        shutdown_tracing()
        log.info("service stopped")


async def _supervised(loop: BackgroundLoop) -> None:
    """Run a background loop forever: if it dies of an unexpected error, log it and start it again.

    A loop that died silently would stop its work (sending emails, firing timers) while the service still
    looked healthy."""
    name = getattr(loop, "__qualname__", "background loop")
    backoff = 0.5
    while True:
        try:
            await loop()
            log.warning("background loop returned; starting it again", extra={"loop": name})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background loop died; starting it again", extra={"loop": name})
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 30.0)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(name: str, migrations: Path, wire: Wire) -> None:
    # uvloop: a service is mostly small socket reads and writes (Kafka, PostgreSQL, HTTP, SMTP), where the
    # pure-Python selector loop cost more than the work it scheduled.
    uvloop.run(serve(name, migrations, wire))
