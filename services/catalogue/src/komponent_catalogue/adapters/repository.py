"""asyncpg persistence for courses, their timers and the seats-taken projection.

Every function takes the caller's connection: the service layer owns the transaction, so a course
write, its timer changes and its outbox rows commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from komponent_runtime.database import Connection

from komponent_catalogue.adapters import details_json
from komponent_catalogue.domain.course import Course, CourseStatus, Schedule, Session
from komponent_catalogue.domain.timers import Timer, TimerKind, TimerPlan, TimerRecord
from komponent_catalogue.domain.wall_clock import normalise

_COURSE_COLUMNS = (
    "course_id, status, details, capacity, registration_deadline, invoice_lead_days, reminder_lead_days"
)


@dataclass(frozen=True)
class DueTimer:
    """A claimed timer row with what its event needs to carry."""

    timer_id: int
    timer: Timer
    course_starts_at: datetime


async def get(conn: Connection, course_id: UUID, *, for_update: bool = False) -> Course | None:
    """Load a course; `for_update` locks its row so concurrent commands on one course run one by one."""
    row = await conn.fetchrow(
        f"SELECT {_COURSE_COLUMNS} FROM courses WHERE course_id = $1" + (" FOR UPDATE" if for_update else ""),
        course_id,
    )
    if row is None:
        return None
    sessions = await conn.fetch(
        "SELECT course_id, starts_at, ends_at FROM course_sessions WHERE course_id = $1 ORDER BY position",
        course_id,
    )
    return _course(row, sessions)


async def add(conn: Connection, course: Course) -> bool:
    """Insert a new course; False when one with this id exists already (nothing written then)."""
    inserted = await conn.fetchval(
        "INSERT INTO courses (course_id, status, title, details, price_excl_vat_ore, vat_rate_basis_points,"
        " capacity, starts_at, ends_at, registration_deadline, invoice_lead_days, reminder_lead_days)"
        " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (course_id) DO NOTHING RETURNING true",
        *_course_values(course),
    )
    if inserted:
        await _write_sessions(conn, course)
    return bool(inserted)


async def save(conn: Connection, course: Course) -> None:
    """Overwrite an existing course (the caller holds its row lock) and bump its version."""
    await conn.execute(
        "UPDATE courses SET status = $2, title = $3, details = $4::jsonb, price_excl_vat_ore = $5,"
        " vat_rate_basis_points = $6, capacity = $7, starts_at = $8, ends_at = $9,"
        " registration_deadline = $10, invoice_lead_days = $11, reminder_lead_days = $12,"
        " version = version + 1, updated_at = now() WHERE course_id = $1",
        *_course_values(course),
    )
    await conn.execute("DELETE FROM course_sessions WHERE course_id = $1", course.course_id)
    await _write_sessions(conn, course)


async def list_published(
    conn: Connection,
    *,
    starting_after: datetime,
    text: str | None = None,
    city: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Course]:
    """Published courses that start after `starting_after`, soonest first, optionally filtered."""
    rows = await conn.fetch(
        f"SELECT {_COURSE_COLUMNS} FROM courses WHERE status = 'published' AND starts_at > $1"
        # Search the whole page content: titles, introductions, programme and instructors alike.
        " AND ($2::text IS NULL OR title ILIKE '%' || $2 || '%' OR details::text ILIKE '%' || $2 || '%')"
        " AND ($3::text IS NULL OR lower(details #>> '{venue,address,city}') = lower($3))"
        " ORDER BY starts_at, course_id LIMIT $4 OFFSET $5",
        starting_after,
        _escape_like(text) if text else None,
        city,
        limit,
        offset,
    )
    ids = [r["course_id"] for r in rows]
    sessions = await conn.fetch(
        "SELECT course_id, starts_at, ends_at FROM course_sessions WHERE course_id = ANY($1::uuid[])"
        " ORDER BY course_id, position",
        ids,
    )
    by_course: dict[UUID, list[asyncpg.Record]] = {}
    for s in sessions:
        by_course.setdefault(s["course_id"], []).append(s)
    return [_course(r, by_course.get(r["course_id"], [])) for r in rows]


# -- timers ---------------------------------------------------------------------------------------------


async def timers(conn: Connection, course_id: UUID) -> list[TimerRecord]:
    """A course's timers, locked: a scheduler holding one mid-fire makes us wait for its outcome."""
    rows = await conn.fetch(
        "SELECT kind, due_at, fired_at FROM course_timers WHERE course_id = $1 ORDER BY timer_id FOR UPDATE",
        course_id,
    )
    return [TimerRecord(Timer(course_id, TimerKind(r["kind"]), r["due_at"]), r["fired_at"]) for r in rows]


async def apply_timer_plan(conn: Connection, plan: TimerPlan) -> None:
    for timer in plan.remove:
        await conn.execute(
            "DELETE FROM course_timers WHERE event_id = $1 AND fired_at IS NULL", timer.event_id
        )
    for move in plan.move:
        moved = await conn.fetchval(
            "UPDATE course_timers SET due_at = $2, event_id = $3"
            " WHERE event_id = $1 AND fired_at IS NULL RETURNING true",
            move.old.event_id,
            move.new.due_at,
            move.new.event_id,
        )
        if not moved:  # it fired in the meantime: the new due time is a timer of its own
            await _insert_timer(conn, move.new)
    for timer in plan.add:
        await _insert_timer(conn, timer)


