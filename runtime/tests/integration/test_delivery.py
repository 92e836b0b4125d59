"""Delivery guarantees of the shared runtime, on the real broker and database, with real processes.

Outbox: nothing from a rolled-back transaction; committed rows survive a dead relay; a relay killed between
publish and mark duplicates a record on the topic yet downstream applies it once. Inbox: three deliveries,
one effect. Dead letters: a poison record is parked with its reason and the next one is processed.
Crash: a consumer SIGKILLed mid-stream and restarted applies every event exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from komponent_contracts import CloudEvent
from komponent_contracts.events import RegistrationReceived
from komponent_contracts.examples import all_examples
from komponent_contracts.topics import dead_letter_topic
from komponent_runtime import outbox
from komponent_runtime.broker import broker_publisher, make_broker
from komponent_runtime.database import migrate
from komponent_runtime.metrics import consumer_lag
from komponent_runtime.outbox import OutboxRelay
from komponent_runtime.settings import KafkaSettings
from komponent_runtime.testing import (
    create_database,
    create_topics,
    headers_of,
    produce,
    read_topic,
    wait_until,
)

pytestmark = pytest.mark.infra
SUPPORT = Path(__file__).parent / "support"
SERVICE = SUPPORT / "effect_service.py"


def registration(course_id: uuid.UUID | None = None) -> CloudEvent[RegistrationReceived]:
    template = next(e for e in all_examples() if isinstance(e, RegistrationReceived))
    data = template.model_copy(
        update={"registration_id": uuid.uuid4(), "course_id": course_id or uuid.uuid4()}
    )
    return CloudEvent(data=data, source="/test")


class ServiceProcess:
    """The effect service as a real OS process."""

    def __init__(
        self,
        db: str,
        topic: str,
        out_topic: str,
        *,
        batch: bool = False,
        delay: float = 0.0,
        crash_after_publish: bool = False,
        purpose: str = "effects",
        env: dict[str, str] | None = None,
    ) -> None:
        args = [
            sys.executable,
            str(SERVICE),
            "--db",
            db,
            "--topic",
            topic,
            "--out-topic",
            out_topic,
            "--handler-delay",
            str(delay),
            "--purpose",
            purpose,
        ]
        if batch:
            args.append("--batch")
        env = {**os.environ, **(env or {}), **({"CRASH_AFTER_PUBLISH": "1"} if crash_after_publish else {})}
        self.group = f"effect-service.{purpose}"
        self.log = tempfile.NamedTemporaryFile(prefix="effect-service-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        assert line.strip() == "ready" or crash_after_publish, f"effect service did not start: {line!r}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for p in started:
        p.stop()


async def effects(pool: asyncpg.Pool) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM effects")
    return (row["n"], row["d"]) if row else (0, 0)


async def migrated(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")


async def test_rolled_back_transaction_publishes_nothing(pool: asyncpg.Pool, unique_topic) -> None:  # type: ignore[no-untyped-def]
    topic = unique_topic("outbox-rollback")
    await create_topics(topic)
    await migrated(pool)
    rolled_back, committed = registration(), registration()
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, [rolled_back], topic=topic)
            raise RuntimeError("the domain change failed")
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, [committed], topic=topic)

    broker = make_broker(KafkaSettings(), client_id="test")
    await broker.start()
    try:
        relay = OutboxRelay(pool, broker_publisher(broker))
        assert await relay.publish_pending() == 1
        assert await relay.publish_pending() == 0
    finally:
        await broker.stop()
    records = await read_topic(topic, expect=1)
    assert [headers_of(r)["ce_id"] for r in records] == [str(committed.id)]


async def test_rows_committed_while_the_relay_was_dead_are_delivered_after_restart(
    pool: asyncpg.Pool,
    database: str,
    unique_topic,
    processes,  # type: ignore[no-untyped-def]
) -> None:
    topic, out = unique_topic("in"), unique_topic("out")
    await create_topics(topic, out)
    await migrated(pool)
    waiting = [registration() for _ in range(5)]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, waiting, topic=out)  # committed; no relay alive
    processes.append(ServiceProcess(database, topic, out))  # the relay comes back
    records = await read_topic(out, expect=5)
    assert sorted(headers_of(r)["ce_id"] for r in records) == sorted(str(e.id) for e in waiting)


async def test_relay_killed_between_publish_and_delete_duplicates_on_topic_but_applies_once_downstream(
    pool: asyncpg.Pool,
    database: str,
    unique_topic,
    processes,  # type: ignore[no-untyped-def]
) -> None:
    topic, out, sink = unique_topic("in"), unique_topic("out"), unique_topic("sink")
    await create_topics(topic, out, sink)
    await migrated(pool)
    events = [registration() for _ in range(5)]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, events, topic=out)

    crashing = ServiceProcess(database, topic, out, crash_after_publish=True)
    assert crashing.proc.wait(timeout=60) == -signal.SIGKILL  # died right after Kafka acknowledged
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 5
    processes.append(ServiceProcess(database, topic, out))  # restarted relay publishes all five again

    records = await read_topic(out, expect=6)
    ids = [headers_of(r)["ce_id"] for r in records]
    assert len(ids) == 6 and len(set(ids)) == 5, "exactly one record duplicated on the topic"

    downstream_db = await create_database()
    processes.append(ServiceProcess(downstream_db, out, sink, purpose="downstream"))
    downstream = await asyncpg.create_pool(_dsn(downstream_db))
    try:
        await wait_until(lambda: _has(downstream, 5), what="downstream effects")
        await asyncio.sleep(1.0)  # a duplicate would land now
        assert await effects(downstream) == (5, 5)
    finally:
        await downstream.close()


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
async def test_same_event_delivered_three_times_has_one_effect(
    pool: asyncpg.Pool,
    database: str,
    unique_topic,
    processes,
    batch: bool,  # type: ignore[no-untyped-def]
) -> None:
    topic, out = unique_topic("in"), unique_topic("out")
    await create_topics(topic, out)
    course = uuid.uuid4()
    twice_more, other = registration(course), registration(course)
    await produce(topic, [twice_more, twice_more, twice_more, other])
    processes.append(ServiceProcess(database, topic, out, batch=batch))
    await wait_until(lambda: _has(pool, 2), what="two effects")
    records = await read_topic(out, expect=2)
    await asyncio.sleep(0.5)
    assert await effects(pool) == (2, 2)
    assert len(records) == 2


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
async def test_poison_records_go_to_the_dead_letter_topic_and_the_next_is_processed(
    pool: asyncpg.Pool,
    database: str,
    unique_topic,
    processes,
    batch: bool,  # type: ignore[no-untyped-def]
) -> None:
    topic, out = unique_topic("in"), unique_topic("out")
    await create_topics(topic, out)
    good = registration()
    base = {k: v for k, v in good.headers().items()}
    poison = [
        (good.key, b"{not json", {**base, "ce_id": str(uuid.uuid4())}),
        (
            good.key,
            good.value(),
            {**base, "ce_id": str(uuid.uuid4()), "ce_type": "dk.komponent.unheard-of.v1"},
        ),
        (good.key, good.value(), {"content-type": "application/json"}),
    ]
    await produce(topic, [], extra=poison)
    await produce(topic, [good])
    processes.append(ServiceProcess(database, topic, out, batch=batch))
    await wait_until(lambda: _has(pool, 1), what="the good record's effect")
    dead = await read_topic(dead_letter_topic(topic), expect=3)
    reasons = sorted(headers_of(r)["dlq_reason"] for r in dead)
    assert reasons == ["missing_header", "schema_violation", "unknown_type"]
    for record in dead:
        h = headers_of(record)
        assert h["dlq_source_topic"] == topic and h["dlq_consumer_group"] == "effect-service.effects"
        assert h["dlq_detail"]
    assert await effects(pool) == (1, 1)


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
async def test_consumer_killed_mid_stream_and_restarted_applies_every_event_exactly_once(
    pool: asyncpg.Pool,
    database: str,
    unique_topic,
    processes,
    batch: bool,  # type: ignore[no-untyped-def]
) -> None:
    topic, out = unique_topic("in"), unique_topic("out")
    await create_topics(topic, out)
    events = [registration(uuid.uuid4()) for _ in range(2000)]
    await produce(topic, events)
    first = ServiceProcess(database, topic, out, batch=batch, delay=0.05 if batch else 0.002)
    await wait_until(lambda: _has(pool, 200), what="some progress before the kill")
    first.kill()
    applied_before_restart = (await effects(pool))[0]
    assert applied_before_restart < 2000, "the kill must land mid-stream"
    processes.append(ServiceProcess(database, topic, out, batch=batch))
    await wait_until(lambda: _has(pool, 2000), timeout=120, what="all events applied")
    await asyncio.sleep(1.0)
    assert await effects(pool) == (2000, 2000)


async def _has(pool: asyncpg.Pool, n: int) -> bool:
    exists = await pool.fetchval("SELECT to_regclass('effects') IS NOT NULL")
    return bool(exists) and (await effects(pool))[1] >= n


def _dsn(db: str) -> str:
    from komponent_runtime.settings import DatabaseSettings

    return DatabaseSettings().dsn(db)


async def test_dead_letter_replayed_after_the_fix_is_applied_once(
    pool: asyncpg.Pool,
    database: str,
    unique_topic,
    processes,  # type: ignore[no-untyped-def]
) -> None:
    from komponent_runtime.dead_letters import read_all, replay

    topic, out = unique_topic("in"), unique_topic("out")
    await create_topics(topic, out)
    unlucky, fine = registration(), registration()
    buggy = ServiceProcess(database, topic, out, env={"REJECT_COURSE": str(unlucky.data.course_id)})
    processes.append(buggy)
    await produce(topic, [unlucky, fine])
    await wait_until(lambda: _has(pool, 1), what="the unaffected record applied")
    dead = await read_topic(dead_letter_topic(topic), expect=1)
    assert headers_of(dead[0])["dlq_reason"] == "rejected_by_handler"
    assert headers_of(dead[0])["ce_id"] == str(unlucky.id)

    buggy.stop()
    processes.append(ServiceProcess(database, topic, out))  # the fix is deployed
    bootstrap = KafkaSettings().bootstrap_servers
    assert [d.headers["ce_id"] for d in await replay(bootstrap, dead_letter_topic(topic))] == [
        str(unlucky.id)
    ]
    await wait_until(lambda: _has(pool, 2), what="the replayed record applied")

    assert await replay(bootstrap, dead_letter_topic(topic)) == []  # replaying again sends nothing new
    letters = await read_all(bootstrap, dead_letter_topic(topic))
    await produce(topic, [unlucky])  # and even a second copy of the event changes nothing
    await asyncio.sleep(1.5)
    assert len(letters) == 1
    assert await effects(pool) == (2, 2)


async def test_offsets_are_committed_to_the_end_once_the_consumer_goes_idle(
    pool: asyncpg.Pool,
    database: str,
    unique_topic,
    processes,  # type: ignore[no-untyped-def]
) -> None:
    """Commits are lazy (once per interval, consuming.OffsetCommits) but never left behind: when the stream
    stops, the group's committed offsets reach the end of every partition while the consumer keeps running."""
    topic, out = unique_topic("in"), unique_topic("out")
    await create_topics(topic, out)
    await produce(topic, [registration(uuid.uuid4()) for _ in range(300)])
    processes.append(
        ServiceProcess(
            database,
            topic,
            out,
            batch=True,
            purpose=f"lazy-{uuid.uuid4().hex[:6]}",
            env={"KAFKA_COMMIT_INTERVAL_MS": "60000"},
        )
    )
    await wait_until(lambda: _has(pool, 300), what="all events applied")
    group = processes[-1].group

    async def committed_to_the_end() -> bool:
        lag = await consumer_lag(KafkaSettings().bootstrap_servers, [group])
        return bool(lag) and all(n == 0 for (_, t, _), n in lag.items() if t == topic)

    await wait_until(committed_to_the_end, timeout=15, what="offsets committed to the end while idle")
