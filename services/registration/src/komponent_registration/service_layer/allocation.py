"""The allocation use case: apply a batch of requests to the courses' seat books inside ONE transaction.

Used by every writer of seat books: the allocator (intake topic), the course projection (catalogue facts)
and the deadline consumer. Each runs inside the transaction the runtime opened for the batch (inbox rows
included), so the book changes, the outcome events in the outbox and the inbox commit together or not
at all. Course rows are locked `FOR UPDATE`: the database serialises these writers per course, and its
guards (migration 0001) stay the last line of defence against overbooking.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from komponent_contracts import Event
from komponent_contracts import events as contract
from komponent_runtime.database import Connection
from komponent_runtime.metrics import meter
from komponent_runtime.outbox import OutboxRow
from opentelemetry.metrics import CallbackOptions, Observation
from pydantic_core import to_json

from komponent_registration.adapters import outbox_rows
from komponent_registration.adapters.repository import (
    CourseBooks,
    Source,
    record_refusals,
    registration_details,
)
from komponent_registration.domain import events as domain
from komponent_registration.domain.commands import (
    Cancel,
    CancelCourse,
    ChangeCapacity,
    CourseCommand,
    Register,
    RescheduleCourse,
    Substitute,
)
from komponent_registration.domain.course_book import CourseBook, CourseStatus, reject_for_unknown_course
from komponent_registration.domain.events import RejectionReason

SOURCE = "/registration"
# Outcome event ids are derived from the request's event id and the outcome's index, so a batch that is
# rolled back and applied again (or replayed after a crash) produces the same ids: consumers drop repeats.
_OUTCOME_NAMESPACE = uuid.UUID("2f9c1b7e-6a0d-4f5e-9b3c-8d7e6f5a4b3c")


@dataclass(frozen=True, slots=True)
class CourseFacts:
    """What the catalogue now says a course is. Turned into domain commands against the book's state."""

    capacity: int
    starts_at: datetime
    deadline: datetime
    cancelled: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Request:
    """One thing to apply to one course, with the event it came from and the trace its effects continue."""

    course_id: UUID
    event_id: UUID
    command: CourseCommand | CourseFacts
    trace_headers: dict[str, str] = field(default_factory=dict)
    source: Source | None = None  # registrations: their place in the partition (FCFS audit)
    payload: contract.RegistrationReceived | contract.SubstitutionRequested | None = None


People = tuple[contract.Participant, contract.Buyer]
# (registration_id, course_id, reason, existing_registration_id, at) of a registration that gets no row.
Refusal = tuple[UUID, UUID, str, UUID | None, datetime]

# -- domain metrics (ids and kinds only) -------------------------------------------------------------------
registrations = meter.create_counter(
    "komponent_registrations", description="allocation outcomes published, by outcome"
)
_OUTCOMES: dict[type[Event], str] = {
    contract.RegistrationConfirmed: "confirmed",
    contract.RegistrationWaitlisted: "waitlisted",
    contract.RegistrationPromoted: "promoted",
    contract.RegistrationCancelled: "cancelled",
    contract.ParticipantSubstituted: "substituted",
    contract.RegistrationRejected: "rejected",
    contract.RegistrationRequestRefused: "refused",
}
# Seats left per course as this process last wrote its seat book (courses written since start-up).
_seats_left: dict[UUID, int] = {}


def _observe_seats_left(_: CallbackOptions) -> list[Observation]:
    return [Observation(left, {"course_id": str(course_id)}) for course_id, left in list(_seats_left.items())]


meter.create_observable_gauge(
    "komponent_seats_left",
    [_observe_seats_left],
    description="free seats per course (last seat book written)",
)


def _commands_for(book: CourseBook, facts: CourseFacts) -> list[CourseCommand]:
    if facts.cancelled:
        return [CancelCourse(facts.at)]
    state = book.state()
    commands: list[CourseCommand] = []
    if (facts.starts_at, facts.deadline) != (state.starts_at, state.deadline):
        commands.append(RescheduleCourse(facts.starts_at, facts.deadline, facts.at))
    if facts.capacity != state.capacity:
        # After the reschedule, so promotions it causes already know whether the deadline has passed.
        commands.append(ChangeCapacity(facts.capacity, facts.at))
    return commands


