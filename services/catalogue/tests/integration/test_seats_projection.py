"""The seats-taken projection's batch write (service_layer.seats) on a real PostgreSQL: one statement per
batch, only the highest version per course wins, and a count older than the stored one changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from komponent_catalogue.service_layer.seats import record_seats_changed
from komponent_contracts import CloudEvent
from komponent_contracts.events import CourseSeatsChanged


def _seats(course_id: UUID, taken: int, version: int) -> CloudEvent[CourseSeatsChanged]:
    data = CourseSeatsChanged(
        course_id=course_id,
        capacity=30,
        seats_taken=taken,
        waiting_list_length=max(taken - 30, 0),
        version=version,
        occurred_at=datetime.now(UTC),
    )
    return CloudEvent(data=data, source="/komponent/registration")


async def _stored(catalogue: Any, course_id: UUID) -> tuple[int, int, UUID]:
    row = await catalogue.pool.fetchrow(
        "SELECT version, seats_taken, last_event_id FROM course_seats_taken WHERE course_id = $1", course_id
    )
    return row["version"], row["seats_taken"], row["last_event_id"]


async def test_a_batch_keeps_each_courses_highest_version(catalogue: Any) -> None:
    first, second, stale = uuid4(), uuid4(), uuid4()
    async with catalogue.pool.acquire() as conn, conn.transaction():
        assert await record_seats_changed(conn, [_seats(stale, 20, 5)]) == 1

    newest_first = _seats(first, 9, 4)
    newest_second = _seats(second, 31, 2)
    batch = [
        _seats(first, 5, 1),
        newest_first,
        _seats(second, 30, 1),
        _seats(first, 7, 3),  # arrives after version 4: loses
        _seats(stale, 3, 2),  # older than the stored version 5: changes nothing
        newest_second,
    ]
    async with catalogue.pool.acquire() as conn, conn.transaction():
        assert await record_seats_changed(conn, batch) == 2

    assert await _stored(catalogue, first) == (4, 9, newest_first.id)
    assert await _stored(catalogue, second) == (2, 31, newest_second.id)
    assert (await _stored(catalogue, stale))[:2] == (5, 20)


async def test_an_empty_batch_writes_nothing(catalogue: Any) -> None:
    async with catalogue.pool.acquire() as conn:
        assert await record_seats_changed(conn, []) == 0