async def _insert_timer(conn: Connection, timer: Timer) -> None:
    # ON CONFLICT: an event id already stored (pending or fired) is the same timer; never a second one.
    await conn.execute(
        "INSERT INTO course_timers (course_id, kind, due_at, event_id) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (event_id) DO NOTHING",
        timer.course_id,
        timer.kind.value,
        timer.due_at,
        timer.event_id,
    )


async def claim_due_timers(conn: Connection, now: datetime, limit: int) -> list[DueTimer]:
    """Lock up to `limit` pending timers due at `now`, oldest first; rows another scheduler holds are
    skipped, so concurrent schedulers split the work instead of firing the same timer."""
    rows = await conn.fetch(
        "SELECT t.timer_id, t.course_id, t.kind, t.due_at, c.starts_at FROM course_timers t"
        " JOIN courses c USING (course_id)"
        " WHERE t.fired_at IS NULL AND t.due_at <= $1"
        " ORDER BY t.due_at, t.timer_id LIMIT $2 FOR UPDATE OF t SKIP LOCKED",
        now,
        limit,
    )
    return [
        DueTimer(r["timer_id"], Timer(r["course_id"], TimerKind(r["kind"]), r["due_at"]), r["starts_at"])
        for r in rows
    ]


async def mark_fired(conn: Connection, timer_ids: Sequence[int], fired_at: datetime) -> None:
    await conn.execute(
        "UPDATE course_timers SET status = 'fired', fired_at = $2,"
        " lateness_seconds = greatest(extract(epoch FROM $2 - due_at), 0)"
        " WHERE timer_id = ANY($1::bigint[]) AND fired_at IS NULL",
        list(timer_ids),
        fired_at,
    )


# -- seats-taken projection -----------------------------------------------------------------------------


async def seats_taken(conn: Connection, course_id: UUID) -> int:
    value = await conn.fetchval("SELECT seats_taken FROM course_seats_taken WHERE course_id = $1", course_id)
    return int(value or 0)


async def seats_taken_of(conn: Connection, course_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = await conn.fetch(
        "SELECT course_id, seats_taken FROM course_seats_taken WHERE course_id = ANY($1::uuid[])",
        list(course_ids),
    )
    return {r["course_id"]: r["seats_taken"] for r in rows}


@dataclass(frozen=True)
class SeatCount:
    """One course's count as registration reported it in a CourseSeatsChanged."""

    course_id: UUID
    seats_taken: int
    capacity: int
    waiting_list_length: int
    version: int
    event_id: UUID
    event_at: datetime


async def record_seats(conn: Connection, counts: Sequence[SeatCount]) -> int:
    """Store each count that is newer than the one we have, in one statement; return how many were.

    At most one count per course (a row cannot be changed twice by one INSERT ... ON CONFLICT)."""
    if not counts:
        return 0
    applied: int = await conn.fetchval(
        "WITH applied AS (INSERT INTO course_seats_taken AS s (course_id, seats_taken, capacity,"
        " waiting_list_length, version, last_event_id, last_event_at)"
        " SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::bigint[], $6::uuid[],"
        " $7::timestamptz[])"
        " ON CONFLICT (course_id) DO UPDATE SET seats_taken = EXCLUDED.seats_taken,"
        " capacity = EXCLUDED.capacity, waiting_list_length = EXCLUDED.waiting_list_length,"
        " version = EXCLUDED.version, last_event_id = EXCLUDED.last_event_id,"
        " last_event_at = EXCLUDED.last_event_at, updated_at = now()"
        " WHERE s.version < EXCLUDED.version RETURNING 1) SELECT count(*) FROM applied",
        [c.course_id for c in counts],
        [c.seats_taken for c in counts],
        [c.capacity for c in counts],
        [c.waiting_list_length for c in counts],
        [c.version for c in counts],
        [c.event_id for c in counts],
        [c.event_at for c in counts],
    )
    return applied


# -- mapping --------------------------------------------------------------------------------------------


def _course_values(course: Course) -> tuple[object, ...]:
    details = course.details
    return (
        course.course_id,
        course.status.value,
        details.title,
        details_json.dumps(details),
        details.price.excl_vat_ore,
        details.price.vat_rate_basis_points,
        course.capacity,
        course.schedule.starts_at,
        course.schedule.ends_at,
        course.schedule.registration_deadline,
        course.invoice_lead_days,
        course.reminder_lead_days,
    )


async def _write_sessions(conn: Connection, course: Course) -> None:
    await conn.executemany(
        "INSERT INTO course_sessions (course_id, position, starts_at, ends_at) VALUES ($1, $2, $3, $4)",
        [(course.course_id, i, s.starts_at, s.ends_at) for i, s in enumerate(course.schedule.sessions)],
    )


def _course(r: asyncpg.Record, sessions: Sequence[asyncpg.Record]) -> Course:
    # The database gives UTC; the domain keeps course times on the Copenhagen clock.
    return Course(
        course_id=r["course_id"],
        details=details_json.loads(r["details"]),
        schedule=Schedule(
            sessions=tuple(Session(normalise(s["starts_at"]), normalise(s["ends_at"])) for s in sessions),
            registration_deadline=normalise(r["registration_deadline"]),
        ),
        capacity=r["capacity"],
        invoice_lead_days=r["invoice_lead_days"],
        reminder_lead_days=r["reminder_lead_days"],
        status=CourseStatus(r["status"]),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