def _handle(book: CourseBook | None, request: Request) -> list[domain.CourseEvent]:
    command = request.command
    if book is None:
        # The projection has no such course (not yet published, or never): nothing to hold a seat in.
        if isinstance(command, Register):
            return [reject_for_unknown_course(request.course_id, command)]
        if isinstance(command, Cancel):
            return [
                domain.CancellationRejected(
                    request.course_id,
                    command.registration_id,
                    RejectionReason.UNKNOWN_REGISTRATION,
                    command.at,
                )
            ]
        if isinstance(command, Substitute):
            return [
                domain.SubstitutionRejected(
                    request.course_id,
                    command.registration_id,
                    RejectionReason.UNKNOWN_REGISTRATION,
                    command.at,
                )
            ]
        return []
    if isinstance(command, CourseFacts):
        if book.status is CourseStatus.CANCELLED:
            return []  # a cancelled course stays cancelled; later facts change nothing
        return book.handle_all(_commands_for(book, command))
    return book.handle(command)


async def apply_requests(conn: Connection, books: CourseBooks, requests: Sequence[Request]) -> None:
    """Apply requests in the order given (the partition order) and write everything they caused.

    A rush applies thousands of requests per transaction, so the work per request is kept to one pass
    over the batch, the domain step and the outcome event; everything else is per course or per batch."""
    by_course: dict[UUID, list[Request]] = {}
    referenced: list[tuple[UUID, UUID]] = []  # (course, registration) each command names
    # Participant and buyer travel in the outcome events (no lookups downstream): new ones come from the
    # batch itself (the first delivery of each registration), those of earlier registrations from rows.
    people: dict[UUID, People] = {}
    received: dict[UUID, contract.RegistrationReceived] = {}
    sources: dict[UUID, Source] = {}
    # The same two as JSON, serialised once: the stored form and the registration's answer reuse them.
    serialised: dict[UUID, tuple[bytes, bytes]] = {}
    for request in requests:
        course_requests = by_course.get(request.course_id)
        if course_requests is None:
            course_requests = by_course[request.course_id] = []
        course_requests.append(request)
        command = request.command
        if isinstance(command, _NAMES_A_REGISTRATION):
            referenced.append((request.course_id, command.registration_id))
        payload = request.payload
        if (
            request.source is not None
            and isinstance(payload, contract.RegistrationReceived)
            and payload.registration_id not in received
        ):
            received[payload.registration_id] = payload
            people[payload.registration_id] = (payload.participant, payload.buyer)
            serialised[payload.registration_id] = (
                outbox_rows.serialise(payload.participant),
                outbox_rows.serialise(payload.buyer),
            )
            sources[payload.registration_id] = request.source
    locked = await books.lock(conn, by_course, referenced)

    answered: list[tuple[Request, list[domain.CourseEvent]]] = []
    needed: set[UUID] = set()
    for course_id, course_requests in by_course.items():
        book = locked.get(course_id)
        for request in course_requests:
            outcomes = _handle(book, request)
            answered.append((request, outcomes))
            for e in outcomes:
                if isinstance(e, _NEEDS_PEOPLE) and e.registration_id not in people:
                    needed.add(e.registration_id)
    if needed:
        for registration_id, stored in (await registration_details(conn, needed)).items():
            people[registration_id] = (
                contract.Participant.model_validate(stored["participant"]),
                contract.Buyer.model_validate(stored["buyer"]),
            )

    # The new registration rows are the batch's largest write: PostgreSQL inserts them while this process
    # builds the outbox rows, so the two cores work at once instead of in turn. Nothing else may use
    # `conn` until the insert is done; a substitution of a registration new in this batch is written
    # into its stored form afterwards, with those of earlier registrations.
    forms = {
        registration_id: _form_json(*serialised[registration_id], payload.terms_version)
        for registration_id, payload in received.items()
    }
    pending = books.pending(locked.values(), sources, forms)
    await books.write_changed(conn, pending)
    inserting = asyncio.ensure_future(books.insert_new(conn, pending))
    try:
        await asyncio.sleep(0)  # the insert task encodes and sends its rows, then waits for PostgreSQL
        rows = outbox_rows.OutboxRows(SOURCE, datetime.now(UTC))
        out, counts, refusals, substituted = _outcome_rows(answered, people, serialised, rows)
        # One seat count per changed course per batch, whatever the batch did: the catalogue shows
        # "seats left" from it and keeps the highest version, so it never goes backwards.
        for book in pending.changed:
            state = book.state()
            last = by_course[book.course_id][-1]
            seats = contract.CourseSeatsChanged(
                course_id=book.course_id,
                capacity=state.capacity,
                seats_taken=state.seats_taken,
                waiting_list_length=book.waiting_list_length,
                version=state.version,  # a changed book's state is the version its write gives the row
                occurred_at=last.command.at,
            )
            event_id = uuid.uuid5(_OUTCOME_NAMESPACE, f"{book.course_id}/seats/{seats.version}")
            out.append(rows.event(seats, event_id, last.trace_headers))
    except BaseException:
        # Whatever went wrong here, the connection must be idle before the transaction is rolled back.
        await asyncio.gather(inserting, return_exceptions=True)
        raise
    await inserting
    replaced_forms = {
        registration_id: _form_json(outbox_rows.serialise(participant), outbox_rows.serialise(buyer))
        for registration_id in substituted
        for participant, buyer in [people[registration_id]]
    }
    changed = await books.write_back(conn, pending, replaced_forms)
    await record_refusals(conn, refusals)
    await outbox_rows.write(conn, out)
    # Recorded with the outbox rows, inside the caller's transaction: a batch rolled back and applied
    # again counts its outcomes twice (rare; the events themselves are exactly-once downstream).
    for label, count in counts.items():
        registrations.add(count, {"outcome": label})
    for course_id in changed:
        state = locked[course_id].state()
        _seats_left[course_id] = max(state.capacity - state.seats_taken, 0)


