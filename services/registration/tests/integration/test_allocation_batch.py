"""The allocator's batch transaction on a real PostgreSQL, without Kafka: one batch whose requests depend
on each other's rows, applied the way the runtime's batch consumer applies it (inbox, `Handlers.allocation`,
commit), then checked in the tables."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from komponent_contracts import CloudEvent, Event
from komponent_contracts import events as contract
from komponent_contracts.examples import buyer
from komponent_contracts.examples import open_course as open_course_snapshot
from komponent_registration.adapters.repository import CourseBooks
from komponent_registration.entrypoints.consumers import Handlers
from komponent_runtime.consuming import Delivery, apply_first_deliveries
from komponent_runtime.database import Connection, migrate

pytestmark = pytest.mark.infra

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "komponent_registration" / "migrations"
INTAKE = "test.registration-intake"
_offsets = count()


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
    return pool


def delivered(data: Event) -> Delivery:
    return Delivery(CloudEvent(data, source="/test"), INTAKE, 0, next(_offsets), {})


def registration(course_id: uuid.UUID, name: str) -> contract.RegistrationReceived:
    return contract.RegistrationReceived(
        registration_id=uuid.uuid4(),
        course_id=course_id,
        received_at=datetime.now(UTC),
        participant=contract.Participant(
            name=name, email=f"{name.lower()}@kommune.dk", job_title="Konsulent"
        ),
        buyer=buyer(),
        terms_version="2026-01",
    )


async def apply(db: asyncpg.Pool, handle: Any, deliveries: Sequence[Delivery]) -> None:
    async with db.acquire() as conn, conn.transaction():
        await apply_first_deliveries(conn, "test.allocation", deliveries, handle)


async def open_course(db: asyncpg.Pool, handlers: Handlers, capacity: int) -> uuid.UUID:
    course_id = uuid.uuid4()
    now = datetime.now(UTC)
    snapshot = open_course_snapshot(course_id, capacity, now)
    published = contract.CoursePublished(course_id=course_id, course=snapshot, occurred_at=now)

    async def on_course(conn: Connection, deliveries: Sequence[Delivery]) -> None:
        await handlers.on_course(conn, deliveries[0])

    await apply(db, on_course, [delivered(published)])
    return course_id


async def test_cancel_and_register_again_in_one_batch(db: asyncpg.Pool) -> None:
    """The cancelled row leaves the one-active-per-participant index before the new row enters it."""
    handlers = Handlers(CourseBooks())
    course_id = await open_course(db, handlers, capacity=1)
    first = registration(course_id, "Anna")
    await apply(db, handlers.allocation, [delivered(first)])

    again = registration(course_id, "Anna")
    cancel = contract.RegistrationCancellationRequested(
        registration_id=first.registration_id, course_id=course_id, requested_at=datetime.now(UTC)
    )
    other = registration(course_id, "Bo")
    await apply(db, handlers.allocation, [delivered(cancel), delivered(again), delivered(other)])

    rows = await db.fetch(
        "SELECT registration_id, status, details FROM registrations WHERE course_id = $1 ORDER BY source_offset",
        course_id,
    )
    assert [(r["registration_id"], r["status"]) for r in rows] == [
        (first.registration_id, "cancelled"),
        (again.registration_id, "confirmed"),  # the freed seat, first come first served
        (other.registration_id, "waitlisted"),
    ]
    assert json.loads(rows[1]["details"])["participant"] == again.participant.model_dump(mode="json")
    assert await db.fetchval("SELECT seats_taken FROM course_seats WHERE course_id = $1", course_id) == 1


async def test_a_batch_of_several_write_parts_keeps_partition_order_everywhere(db: asyncpg.Pool) -> None:
    """More answers than one part of the write pipeline: rows, seats and outbox rows all in partition
    order, the seat count event last."""
    handlers = Handlers(CourseBooks())
    course_id = await open_course(db, handlers, capacity=3)
    batch = [registration(course_id, f"Deltager{i}") for i in range(1_234)]
    await apply(db, handlers.allocation, [delivered(r) for r in batch])

    rows = await db.fetch(
        "SELECT registration_id, status, queue_number FROM registrations WHERE course_id = $1"
        " ORDER BY source_offset",
        course_id,
    )
    assert [r["registration_id"] for r in rows] == [r.registration_id for r in batch]
    assert [r["status"] for r in rows] == ["confirmed"] * 3 + ["waitlisted"] * 1_231
    assert [r["queue_number"] for r in rows[3:]] == list(range(1, 1_232))
    published = await db.fetch("SELECT headers, value FROM outbox ORDER BY id")
    answers = [
        json.loads(r["value"]) for r in published if "seats" not in json.loads(r["headers"])["ce_type"]
    ]
    assert [a["registration_id"] for a in answers][-1_234:] == [str(r.registration_id) for r in batch]
    assert [a.get("position") for a in answers[-1_231:]] == list(range(1, 1_232))
    last = json.loads(published[-1]["value"])
    assert json.loads(published[-1]["headers"])["ce_type"] == contract.CourseSeatsChanged.ce_type
    assert (last["seats_taken"], last["waiting_list_length"]) == (3, 1_231)


async def test_a_write_failing_in_a_later_part_rolls_back_the_whole_batch(db: asyncpg.Pool) -> None:
    """A registration id already taken (here by a row of another course) fails the COPY of a later part:
    nothing of the batch stays, the connection is usable, and the same batch without it applies."""
    handlers = Handlers(CourseBooks())
    course_id = await open_course(db, handlers, capacity=3)
    elsewhere = await open_course(db, handlers, capacity=3)
    batch = [registration(course_id, f"Deltager{i}") for i in range(1_500)]
    taken = batch[1_200].model_copy(update={"course_id": elsewhere})
    await apply(db, handlers.allocation, [delivered(taken)])
    outbox_before = await db.fetchval("SELECT count(*) FROM outbox")

    with pytest.raises(asyncpg.UniqueViolationError):
        await apply(db, handlers.allocation, [delivered(r) for r in batch])
    assert await db.fetchval("SELECT count(*) FROM registrations WHERE course_id = $1", course_id) == 0
    assert await db.fetchval("SELECT count(*) FROM outbox") == outbox_before
    assert await db.fetchval("SELECT seats_taken FROM course_seats WHERE course_id = $1", course_id) == 0

    rest = batch[:1_200] + batch[1_201:]
    await apply(db, handlers.allocation, [delivered(r) for r in rest])
    assert await db.fetchval("SELECT count(*) FROM registrations WHERE course_id = $1", course_id) == 1_499
    assert await db.fetchval("SELECT seats_taken FROM course_seats WHERE course_id = $1", course_id) == 3


async def test_a_reloaded_book_knows_registrations_cancelled_before(db: asyncpg.Pool) -> None:
    """A book loaded after a registration was cancelled (restart, rebalance) still answers requests that
    name it: a re-sent registration is a repeat, a second cancellation is refused, nothing is inserted."""
    course_id = await open_course(db, Handlers(CourseBooks()), capacity=1)
    handlers = Handlers(CourseBooks())
    first = registration(course_id, "Anna")
    await apply(db, handlers.allocation, [delivered(first)])
    cancel = contract.RegistrationCancellationRequested(
        registration_id=first.registration_id, course_id=course_id, requested_at=datetime.now(UTC)
    )
    await apply(db, handlers.allocation, [delivered(cancel)])
    outbox_before = await db.fetchval("SELECT count(*) FROM outbox")

    restarted = Handlers(CourseBooks())  # an empty cache: the book is loaded from the rows
    await apply(db, restarted.allocation, [delivered(first), delivered(cancel)])

    rows = await db.fetch("SELECT status FROM registrations WHERE course_id = $1", course_id)
    assert [r["status"] for r in rows] == ["cancelled"]
    answers = [
        (json.loads(r["headers"])["ce_type"], json.loads(r["value"]))
        for r in await db.fetch("SELECT headers, value FROM outbox ORDER BY id OFFSET $1", outbox_before)
    ]
    # The re-sent registration already has its answer; the second cancellation is refused.
    assert [(t, v.get("request"), v.get("reason")) for t, v in answers] == [
        (contract.RegistrationRequestRefused.ce_type, "cancellation", "already_cancelled")
    ]


async def test_a_long_batch_written_in_parts_ends_as_small_batches_would(db: asyncpg.Pool) -> None:
    """A batch over one write part writes its registration rows while it goes on (CourseBook
    .take_registration_changes): a row written in an earlier part is cancelled in a later one and its seat
    promoted, its participant registers again, and a registration of an earlier batch is cancelled (its
    participant read from its row mid-batch). Rows and answers end exactly as with batches too small to
    be written in parts."""

    async def scenario(batch_size: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        handlers = Handlers(CourseBooks())
        course_id = await open_course(db, handlers, capacity=2)
        earlier = registration(course_id, "Tidligere")
        await apply(db, handlers.allocation, [delivered(earlier)])
        outbox_before = await db.fetchval("SELECT max(id) FROM outbox")
        rush = [registration(course_id, f"Deltager{i}") for i in range(1_100)]

        def cancel(r: contract.RegistrationReceived) -> contract.RegistrationCancellationRequested:
            return contract.RegistrationCancellationRequested(
                registration_id=r.registration_id, course_id=course_id, requested_at=datetime.now(UTC)
            )

        again = registration(course_id, "Deltager0")
        requests: list[Event] = [
            *rush[:600],
            cancel(rush[0]),
            *rush[600:],
            again,
            cancel(earlier),
            cancel(rush[1_000]),
        ]
        for first in range(0, len(requests), batch_size):
            await apply(db, handlers.allocation, [delivered(r) for r in requests[first : first + batch_size]])

        names = {r.registration_id: r.participant.name for r in [earlier, *rush]}
        names[again.registration_id] = "Deltager0 igen"
        rows = await db.fetch(
            "SELECT registration_id, status, binding, queue_number FROM registrations WHERE course_id = $1"
            " ORDER BY source_offset",
            course_id,
        )
        published = await db.fetch(
            "SELECT headers, value FROM outbox WHERE id > $1 AND kafka_key = $2 ORDER BY id",
            outbox_before,
            str(course_id).encode(),
        )
        answers = []
        for r in published:
            ce_type = json.loads(r["headers"])["ce_type"]
            if ce_type != contract.CourseSeatsChanged.ce_type:  # one per batch: differs by design
                value = json.loads(r["value"])
                who = names[UUID(value["registration_id"])]
                answers.append(
                    (ce_type, who, value.get("position"), value.get("participant", {}).get("name"))
                )
        seats = await db.fetchval("SELECT seats_taken FROM course_seats WHERE course_id = $1", course_id)
        return [
            (names[r["registration_id"]], r["status"], r["binding"], r["queue_number"], seats) for r in rows
        ], answers

    in_parts = await scenario(batch_size=2_000)  # one batch: three parts written mid-batch
    small = await scenario(batch_size=100)  # no batch reaches a part
    assert in_parts == small
    statuses = {name: status for name, status, *_ in in_parts[0]}
    assert statuses["Tidligere"] == statuses["Deltager0"] == statuses["Deltager1000"] == "cancelled"
    assert [name for name, status, *_ in in_parts[0] if status == "confirmed"] == ["Deltager1", "Deltager2"]
    assert statuses["Deltager0 igen"] == "waitlisted"


async def test_the_least_recently_used_book_is_dropped_past_the_cache_bound_and_reloaded_whole(
    db: asyncpg.Pool,
) -> None:
    """Memory stays bounded by the number of books, whatever the number of courses ever booked; a course
    whose book was dropped is booked from its rows: seats taken and the waiting list in order."""
    books = CourseBooks(max_cached=2)
    handlers = Handlers(books)
    first, second, third = [await open_course(db, handlers, capacity=1) for _ in range(3)]
    assert books.cached == [second, third]

    await apply(db, handlers.allocation, [delivered(registration(first, "Anna"))])
    assert books.cached == [third, first]
    await apply(db, handlers.allocation, [delivered(registration(second, "Bo"))])
    await apply(db, handlers.allocation, [delivered(registration(third, "Cai"))])
    assert books.cached == [second, third]  # `first` dropped: its next batch reloads it

    late = [registration(first, name) for name in ("Dorte", "Eik")]
    await apply(db, handlers.allocation, [delivered(r) for r in late])
    rows = await db.fetch(
        "SELECT status, queue_number FROM registrations WHERE course_id = $1 ORDER BY source_offset", first
    )
    assert [(r["status"], r["queue_number"]) for r in rows] == [
        ("confirmed", None),
        ("waitlisted", 1),
        ("waitlisted", 2),
    ]
    assert books.cached == [third, first]


def test_a_cache_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_cached"):
        CourseBooks(max_cached=0)
