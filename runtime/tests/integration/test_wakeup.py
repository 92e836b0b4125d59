"""A Wakeup listens again on a new connection after PostgreSQL ended its session (as a restart does)."""

from __future__ import annotations

import asyncio

import asyncpg
from komponent_runtime.database import is_open
from komponent_runtime.wakeup import Wakeup, notify

CHANNEL = "wakeup_test"


async def end_every_other_session(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


async def woken_by_a_notify(pool: asyncpg.Pool, wakeup: Wakeup) -> bool:
    """True when `wait` returned because of a NOTIFY (long before its 10 s timeout)."""
    waiting = asyncio.create_task(wakeup.wait(10))
    await asyncio.sleep(0.3)  # listening by now
    async with pool.acquire() as conn:
        await notify(conn, CHANNEL)
    try:
        await asyncio.wait_for(waiting, 3)
    except TimeoutError:
        return False
    return True


async def test_a_wakeup_whose_session_ended_listens_again_on_a_new_connection(pool: asyncpg.Pool) -> None:
    wakeup = Wakeup(pool, CHANNEL)
    try:
        assert await woken_by_a_notify(pool, wakeup)
        listening = wakeup._conn
        await end_every_other_session(pool)
        await asyncio.sleep(0.2)  # asyncpg sees the connection close and detaches its proxy
        assert not is_open(listening)
        await wakeup.wait(0.05)  # used to raise InterfaceError here, and at every wait after
        assert wakeup._conn is not listening and is_open(wakeup._conn)
        assert await woken_by_a_notify(pool, wakeup)
    finally:
        await wakeup.close()


async def test_is_open_of_a_connection_closed_under_its_pool_proxy(pool: asyncpg.Pool) -> None:
    assert not is_open(None)
    conn = await pool.acquire()
    assert is_open(conn)
    await end_every_other_session(pool)
    await asyncio.sleep(0.2)
    assert not is_open(conn)  # the detached proxy raises InterfaceError from is_closed() itself
    await pool.release(conn)
