"""The outbox relay's single leader, on the real broker and database: two relays on one database publish
every row once and in order (only the advisory-lock holder publishes; rows are not locked), and a relay whose
lock connection dies stops publishing until it holds the lock again."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from komponent_contracts import CloudEvent
from komponent_contracts.events import RegistrationReceived
from komponent_contracts.examples import all_examples
from komponent_runtime import outbox
from komponent_runtime.broker import broker_publisher, make_broker
from komponent_runtime.database import RUNTIME_MIGRATIONS, create_pool, migrate
from komponent_runtime.outbox import OutboxRelay
from komponent_runtime.settings import DatabaseSettings, KafkaSettings
from komponent_runtime.testing import create_topics, headers_of, read_topic, wait_until

from .test_delivery import SUPPORT

pytestmark = pytest.mark.infra
# pg_locks is cluster-wide: only this test's database (other tests and services use the same lock id).
_THIS_DATABASES_RELAY_LOCK = (
    "locktype = 'advisory' AND objid = $1"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def registrations(course_id: uuid.UUID, n: int) -> list[CloudEvent[RegistrationReceived]]:
    template = next(e for e in all_examples() if isinstance(e, RegistrationReceived))
    return [
        CloudEvent(
            data=template.model_copy(update={"registration_id": uuid.uuid4(), "course_id": course_id}),
            source="/test",
        )
        for _ in range(n)
    ]


async def _enqueue_in_many_transactions(
    pool: asyncpg.Pool, events: list[CloudEvent[RegistrationReceived]], topic: str
) -> None:
    for i in range(0, len(events), 7):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, events[i : i + 7], topic=topic)
        await asyncio.sleep(0)


async def test_two_relays_on_one_database_publish_every_row_once_in_order(
    pool: asyncpg.Pool, database: str, unique_topic
) -> None:  # type: ignore[no-untyped-def]
    topic = unique_topic("relay-pair")
    await create_topics(topic, partitions=1, with_dead_letters=False)
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")
    events = registrations(uuid.uuid4(), 700)
    broker = make_broker(KafkaSettings(), client_id="test-relays")
    await broker.start()
    pools = [await create_pool(DatabaseSettings().dsn(database)) for _ in range(2)]
    relays = [OutboxRelay(p, broker_publisher(broker), batch_size=50, poll_seconds=0.05) for p in pools]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await _enqueue_in_many_transactions(pool, events, topic)
        records = await read_topic(topic, expect=len(events), timeout=60)
        await asyncio.sleep(0.5)  # a second publisher would show up as extra records by now
        records = await read_topic(topic, expect=len(events), timeout=5)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for p in pools:
            await p.close()
        await broker.stop()
    assert [headers_of(r)["ce_id"] for r in records] == [str(e.id) for e in events]
    assert sorted(r.published for r in relays) == [0, len(events)], "one relay leads, the other waits"


async def test_a_relay_that_lost_its_lock_connection_stops_until_it_leads_again(
    pool: asyncpg.Pool, database: str, unique_topic
) -> None:  # type: ignore[no-untyped-def]
    topic = unique_topic("relay-lock")
    await create_topics(topic, partitions=1, with_dead_letters=False)
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")
    broker = make_broker(KafkaSettings(), client_id="test-relay-lock")
    await broker.start()
    relay_pool = await create_pool(DatabaseSettings().dsn(database))
    relay = OutboxRelay(relay_pool, broker_publisher(broker), poll_seconds=0.05)
    task = asyncio.create_task(relay.run())
    try:
        first, second = registrations(uuid.uuid4(), 3), registrations(uuid.uuid4(), 3)
        await _enqueue_in_many_transactions(pool, first, topic)
        await wait_until(lambda: _published(relay, 3), what="the first rows published")
        # Kill the session that holds the relay's advisory lock (as a network cut or PostgreSQL would).
        killed = await pool.fetchval(
            f"SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE {_THIS_DATABASES_RELAY_LOCK}",
            outbox._RELAY_LOCK,
        )
        assert killed == 1
        await _enqueue_in_many_transactions(pool, second, topic)
        records = await read_topic(topic, expect=6, timeout=30)
        leaders = await pool.fetchval(
            f"SELECT count(*) FROM pg_locks WHERE {_THIS_DATABASES_RELAY_LOCK} AND granted",
            outbox._RELAY_LOCK,
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay_pool.close()
        await broker.stop()
    assert [headers_of(r)["ce_id"] for r in records] == [str(e.id) for e in first + second]
    assert leaders == 1, "the relay took the lock again before publishing the second rows"


async def _published(relay: OutboxRelay, n: int) -> bool:
    return relay.published >= n


async def test_deleting_published_rows_skips_the_wal_flush_for_that_statement_only(
    database: str,
    unique_topic,  # type: ignore[no-untyped-def]
) -> None:
    """The delete is committed without waiting for the disk (a lost delete only re-publishes); the pooled
    connection's own setting is untouched, so every other commit on it stays durable."""
    topic = unique_topic("relay-async-delete")
    await create_topics(topic, partitions=1, with_dead_letters=False)
    pool = await create_pool(DatabaseSettings().dsn(database), min_size=1, max_size=1)
    broker = make_broker(KafkaSettings(), client_id="test-relay-delete")
    await broker.start()
    try:
        async with pool.acquire() as conn:
            await migrate(conn, SUPPORT / "migrations")
        await _enqueue_in_many_transactions(pool, registrations(uuid.uuid4(), 3), topic)
        assert await OutboxRelay(pool, broker_publisher(broker)).publish_pending() == 3
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
        assert await pool.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await broker.stop()
        await pool.close()


