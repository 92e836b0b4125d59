"""Connection pool and the SQL migrations runner.

Migrations are plain numbered SQL files. The runtime's own (outbox, inbox) run first, then the service's.
A transaction-scoped advisory lock lets several replicas start at once without racing each other.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)
RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"
# Rows from which COPY beats one INSERT … unnest: COPY waits for the server's go-ahead, a second round trip
# (~150 µs of CPU on both sides on our 2-core boxes), which its cheaper rows make up for from about 64 on.
COPY_FROM_ROWS = 64
_MIGRATION_LOCK = 7_146_201  # arbitrary constant shared by every runner

# A plain connection or one borrowed from a pool: every query helper accepts both.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy


def array_params(first: int, types: Sequence[str]) -> str:
    """`$first::type[], ...`: one array parameter per column, numbered from `first`, for an `unnest(...)`
    of rows (`columns`). Numbered, so several such writes fit in one statement (data-modifying CTEs)."""
    return ", ".join(f"${n}::{t}[]" for n, t in enumerate(types, start=first))


def columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one list per column: the arguments of `array_params`."""
    return [list(column) for column in zip(*rows, strict=True)]


def is_open(conn: Connection | None) -> bool:
    """Whether a connection held across awaits (a listener's, a sender's) can still be used. When a pooled
    connection closes (a PostgreSQL restart ends every session), asyncpg hands its slot back to the pool
    and detaches the proxy, whose every method then raises InterfaceError, `is_closed()` included."""
    if conn is None:
        return False
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


# Connections that took session state (LISTEN, a session-level advisory lock). asyncpg resets every
# connection on its way back to the pool with a query (UNLISTEN, unlock, RESET ALL: one round trip per
# acquire, a few per cent of a busy service's CPU); our code keeps no other session state (transactions
# use SET LOCAL), so only the connections marked here pay for it.
_SESSION_STATE: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()


def holds_session_state(conn: Connection) -> None:
    """Mark a pooled connection so the server-side reset runs when it is released."""
    raw = conn._con if isinstance(conn, PoolConnectionProxy) else conn  # type: ignore[attr-defined]
    _SESSION_STATE.add(raw)


async def _reset_session_state(conn: asyncpg.Connection) -> None:
    # asyncpg has already rolled back any open transaction and dropped client-side listeners.
    if conn in _SESSION_STATE:
        _SESSION_STATE.discard(conn)
        if query := conn.get_reset_query():
            await conn.execute(query)


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, command_timeout=30, reset=_reset_session_state
    )
    assert pool is not None
    return pool


def _migration_files(*folders: Path) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for folder in folders:
        prefix = "runtime" if folder == RUNTIME_MIGRATIONS else folder.parent.name
        files += [(f"{prefix}/{p.name}", p) for p in sorted(folder.glob("*.sql"))]
    return files


async def migrate(conn: Connection, service_migrations: Path) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, path in _migration_files(RUNTIME_MIGRATIONS, service_migrations):
            if name in done:
                continue
            await conn.execute(path.read_text(encoding="utf-8"))
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied_now.append(name)
            log.info("migration applied", extra={"migration": name})
    return applied_now


async def pending_migrations(conn: Connection, service_migrations: Path) -> list[str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")} if exists else set()
    return [name for name, _ in _migration_files(RUNTIME_MIGRATIONS, service_migrations) if name not in done]
