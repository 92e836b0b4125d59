"""The seats-taken projection, fed by registration's CourseSeatsChanged (eventually consistent)."""

from __future__ import annotations

from komponent_contracts import CloudEvent
from komponent_contracts.events import CourseSeatsChanged
from komponent_runtime.database import Connection

from komponent_catalogue.adapters import repository


async def record_seats_changed(conn: Connection, event: CloudEvent[CourseSeatsChanged]) -> bool:
    """Keep registration's newest count per course; an older version arriving late changes nothing.
    Runs inside the consumer's transaction (with its inbox row). False when the event was stale."""
    seats = event.data
    return await repository.record_seats(
        conn,
        course_id=seats.course_id,
        seats_taken=seats.seats_taken,
        capacity=seats.capacity,
        waiting_list_length=seats.waiting_list_length,
        version=seats.version,
        event_id=event.id,
        event_at=seats.occurred_at,
    )
