"""A minimal service built on the runtime, run as a real process by the delivery tests.

Its handler records one `effects` row per applied event and emits one outgoing event through the outbox,
so tests can count effects and downstream publications after crashes and redeliveries.
Optional: CRASH_AFTER_PUBLISH=1 makes the relay SIGKILL its own process after Kafka acknowledged a batch
but before the rows were deleted (the window that causes a duplicate on the topic).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from komponent_contracts import CloudEvent
from komponent_contracts.events import RegistrationReceived, RegistrationWaitlisted
from komponent_runtime import outbox
from komponent_runtime.broker import broker_publisher, make_broker
from komponent_runtime.consuming import Delivery, EventConsumer, PermanentError, PreparedBatchHandler
from komponent_runtime.database import Connection, create_pool, migrate
from komponent_runtime.outbox import OutboxRelay
from komponent_runtime.settings import DatabaseSettings, KafkaSettings
from komponent_runtime.telemetry import setup_logging

MIGRATIONS = Path(__file__).parent / "migrations"


def check_course(delivery: Delivery) -> Delivery:
    if str(getattr(delivery.event.data, "course_id", "")) == os.environ.get("REJECT_COURSE"):
        # Simulates a handler bug for one course; the "fix" is restarting without REJECT_COURSE.
        raise PermanentError("course rejected by the test's simulated bug")
    return delivery


async def record_effects(conn: Connection, deliveries: Sequence[Delivery], out_topic: str) -> None:
    for d in deliveries:
        received = check_course(d).event.data
        await conn.execute(
            "INSERT INTO effects (event_id, registration_id) VALUES ($1, $2)",
            d.event.id,
            received.registration_id,
        )
        if not isinstance(received, RegistrationReceived):
            continue
        follow_up = RegistrationWaitlisted(
            registration_id=received.registration_id,
            course_id=received.course_id,
            occurred_at=datetime.now(UTC),
            participant=received.participant,
            position=1,
        )
        await outbox.enqueue(
            conn,
            [CloudEvent(follow_up, source="/test/effect-service")],
            topic=out_topic,
            trace_headers=d.trace_headers,
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out-topic", required=True)
    parser.add_argument("--batch", action="store_true")
    parser.add_argument(
        "--prepared",
        action="store_true",
        help="with --batch: a PreparedBatchHandler whose prepare step checks",
    )
    parser.add_argument("--purpose", default="effects")
    parser.add_argument("--handler-delay", type=float, default=0.0)
    args = parser.parse_args()
    setup_logging("effect-service")
    pool = await create_pool(DatabaseSettings().dsn(args.db))
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
    broker = make_broker(KafkaSettings(), client_id="effect-service")
    consumer = EventConsumer(
        broker,
        pool,
        service="effect-service",
        purpose=args.purpose,
        topic=args.topic,
        commit_interval_ms=KafkaSettings().commit_interval_ms,
    )

    async def one(conn: Connection, delivery: Delivery) -> None:
        await asyncio.sleep(args.handler_delay)
        await record_effects(conn, [delivery], args.out_topic)

    async def many(conn: Connection, deliveries: Sequence[Delivery]) -> None:
        await asyncio.sleep(args.handler_delay)
        await record_effects(conn, deliveries, args.out_topic)

    if args.batch and args.prepared:
        consumer.handle_batches(PreparedBatchHandler(check_course, many), max_records=50)
    elif args.batch:
        consumer.handle_batches(many, max_records=50)
    else:
        consumer.handle_each(one)

    publish = broker_publisher(broker)
    if os.environ.get("CRASH_AFTER_PUBLISH") == "1":
        inner = publish

        async def publish_then_die(
            topic: str, key: bytes, value: bytes, headers: dict[str, str]
        ) -> asyncio.Future[object]:
            await (await inner(topic, key, value, headers))  # wait for the broker's acknowledgement
            os.kill(os.getpid(), signal.SIGKILL)  # before the relay marks the row published
            raise AssertionError("unreachable")

        publish = publish_then_die  # type: ignore[assignment]

    await broker.start()
    relay = asyncio.create_task(OutboxRelay(pool, publish, poll_seconds=0.2).run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    relay.cancel()
    await broker.stop()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
