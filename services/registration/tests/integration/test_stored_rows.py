"""Migration 0004 (cheaper registration rows) on a real PostgreSQL: every statement the service runs on
`registrations` can still use an index, and the stored form (text since 0004) keeps its JSON through a
substitution's merge and an erasure."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from komponent_contracts.examples import buyer, participant
from komponent_registration.adapters import outbox_rows, repository
from komponent_registration.adapters.repository import CourseBooks, PendingWrite
from komponent_registration.service_layer.erasure import erase_participant
from komponent_runtime import outbox
from komponent_runtime.clock import ManualClock
from komponent_runtime.database import COPY_FROM_ROWS, Connection, migrate
from komponent_runtime.outbox import NOTIFY_CHANNEL, OUTBOX_COLUMNS
from komponent_runtime.testing import wait_until

pytestmark = pytest.mark.infra

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "komponent_registration" / "migrations"

# The WHERE clauses of every statement the service runs on registrations (adapters/repository.py and the
# guard's seats_match_confirmed of migration 0001), except the erasure's lookup by address across all
# courses, which is an admin request and scans (as it did before 0004).
STATEMENTS = {
    "book load (CourseBooks.lock)": (
        "SELECT * FROM registrations WHERE course_id = ANY($1::uuid[])",
        lambda course, registration: ([course],),
    ),
    "guard's confirmed count (seats_match_confirmed)": (
        "SELECT count(*) FROM registrations WHERE course_id = $1 AND status = 'confirmed'",
        lambda course, registration: (course,),
    ),
    "waiting-list rank (registration_status)": (
        "SELECT count(*) FROM registrations w WHERE w.course_id = $1 AND w.status = 'waitlisted'"
        " AND w.queue_number <= 5",
        lambda course, registration: (course,),
    ),
    "admin list (course_registrations)": (
        "SELECT * FROM registrations WHERE course_id = $1 ORDER BY source_offset",
        lambda course, registration: (course,),
    ),
    "by id (registration_status, course_of_registration, registration_details)": (
        "SELECT * FROM registrations WHERE registration_id = ANY($1::uuid[])",
        lambda course, registration: ([registration],),
    ),
}


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
    return pool


async def open_course(conn: Connection) -> uuid.UUID:
    course_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO course_seats (course_id, capacity, starts_at, deadline, status)"
        " VALUES ($1, 0, '2027-03-22 08:00Z', '2027-03-01 11:00Z', 'published')",
        course_id,
    )
    return course_id


async def waitlist(conn: Connection, course_id: uuid.UUID, email: str, details: str) -> uuid.UUID:
    """One waiting-list row, written the way the allocator writes them (CourseBooks.insert_new)."""
    registration_id = uuid.uuid4()
    offset = await conn.fetchval("SELECT count(*) FROM registrations")
    row = (registration_id, course_id, email, "waitlisted", False, None, offset + 1, datetime.now(UTC))
    await CourseBooks().insert_new(conn, [(*row, "intake", 0, offset, None, details)])
    return registration_id


@pytest.mark.parametrize("statement", list(STATEMENTS))
async def test_every_registrations_statement_can_use_an_index(db: asyncpg.Pool, statement: str) -> None:
    query, arguments = STATEMENTS[statement]
    async with db.acquire() as conn:
        course = await open_course(conn)
        registration = await waitlist(conn, course, "anna@k.dk", "{}")
        async with conn.transaction():
            # A plan with a sequential scan when none is allowed means no index fits the statement.
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                r[0] for r in await conn.fetch(f"EXPLAIN {query}", *arguments(course, registration))
            )
    assert "Seq Scan on registrations" not in plan, plan


async def test_stored_form_survives_a_substitution_merge_and_an_erasure(db: asyncpg.Pool) -> None:
    form = {
        "participant": participant().model_dump(mode="json"),
        "buyer": buyer().model_dump(mode="json"),
        "terms_version": "2026-01",
    }
    substitute = {"participant": {**form["participant"], "name": "Kollega Hansen"}}
    async with db.acquire() as conn:
        course = await open_course(conn)
        registration = await waitlist(conn, course, participant().email, json.dumps(form))
        async with conn.transaction():
            await CourseBooks().write_back(conn, PendingWrite(), {registration: json.dumps(substitute)})
        stored = (await repository.registration_details(conn, [registration]))[registration]
        assert stored == {**form, **substitute}

    erased = await erase_participant(db, ManualClock(datetime.now(UTC)), participant().email)
    assert erased.registrations == {course: [registration]}
    async with db.acquire() as conn:
        stored = (await repository.registration_details(conn, [registration]))[registration]
    assert stored["participant"]["name"] != "Kollega Hansen"
    assert stored["terms_version"] == "2026-01"
    assert stored["buyer"]["ean"] == form["buyer"]["ean"]


def _waiting(course: uuid.UUID, count: int) -> tuple[list[tuple[object, ...]], list[outbox.OutboxRow]]:
    """`count` new waiting-list rows as the allocator builds them, with their answers (outbox rows)."""
    at = datetime(2026, 11, 28, 9, 30, 0, 123456, tzinfo=UTC)
    form = '{"participant":{"name":"Æ Ø Å; DROP TABLE x;--"}}'
    registrations: list[tuple[object, ...]] = [
        (
            uuid.uuid4(),
            course,
            f"p{i}@k.dk",
            "waitlisted",
            False,
            None,
            i + 1,
            at,
            "intake",
            2,
            1000 + i,
            None,
            form,
        )
        for i in range(count)
    ]
    rows = outbox_rows.OutboxRows("/registration", at)
    answers = [
        rows.waitlisted(uuid.uuid4(), r[0], course, at, b'{"name":"A"}', i + 1, {"traceparent": f"tp{i}"})
        for i, r in enumerate(registrations)
    ]
    return registrations, answers


async def _assert_stored(
    conn: Connection, registrations: list[tuple[object, ...]], answers: list[outbox.OutboxRow]
) -> None:
    """Every value stored as given, the outbox rows in the given order."""
    stored = await conn.fetch(
        f"SELECT {', '.join(repository._INSERT_COLUMNS)} FROM registrations ORDER BY source_offset"
    )
    assert [tuple(r) for r in stored] == registrations
    published = await conn.fetch(f"SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id")
    assert [(*r[:3], json.loads(r[3]), *r[4:]) for r in published] == [
        (*a[:3], json.loads(a[3]), *a[4:]) for a in answers
    ]


@pytest.mark.parametrize("count", [1, COPY_FROM_ROWS - 1, COPY_FROM_ROWS, 150])
async def test_a_few_rows_and_many_are_stored_alike(db: asyncpg.Pool, count: int) -> None:
    """A few new registrations and their answers go in with one INSERT each, many by COPY: either way
    every value is stored as given, the outbox rows in the given order, and the relay is woken at commit."""
    async with db.acquire() as conn, _relay_wake_ups(db) as woken:
        course = await open_course(conn)
        registrations, answers = _waiting(course, count)
        async with conn.transaction():
            await CourseBooks().insert_new(conn, registrations)
            await outbox_rows.insert(conn, answers)
        await _assert_stored(conn, registrations, answers)
        # One wake-up, whatever the number of rows and statements.
        await wait_until(
            lambda: _is(woken, [NOTIFY_CHANNEL]), what="the relay's wake-up at commit", timeout=5
        )


@contextlib.asynccontextmanager
async def _relay_wake_ups(db: asyncpg.Pool) -> AsyncIterator[list[str]]:
    """The relay's wake-ups (NOTIFY on its channel) while inside, as they arrive."""
    woken: list[str] = []

    def wake(*args: object) -> None:
        woken.append(str(args[2]))  # (connection, pid, channel, payload)

    async with db.acquire() as listener:
        await listener.add_listener(NOTIFY_CHANNEL, wake)
        try:
            yield woken
        finally:
            await listener.remove_listener(NOTIFY_CHANNEL, wake)


