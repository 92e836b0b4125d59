"""Allocation throughput of the registration service, against two baselines measured in the same run.

    PGPORT=55433 .venv/bin/python services/registration/bench/allocation_bench.py [--registrations 10000]

Measures, on the same broker and database (performance.md §7):
- P3  raw aiokafka relay: consume `getmany` -> send the batch to another topic -> commit, no logic;
- D1  pgbench of the single conditional seat update (the hot-row ceiling `T_hot`),
      `-c 8 -j 2 -M prepared -T 10` on a scratch database;
- the allocator (the real service process: batch consumer, seat book, guards, outbox, relay) for one hot
  course and for registrations spread over 100 courses. Registrations are produced faster than the
  allocator takes them; the rate is counted from the first allocated registration to the last.

Prints registrations/s and the ratios to the targets: allocator >= 0.25 x raw relay, hot course batched
>= 5 x T_hot. Not a test: numbers depend on the machine; run it and read them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from komponent_contracts import CloudEvent, Event
from komponent_contracts.events import CoursePublished, CourseSession, Participant, RegistrationReceived
from komponent_contracts.examples import buyer, course
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import (
    ServiceProcess,
    create_database,
    isolated_topics,
    kafka_bootstrap,
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


async def produce(events: list[CloudEvent[Event]], prefix: str = "", topic: str | None = None) -> None:
    await produce_many(events, topic=topic, prefix=prefix)


# ------------------------------------------------------------------------------------ P3: raw relay


async def raw_relay(n: int) -> float:
    stem = f"bench.relay.{uuid.uuid4().hex[:8]}"
    source, sink = f"{stem}.in", f"{stem}.out"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(t, num_partitions=12, replication_factor=1) for t in (source, sink)]
        )
    finally:
        await admin.close()
    course_ids = [uuid.uuid4() for _ in range(100)]
    await produce([registration(random.choice(course_ids), i) for i in range(n)], topic=source)

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=kafka_bootstrap(),
        group_id=f"{stem}.relay",
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
        now = datetime.now(UTC)
        course_ids = [uuid.uuid4() for _ in range(courses)]
        snapshot = course().model_copy(
            update={
                "capacity": 100,
                "sessions": (
                    CourseSession(
                        starts_at=now + timedelta(days=60), ends_at=now + timedelta(days=60, hours=7)
                    ),
                ),
                "registration_deadline": now + timedelta(days=30),
            }
        )
        await produce(
            [
                CloudEvent(
                    CoursePublished(
                        course_id=c, course=snapshot.model_copy(update={"course_id": c}), occurred_at=now
                    ),
                    source="/bench",
                )
                for c in course_ids
            ],
            prefix,
        )
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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registrations", type=int, default=10_000)
    args = parser.parse_args()
    n = args.registrations
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}"
    )
    print(
        f"broker {kafka_bootstrap()}, PostgreSQL {DatabaseSettings().host}:{DatabaseSettings().port}, {n} registrations per run"
    )

    relay = await raw_relay(n)
    print(f"P3 raw aiokafka relay (getmany -> send batch -> commit):   {relay:10.0f} records/s")
    t_hot = await pgbench_hot_row()
    print(f"D1 pgbench hot-row conditional update (-c 8 -j 2 -T 10):   {t_hot:10.0f} tps")
    hot, hot_confirmed = await allocator(n, courses=1)
    print(
        f"allocator, one hot course (capacity 100):                 {hot:10.0f} registrations/s  ({hot_confirmed} confirmed)"
    )
    spread, spread_confirmed = await allocator(n, courses=100)
    print(
        f"allocator, spread over 100 courses (capacity 100 each):   {spread:10.0f} registrations/s  ({spread_confirmed} confirmed)"
    )
    print()
    print(f"hot course / raw relay     = {hot / relay:6.3f}   (target >= 0.25)")
    print(f"spread     / raw relay     = {spread / relay:6.3f}   (target >= 0.25)")
    print(f"hot course / T_hot (D1)    = {hot / t_hot:6.3f}   (target >= 5)")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
