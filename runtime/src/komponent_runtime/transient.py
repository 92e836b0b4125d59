"""Which failures mean that a backing service is away for now: retried later, never blamed on the event or
request that ran into them (a consumer retries and then hands the record back to Kafka; HTTP answers 503)."""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg import exceptions as pg

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # e.g. the connection closed under a statement
    # A pooled connection PostgreSQL ended while it sat idle: asyncpg read the server's FATAL message and
    # waits for a ReadyForQuery that never comes, so the next statement is refused with "another operation
    # (2) is in progress" before asyncpg sees the socket close. Each such connection in the pool refuses
    # once; a batch that met a few of them in a row was dead-lettered. (Two tasks on one connection, the
    # bug this error could also mean, raise InterfaceError, which is listed above anyway.)
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    pg.AdminShutdownError,  # a fast shutdown ended the session
    pg.CrashShutdownError,  # another backend crashed: the server ends every session and recovers
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
