"""The allocation use case: apply a batch of requests to the courses' seat books inside ONE transaction.

Used by every writer of seat books: the allocator (intake topic), the course projection (catalogue facts)
and the deadline consumer. Each runs inside the transaction the runtime opened for the batch (inbox rows
included), so the book changes, the outcome events in the outbox and the inbox commit together or not
at all. Course rows are locked `FOR UPDATE`: the database serialises these writers per course, and its
guards (migration 0001) stay the last line of defence against overbooking.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as _FastUUID
from komponent_contracts import Event
from komponent_contracts import events as contract
from komponent_runtime.database import COPY_FROM_ROWS, Connection
from komponent_runtime.metrics import meter
from komponent_runtime.outbox import OutboxRow
from opentelemetry.metrics import CallbackOptions, Observation
from pydantic_core import to_json

from komponent_registration.adapters import outbox_rows
from komponent_registration.adapters.repository import (
    CourseBooks,
    HandOver,
    PendingWrite,
    Source,
    record_handed_over,
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
from komponent_registration.domain.erasure import normalise_email
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


@dataclass(slots=True)
class Request:
    """One thing to apply to one course, with the event it came from and the trace its effects continue.
    (Not frozen: one per delivery, and a frozen dataclass costs several times more to build.)"""

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
        payload = request.payload
        command = request.command
        if (
            request.source is not None
            and isinstance(payload, contract.RegistrationReceived)
            and isinstance(command, Register)
            and command.registration_id not in received
        ):
            # Keyed by the command's copy of the id (see consumers.intake_request): equal, cheaper to hash.
            registration_id = command.registration_id
            received[registration_id] = payload
            people[registration_id] = (payload.participant, payload.buyer)
            serialised[registration_id] = (
                outbox_rows.serialise(payload.participant),
                outbox_rows.serialise(payload.buyer),
            )
            sources[registration_id] = request.source
    locked = await books.lock(conn, by_course)
    forms = {
        registration_id: _form_json(*serialised[registration_id], payload.terms_version)
        for registration_id, payload in received.items()
    }

    # The batch's writes go out in parts, each as soon as the one before it is done, while this process
    # decides the next part and builds its rows: PostgreSQL inserts while Python works, not in turn.
    writes = _Writes()
    try:
        answered: list[tuple[Request, list[domain.CourseEvent]]] = []
        needed: set[UUID] = set()
        touched: list[CourseBook] = []
        for course_id, course_requests in by_course.items():
            book = locked.get(course_id)
            if book is not None:
                touched.append(book)
            for request in course_requests:
                outcomes = _handle(book, request)
                answered.append((request, outcomes))
                for e in outcomes:
                    if isinstance(e, _NEEDS_PEOPLE) and e.registration_id not in people:
                        needed.add(e.registration_id)
                if len(answered) % _WRITE_PART == 0:
                    _write_registrations(writes, conn, books, books.taken_rows(touched, sources, forms))
                    await asyncio.sleep(0)  # the writer sends them now
        if needed:
            await writes.drained()  # the connection is the writer's while it has statements to send
            for registration_id, stored in (await registration_details(conn, needed)).items():
                people[registration_id] = (
                    contract.Participant.model_validate(stored["participant"]),
                    contract.Buyer.model_validate(stored["buyer"]),
                )

        pending = books.pending(locked.values(), sources, forms)
        rows = outbox_rows.OutboxRows(SOURCE, datetime.now(UTC))
        answers = _Outcomes(people, serialised, rows)
        writes.then(partial(books.write_changed, conn, pending))  # before the new rows (see there)
        if len(answered) < COPY_FROM_ROWS and len(pending.inserted) < COPY_FROM_ROWS:
            # Most batches at moderate load: everything after write_changed in one statement, unless a
            # substitution replaces a stored form or the outbox rows are many.
            out = answers.rows(answered) + _seats_changed(pending, by_course, rows)
            replaced_forms = _replaced_forms(answers, people)
            if replaced_forms or len(out) >= COPY_FROM_ROWS:
                writes.then(partial(books.insert_new, conn, pending.inserted))
                writes.then(partial(outbox_rows.insert, conn, out))
                writes.then(partial(books.write_back, conn, pending, replaced_forms))
            else:
                writes.then(partial(books.write_at_once, conn, pending, out))
        else:
            parts = -(-len(answered) // _WRITE_PART)
            new_per_part = -(-len(pending.inserted) // parts)
            for part in range(parts):
                new = pending.inserted[part * new_per_part : (part + 1) * new_per_part]
                if new:
                    writes.then(partial(books.insert_new, conn, new))
                out = []
                for first in range(part * _WRITE_PART, min((part + 1) * _WRITE_PART, len(answered)), _STEP):
                    out.extend(answers.rows(answered[first : first + _STEP]))
                    # Let the writer task move on to its next statement when PostgreSQL finished one.
                    await asyncio.sleep(0)
                if part == parts - 1:
                    out.extend(_seats_changed(pending, by_course, rows))
                writes.then(partial(outbox_rows.insert, conn, out))
            writes.then(partial(books.write_back, conn, pending, _replaced_forms(answers, people)))
        writes.then(partial(record_refusals, conn, answers.refusals))
        if answers.handed_over:
            writes.then(partial(record_handed_over, conn, answers.handed_over))
        await writes.done()
    except BaseException:
        # Whatever went wrong, the connection must be idle before the transaction is rolled back.
        await writes.settle()
        raise
    # Recorded with the outbox rows, inside the caller's transaction: a batch rolled back and applied
    # again counts its outcomes twice (rare; the events themselves are exactly-once downstream).
    for label, count in answers.counts.items():
        registrations.add(count, {"outcome": label})
    for book in pending.changed:
        state = book.state()
        _seats_left[book.course_id] = max(state.capacity - state.seats_taken, 0)


# Outcomes per part of the batch's write pipeline: small enough that PostgreSQL starts early, large enough
# that a statement's round trip is negligible per row.
_WRITE_PART = 500
_STEP = 50  # answers built between two turns of the event loop


def _replaced_forms(answers: _Outcomes, people: dict[UUID, People]) -> dict[UUID, str]:
    """The stored forms substitutions replace (JSON objects), by registration id: of registrations new in
    this batch too, written with those of earlier ones."""
    return {
        registration_id: _form_json(outbox_rows.serialise(participant), outbox_rows.serialise(buyer))
        for registration_id in answers.substituted
        for participant, buyer in [people[registration_id]]
    }


def _write_registrations(writes: _Writes, conn: Connection, books: CourseBooks, rows: PendingWrite) -> None:
    """Registration rows taken from the books mid-batch: the changed first, as `write_changed` says."""
    if rows.updated:
        writes.then(partial(books.write_changed, conn, rows))
    if rows.inserted:
        writes.then(partial(books.insert_new, conn, rows.inserted))


class _Writes:
    """Statements on one connection, in order, sent by one task as soon as the one before completed."""

    def __init__(self) -> None:
        self._queue: deque[Callable[[], Awaitable[object]]] = deque()
        self._more = asyncio.Event()
        self._closed = False
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            while self._queue:
                await self._queue.popleft()()  # a failed statement ends the task: nothing after it is sent
            if self._closed:
                return
            self._more.clear()
            await self._more.wait()

    def then(self, write: Callable[[], Awaitable[object]]) -> None:
        self._queue.append(write)
        self._more.set()

    async def drained(self) -> None:
        """Every statement queued so far has completed; the connection is free until the next `then`.
        Raises what a failed statement raised."""
        reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def mark() -> None:
            reached.set_result(None)

        self.then(mark)
        await asyncio.wait((reached, self._task), return_when=asyncio.FIRST_COMPLETED)
        if not reached.done():
            await self._task  # it ended before reaching the mark: a statement failed

    async def done(self) -> None:
        """Every statement sent and completed; raises what a failed one raised."""
        self._closed = True
        self._more.set()
        await self._task

    async def settle(self) -> None:
        """After a failure here: send nothing more, and wait until no statement is in flight."""
        self._queue.clear()
        self._closed = True
        self._more.set()
        await asyncio.gather(self._task, return_exceptions=True)


def _seats_changed(
    pending: PendingWrite, by_course: dict[UUID, list[Request]], rows: outbox_rows.OutboxRows
) -> list[OutboxRow]:
    """One seat count per changed course per batch, whatever the batch did: the catalogue shows "seats
    left" from it and keeps the highest version, so it never goes backwards."""
    out = []
    for book in pending.changed:
        state = book.state()  # a changed book's state carries the version its write gives the row
        last = by_course[book.course_id][-1]
        seats = contract.CourseSeatsChanged(
            course_id=book.course_id,
            capacity=state.capacity,
            seats_taken=state.seats_taken,
            waiting_list_length=book.waiting_list_length,
            version=state.version,
            occurred_at=last.command.at,
        )
        event_id = uuid.uuid5(_OUTCOME_NAMESPACE, f"{book.course_id}/seats/{state.version}")
        out.append(rows.event(seats, event_id, last.trace_headers))
    return out


