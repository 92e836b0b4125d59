"""The seats-taken projection, fed by registration's CourseSeatsChanged (eventually consistent)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from komponent_contracts import CloudEvent
from komponent_contracts.events import CourseSeatsChanged
from komponent_runtime.database import Connection

from komponent_catalogue.adapters import repository


async def record_seats_changed(conn: Connection, events: Sequence[CloudEvent[CourseSeatsChanged]]) -> int:
    """Keep registration's newest count per course; an older version arriving late changes nothing.

    Runs inside the consumer's transaction (with the batch's inbox rows): one statement for the batch,
    carrying only each course's highest version in it (the others could not win). Returns how many
    courses changed."""
    newest: dict[UUID, CloudEvent[CourseSeatsChanged]] = {}
    for event in events:
        kept = newest.get(event.data.course_id)
        if kept is None or event.data.version > kept.data.version:
            newest[event.data.course_id] = event
    return await repository.record_seats(
        conn,
        [
            repository.SeatCount(
                course_id=e.data.course_id,
                seats_taken=e.data.seats_taken,
                capacity=e.data.capacity,
                waiting_list_length=e.data.waiting_list_length,
                version=e.data.version,
                event_id=e.id,
                event_at=e.data.occurred_at,
            )
            for e in newest.values()
        ],
    )
