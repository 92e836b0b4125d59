"""LISTEN/NOTIFY wake-ups on the real database: a notification committed by another connection is visible
through `notified()` until the next wait consumes it; a rolled-back one never arrives."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from komponent_runtime.wakeup import Wakeup, notify

pytestmark = pytest.mark.infra


async def test_a_committed_notification_wakes_the_waiter_and_is_reported_until_the_next_wait(
    pool: asyncpg.Pool,
) -> None:
    wakeup = Wakeup(pool, "test_work")
    try:
        await wakeup.wait(0.01)  # attaches the listener
        assert not wakeup.notified()
        async with pool.acquire() as conn, conn.transaction():
            await notify(conn, "test_work")
        for _ in range(200):
            if wakeup.notified():
                break
            await asyncio.sleep(0.01)
        assert wakeup.notified()
        await wakeup.wait(0.01)
        assert not wakeup.notified(), "the wait consumed the notification"
    finally:
        await wakeup.close()


async def test_a_rolled_back_notification_is_never_delivered(pool: asyncpg.Pool) -> None:
    wakeup = Wakeup(pool, "test_work")
    try:
        await wakeup.wait(0.01)
        with pytest.raises(RuntimeError):
            async with pool.acquire() as conn, conn.transaction():
                await notify(conn, "test_work")
                raise RuntimeError("the work was not committed")
        await asyncio.sleep(0.3)
        assert not wakeup.notified()
    finally:
        await wakeup.close()