_NAMES_A_REGISTRATION = (Register, Cancel, Substitute)
# Outcomes about registrations that may be from earlier batches, whose participant comes from their row.
_NEEDS_PEOPLE = (domain.RegistrationPromoted, domain.RegistrationCancelled, domain.ParticipantSubstituted)
_NAMESPACE_BYTES = _OUTCOME_NAMESPACE.bytes


def _outcome_id(request_id: UUID, index: int) -> UUID:
    """uuid5(_OUTCOME_NAMESPACE, f"{request_id}/{index}"), minus uuid5's per-call cost of re-encoding
    the namespace (one id per outcome event)."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + f"{request_id}/{index}".encode(), usedforsecurity=False)
    return UUID(bytes=digest.digest()[:16], version=5)


def _outcome_rows(
    answered: list[tuple[Request, list[domain.CourseEvent]]],
    people: dict[UUID, People],
    serialised: dict[UUID, tuple[bytes, bytes]],
    rows: outbox_rows.OutboxRows,
) -> tuple[list[OutboxRow], dict[str, int], list[Refusal], set[UUID]]:
    """The outbox rows for the domain's answers, each with the trace of the request that caused it; the
    count per outcome label; the refusals to record; the registrations substituted (`people` then holds
    their new participant). A new registration's own answer (confirmed or waitlisted: almost every row in
    a rush) is spliced from its serialised participant and buyer; everything else is a contract model."""
    out: list[OutboxRow] = []
    counts: dict[str, int] = {}
    refusals: list[Refusal] = []
    substituted: set[UUID] = set()
    for request, outcomes in answered:
        trace = request.trace_headers
        for index, outcome in enumerate(outcomes):
            kind = type(outcome)
            known = serialised.get(outcome.registration_id)
            if known is not None and kind is domain.RegistrationWaitlisted:
                assert isinstance(outcome, domain.RegistrationWaitlisted)
                row = rows.waitlisted(
                    _outcome_id(request.event_id, index),
                    outcome.registration_id,
                    outcome.course_id,
                    outcome.at,
                    known[0],
                    outcome.position,
                    trace,
                )
                label: str | None = "waitlisted"
            elif known is not None and kind is domain.RegistrationConfirmed:
                assert isinstance(outcome, domain.RegistrationConfirmed)
                row = rows.confirmed(
                    _outcome_id(request.event_id, index),
                    outcome.registration_id,
                    outcome.course_id,
                    outcome.at,
                    known[0],
                    known[1],
                    outcome.binding,
                    trace,
                )
                label = "confirmed"
            else:
                event = _to_contract(outcome, request, people, substituted, refusals)
                if event is None:
                    continue
                row = rows.event(event, _outcome_id(request.event_id, index), trace)
                label = _OUTCOMES.get(type(event))
            out.append(row)
            if label is not None:
                counts[label] = counts.get(label, 0) + 1
    return out, counts, refusals, substituted


def _form_json(participant: bytes, buyer: bytes, terms_version: str | None = None) -> str:
    """A registration's stored form (or the part a substitution replaces) as a JSON object, from the
    participant's and buyer's JSON (`outbox_rows.serialise`): the models' own JSON form, as
    `model_dump(mode="json")` gives, without serialising them a second time."""
    form = b'{"participant":%s,"buyer":%s' % (participant, buyer)
    if terms_version is not None:
        form += b',"terms_version":%s' % to_json(terms_version)
    return (form + b"}").decode()


def _to_contract(
    outcome: domain.CourseEvent,
    request: Request,
    people: dict[UUID, People],
    substituted: set[UUID],
    refusals: list[Refusal],
) -> Event | None:
    ids: dict[str, Any] = {
        "registration_id": outcome.registration_id,
        "course_id": outcome.course_id,
        "occurred_at": outcome.at,
    }
    match outcome:
        case domain.RegistrationConfirmed():
            participant, buyer = people[outcome.registration_id]
            return contract.RegistrationConfirmed(
                **ids, participant=participant, buyer=buyer, binding=outcome.binding
            )
        case domain.RegistrationWaitlisted():
            return contract.RegistrationWaitlisted(
                **ids, participant=people[outcome.registration_id][0], position=outcome.position
            )
        case domain.RegistrationPromoted():
            participant, buyer = people[outcome.registration_id]
            return contract.RegistrationPromoted(
                **ids, participant=participant, buyer=buyer, binding=outcome.binding
            )
        case domain.RegistrationBecameBinding():
            return contract.RegistrationBecameBinding(**ids)
        case domain.RegistrationCancelled():
            return contract.RegistrationCancelled(
                **ids,
                participant=people[outcome.registration_id][0],
                binding=outcome.binding,
                was_waitlisted=not outcome.freed_seat,
                by_course_cancellation=outcome.cause is domain.CancellationCause.COURSE_CANCELLED,
            )
        case domain.ParticipantSubstituted():
            previous_participant, previous_buyer = people[outcome.registration_id]
            payload = request.payload
            assert isinstance(payload, contract.SubstitutionRequested)
            new_buyer = payload.new_buyer or previous_buyer
            people[outcome.registration_id] = (payload.new_participant, new_buyer)
            substituted.add(outcome.registration_id)
            return contract.ParticipantSubstituted(
                **ids,
                previous_participant=previous_participant,
                new_participant=payload.new_participant,
                previous_buyer=previous_buyer,
                new_buyer=new_buyer,
                binding=True,  # the domain allows substitution only of binding registrations
            )
        case domain.RegistrationDuplicate():
            if outcome.existing_registration_id == outcome.registration_id:
                return None  # the same registration delivered again: it already has its answer
            refusals.append(
                (
                    outcome.registration_id,
                    outcome.course_id,
                    "already_registered",
                    outcome.existing_registration_id,
                    outcome.at,
                )
            )
            return contract.RegistrationRequestRefused(
                **ids,
                request="registration",
                reason="already_registered",
                existing_registration_id=outcome.existing_registration_id,
            )
        case domain.RegistrationRejected():
            refusals.append(
                (outcome.registration_id, outcome.course_id, outcome.reason.value, None, outcome.at)
            )
            return contract.RegistrationRejected(**ids, reason=outcome.reason.value)
        case domain.CancellationRejected():
            return contract.RegistrationRequestRefused(
                **ids,
                request="cancellation",
                reason=outcome.reason.value,
            )
        case domain.SubstitutionRejected():
            return contract.RegistrationRequestRefused(
                **ids,
                request="substitution",
                reason=outcome.reason.value,
            )
    return None