def _course_row(stored: asyncpg.Record, *, expected_version: int, waiting: int) -> tuple[object, ...]:
    """A `PendingWrite.courses` row: the stored course with `waiting` more on its list, one version on."""
    return (
        stored["course_id"],
        stored["capacity"],
        stored["seats_taken"],
        stored["starts_at"],
        stored["deadline"],
        stored["status"],
        stored["deadline_passed"],
        stored["next_queue_number"] + waiting,
        stored["version"] + 1,
        expected_version,
        uuid.uuid4(),
    )


@pytest.mark.parametrize("count", [1, COPY_FROM_ROWS - 1])
async def test_a_small_batch_is_written_at_once_as_in_separate_statements(
    db: asyncpg.Pool, count: int
) -> None:
    """`write_at_once`: the new registrations, their answers in order with one wake-up of the relay, and
    the course row with its new version and write token, in one statement."""
    async with db.acquire() as conn, _relay_wake_ups(db) as woken:
        course = await open_course(conn)
        registrations, answers = _waiting(course, count)
        before = await conn.fetchrow("SELECT * FROM course_seats WHERE course_id = $1", course)
        written = _course_row(before, expected_version=before["version"], waiting=count)
        pending = PendingWrite(inserted=registrations, courses=[written], tokens={course: written[-1]})
        async with conn.transaction():
            assert await CourseBooks().write_at_once(conn, pending, answers) == {course}
        await _assert_stored(conn, registrations, answers)
        after = await conn.fetchrow(
            "SELECT next_queue_number, version, write_token FROM course_seats WHERE course_id = $1", course
        )
        assert tuple(after) == (written[7], written[8], written[10])
        await wait_until(lambda: _is(woken, [NOTIFY_CHANNEL]), what="one wake-up of the relay", timeout=5)


async def test_writing_at_once_over_a_course_row_changed_under_its_lock_fails(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        course = await open_course(conn)
        before = await conn.fetchrow("SELECT * FROM course_seats WHERE course_id = $1", course)
        stale = _course_row(before, expected_version=before["version"] - 1, waiting=0)
        with pytest.raises(repository.StaleCourseBook):
            async with conn.transaction():
                await CourseBooks().write_at_once(
                    conn, PendingWrite(courses=[stale], tokens={course: stale[-1]}), []
                )
        assert await conn.fetchval("SELECT version FROM course_seats WHERE course_id = $1", course) == 0


async def _is(value: object, expected: object) -> bool:
    return value == expected
