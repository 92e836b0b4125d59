"""Kafka entrypoints: translate delivered events into seat-book requests and call the use case.

The runtime has already opened the batch's transaction and recorded the inbox rows; duplicates of an
event id never reach these handlers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg.pgproto.pgproto
from komponent_contracts import events as contract
from komponent_runtime.consuming import Delivery, PermanentError, PreparedBatchHandler
from komponent_runtime.database import Connection

from komponent_registration.adapters.repository import CourseBooks, Source
from komponent_registration.domain.commands import Cancel, CourseCommand, PassDeadline, Register, Substitute
from komponent_registration.domain.course_book import CourseBook
from komponent_registration.domain.intake import canonical_email
from komponent_registration.service_layer.allocation import CourseFacts, Request, apply_requests


def _utc(moment: datetime) -> datetime:
    """Parsed times carry pydantic's tzinfo, whose utcoffset() costs tens of µs per call; the seat book
    compares each command's time several times, so convert once to the stdlib's UTC."""
    return moment.astimezone(UTC)


# A new registration's id is hashed a dozen times on its way through a batch (dict keys in the seat book
# and the write) and printed into its answer, the request's event id into its outcomes' ids: asyncpg's
# UUID (a `uuid.UUID`, equal and hashing alike) does both several times faster than the parsed one, so
# the request carries that copy.
_FastUUID = asyncpg.pgproto.pgproto.UUID


def intake_request(delivery: Delivery) -> Request:
    """A record of the intake topic as a request; its offset is its place in the course's queue."""
    data = delivery.event.data
    command: CourseCommand
    payload: contract.RegistrationReceived | contract.SubstitutionRequested | None = None
    if isinstance(data, contract.RegistrationReceived):
        command = Register(
            registration_id=_FastUUID(data.registration_id.bytes),
            participant_email=canonical_email(data.participant.email),
            at=_utc(data.received_at),
            received_seq=delivery.offset,
        )
        payload = data
    elif isinstance(data, contract.RegistrationCancellationRequested):
        command = Cancel(data.registration_id, _utc(data.requested_at))
    elif isinstance(data, contract.SubstitutionRequested):
        command = Substitute(
            data.registration_id, canonical_email(data.new_participant.email), _utc(data.requested_at)
        )
        payload = data
    else:
        raise PermanentError(f"{delivery.event.type} does not belong on the intake topic")
    return Request(
        course_id=data.course_id,
        event_id=_FastUUID(delivery.event.id.bytes),  # printed into each outcome's id (allocation)
        command=command,
        trace_headers=delivery.trace_headers,
        source=Source(delivery.topic, delivery.partition, delivery.offset),
        payload=payload,
    )


class Handlers:
    """The service's consumers, sharing one cache of seat books."""

    def __init__(self, books: CourseBooks) -> None:
        self.books = books
        # Decoding a rush's records into requests is a fifth of the allocator's Python work: the consumer
        # does it while PostgreSQL records the batch in the inbox.
        self.allocation = PreparedBatchHandler(intake_request, self.allocate)

    async def allocate(self, conn: Connection, requests: Sequence[Request]) -> None:
        await apply_requests(conn, self.books, requests)

    async def on_course(self, conn: Connection, delivery: Delivery) -> None:
        data = delivery.event.data
        if isinstance(data, contract.CourseCancelled):
            await apply_requests(
                conn, self.books, [_facts_request(delivery, data.course_id, None, data.occurred_at)]
            )
            return
        if not isinstance(data, contract.CoursePublished | contract.CourseUpdated):
            return
        course = data.course
        exists = await conn.fetchval(
            "SELECT true FROM course_seats WHERE course_id = $1 FOR UPDATE", data.course_id
        )
        if not exists:
            if course.status != "published":
                return  # drafts and cancelled courses take no registrations; unknown_course covers them
            # Event-carried state: a CourseUpdated opens the course too if its CoursePublished never came.
            book = CourseBook.open(
                data.course_id, course.capacity, course.starts_at, course.registration_deadline
            )
            await self.books.add(conn, book)
        await apply_requests(
            conn, self.books, [_facts_request(delivery, data.course_id, course, data.occurred_at)]
        )

    async def on_deadline(self, conn: Connection, delivery: Delivery) -> None:
        data = delivery.event.data
        if not isinstance(data, contract.DeadlinePassed):
            return
        await apply_requests(
            conn,
            self.books,
            [
                Request(
                    course_id=data.course_id,
                    event_id=delivery.event.id,
                    command=PassDeadline(deadline=_utc(data.due_at), at=_utc(data.fired_at)),
                    trace_headers=delivery.trace_headers,
                )
            ],
        )


def _facts_request(
    delivery: Delivery, course_id: UUID, course: contract.CourseSnapshot | None, at: datetime
) -> Request:
    """A catalogue fact as a request; `course` None means the course was cancelled."""
    at = _utc(at)
    if course is None:
        facts = CourseFacts(capacity=0, starts_at=at, deadline=at, cancelled=True, at=at)
    else:
        facts = CourseFacts(
            capacity=course.capacity,
            starts_at=_utc(course.starts_at),
            deadline=_utc(course.registration_deadline),
            cancelled=course.status == "cancelled",
            at=at,
        )
    return Request(
        course_id=course_id, event_id=delivery.event.id, command=facts, trace_headers=delivery.trace_headers
    )
