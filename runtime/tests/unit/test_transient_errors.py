"""A consumer retries a batch that ran into PostgreSQL shutting down or recovering from a crash, instead of
blaming (and dead-lettering) the records. A fast shutdown or another backend's crash ends the session with
an error from the server, not a broken socket; a pooled connection the server ended while idle refuses its
next statement with asyncpg's InternalClientError."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from asyncpg import exceptions as pg
from komponent_runtime.consuming import EventConsumer, RetryPolicy


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, record: Any, reason: str, detail: str) -> None:
        self.sent.append(reason)


def record() -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, 7, 0, 0, b"k", b"{}", None, 1, 2, [])


@pytest.mark.parametrize(
    "error",
    [
        pg.AdminShutdownError("terminating connection due to administrator command"),
        pg.CrashShutdownError("terminating connection because of crash of another server process"),
        pg.CannotConnectNowError("the database system is in recovery mode"),
        ConnectionResetError(104, "Connection reset by peer"),
        # A pooled connection the server ended while idle (asyncpg's protocol state 2: consuming an error).
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ],
    ids=type,
)
async def test_a_batch_that_met_postgresql_going_away_is_retried_not_dead_lettered(error: Exception) -> None:
    consumer = EventConsumer(
        None,  # type: ignore[arg-type]  # never published to: no dead letter expected
        None,  # type: ignore[arg-type]
        service="test",
        purpose="transient",
        topic="t",
        retry=RetryPolicy(first_backoff=0.001, max_backoff=0.001),
    )
    dead_letters = RecordingDeadLetters()
    consumer.dead_letters = dead_letters  # type: ignore[assignment]
    attempts = 0

    async def apply() -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 4:  # more than the attempts any other error gets
            raise error

    await consumer._with_retries(apply, [record()], isolate=True)
    assert attempts == 5
    assert dead_letters.sent == []
