"""Allocation throughput of the registration service, against baselines measured in the same run.

    PGPORT=55432 .venv/bin/python services/registration/bench/allocation_bench.py [--registrations 10000] [--runs 5]

Two targets (performance.md §7.3), each measured against its own baseline on the same broker and database:

1. End to end, allocator >= 0.25 x raw relay:
   - P3  raw aiokafka relay: consume `getmany` -> send the batch to another topic -> commit, no logic;
   - the allocator: the real service process (batch consumer, parse, seat book, guards, outbox, relay) for
     one hot course and for registrations spread over 100 courses. Registrations are produced faster than
     the allocator takes them; the rate is counted from the first allocated registration to the last.
2. Batched allocation transaction >= 5 x T_hot ("one fsync per batch instead of per registration"):
   - D1  pgbench of the single conditional seat update (the hot-row ceiling `T_hot`),
         `-c 8 -j 2 -M prepared -T 10` on a scratch database;
   - S1  the allocator's batch transaction alone, in this process, for one hot course (capacity 100):
         deliveries decoded beforehand, applied in batches of the service's `REGISTRATION_BATCH_MAX`, each
         in the transaction the runtime's batch consumer opens (inbox rows, then `Handlers.allocation`, the
         entrypoint the service's consumer calls: seat book, registration rows, outbox rows, course row),
         then committed. Same code and PostgreSQL, no Kafka: through Kafka nothing beats the raw relay, so
         5 x T_hot can only be asked of this stage. (In the service a hot partition's batches are one
         1 MiB fetch, about 1,100 records; S1 with 1,100 per batch measures the same within the noise.)

Prints registrations/s and the ratios; with `--runs N`, the medians over the runs as well. Not a test:
numbers depend on the machine and on what else runs on it; run it and read them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from komponent_contracts import CloudEvent, parse, topics
from komponent_contracts.events import CoursePublished, Participant, RegistrationReceived
from komponent_contracts.examples import buyer, open_course
from komponent_registration.adapters.repository import CourseBooks
from komponent_registration.app import MIGRATIONS, allocation_batch_max
from komponent_registration.entrypoints.consumers import Handlers
from komponent_runtime.collector import tune_collector
from komponent_runtime.consuming import AnyBatchHandler, Delivery, apply_first_deliveries
from komponent_runtime.database import Connection, migrate
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import (
    ServiceProcess,
    create_database,
    create_topics,
    delete_created_databases,
    delete_created_topics,
    delete_orphaned_databases,
    delete_orphaned_topics,
    isolated_topics,
    kafka_bootstrap,
    owned_token,
    produce_many,
)

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


def registration(course_id: uuid.UUID, i: int) -> CloudEvent[RegistrationReceived]:
    return CloudEvent(
        RegistrationReceived(
            registration_id=uuid.uuid4(),
            course_id=course_id,
            received_at=datetime.now(UTC),
            participant=Participant(
                name=f"Deltager {i}", email=f"deltager{i}@kommune.dk", job_title="Konsulent"
            ),
            buyer=buyer(),
            terms_version="2026-01",
        ),
        source="/bench",
    )


async def produce(events: Sequence[CloudEvent[Any]], prefix: str = "", topic: str | None = None) -> None:
    await produce_many(events, topic=topic, prefix=prefix)


# ------------------------------------------------------------------------------------ P3: raw relay


async def raw_relay(n: int) -> float:
    token = owned_token()  # names this process, so a later run deletes the topics if this one dies
    source, sink = f"bench.relay.in.{token}", f"bench.relay.out.{token}"
    await create_topics(source, sink, partitions=12, with_dead_letters=False)
    course_ids = [uuid.uuid4() for _ in range(100)]
    await produce([registration(random.choice(course_ids), i) for i in range(n)], topic=source)

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=kafka_bootstrap(),
        group_id=f"bench.relay.{token}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap(), acks="all", enable_idempotence=True, linger_ms=1
    )
    await consumer.start()
    await producer.start()
    relayed = 0
    started: float | None = None
    try:
        while relayed < n:
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            records = [r for part in batch.values() for r in part]
            if not records:
                continue
            started = started or time.perf_counter()
            futures = [
                await producer.send(sink, r.value, key=r.key, headers=list(r.headers)) for r in records
            ]
            await asyncio.gather(*futures)
            await consumer.commit(
                {TopicPartition(tp.topic, tp.partition): part[-1].offset + 1 for tp, part in batch.items()}
            )
            relayed += len(records)
        assert started is not None
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()
        await delete_created_topics()


# ---------------------------------------------------------------------------------- D1: pgbench


async def pgbench_hot_row() -> float:
    db = DatabaseSettings()
    name = await create_database("bench_pgbench")
    conn = await asyncpg.connect(db.dsn(name))
    try:
        await conn.execute(
            "CREATE TABLE courses (id int PRIMARY KEY, seats_taken int NOT NULL, capacity int NOT NULL);"
            " INSERT INTO courses VALUES (1, 0, 2147483647)"
        )
    finally:
        await conn.close()
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("UPDATE courses SET seats_taken=seats_taken+1 WHERE id=1 AND seats_taken<capacity;\n")
    pgbench = await asyncio.create_subprocess_exec(
        PGBENCH,
        *("-n", "-c", "8", "-j", "2", "-M", "prepared", "-T", "10", "-f", script.name),
        *("-h", db.host, "-p", str(db.port), "-U", db.user, name),
        env={**os.environ, "PGPASSWORD": db.password},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await pgbench.communicate()
    stdout = out.decode()
    os.unlink(script.name)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", stdout)
    assert match, stdout + err.decode()
    return float(match.group(1))


def published(course_id: uuid.UUID, capacity: int = 100) -> CloudEvent[CoursePublished]:
    now = datetime.now(UTC)
    snapshot = open_course(course_id, capacity, now)
    return CloudEvent(CoursePublished(course_id=course_id, course=snapshot, occurred_at=now), source="/bench")


# ------------------------------------------------------------------------------------- allocator


async def allocator(n: int, courses: int) -> tuple[float, int]:
    prefix = await isolated_topics()
    database = await create_database("bench_registration")
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    service = ServiceProcess(
        "registration", database=database, topic_prefix=prefix, env={"OTEL_SDK_DISABLED": "true"}
    )
    pool = await asyncpg.create_pool(DatabaseSettings().dsn(database), min_size=1, max_size=2)
    assert pool is not None
    try:
        await service.wait_ready()
        course_ids = [uuid.uuid4() for _ in range(courses)]
        await produce([published(c) for c in course_ids], prefix)
        while await pool.fetchval("SELECT count(*) FROM course_seats") < courses:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        events = [
            registration(course_ids[i % courses] if courses > 1 else course_ids[0], i) for i in range(n)
        ]
        producing = asyncio.create_task(produce(events, prefix))
        first_at: float | None = None
        first_count = 0
        while True:
            count = await pool.fetchval("SELECT count(*) FROM registrations")
            if count and first_at is None:
                first_at, first_count = time.perf_counter(), count
            if count >= n:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - (first_at or 0)
        await producing
        overbooked = await pool.fetchval("SELECT count(*) FROM course_seats WHERE seats_taken > capacity")
        assert overbooked == 0
        return (n - first_count) / elapsed, await pool.fetchval(
            "SELECT count(*) FROM registrations WHERE status = 'confirmed'"
        )
    finally:
        service.stop()
        await pool.close()
        await delete_created_topics()


# ----------------------------------------------------------------------- S1: the batch transaction


def delivered(event: CloudEvent[Any], topic: str, offset: int) -> Delivery:
    """A record as the batch consumer hands it over: decoded from its Kafka form by the runtime's own
    `parse`, with the trace context of the span the consumer opens for it (tracing on)."""
    record_headers = [(name, value.encode()) for name, value in event.headers().items()]
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    return Delivery(parse(record_headers, event.value()), topic, 0, offset, {"traceparent": traceparent})


async def consumer_transaction(
    pool: asyncpg.Pool, group: str, deliveries: list[Delivery], handler: AnyBatchHandler
) -> None:
    """What the runtime's batch consumer does with a parsed batch: one transaction, the runtime's own inbox
    step and handler call (`apply_first_deliveries`), commit."""
    async with pool.acquire() as conn, conn.transaction():
        await apply_first_deliveries(conn, group, deliveries, handler)


async def allocation_stage(n: int, batch: int) -> tuple[float, int]:
    """S1: registrations/s of the allocator's batch transaction for one hot course of capacity 100."""
    database = await create_database("bench_registration_stage")
    pool = await asyncpg.create_pool(DatabaseSettings().dsn(database), min_size=1, max_size=2)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await migrate(conn, MIGRATIONS)
        handlers = Handlers(CourseBooks())
        course_id = uuid.uuid4()

        async def open_course(conn: Connection, deliveries: Sequence[Delivery]) -> None:
            await handlers.on_course(conn, deliveries[0])

        course_topic = f"bench.{topics.COURSE}"
        await consumer_transaction(
            pool,
            "registration.course-projection",
            [delivered(published(course_id), course_topic, 0)],
            open_course,
        )
        intake = f"bench.{topics.REGISTRATION_INTAKE}"
        deliveries = [delivered(registration(course_id, i), intake, i) for i in range(n)]
        tune_collector()  # the services' collector settings (komponent_runtime.service)
        started = time.perf_counter()
        for first in range(0, n, batch):
            await consumer_transaction(
                pool, "registration.allocation", deliveries[first : first + batch], handlers.allocation
            )
        elapsed = time.perf_counter() - started
        async with pool.acquire() as conn:
            batches = -(-n // batch)
            assert await conn.fetchval("SELECT count(*) FROM registrations") == n
            # One answer per registration, one seat count per batch.
            assert await conn.fetchval("SELECT count(*) FROM outbox") == n + batches
            assert await conn.fetchval("SELECT seats_taken FROM course_seats") == 100
            confirmed = await conn.fetchval("SELECT count(*) FROM registrations WHERE status = 'confirmed'")
        return n / elapsed, confirmed
    finally:
        await pool.close()


async def one_run(n: int, batch: int) -> dict[str, float]:
    relay = await raw_relay(n)
    print(f"P3 raw aiokafka relay (getmany -> send batch -> commit):     {relay:10.0f} records/s")
    t_hot = await pgbench_hot_row()
    print(f"D1 pgbench hot-row conditional update (-c 8 -j 2 -T 10):     {t_hot:10.0f} tps")
    stage, stage_confirmed = await allocation_stage(n, batch)
    print(
        f"S1 allocation transaction, one hot course, in-process:        {stage:10.0f} registrations/s"
        f"  ({stage_confirmed} confirmed, batches of {batch})"
    )
    hot, hot_confirmed = await allocator(n, courses=1)
    print(
        f"allocator service, one hot course (capacity 100):             {hot:10.0f} registrations/s"
        f"  ({hot_confirmed} confirmed)"
    )
    spread, spread_confirmed = await allocator(n, courses=100)
    print(
        f"allocator service, spread over 100 courses (capacity 100):   {spread:10.0f} registrations/s"
        f"  ({spread_confirmed} confirmed)"
    )
    ratios = {"hot / P3": hot / relay, "spread / P3": spread / relay, "S1 / T_hot": stage / t_hot}
    print_ratios(ratios)
    return {"P3": relay, "T_hot": t_hot, "S1": stage, "hot": hot, "spread": spread, **ratios}


def print_ratios(ratios: dict[str, float]) -> None:
    print(f"  hot course / raw relay   = {ratios['hot / P3']:6.3f}   (target >= 0.25)")
    print(f"  spread     / raw relay   = {ratios['spread / P3']:6.3f}   (target >= 0.25)")
    print(
        "      end to end: the service process from Kafka intake to committed seats (parse, allocate, relay)"
    )
    print(f"  S1 stage   / T_hot (D1)  = {ratios['S1 / T_hot']:6.3f}   (target >= 5)")
    print("      the batched allocation transaction (one commit per batch) against one commit per seat")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registrations", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1, help="repeat everything; print medians at the end")
    args = parser.parse_args()
    n = args.registrations
    batch = allocation_batch_max()
    await delete_orphaned_topics()  # topics of earlier runs that died; see komponent_runtime.testing
    await delete_orphaned_databases()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}"
    )
    print(
        f"broker {kafka_bootstrap()}, PostgreSQL {DatabaseSettings().host}:{DatabaseSettings().port},"
        f" {n} registrations per measurement, REGISTRATION_BATCH_MAX {batch}"
    )
    runs = []
    try:
        for run in range(1, args.runs + 1):
            if args.runs > 1:
                print(f"-- run {run} of {args.runs}")
            runs.append(await one_run(n, batch))
    finally:
        # The broker is shared: each measurement creates topics (an allocator's whole topic set is about
        # 100 partitions, each a directory of open files); left behind, they exhaust the broker's files.
        # Each measurement deletes its own; this catches an interrupted one.
        await delete_created_topics()
        await delete_created_databases()  # scratch databases of every stage
    if args.runs > 1:
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(f"-- medians of {args.runs} runs (ratios: median of each run's ratio)")
        for key in ("P3", "T_hot", "S1", "hot", "spread"):
            spread_of = ", ".join(f"{r[key]:.0f}" for r in runs)
            print(f"  {key:7s} {median[key]:8.0f}   ({spread_of})")
        print_ratios(median)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
