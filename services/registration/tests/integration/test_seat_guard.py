"""The database as the last guard against overbooking (migration 0001), on a real PostgreSQL; and the
registration → course reference (0005).

Each test is named after the invariant it protects. The domain never asks for any of these writes; they
are what a bug, a stale cache or a zombie consumer after a rebalance would attempt.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from komponent_runtime.database import Connection, migrate

pytestmark = pytest.mark.infra

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "komponent_registration" / "migrations"
_offsets = iter(range(1, 1_000_000))


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
    return pool


async def open_course(conn: Connection, capacity: int, status: str = "published") -> uuid.UUID:
    course_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO course_seats (course_id, capacity, starts_at, deadline, status)"
        " VALUES ($1, $2, '2027-03-22 08:00Z', '2027-03-01 11:00Z', $3)",
        course_id,
        capacity,
        status,
    )
    return course_id


async def insert_registration(
    conn: Connection, course_id: uuid.UUID, email: str, status: str, queue_number: int | None = None
) -> uuid.UUID:
    registration_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO registrations (registration_id, course_id, participant_email, status, queue_number,"
        " received_at, source_topic, source_partition, source_offset)"
        " VALUES ($1, $2, $3, $4, $5, now(), 'registrations', 0, $6)",
        registration_id,
        course_id,
        email,
        status,
        queue_number,
        next(_offsets),
    )
    return registration_id


async def admit(conn: Connection, course_id: uuid.UUID, email: str) -> None:
    """A correct admission: the confirmed row and the counter move together in one transaction."""
    async with conn.transaction():
        await insert_registration(conn, course_id, email, "confirmed")
        await conn.execute(
            "UPDATE course_seats SET seats_taken = seats_taken + 1 WHERE course_id = $1", course_id
        )


async def seats(conn: Connection, course_id: uuid.UUID) -> tuple[int, int]:
    row = await conn.fetchrow(
        "SELECT seats_taken, capacity FROM course_seats WHERE course_id = $1", course_id
    )
    assert row is not None
    return row["seats_taken"], row["capacity"]


async def test_admission_beyond_capacity_is_refused(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        course = await open_course(conn, capacity=2)
        await admit(conn, course, "a@k.dk")
        await admit(conn, course, "b@k.dk")
        with pytest.raises(asyncpg.CheckViolationError, match="overbooking refused"):
            await admit(conn, course, "c@k.dk")
        assert await seats(conn, course) == (2, 2)


async def test_a_seat_cannot_be_given_without_moving_the_guarded_counter(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        course = await open_course(conn, capacity=1)
        await admit(conn, course, "a@k.dk")
        with pytest.raises(asyncpg.CheckViolationError, match="seat counter"):
            async with conn.transaction():
                await insert_registration(conn, course, "b@k.dk", "confirmed")
        confirmed = await conn.fetchval(
            "SELECT count(*) FROM registrations WHERE course_id = $1 AND status = 'confirmed'", course
        )
        assert confirmed == 1


async def test_the_counter_check_runs_once_per_course_and_transaction_and_misses_nothing(
    db: asyncpg.Pool,
) -> None:
    """Migration 0008: a course checked at commit is not counted again in the same transaction, but every
    other course still is, and the mark does not carry over to the session's next transaction."""
    async with db.acquire() as conn:
        good, bad = await open_course(conn, capacity=10), await open_course(conn, capacity=10)
        async with conn.transaction():  # a batch: five seats on one course, one counter update
            for n in range(5):
                await insert_registration(conn, good, f"g{n}@k.dk", "confirmed")
            await conn.execute("UPDATE course_seats SET seats_taken = 5 WHERE course_id = $1", good)
        assert await seats(conn, good) == (5, 10)
        # The good course is checked first (its rows come first) and passes; the bad one is still caught.
        with pytest.raises(asyncpg.CheckViolationError, match=f"seat counter of course {bad}"):
            async with conn.transaction():
                await insert_registration(conn, good, "g5@k.dk", "confirmed")
                await conn.execute("UPDATE course_seats SET seats_taken = 6 WHERE course_id = $1", good)
                await insert_registration(conn, bad, "b0@k.dk", "confirmed")
        # Checked once, the course is on the transaction's list of checked courses, and only there.
        checked = "SELECT current_setting('komponent.seats_checked', true)"
        async with conn.transaction():
            await insert_registration(conn, good, "g5@k.dk", "confirmed")
            await conn.execute("UPDATE course_seats SET seats_taken = 6 WHERE course_id = $1", good)
            await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the queued checks now
            assert await conn.fetchval(checked) == f"{good} "
        assert await conn.fetchval(checked) in ("", None)
        # The same session, a new transaction: the good course is checked again, and caught.
        with pytest.raises(asyncpg.CheckViolationError, match=f"seat counter of course {good}"):
            async with conn.transaction():
                await insert_registration(conn, good, "g6@k.dk", "confirmed")
        assert await seats(conn, good) == (6, 10)


