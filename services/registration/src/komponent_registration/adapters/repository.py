"""asyncpg access to the seat books: lock, load, write back one batch, and the read model.

Every function runs on the caller's connection inside the caller's transaction; none commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from komponent_runtime import outbox
from komponent_runtime.database import COPY_FROM_ROWS, Connection, array_params, columns

from komponent_registration.domain.course_book import CourseBook, CourseState, CourseStatus
from komponent_registration.domain.registration import Registration, RegistrationStatus


class StaleCourseBook(Exception):
    """The course row moved on under a writer that held its lock: never expected, so the batch rolls back."""


@dataclass(slots=True)
class Source:
    """Where a registration's intake record sits: the FCFS audit trail. (Not frozen: one per registration
    in a rush, and a frozen dataclass costs several times more to build.)"""

    topic: str
    partition: int
    offset: int


_COURSE_COLUMNS = (
    "course_id, capacity, seats_taken, starts_at, deadline, status, deadline_passed, next_queue_number,"
    " version, write_token"
)
_REGISTRATION_COLUMNS = (
    "registration_id, course_id, participant_email, status, binding, binding_since, queue_number,"
    " received_at, source_offset, cancelled_at"
)
_INSERT_COLUMNS = [
    "registration_id",
    "course_id",
    "participant_email",
    "status",
    "binding",
    "binding_since",
    "queue_number",
    "received_at",
    "source_topic",
    "source_partition",
    "source_offset",
    "cancelled_at",
    "details",
]
_INSERT_TYPES = (
    "uuid", "uuid", "text", "text", "bool", "timestamptz", "bigint", "timestamptz", "text", "int", "bigint",
    "timestamptz", "text",
)  # fmt: skip
_COURSE_UPDATE_TYPES = (
    "uuid", "int", "int", "timestamptz", "timestamptz", "text", "bool", "bigint", "bigint", "bigint", "uuid",
)  # fmt: skip


def _insert_registrations(first: int) -> str:
    """New registration rows (`PendingWrite.inserted`) as arrays numbered from `$first`."""
    return (
        f"INSERT INTO registrations ({', '.join(_INSERT_COLUMNS)})"
        f" SELECT * FROM unnest({array_params(first, _INSERT_TYPES)})"
    )


def _update_courses(first: int) -> str:
    """Course rows (`PendingWrite.courses`) as arrays numbered from `$first`, each guarded by the version
    it was read with; returns the ids of the rows written."""
    return (
        "UPDATE course_seats c SET capacity = u.capacity, seats_taken = u.seats_taken,"
        " starts_at = u.starts_at, deadline = u.deadline, status = u.status,"
        " deadline_passed = u.deadline_passed, next_queue_number = u.next_queue_number,"
        " version = u.version, write_token = u.write_token"
        f" FROM unnest({array_params(first, _COURSE_UPDATE_TYPES)})"
        " AS u(course_id, capacity, seats_taken, starts_at, deadline, status, deadline_passed,"
        " next_queue_number, version, expected_version, write_token)"
        " WHERE c.course_id = u.course_id AND c.version = u.expected_version RETURNING c.course_id"
    )


_INSERT_FEW = _insert_registrations(1)


def _state(row: asyncpg.Record) -> CourseState:
    return CourseState(
        course_id=row["course_id"],
        capacity=row["capacity"],
        seats_taken=row["seats_taken"],
        starts_at=row["starts_at"],
        deadline=row["deadline"],
        status=CourseStatus(row["status"]),
        deadline_passed=row["deadline_passed"],
        next_queue_number=row["next_queue_number"],
        version=row["version"],
    )


def _registration(row: asyncpg.Record) -> Registration:
    return Registration(
        registration_id=row["registration_id"],
        course_id=row["course_id"],
        participant_email=row["participant_email"],
        status=RegistrationStatus(row["status"]),
        binding=row["binding"],
        # The FCFS order within the course: the partition offset of its intake record.
        received_seq=row["source_offset"],
        received_at=row["received_at"],
        queue_number=row["queue_number"],
        binding_since=row["binding_since"],
        cancelled_at=row["cancelled_at"],
    )


def _inserted_row(
    r: Registration, sources: Mapping[UUID, Source], forms: Mapping[UUID, str]
) -> tuple[Any, ...]:
    source = sources[r.registration_id]
    return (
        r.registration_id,
        r.course_id,
        r.participant_email,
        r.status.value,
        r.binding,
        r.binding_since,
        r.queue_number,
        r.received_at,
        source.topic,
        source.partition,
        source.offset,
        r.cancelled_at,
        forms.get(r.registration_id, "{}"),
    )


def _updated_row(r: Registration) -> tuple[Any, ...]:
    return (
        r.registration_id,
        r.participant_email,
        r.status.value,
        r.binding,
        r.binding_since,
        r.queue_number,
        r.cancelled_at,
    )


@dataclass
class PendingWrite:
    """One batch's changes as rows, between `CourseBooks.pending` and `write_back`."""

    inserted: list[tuple[Any, ...]] = field(default_factory=list)
    updated: list[tuple[Any, ...]] = field(default_factory=list)
    courses: list[tuple[Any, ...]] = field(default_factory=list)
    tokens: dict[UUID, UUID] = field(default_factory=dict)  # the write_token each changed course gets
    changed: list[CourseBook] = field(default_factory=list)
    unchanged: list[CourseBook] = field(default_factory=list)


