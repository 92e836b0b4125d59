"""The pool skips asyncpg's reset round trip, except for connections that took session state."""

from __future__ import annotations

from komponent_runtime.database import create_pool, holds_session_state
from komponent_runtime.settings import DatabaseSettings

OWN_ADVISORY_LOCKS = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"


async def test_marked_connection_is_reset_and_unmarked_one_keeps_its_session(database: str) -> None:
    pool = await create_pool(DatabaseSettings().dsn(database), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            holds_session_state(conn)
            await conn.execute("LISTEN some_channel")
            assert await conn.fetchval("SELECT pg_try_advisory_lock(42)")
        async with pool.acquire() as conn:  # the same (only) connection, reset on release
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
            assert await conn.fetchval(OWN_ADVISORY_LOCKS) == 0
            # Not marked: nothing is sent on release (this session setting would otherwise be reset).
            await conn.execute("SET application_name = 'kept'")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "kept"
    finally:
        await pool.close()