async def test_the_upgrade_to_delete_on_publish_keeps_only_the_rows_still_to_publish(
    database: str,
) -> None:
    """Before migration 0004 the relay marked rows published and kept them an hour. The migration deletes
    the marked rows and keeps the unpublished ones, which the new relay then publishes in id order."""
    upgrade = RUNTIME_MIGRATIONS / "0004_outbox_delete_on_publish.sql"
    conn = await asyncpg.connect(DatabaseSettings().dsn(database))
    try:
        for earlier in sorted(RUNTIME_MIGRATIONS.glob("000[123]_*.sql")):
            await conn.execute(earlier.read_text(encoding="utf-8"))
        async with conn.transaction():
            await outbox.enqueue(conn, registrations(uuid.uuid4(), 5), topic="never-published-here")
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM outbox ORDER BY id")]
        await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1)", ids[:2])
        await conn.execute(upgrade.read_text(encoding="utf-8"))
        assert [r["id"] for r in await conn.fetch("SELECT id FROM outbox ORDER BY id")] == ids[2:]
        assert not await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'outbox' AND column_name = 'published_at'"
        )
    finally:
        await conn.close()


async def test_each_round_deletes_the_previous_rounds_rows_and_the_last_round_is_deleted_alone(
    pool: asyncpg.Pool, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds that follow each other take one statement each: a round's query deletes the rows the round
    before published. The last round's rows are deleted on their own once no round follows, and a relay
    that stops deletes what it published."""
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")
    await _enqueue_in_many_transactions(pool, registrations(uuid.uuid4(), 12), "not-on-kafka")
    in_table_at_each_round: list[int] = []
    published: list[str] = []

    async def publish(
        topic: str, key: bytes, value: bytes, headers: dict[str, str]
    ) -> asyncio.Future[object]:
        if len(published) % 5 == 0:  # the first record of a round (batches of 5)
            in_table_at_each_round.append(await pool.fetchval("SELECT count(*) FROM outbox"))
        published.append(headers["ce_id"])
        return _acknowledged()

    async with _running_relay(database, publish) as (relay, task):
        await wait_until(lambda: _published(relay, 12), what="every row published")
        # 12, then 7 (round 1's five deleted by round 2's query), then 2: nothing deleted on its own.
        assert in_table_at_each_round == [12, 7, 2]
        await asyncio.sleep(outbox.DELETE_ALONE_AFTER_SECONDS + 0.2)
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0

        # Stopped while its last round waits to be deleted: it deletes it before it goes.
        monkeypatch.setattr(outbox, "DELETE_ALONE_AFTER_SECONDS", 60.0)
        more = registrations(uuid.uuid4(), 3)
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, more, topic="not-on-kafka")
        await wait_until(lambda: _published(relay, 15), what="three more rows published")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert len(published) == len(set(published)) == 15


async def test_the_relay_vacuums_the_outbox_after_deleting_enough_rows(
    pool: asyncpg.Pool, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each round walks the primary key over the deleted rows' entries until a vacuum removes them, and
    autovacuum comes at most once a minute: the relay vacuums the table itself every so many deletes."""
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")
    monkeypatch.setattr(outbox, "VACUUM_AFTER_DELETED_ROWS", 5)

    async def vacuums() -> int:
        return int(
            await pool.fetchval("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'")
        )

    before = await vacuums()
    await _enqueue_in_many_transactions(pool, registrations(uuid.uuid4(), 12), "not-on-kafka")

    async def publish(
        topic: str, key: bytes, value: bytes, headers: dict[str, str]
    ) -> asyncio.Future[object]:
        return _acknowledged()

    async with _running_relay(database, publish) as (relay, _):
        await wait_until(lambda: _published(relay, 12), what="every row published")
        # Round 2 deleted round 1's five rows, and the relay vacuumed; round 3's query deleted five more.
        await wait_until(lambda: _vacuumed_since(vacuums, before), what="the relay's vacuum")


async def _vacuumed_since(vacuums: Callable[[], Awaitable[int]], before: int) -> bool:
    return await vacuums() > before


def _acknowledged() -> asyncio.Future[object]:
    """What a publisher returns for a record the broker has acknowledged."""
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


@contextlib.asynccontextmanager
async def _running_relay(
    database: str, publish: outbox.Publisher
) -> AsyncIterator[tuple[OutboxRelay, asyncio.Task[None]]]:
    """A relay leading on its own pool, in batches of five, stopped (if the test has not) on the way out."""
    relay_pool = await create_pool(DatabaseSettings().dsn(database))
    relay = OutboxRelay(relay_pool, publish, batch_size=5, poll_seconds=5)
    task = asyncio.create_task(relay.run())
    try:
        yield relay, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay_pool.close()