class CourseBooks:
    """The seat books of the courses this process writes, cached between batches.

    While a process owns a course's partition it is the only writer, so reloading every waiting-list row
    for every batch would be wasted work (a hot course's list grows to thousands). A cached book is reused
    only when the locked course row still carries the `write_token` this process wrote with it; anything
    else (a rolled-back batch, another instance after a rebalance, a manual fix) forces a reload.

    At most `max_cached` books are kept: courses end, and a book holds every registration of its course.
    A batch takes its books out of the cache and puts them back at the end, so the cache is in order of
    last use and the least recently used book is the one dropped; a dropped book is reloaded from its
    rows if its course is ever written again.
    """

    def __init__(self, max_cached: int = 1000) -> None:
        if max_cached < 1:
            raise ValueError("max_cached must be at least 1")
        self._max_cached = max_cached
        self._cache: dict[UUID, tuple[UUID, CourseBook]] = {}
        self._locked_tokens: dict[UUID, UUID | None] = {}

    @property
    def cached(self) -> list[UUID]:
        """The courses whose books are cached, least recently used first."""
        return list(self._cache)

    def _remember(self, course_id: UUID, token: UUID, book: CourseBook) -> None:
        self._cache[course_id] = (token, book)
        while len(self._cache) > self._max_cached:
            del self._cache[next(iter(self._cache))]

    async def lock(self, conn: Connection, course_ids: Iterable[UUID]) -> dict[UUID, CourseBook]:
        """Lock the course rows (`FOR UPDATE`, in id order so two writers never deadlock) and return the
        books of the courses that exist, each with every registration of its course, cancelled ones
        included: a request may name any of them (a repeated cancellation, a registration re-sent under
        a new event id), and a book that knows them all needs no lookup per request. A cached book is
        complete too: it was loaded complete or opened empty, and everything since went through it."""
        rows = await conn.fetch(
            f"SELECT {_COURSE_COLUMNS} FROM course_seats WHERE course_id = ANY($1::uuid[])"
            " ORDER BY course_id FOR UPDATE",
            list(set(course_ids)),
        )
        books: dict[UUID, CourseBook] = {}
        reload: set[UUID] = set()
        for row in rows:
            self._locked_tokens[row["course_id"]] = row["write_token"]
            cached = self._cache.pop(row["course_id"], None)
            if cached is not None and row["write_token"] is not None and cached[0] == row["write_token"]:
                books[row["course_id"]] = cached[1]
            else:
                reload.add(row["course_id"])
        if reload:
            registrations = await conn.fetch(
                f"SELECT {_REGISTRATION_COLUMNS} FROM registrations WHERE course_id = ANY($1::uuid[])",
                list(reload),
            )
            by_course: dict[UUID, list[Registration]] = {cid: [] for cid in reload}
            for row in registrations:
                by_course[row["course_id"]].append(_registration(row))
            for row in rows:
                if row["course_id"] in reload:
                    books[row["course_id"]] = CourseBook(_state(row), by_course[row["course_id"]])
        return books

    async def add(self, conn: Connection, book: CourseBook) -> None:
        """Insert the course row of a newly published course (CourseBook.open)."""
        state = book.state()
        token = uuid.uuid4()
        await conn.execute(
            f"INSERT INTO course_seats ({_COURSE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            state.course_id,
            state.capacity,
            state.seats_taken,
            state.starts_at,
            state.deadline,
            state.status.value,
            state.deadline_passed,
            state.next_queue_number,
            state.version,
            token,
        )
        book.mark_persisted()
        self._remember(state.course_id, token, book)

    def pending(
        self, books: Iterable[CourseBook], sources: Mapping[UUID, Source], forms: Mapping[UUID, str]
    ) -> PendingWrite:
        """What a batch changed in every book (since the last `taken_rows`), as rows (no I/O). `sources`
        and `forms` (the stored form, a JSON object) are those of the batch's new registrations."""
        pending = PendingWrite()
        for book in books:
            changes = book.pending_changes()
            if changes.is_empty:
                pending.unchanged.append(book)
                continue
            pending.changed.append(book)
            pending.inserted += [_inserted_row(r, sources, forms) for r in changes.inserted]
            pending.updated += [_updated_row(r) for r in changes.updated]
            s = changes.course
            token = uuid.uuid4()
            pending.tokens[s.course_id] = token
            pending.courses.append(
                (
                    s.course_id,
                    s.capacity,
                    s.seats_taken,
                    s.starts_at,
                    s.deadline,
                    s.status.value,
                    s.deadline_passed,
                    s.next_queue_number,
                    s.version,
                    changes.expected_version,
                    token,
                )
            )
        return pending

    def taken_rows(
        self, books: Iterable[CourseBook], sources: Mapping[UUID, Source], forms: Mapping[UUID, str]
    ) -> PendingWrite:
        """The registration rows the books changed so far (`CourseBook.take_registration_changes`), for
        `write_changed` and `insert_new` while the batch goes on; the course rows are left to `pending`."""
        taken = PendingWrite()
        for book in books:
            inserted, updated = book.take_registration_changes()
            taken.inserted += [_inserted_row(r, sources, forms) for r in inserted]
            taken.updated += [_updated_row(r) for r in updated]
        return taken

    async def insert_new(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """New registrations (rows of `PendingWrite.inserted`): a few with one INSERT, many with one COPY
        (`COPY_FROM_ROWS`)."""
        if not rows:
            return
        if len(rows) < COPY_FROM_ROWS:
            await conn.execute(_INSERT_FEW, *columns(rows))
            return
        await conn.copy_records_to_table("registrations", records=rows, columns=_INSERT_COLUMNS)

    async def write_changed(self, conn: Connection, pending: PendingWrite) -> None:
        """The batch's changed registrations (rows of earlier batches), one pipelined statement. Before
        `insert_new`: a participant who cancels and registers again in one batch must leave the
        one-active-per-participant index before the new registration enters it (checked per row)."""
        if pending.updated:
            await conn.executemany(
                "UPDATE registrations SET participant_email = $2, status = $3, binding = $4,"
                " binding_since = $5, queue_number = $6, cancelled_at = $7, updated_at = now()"
                " WHERE registration_id = $1",
                pending.updated,
            )

    async def write_back(
        self, conn: Connection, pending: PendingWrite, replaced_forms: Mapping[UUID, str] | None = None
    ) -> set[UUID]:
        """The rest of the batch, after `write_changed` and `insert_new`: one statement for the keys a
        substitution replaces in their stored form (`replaced_forms`, JSON objects), and one for all
        course rows guarded by their expected version. Returns the ids of the courses whose row was
        written (a new version)."""
        if replaced_forms:
            await conn.execute(
                "UPDATE registrations r SET details = (r.details::jsonb || u.form)::text, updated_at = now()"
                " FROM unnest($1::uuid[], $2::jsonb[]) AS u(registration_id, form)"
                " WHERE r.registration_id = u.registration_id",
                list(replaced_forms),
                list(replaced_forms.values()),
            )
        if pending.courses:
            written = await conn.fetch(_update_courses(1), *columns(pending.courses))
            self._written(pending, len(written))
        return self._persisted(pending)

    async def write_at_once(
        self, conn: Connection, pending: PendingWrite, outbox_rows: Sequence[outbox.OutboxRow]
    ) -> set[UUID]:
        """A small batch's writes after `write_changed` in ONE statement (two round trips fewer than
        `insert_new`, the outbox's insert and `write_back`): the new registrations, the outbox rows with
        the relay's wake-up, and the course rows guarded by their expected version. For fewer than
        `COPY_FROM_ROWS` new registrations and outbox rows, and no replaced stored forms. Returns the ids
        of the courses whose row was written."""
        parts: list[str] = []
        args: list[object] = []
        if pending.inserted:
            parts.append(f"new AS ({_insert_registrations(len(args) + 1)})")
            args += columns(pending.inserted)
        if outbox_rows:
            parts.append(f"events AS ({outbox.insert_rows_statement(len(args) + 1)})")
            args += columns(outbox_rows)
        if pending.courses:
            parts.append(f"courses AS ({_update_courses(len(args) + 1)})")
            args += columns(pending.courses)
        if not parts:
            return self._persisted(pending)
        counted = "(SELECT count(*) FROM courses)" if pending.courses else "0"
        woken = f"pg_notify(${len(args) + 1}, '')" if outbox_rows else "NULL"
        if outbox_rows:
            args.append(outbox.NOTIFY_CHANNEL)
        written = await conn.fetchval(f"WITH {', '.join(parts)} SELECT {counted}, {woken}", *args)
        self._written(pending, written)
        return self._persisted(pending)

    @staticmethod
    def _written(pending: PendingWrite, written: int) -> None:
        if written != len(pending.courses):
            raise StaleCourseBook("a course row changed under its lock")

    def _persisted(self, pending: PendingWrite) -> set[UUID]:
        """The batch's course rows are written: its books are what the rows say now, cached with the
        rows' write tokens."""
        for book in pending.changed:
            book.mark_persisted()
            self._locked_tokens.pop(book.course_id, None)
            self._remember(book.course_id, pending.tokens[book.course_id], book)
        for book in pending.unchanged:
            row_token = self._locked_tokens.pop(book.course_id, None)
            if row_token is not None:
                self._remember(book.course_id, row_token, book)
        return set(pending.tokens)

    def forget(self, course_ids: Iterable[UUID]) -> None:
        for course_id in course_ids:
            self._cache.pop(course_id, None)


async def registration_details(
    conn: Connection, registration_ids: Iterable[UUID]
) -> dict[UUID, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT registration_id, details FROM registrations WHERE registration_id = ANY($1::uuid[])",
        list(set(registration_ids)),
    )
    return {r["registration_id"]: json.loads(r["details"]) for r in rows}


async def record_refusals(
    conn: Connection, refusals: Sequence[tuple[UUID, UUID, str, UUID | None, Any]]
) -> None:
    """(registration_id, course_id, reason, existing_registration_id, at) for registrations without a row."""
    if refusals:
        await conn.executemany(
            "INSERT INTO refused_registrations"
            " (registration_id, course_id, reason, existing_registration_id, refused_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            refusals,
        )


# (substitution event id, registration id, course id, the normalised address of who left, when)
HandOver = tuple[UUID, UUID, UUID, str, datetime]


async def record_handed_over(conn: Connection, handed_over: Sequence[HandOver]) -> None:
    """Who each substitution replaced, so an erasure request from them finds the registration."""
    if handed_over:
        await conn.executemany(
            "INSERT INTO former_participants"
            " (substitution_event_id, registration_id, course_id, participant_email, substituted_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            handed_over,
        )


async def take_handed_over_by(conn: Connection, email: str) -> list[asyncpg.Record]:
    """The registrations this normalised address handed over (substitution event, registration, course),
    forgotten here: the erasure that asks is the last use of the address."""
    return list(
        await conn.fetch(
            "DELETE FROM former_participants WHERE participant_email = $1"
            " RETURNING substitution_event_id, registration_id, course_id",
            email,
        )
    )


# ------------------------------------------------------------------------------------------ read model


async def course_of_registration(conn: Connection, registration_id: UUID) -> UUID | None:
    course_id: UUID | None = await conn.fetchval(
        "SELECT course_id FROM registrations WHERE registration_id = $1", registration_id
    )
    return course_id


async def registration_status(conn: Connection, registration_id: UUID) -> dict[str, Any] | None:
    """One registration's own status: no other participant's data, only its rank on the waiting list."""
    row = await conn.fetchrow(
        "SELECT r.registration_id, r.course_id, r.status, r.binding, r.binding_since,"
        " CASE WHEN r.status = 'waitlisted' THEN (SELECT count(*) FROM registrations w"
        "   WHERE w.course_id = r.course_id AND w.status = 'waitlisted' AND w.queue_number <= r.queue_number)"
        " END AS waiting_list_position"
        " FROM registrations r WHERE r.registration_id = $1",
        registration_id,
    )
    if row is not None:
        return {
            "registration_id": str(row["registration_id"]),
            "course_id": str(row["course_id"]),
            "status": row["status"],
            "binding": row["binding"],
            "binding_since": row["binding_since"].isoformat() if row["binding_since"] else None,
            "waiting_list_position": row["waiting_list_position"],
        }
    refused = await conn.fetchrow(
        "SELECT registration_id, course_id, reason, existing_registration_id FROM refused_registrations"
        " WHERE registration_id = $1",
        registration_id,
    )
    if refused is None:
        return None
    return {
        "registration_id": str(refused["registration_id"]),
        "course_id": str(refused["course_id"]),
        "status": "refused",
        "reason": refused["reason"],
        "existing_registration_id": (
            str(refused["existing_registration_id"]) if refused["existing_registration_id"] else None
        ),
        "binding": False,
        "waiting_list_position": None,
    }


async def course_registrations(conn: Connection, course_id: UUID) -> dict[str, Any] | None:
    course = await conn.fetchrow(
        "SELECT course_id, capacity, seats_taken, status, deadline_passed, version FROM course_seats"
        " WHERE course_id = $1",
        course_id,
    )
    if course is None:
        return None
    rows = await conn.fetch(
        "SELECT registration_id, status, binding, binding_since, queue_number, received_at,"
        " source_partition, source_offset, cancelled_at, details FROM registrations"
        " WHERE course_id = $1 ORDER BY source_offset",
        course_id,
    )
    return {
        "course_id": str(course_id),
        "capacity": course["capacity"],
        "seats_taken": course["seats_taken"],
        "status": course["status"],
        "deadline_passed": course["deadline_passed"],
        "version": course["version"],
        "registrations": [
            {
                "registration_id": str(r["registration_id"]),
                "status": r["status"],
                "binding": r["binding"],
                "binding_since": r["binding_since"].isoformat() if r["binding_since"] else None,
                "queue_number": r["queue_number"],
                "received_at": r["received_at"].isoformat(),
                "partition": r["source_partition"],
                "offset": r["source_offset"],
                "cancelled_at": r["cancelled_at"].isoformat() if r["cancelled_at"] else None,
                **json.loads(r["details"]),
            }
            for r in rows
        ],
    }


# ------------------------------------------------------------------------------------------ erasure


async def registrations_of_participant(conn: Connection, email: str) -> list[asyncpg.Record]:
    """Every registration (any status) whose participant has this normalised address, course rows locked
    (`FOR UPDATE`, id order, as the allocator locks them) so no batch writes a stale copy meanwhile."""
    query = (
        "SELECT registration_id, course_id, details FROM registrations WHERE participant_email = $1"
        " ORDER BY course_id, registration_id"
    )
    courses = sorted({r["course_id"] for r in await conn.fetch(query, email)})
    if not courses:
        return []
    await conn.execute(
        "SELECT 1 FROM course_seats WHERE course_id = ANY($1::uuid[]) ORDER BY course_id FOR UPDATE", courses
    )
    # Read again under the locks: an allocator batch may have committed between the first read and them.
    return [r for r in await conn.fetch(query, email) if r["course_id"] in courses]


async def anonymise_registrations(
    conn: Connection, anonymised: list[tuple[UUID, str, dict[str, Any]]], erased_at: datetime
) -> None:
    """Store the anonymised address and details, and clear the courses' `write_token` so an allocator
    holding a cached seat book (with the old address) reloads it instead of writing it back."""
    await conn.executemany(
        "UPDATE registrations SET participant_email = $2, details = $3, erased_at = $4,"
        " updated_at = now() WHERE registration_id = $1",
        [(rid, email, json.dumps(details), erased_at) for rid, email, details in anonymised],
    )
    await conn.execute(
        "UPDATE course_seats SET write_token = NULL WHERE course_id IN"
        " (SELECT course_id FROM registrations WHERE registration_id = ANY($1::uuid[]))",
        [rid for rid, _, _ in anonymised],
    )
