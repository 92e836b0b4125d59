"""The per-course seat book: first-come-first-served seats, the waiting list and binding registrations.

One ``CourseBook`` is the consistency boundary for one course. Commands arrive in the order of the
course's Kafka partition and are applied one after another; the book answers each with domain events and
remembers what it changed, so a whole fetched batch can be applied in memory and written back in one
transaction (ARCHITECTURE §4). The database repeats the seat check as the last guard (see the migration).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from komponent_registration.domain.commands import (
    Cancel,
    CancelCourse,
    ChangeCapacity,
    CourseCommand,
    PassDeadline,
    Register,
    RescheduleCourse,
    StartCourse,
    Substitute,
)
from komponent_registration.domain.events import (
    CancellationCause,
    CancellationRejected,
    CourseEvent,
    ParticipantSubstituted,
    RegistrationBecameBinding,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationDuplicate,
    RegistrationPromoted,
    RegistrationRejected,
    RegistrationWaitlisted,
    RejectionReason,
    SubstitutionRejected,
)
from komponent_registration.domain.registration import Registration, RegistrationStatus


class CourseStatus(StrEnum):
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    STARTED = "started"


@dataclass(frozen=True, slots=True)
class CourseState:
    """The course row of the projection, exactly as persisted."""

    course_id: UUID
    capacity: int
    seats_taken: int
    starts_at: datetime
    deadline: datetime
    status: CourseStatus
    deadline_passed: bool
    next_queue_number: int
    version: int


@dataclass(frozen=True, slots=True)
class CourseChanges:
    """Everything one batch changed, for a single write: one course row, inserts and updates.

    ``expected_version`` is the version the batch was applied to; the repository updates the course row
    only ``WHERE version = expected_version`` so a writer that lost its partition in a rebalance (a zombie)
    cannot overwrite the new owner's work.
    """

    course: CourseState
    expected_version: int
    inserted: tuple[Registration, ...]
    updated: tuple[Registration, ...]

    @property
    def is_empty(self) -> bool:
        return not self.inserted and not self.updated and self.course.version == self.expected_version


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def reject_for_unknown_course(course_id: UUID, command: Register) -> RegistrationRejected:
    """The answer to a registration for a course the projection does not know (or not yet published)."""
    return RegistrationRejected(
        course_id, command.registration_id, RejectionReason.UNKNOWN_COURSE, command.at
    )


def referenced_registration_ids(commands: Iterable[CourseCommand]) -> set[UUID]:
    """Ids a batch refers to, so the loader can fetch those cancelled registrations too.

    ``CourseBook.restore`` needs every non-cancelled registration (duplicate check, waiting list); cancelled
    ones are only needed when a command in the batch names them, e.g. a repeated cancellation.
    """
    return {c.registration_id for c in commands if isinstance(c, Register | Cancel | Substitute)}


class CourseBook:
    def __init__(self, state: CourseState, registrations: Iterable[Registration] = ()) -> None:
        if state.capacity < 0:
            raise ValueError("capacity cannot be negative")
        _require_aware(state.starts_at, "starts_at")
        _require_aware(state.deadline, "deadline")
        self._course_id = state.course_id
        self._capacity = state.capacity
        self._starts_at = state.starts_at
        self._deadline = state.deadline
        self._status = state.status
        self._deadline_passed = state.deadline_passed
        self._next_queue_number = state.next_queue_number
        self._version = state.version
        self._registrations: dict[UUID, Registration] = {}
        self._active_by_email: dict[str, UUID] = {}
        # Insertion order is queue order: entries join at the back and leave from anywhere in O(1),
        # so promotions never rewrite anybody's position.
        self._waiting_list: dict[UUID, None] = {}
        self._seats_taken = 0
        for registration in sorted(registrations, key=lambda r: (r.queue_number or 0, r.received_seq)):
            if registration.course_id != state.course_id:
                raise ValueError("registration belongs to another course")
            self._registrations[registration.registration_id] = registration
            if registration.status is not RegistrationStatus.CANCELLED:
                self._active_by_email[registration.participant_email] = registration.registration_id
            if registration.status is RegistrationStatus.WAITLISTED:
                self._waiting_list[registration.registration_id] = None
            elif registration.status is RegistrationStatus.CONFIRMED:
                self._seats_taken += 1
        if self._seats_taken != state.seats_taken:
            # The DB keeps both consistent (deferred trigger); a mismatch means a partial load.
            raise ValueError("seats_taken does not match the confirmed registrations loaded")
        self._inserted: dict[UUID, Registration] = {}
        self._updated: dict[UUID, Registration] = {}
        self._course_dirty = False
        self._changes_taken = False  # registration changes taken for writing before the batch's end

    @classmethod
    def open(cls, course_id: UUID, capacity: int, starts_at: datetime, deadline: datetime) -> CourseBook:
        """A newly published course (CoursePublished): no seats taken, nobody waiting."""
        book = cls(
            CourseState(
                course_id=course_id,
                capacity=capacity,
                seats_taken=0,
                starts_at=starts_at,
                deadline=deadline,
                status=CourseStatus.PUBLISHED,
                deadline_passed=False,
                next_queue_number=1,
                version=0,
            )
        )
        book._course_dirty = True
        return book

    # ----------------------------------------------------------------------------------------- queries

    @property
    def course_id(self) -> UUID:
        return self._course_id

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def seats_taken(self) -> int:
        return self._seats_taken

    @property
    def status(self) -> CourseStatus:
        return self._status

    @property
    def deadline_passed(self) -> bool:
        return self._deadline_passed

    def registration(self, registration_id: UUID) -> Registration | None:
        return self._registrations.get(registration_id)

    def registrations(self) -> list[Registration]:
        return sorted(self._registrations.values(), key=lambda r: r.received_seq)

    def waiting_list(self) -> list[UUID]:
        """Registration ids in the order they will be promoted."""
        return list(self._waiting_list)

    @property
    def waiting_list_length(self) -> int:
        return len(self._waiting_list)

    def waiting_list_position(self, registration_id: UUID) -> int | None:
        """1-based rank in the waiting list (computed, never stored), or None if not waiting."""
        for position, waiting_id in enumerate(self._waiting_list, start=1):
            if waiting_id == registration_id:
                return position
        return None

    def state(self) -> CourseState:
        return CourseState(
            course_id=self._course_id,
            capacity=self._capacity,
            seats_taken=self._seats_taken,
            starts_at=self._starts_at,
            deadline=self._deadline,
            status=self._status,
            deadline_passed=self._deadline_passed,
            next_queue_number=self._next_queue_number,
            version=self._version + 1 if self._is_dirty() else self._version,
        )

    # -------------------------------------------------------------------------------- change tracking

    def pending_changes(self) -> CourseChanges:
        """What the commands since the last ``mark_persisted`` changed; snapshots, safe to hand to I/O."""
        return CourseChanges(
            course=self.state(),
            expected_version=self._version,
            inserted=tuple(r.snapshot() for r in self._inserted.values()),
            updated=tuple(r.snapshot() for r in self._updated.values()),
        )

    def take_registration_changes(self) -> tuple[tuple[Registration, ...], tuple[Registration, ...]]:
        """The registrations new and changed since the last take (or ``mark_persisted``), as snapshots, so
        a long batch can write them while it goes on. One taken as new and changed later comes out again,
        as changed. The course row still changes once per batch: the book stays dirty (and
        ``pending_changes`` gives the rest) until ``mark_persisted``."""
        inserted = tuple(r.snapshot() for r in self._inserted.values())
        updated = tuple(r.snapshot() for r in self._updated.values())
        if inserted or updated:
            self._changes_taken = True
        self._inserted.clear()
        self._updated.clear()
        return inserted, updated

    def mark_persisted(self) -> None:
        """Call after the batch transaction committed; the book is then in step with the database."""
        if self._is_dirty():
            self._version += 1
        self._inserted.clear()
        self._updated.clear()
        self._course_dirty = False
        self._changes_taken = False

    def _is_dirty(self) -> bool:
        return self._course_dirty or self._changes_taken or bool(self._inserted) or bool(self._updated)

    def _touch(self, registration: Registration) -> None:
        if registration.registration_id not in self._inserted:
            self._updated[registration.registration_id] = registration

    # ---------------------------------------------------------------------------------------- commands

    def handle_all(self, commands: Sequence[CourseCommand]) -> list[CourseEvent]:
        """Apply a batch in partition order; the events come out in the order they happened."""
        events: list[CourseEvent] = []
        for command in commands:
            events.extend(self.handle(command))
        return events

    def handle(self, command: CourseCommand) -> list[CourseEvent]:
        _require_aware(command.at, "at")
        events: list[CourseEvent] = []
        if not isinstance(command, CancelCourse):
            # The DeadlinePassed timer may fire late (downtime) or after a registration stamped past the
            # deadline; binding follows the clock of the command, not the arrival of the timer.
            events.extend(self._catch_up_deadline(command.at))
        match command:
            case Register():
                events.extend(self._register(command))
            case Cancel():
                events.extend(self._cancel(command))
            case Substitute():
                events.extend(self._substitute(command))
            case PassDeadline():
                events.extend(self._catch_up_deadline(max(command.at, command.deadline)))
            case ChangeCapacity():
                events.extend(self._change_capacity(command))
            case CancelCourse():
                events.extend(self._cancel_course(command))
            case StartCourse():
                if self._status is CourseStatus.PUBLISHED:
                    self._status = CourseStatus.STARTED
                    self._course_dirty = True
            case RescheduleCourse():
                events.extend(self._reschedule(command))
        return events

    def _register(self, command: Register) -> list[CourseEvent]:
        known = self._registrations.get(command.registration_id)
        if known is not None:
            # The same registration delivered again under a new event id: answer with what it became.
            return [self._duplicate(command, known)]
        reason = self._closed_for_registration(command.at)
        if reason is not None:
            return [RegistrationRejected(self._course_id, command.registration_id, reason, command.at)]
        existing_id = self._active_by_email.get(command.participant_email)
        if existing_id is not None:
            return [self._duplicate(command, self._registrations[existing_id])]

        registration = Registration(
            registration_id=command.registration_id,
            course_id=self._course_id,
            participant_email=command.participant_email,
            status=RegistrationStatus.WAITLISTED,
            binding=False,
            received_seq=command.received_seq,
            received_at=command.at,
        )
        self._registrations[registration.registration_id] = registration
        self._inserted[registration.registration_id] = registration
        self._active_by_email[registration.participant_email] = registration.registration_id
        self._course_dirty = True

        # Nobody may overtake the waiting list: a free seat with people waiting is taken by them first
        # (promotion runs in the same stream), so a newcomer is admitted only when nobody waits.
        if not self._waiting_list and self._has_free_seat():
            self._take_seat(registration, command.at)
            return [
                RegistrationConfirmed(
                    self._course_id, registration.registration_id, registration.binding, command.at
                )
            ]

        registration.queue_number = self._next_queue_number
        self._next_queue_number += 1
        self._waiting_list[registration.registration_id] = None
        return [
            RegistrationWaitlisted(
                self._course_id, registration.registration_id, len(self._waiting_list), command.at
            )
        ]

    def _cancel(self, command: Cancel) -> list[CourseEvent]:
        registration = self._registrations.get(command.registration_id)
        if registration is None:
            return [
                CancellationRejected(
                    self._course_id, command.registration_id, RejectionReason.UNKNOWN_REGISTRATION, command.at
                )
            ]
        if registration.status is RegistrationStatus.CANCELLED:
            return [
                CancellationRejected(
                    self._course_id, command.registration_id, RejectionReason.ALREADY_CANCELLED, command.at
                )
            ]
        freed_seat = registration.holds_seat
        self._cancel_registration(registration, command.at)
        # A confirmed registration is binding exactly when the deadline has passed, so its own flag says
        # whether billing keeps the invoice; a waitlisted entry is never binding and just leaves the list.
        events: list[CourseEvent] = [
            RegistrationCancelled(
                self._course_id,
                registration.registration_id,
                binding=registration.binding,
                freed_seat=freed_seat,
                cause=CancellationCause.PARTICIPANT,
                at=command.at,
            )
        ]
        events.extend(self._promote_waiting(command.at))
        return events

    def _substitute(self, command: Substitute) -> list[CourseEvent]:
        registration = self._registrations.get(command.registration_id)
        reason: RejectionReason | None = None
        if registration is None:
            reason = RejectionReason.UNKNOWN_REGISTRATION
        elif registration.status is RegistrationStatus.CANCELLED:
            reason = RejectionReason.ALREADY_CANCELLED
        elif registration.status is RegistrationStatus.WAITLISTED:
            reason = RejectionReason.NOT_CONFIRMED
        elif not registration.binding:
            # Before the deadline a free cancellation is possible; handing the seat over instead would let
            # a colleague step past everyone on the waiting list.
            reason = RejectionReason.NOT_BINDING
        elif command.new_participant_email == registration.participant_email:
            return []
        elif command.new_participant_email in self._active_by_email:
            reason = RejectionReason.ALREADY_REGISTERED
        if reason is not None or registration is None:
            return [
                SubstitutionRejected(
                    self._course_id,
                    command.registration_id,
                    reason or RejectionReason.UNKNOWN_REGISTRATION,
                    command.at,
                )
            ]
        previous = registration.participant_email
        del self._active_by_email[previous]
        registration.participant_email = command.new_participant_email
        self._active_by_email[registration.participant_email] = registration.registration_id
        self._touch(registration)
        return [
            ParticipantSubstituted(
                self._course_id,
                registration.registration_id,
                previous,
                registration.participant_email,
                command.at,
            )
        ]

    def _change_capacity(self, command: ChangeCapacity) -> list[CourseEvent]:
        if command.capacity < 0:
            raise ValueError("capacity cannot be negative")
        if command.capacity == self._capacity:
            return []
        # Lowering never bumps anyone: seats_taken may stay above capacity, and _has_free_seat stops
        # admissions until enough seats are freed.
        self._capacity = command.capacity
        self._course_dirty = True
        return self._promote_waiting(command.at)

    def _cancel_course(self, command: CancelCourse) -> list[CourseEvent]:
        if self._status is CourseStatus.CANCELLED:
            return []
        self._status = CourseStatus.CANCELLED
        self._course_dirty = True
        events: list[CourseEvent] = []
        for registration in self.registrations():
            if registration.status is RegistrationStatus.CANCELLED:
                continue
            freed_seat = registration.holds_seat
            self._cancel_registration(registration, command.at)
            # The provider called it off, so nobody pays, whether the deadline had passed or not.
            registration.binding = False
            events.append(
                RegistrationCancelled(
                    self._course_id,
                    registration.registration_id,
                    binding=False,
                    freed_seat=freed_seat,
                    cause=CancellationCause.COURSE_CANCELLED,
                    at=command.at,
                )
            )
        return events

    def _reschedule(self, command: RescheduleCourse) -> list[CourseEvent]:
        _require_aware(command.starts_at, "starts_at")
        _require_aware(command.deadline, "deadline")
        self._starts_at = command.starts_at
        self._deadline = command.deadline
        self._course_dirty = True
        if self._deadline_passed and command.deadline > command.at and self._status is CourseStatus.PUBLISHED:
            # The deadline moved into the future again: new registrations are free to cancel until then.
            # Registrations that already became binding stay binding (see README, open points).
            self._deadline_passed = False
        return self._catch_up_deadline(command.at)

    # ----------------------------------------------------------------------------------------- helpers

    def _closed_for_registration(self, at: datetime) -> RejectionReason | None:
        if self._status is CourseStatus.CANCELLED:
            return RejectionReason.COURSE_CANCELLED
        if self._status is CourseStatus.STARTED or at >= self._starts_at:
            return RejectionReason.COURSE_STARTED
        return None

    def _has_free_seat(self) -> bool:
        return self._status is CourseStatus.PUBLISHED and self._seats_taken < self._capacity

    def _take_seat(self, registration: Registration, at: datetime) -> None:
        registration.status = RegistrationStatus.CONFIRMED
        if self._deadline_passed:
            # Admitted after the deadline (late registration or promotion): binding at once.
            registration.binding = True
            registration.binding_since = at
        self._seats_taken += 1
        self._course_dirty = True
        self._touch(registration)

    def _cancel_registration(self, registration: Registration, at: datetime) -> None:
        if registration.status is RegistrationStatus.CONFIRMED:
            self._seats_taken -= 1
        self._waiting_list.pop(registration.registration_id, None)
        del self._active_by_email[registration.participant_email]
        registration.status = RegistrationStatus.CANCELLED
        registration.cancelled_at = at
        self._course_dirty = True
        self._touch(registration)

    def _promote_waiting(self, at: datetime) -> list[CourseEvent]:
        events: list[CourseEvent] = []
        while self._waiting_list and self._has_free_seat():
            first = next(iter(self._waiting_list))
            del self._waiting_list[first]
            registration = self._registrations[first]
            self._take_seat(registration, at)
            events.append(RegistrationPromoted(self._course_id, first, registration.binding, at))
        return events

    def _catch_up_deadline(self, now: datetime) -> list[CourseEvent]:
        if self._deadline_passed or now < self._deadline or self._status is not CourseStatus.PUBLISHED:
            return []
        self._deadline_passed = True
        self._course_dirty = True
        events: list[CourseEvent] = []
        for registration in self.registrations():
            if registration.status is RegistrationStatus.CONFIRMED and not registration.binding:
                registration.binding = True
                registration.binding_since = now
                self._touch(registration)
                events.append(RegistrationBecameBinding(self._course_id, registration.registration_id, now))
        return events

    def _duplicate(self, command: Register, existing: Registration) -> RegistrationDuplicate:
        return RegistrationDuplicate(
            self._course_id, command.registration_id, existing.registration_id, existing.status, command.at
        )