# Outcomes about registrations that may be from earlier batches, whose participant comes from their row.
_NEEDS_PEOPLE = (domain.RegistrationPromoted, domain.RegistrationCancelled, domain.ParticipantSubstituted)
_NAMESPACE_BYTES = _OUTCOME_NAMESPACE.bytes


def _outcome_id(request_id: UUID, index: int) -> UUID:
    """uuid5(_OUTCOME_NAMESPACE, f"{request_id}/{index}"), minus uuid5's per-call cost of re-encoding
    the namespace (one id per outcome event). Returned as asyncpg's UUID (a `uuid.UUID`, equal and
    hashing alike), which builds from bytes and prints (the event's `ce_id`) several times faster."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + f"{request_id}/{index}".encode(), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return _FastUUID(bytes(digest))


class _Outcomes:
    """The outbox rows for the domain's answers, part by part in the batch's order, each with the trace of
    the request that caused it; the count per outcome label; the refusals to record; the registrations
    substituted (`people` then holds their new participant). A new registration's own answer (confirmed
    or waitlisted: almost every row in a rush) is spliced from its serialised participant and buyer;
    everything else is a contract model."""

    def __init__(
        self,
        people: dict[UUID, People],
        serialised: dict[UUID, tuple[bytes, bytes]],
        rows: outbox_rows.OutboxRows,
    ) -> None:
        self.people = people
        self.serialised = serialised
        self._rows = rows
        self.counts: dict[str, int] = {}
        self.refusals: list[Refusal] = []
        self.substituted: set[UUID] = set()
        self.handed_over: list[HandOver] = []

    def rows(self, answered: Sequence[tuple[Request, list[domain.CourseEvent]]]) -> list[OutboxRow]:
        out: list[OutboxRow] = []
        counts = self.counts
        for request, outcomes in answered:
            trace = request.trace_headers
            for index, outcome in enumerate(outcomes):
                kind = type(outcome)
                known = self.serialised.get(outcome.registration_id)
                if known is not None and kind is domain.RegistrationWaitlisted:
                    assert isinstance(outcome, domain.RegistrationWaitlisted)
                    row = self._rows.waitlisted(
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
                    row = self._rows.confirmed(
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
                    event = _to_contract(outcome, request, self.people, self.substituted, self.refusals)
                    if event is None:
                        continue
                    event_id = _outcome_id(request.event_id, index)
                    if isinstance(event, contract.ParticipantSubstituted):
                        self.handed_over.append(
                            (
                                event_id,
                                event.registration_id,
                                event.course_id,
                                normalise_email(str(event.previous_participant.email)),
                                event.occurred_at,
                            )
                        )
                    row = self._rows.event(event, event_id, trace)
                    label = _OUTCOMES.get(type(event))
                out.append(row)
                if label is not None:
                    counts[label] = counts.get(label, 0) + 1
        return out


def _form_json(participant: bytes, buyer: bytes, terms_version: str | None = None) -> str:
    """A registration's stored form (or the part a substitution replaces) as a JSON object, from the
    participant's and buyer's JSON (`outbox_rows.serialise`): the models' own JSON form, as
    `model_dump(mode="json")` gives, without serialising them a second time."""
    form = b'{"participant":%s,"buyer":%s' % (participant, buyer)
    if terms_version is not None:
        form += b',"terms_version":%s' % _json_string(terms_version)
    return (form + b"}").decode()


@functools.lru_cache(maxsize=64)
def _json_string(text: str) -> bytes:
    """A string as JSON; the few terms versions in use repeat in every registration of a batch."""
    return to_json(text)


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
