"""The send ledger's SQL on PostgreSQL: planning wakes the sender in the statement that adds the rows."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import asyncpg
import pytest
from komponent_contracts.examples import course
from komponent_notifications.adapters import repository as repo
from komponent_notifications.app import MIGRATIONS
from komponent_notifications.service_layer.sender import LEDGER_CHANNEL
from komponent_runtime.database import migrate
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import wait_until

from .test_sender_final_dot import confirmations

pytestmark = pytest.mark.infra


async def test_adding_rows_wakes_the_sender_at_commit_and_a_replay_adds_and_wakes_nothing(
    pool: asyncpg.Pool, database: str
) -> None:
    planned = [
        (p, {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
        for p in confirmations(3)
    ]
    wake_ups: list[Any] = []
    listener = await asyncpg.connect(DatabaseSettings().dsn(database))
    await listener.add_listener(LEDGER_CHANNEL, lambda *note: wake_ups.append(note))
    try:
        async with pool.acquire() as conn:
            await migrate(conn, MIGRATIONS)
            await repo.save_course(conn, course())
            async with conn.transaction():
                added = await repo.add_to_ledger_traced(
                    conn, planned, "komponent.dk", notify_channel=LEDGER_CHANNEL
                )
            assert added == sorted(await conn.fetchval("SELECT array_agg(id) FROM send_ledger"))
            assert len(added) == 3

            async def woken() -> bool:
                return len(wake_ups) == 1

            await wait_until(woken, what="the sender's wake-up")
            async with conn.transaction():
                again = await repo.add_to_ledger_traced(
                    conn, planned, "komponent.dk", notify_channel=LEDGER_CHANNEL
                )
            assert again == []
            # Without a channel a new row wakes no one.
            async with conn.transaction():
                unannounced = [(p, {}) for p in confirmations(1)]
                assert len(await repo.add_to_ledger_traced(conn, unannounced, "komponent.dk")) == 1
            stored = await conn.fetch("SELECT recipient, traceparent FROM send_ledger ORDER BY id")
        # A notification after the replay's commit would have arrived before this one.
        await listener.execute(f"NOTIFY {LEDGER_CHANNEL}, 'marker'")

        async def marker() -> bool:
            return len(wake_ups) == 2

        await wait_until(marker, what="the marker notification")
        assert wake_ups[1][3] == "marker"
    finally:
        await listener.close()
    assert [r["recipient"] for r in stored[:3]] == [p.recipient for p, _ in planned]
    assert {r["traceparent"] for r in stored[:3]} == {planned[0][1]["traceparent"]}


async def test_a_claim_brings_the_courses_of_its_rows_and_leaves_unprojected_ones_out(
    pool: asyncpg.Pool,
) -> None:
    known = course()
    unknown_id = uuid.uuid4()
    first, second, third = confirmations(3)
    planned = [first, dataclasses.replace(second, course_id=unknown_id), third]
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.save_course(conn, known)
        await repo.save_course(conn, known)  # an update: revision 1
        await repo.cancel_course(conn, known.course_id, "For få tilmeldte")  # revision 2
        await repo.add_to_ledger(conn, planned, "komponent.dk")
        claimed = await repo.claim_due(conn, 10, 60)
        rows, courses = claimed.rows, claimed.courses
        again = await repo.claim_due(conn, 10, 60)  # leased: nothing to claim
    assert [r["recipient"] for r in rows] == [p.recipient for p in planned]  # ledger order
    assert [r["attempts"] for r in rows] == [1, 1, 1]
    assert set(courses) == {known.course_id}
    assert courses[known.course_id].snapshot == known
    assert courses[known.course_id].revision == 2
    assert courses[known.course_id].cancel_reason == "For få tilmeldte"
    assert not claimed.queued_behind
    assert again == repo.Claimed([], {}, False)


async def test_a_claim_says_when_a_recipient_has_an_email_queued_behind_the_one_claimed(
    pool: asyncpg.Pool,
) -> None:
    first, second, other = confirmations(3)
    same = dataclasses.replace(second, recipient=first.recipient)
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.add_to_ledger(conn, [first, same, other], "komponent.dk")
        heads = await repo.claim_due(conn, 10, 60)
        assert [r["recipient"] for r in heads.rows] == [first.recipient, other.recipient]
        assert heads.queued_behind
        await repo.mark_sent(conn, [(heads.rows[0]["id"], 250, "ok")])
        behind = await repo.claim_due(conn, 10, 60)
    assert [r["email_id"] for r in behind.rows] == [same.key.message_uuid]
    assert not behind.queued_behind
