"""Wake a polling loop as soon as another transaction says there is work (LISTEN/NOTIFY), with the poll
interval as the fallback when a notification is missed (connection lost, listener not yet attached)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from komponent_runtime.database import Connection, holds_session_state, is_open


async def notify(conn: Connection, channel: str) -> None:
    """Inside the transaction that made work: delivered to listeners when it commits."""
    await conn.execute("SELECT pg_notify($1, '')", channel)


class Wakeup:
    def __init__(self, pool: asyncpg.Pool, channel: str) -> None:
        self._pool = pool
        self._channel = channel
        self._event = asyncio.Event()
        self._conn: PoolConnectionProxy[asyncpg.Record] | None = None

    async def wait(self, timeout: float) -> None:
        """Return when notified or after `timeout` seconds, whichever comes first."""
        if not is_open(self._conn):
            await self.close()
            with contextlib.suppress(Exception):
                self._conn = await self._pool.acquire()
                holds_session_state(self._conn)
                await self._conn.add_listener(self._channel, self._on_notify)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()

    def _on_notify(self, *_: object) -> None:
        self._event.set()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.remove_listener(self._channel, self._on_notify)
                await self._pool.release(self._conn)
            self._conn = None
