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
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    pg.AdminShutdownError,  # a fast shutdown ended the session
    pg.CrashShutdownError,  # another backend crashed: the server ends every session and recovers
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
