"""A PreparedBatchHandler on the real database: its prepare step runs while the batch's inbox insert is in
flight, yet the handler sees exactly what a plain batch handler would (first deliveries only, in partition
order), and a prepare step that raises leaves the connection idle for the rollback."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from komponent_contracts import CloudEvent
from komponent_contracts.events import RegistrationCancellationRequested
from komponent_runtime.consuming import (
    OVERLAP_FROM,
    Delivery,
    PermanentError,
    PreparedBatchHandler,
    apply_first_deliveries,
)
from komponent_runtime.database import Connection, migrate

pytestmark = pytest.mark.infra
GROUP = "test.prepared"


def delivery(offset: int) -> Delivery:
    request = RegistrationCancellationRequested(
        registration_id=uuid.uuid4(), course_id=uuid.uuid4(), requested_at=datetime.now(UTC)
    )
    return Delivery(CloudEvent(request, source="/test"), "test.intake", 0, offset, {})


class Recorder:
    def __init__(self) -> None:
        self.prepared: list[int] = []
        self.applied: list[tuple[int, uuid.UUID]] = []

    def prepare(self, d: Delivery) -> tuple[int, uuid.UUID]:
        self.prepared.append(d.offset)
        return d.offset, d.event.id

    async def apply(self, conn: Connection, items: Sequence[tuple[int, uuid.UUID]]) -> None:
        # The connection is free again: the inbox insert has completed.
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", GROUP) >= len(items)
        self.applied.extend(items)


@pytest.fixture
async def db(pool: asyncpg.Pool, tmp_path: Path) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await migrate(conn, tmp_path)  # the runtime's own tables (inbox) only
    return pool


@pytest.mark.parametrize("others", [0, OVERLAP_FROM], ids=["in turn", "beside the inbox insert"])
async def test_prepared_items_of_first_deliveries_reach_apply_in_order(db: asyncpg.Pool, others: int) -> None:
    earlier = delivery(0)
    recorder = Recorder()
    handler = PreparedBatchHandler(recorder.prepare, recorder.apply)
    async with db.acquire() as conn, conn.transaction():
        assert await apply_first_deliveries(conn, GROUP, [earlier], handler) == 1

    a, b, c = delivery(1), delivery(2), delivery(3)
    rest = [delivery(4 + i) for i in range(others)]
    batch = [a, earlier, b, a, c, *rest]  # one applied before, one twice within the batch
    recorder = Recorder()
    handler = PreparedBatchHandler(recorder.prepare, recorder.apply)
    async with db.acquire() as conn, conn.transaction():
        assert await apply_first_deliveries(conn, GROUP, batch, handler) == 3 + others

    assert recorder.prepared == [1, 0, 2, 1, 3, *(d.offset for d in rest)]  # all of them, duplicates too
    assert recorder.applied == [(1, a.event.id), (2, b.event.id), (3, c.event.id)] + [
        (d.offset, d.event.id) for d in rest
    ]
    recorded = {
        r["event_id"] for r in await db.fetch("SELECT event_id FROM inbox WHERE consumer = $1", GROUP)
    }
    assert recorded == {earlier.event.id, a.event.id, b.event.id, c.event.id} | {d.event.id for d in rest}


@pytest.mark.parametrize("size", [3, OVERLAP_FROM], ids=["in turn", "beside the inbox insert"])
async def test_prepare_that_raises_rolls_back_cleanly(db: asyncpg.Pool, size: int) -> None:
    def refuse(d: Delivery) -> Delivery:
        if d.offset == 2:
            raise PermanentError("not for this handler")
        return d

    async def apply(conn: Connection, items: Sequence[Delivery]) -> None:
        raise AssertionError("apply must not run when prepare failed")

    batch = [delivery(1 + i) for i in range(size)]
    async with db.acquire() as conn:
        with pytest.raises(PermanentError):
            async with conn.transaction():
                await apply_first_deliveries(conn, GROUP, batch, PreparedBatchHandler(refuse, apply))
        # Rolled back (the insert had completed, nothing in flight), and the connection is usable.
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", GROUP) == 0
