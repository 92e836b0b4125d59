"""The inbox is forgotten by age, on the real database: rows applied longer ago than the keep time go, in
batches, the recent ones stay and still stop a redelivery; two pruners at once never wait on each other."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import pytest
from komponent_runtime import inbox
from komponent_runtime.database import migrate
from komponent_runtime.testing import wait_until

from .test_delivery import SUPPORT

pytestmark = pytest.mark.infra

DAY = 24 * 3600.0


async def _applied(pool: asyncpg.Pool, consumer: str, n: int, days_ago: float) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    async with pool.acquire() as conn:
        assert await inbox.first_deliveries(conn, consumer, ids) == set(ids)
        await conn.execute(
            "UPDATE inbox SET applied_at = now() - make_interval(secs => $1) WHERE event_id = ANY($2)",
            days_ago * DAY,
            ids,
        )
    return ids


async def _remaining(pool: asyncpg.Pool) -> set[uuid.UUID]:
    return {r["event_id"] for r in await pool.fetch("SELECT event_id FROM inbox")}


async def test_rows_applied_longer_ago_than_the_keep_time_are_forgotten_in_batches(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")
    old = await _applied(pool, "billing.registrations", 7, days_ago=31)
    old += await _applied(pool, "billing.invoice-run", 2, days_ago=400)
    kept = await _applied(pool, "billing.registrations", 3, days_ago=29)
    kept += await _applied(pool, "billing.invoice-run", 2, days_ago=0)

    # A batch of 4 takes three statements for 9 rows; each deletes only rows past the keep time.
    assert await inbox.prune(pool, keep_seconds=30 * DAY, batch=4) == 9
    assert await _remaining(pool) == set(kept)
    assert await inbox.prune(pool, keep_seconds=30 * DAY, batch=4) == 0

    async with pool.acquire() as conn:
        # Still remembered: a redelivery of a kept event is a repeat and is dropped.
        assert await inbox.first_deliveries(conn, "billing.registrations", kept[:3]) == set()
        # Forgotten: the event would be applied again (see the module docstring for why that is safe).
        assert await inbox.first_delivery(conn, "billing.registrations", old[0])


async def test_two_pruners_at_once_forget_every_old_row_once(pool: asyncpg.Pool) -> None:
    """Replicas of a service prune the same database: each skips the rows the other is deleting."""
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")
    await _applied(pool, "notifications.registration-emails", 500, days_ago=45)
    kept = await _applied(pool, "notifications.registration-emails", 5, days_ago=1)

    counts = await asyncio.gather(
        inbox.prune(pool, keep_seconds=30 * DAY, batch=50),
        inbox.prune(pool, keep_seconds=30 * DAY, batch=50),
    )
    assert sum(counts) == 500
    assert await _remaining(pool) == set(kept)


async def test_old_rows_can_be_found_through_the_applied_at_index(pool: asyncpg.Pool) -> None:
    """Pruning can read the BRIN index on applied_at (migration 0003) instead of the whole table."""
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT event_id, consumer FROM inbox WHERE applied_at < now() - interval '30 days'"
            )
        )
    assert "inbox_applied_at" in plan


async def test_the_service_loop_prunes_every_period(pool: asyncpg.Pool) -> None:
    """What `serve` runs next to the relay: rows that age past the keep time while it runs are pruned."""
    async with pool.acquire() as conn:
        await migrate(conn, SUPPORT / "migrations")
    loop = asyncio.create_task(inbox.prune_forever(pool, keep_seconds=30 * DAY, every_seconds=0.05))
    try:
        await _applied(pool, "catalogue.seats-taken", 3, days_ago=31)
        await wait_until(lambda: _empty(pool), timeout=10, what="first pruning")
        await _applied(pool, "catalogue.seats-taken", 2, days_ago=60)
        await wait_until(lambda: _empty(pool), timeout=10, what="second pruning")
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def _empty(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT count(*) FROM inbox") == 0