async def test_lowered_capacity_bumps_nobody_and_admits_nobody_until_below(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        course = await open_course(conn, capacity=3)
        for email in ("a@k.dk", "b@k.dk", "c@k.dk"):
            await admit(conn, course, email)
        await conn.execute("UPDATE course_seats SET capacity = 1 WHERE course_id = $1", course)
        assert await seats(conn, course) == (3, 1)

        async with conn.transaction():  # free two seats: 3 -> 1 of capacity 1
            await conn.execute(
                "UPDATE registrations SET status = 'cancelled', cancelled_at = now()"
                " WHERE course_id = $1 AND participant_email IN ('a@k.dk', 'b@k.dk')",
                course,
            )
            await conn.execute(
                "UPDATE course_seats SET seats_taken = seats_taken - 2 WHERE course_id = $1", course
            )
        with pytest.raises(asyncpg.CheckViolationError, match="overbooking refused"):
            await admit(conn, course, "d@k.dk")

        async with conn.transaction():  # the last one leaves and the next is admitted in the same batch
            await conn.execute(
                "UPDATE registrations SET status = 'cancelled', cancelled_at = now()"
                " WHERE course_id = $1 AND participant_email = 'c@k.dk'",
                course,
            )
            await insert_registration(conn, course, "d@k.dk", "confirmed")
        assert await seats(conn, course) == (1, 1)


@pytest.mark.parametrize("status", ["started", "cancelled"])
async def test_no_admission_on_a_course_that_is_not_published(db: asyncpg.Pool, status: str) -> None:
    async with db.acquire() as conn:
        course = await open_course(conn, capacity=5, status=status)
        with pytest.raises(asyncpg.CheckViolationError, match="not published"):
            await admit(conn, course, "a@k.dk")
        assert await seats(conn, course) == (0, 5)


async def test_cancelled_course_holds_no_seats(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        course = await open_course(conn, capacity=5)
        await admit(conn, course, "a@k.dk")
        with pytest.raises(asyncpg.CheckViolationError, match="cancelled_course_holds_no_seats"):
            await conn.execute("UPDATE course_seats SET status = 'cancelled' WHERE course_id = $1", course)


async def test_zombie_writer_after_a_rebalance_cannot_overbook(db: asyncpg.Pool) -> None:
    """Two writers applied a batch to the same version of a one-seat course; only one may win."""
    async with db.acquire() as setup:
        course = await open_course(setup, capacity=1)
    owner_holds_lock = asyncio.Event()
    zombie_ready = asyncio.Event()

    async def owner() -> None:
        async with db.acquire() as conn, conn.transaction():
            await insert_registration(conn, course, "owner@k.dk", "confirmed")
            await conn.execute(
                "UPDATE course_seats SET seats_taken = 1, version = 1 WHERE course_id = $1 AND version = 0",
                course,
            )
            owner_holds_lock.set()
            await zombie_ready.wait()
            await asyncio.sleep(0.2)  # let the zombie block on the course row before we commit

    async def zombie_without_version_check() -> None:
        # It computed seats_taken = 1 from its stale view and writes the absolute value: the counter does
        # not grow (1 -> 1), so only the commit-time count can catch the second confirmed row.
        await owner_holds_lock.wait()
        async with db.acquire() as conn:
            with pytest.raises(asyncpg.CheckViolationError, match="seat counter"):
                async with conn.transaction():
                    await insert_registration(conn, course, "zombie@k.dk", "confirmed")
                    zombie_ready.set()
                    await conn.execute("UPDATE course_seats SET seats_taken = 1 WHERE course_id = $1", course)

    await asyncio.gather(owner(), zombie_without_version_check())

    async with db.acquire() as conn:
        # The repository's version check turns the same situation into 0 rows updated: roll back, reload.
        updated = await conn.fetch(
            "UPDATE course_seats SET seats_taken = 1, version = 1 WHERE course_id = $1 AND version = 0"
            " RETURNING version",
            course,
        )
        assert updated == []
        emails = await conn.fetch(
            "SELECT participant_email FROM registrations WHERE course_id = $1 AND status = 'confirmed'",
            course,
        )
        assert [r["participant_email"] for r in emails] == ["owner@k.dk"]
        assert await seats(conn, course) == (1, 1)


async def test_one_active_registration_per_participant_and_per_partition_record(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        course = await open_course(conn, capacity=1)
        await admit(conn, course, "a@k.dk")
        with pytest.raises(asyncpg.UniqueViolationError, match="one_active_per_participant"):
            await insert_registration(conn, course, "a@k.dk", "waitlisted", queue_number=1)
        async with conn.transaction():
            await conn.execute(
                "UPDATE registrations SET status = 'cancelled', cancelled_at = now() WHERE course_id = $1",
                course,
            )
            await conn.execute("UPDATE course_seats SET seats_taken = 0 WHERE course_id = $1", course)
        await insert_registration(conn, course, "a@k.dk", "waitlisted", queue_number=1)  # may register again
        with pytest.raises(asyncpg.UniqueViolationError, match="one_registration_per_record"):
            await conn.execute(
                "INSERT INTO registrations (registration_id, course_id, participant_email, status, queue_number,"
                " received_at, source_topic, source_partition, source_offset)"
                " SELECT gen_random_uuid(), course_id, 'x@k.dk', 'waitlisted', 2, now(), source_topic,"
                " source_partition, source_offset FROM registrations WHERE course_id = $1 LIMIT 1",
                course,
            )


async def test_waiting_list_entry_is_never_binding_and_emails_are_normalised(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        course = await open_course(conn, capacity=0)
        with pytest.raises(asyncpg.CheckViolationError, match="participant_email"):
            await insert_registration(conn, course, "Anna@K.dk", "waitlisted", queue_number=1)
        registration = await insert_registration(conn, course, "anna@k.dk", "waitlisted", queue_number=1)
        with pytest.raises(asyncpg.CheckViolationError, match="waiting_is_never_binding"):
            await conn.execute(
                "UPDATE registrations SET binding = true, binding_since = now() WHERE registration_id = $1",
                registration,
            )


async def test_idempotency_key_is_done_only_with_a_stored_answer(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await conn.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status) VALUES ('client', 'k1', 'h', 'in_progress')"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO idempotency_keys (scope, key, request_hash, status) VALUES ('client', 'k1', 'h', 'in_progress')"
            )
        with pytest.raises(asyncpg.CheckViolationError, match="done_has_a_response"):
            await conn.execute("UPDATE idempotency_keys SET status = 'done' WHERE key = 'k1'")
        await conn.execute(
            "UPDATE idempotency_keys SET status = 'done', response_status = 201, response = '{}'::jsonb,"
            " completed_at = now() WHERE scope = 'client' AND key = 'k1'"
        )


async def test_a_registration_references_an_existing_course_for_good(db: asyncpg.Pool) -> None:
    """Migration 0005: the reference 0001's foreign key kept, checked per statement."""
    async with db.acquire() as conn:
        course = await open_course(conn, capacity=1)
        other = await open_course(conn, capacity=1)
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown course"):
            await insert_registration(conn, uuid.uuid4(), "a@k.dk", "waitlisted", queue_number=1)
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="unknown course"):
            await conn.copy_records_to_table(
                "registrations",
                columns=[
                    "registration_id",
                    "course_id",
                    "participant_email",
                    "status",
                    "queue_number",
                    "received_at",
                    "source_topic",
                    "source_partition",
                    "source_offset",
                ],
                records=[
                    (
                        uuid.uuid4(),
                        course_id,
                        f"{i}@k.dk",
                        "waitlisted",
                        i + 1,
                        datetime.now(UTC),
                        "t",
                        0,
                        next(_offsets),
                    )
                    for i, course_id in enumerate([course, course, uuid.uuid4(), course])
                ],
            )
        assert await conn.fetchval("SELECT count(*) FROM registrations") == 0
        registration = await insert_registration(conn, course, "a@k.dk", "waitlisted", queue_number=1)
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="stays on its course"):
            await conn.execute(
                "UPDATE registrations SET course_id = $2 WHERE registration_id = $1", registration, other
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="keeps its id"):
            await conn.execute(
                "UPDATE course_seats SET course_id = $2 WHERE course_id = $1", course, uuid.uuid4()
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="never deleted"):
            await conn.execute("DELETE FROM course_seats WHERE course_id = $1", other)
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="never deleted"):
            await conn.execute("TRUNCATE course_seats CASCADE")
        # Updating anything else of a registration or a course is untouched.
        await conn.execute(
            "UPDATE registrations SET binding = false WHERE registration_id = $1", registration
        )
        await conn.execute("UPDATE course_seats SET capacity = 2 WHERE course_id = $1", course)
