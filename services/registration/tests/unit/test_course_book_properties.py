"""Property tests: random histories of one course against a naive reference model and the invariants.

The reference model below re-states the rules as plainly as possible (lists, linear scans); the seat book
is the efficient version. Every step compares the two and checks the invariants that must hold whatever
happens: no overbooking, no skip-ahead, promotions in order, binding exactly after the deadline, one active
registration per participant, and a batch write that reproduces the book exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from komponent_registration.domain.commands import (
    Cancel,
    ChangeCapacity,
    CourseCommand,
    PassDeadline,
    Register,
    Substitute,
)
from komponent_registration.domain.course_book import CourseBook
from komponent_registration.domain.events import (
    CourseEvent,
    ParticipantSubstituted,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
    RegistrationWaitlisted,
)
from komponent_registration.domain.registration import Registration, RegistrationStatus

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
DEADLINE = datetime(2027, 3, 1, 12, 0, tzinfo=COPENHAGEN)
STARTS_AT = DEADLINE + timedelta(days=30)
COURSE_ID = UUID("00000000-0000-4000-8000-000000000002")
EMAILS = [f"p{i}@kommune.dk" for i in range(12)]  # few enough that duplicates and re-registrations happen

CONFIRMED = RegistrationStatus.CONFIRMED
WAITLISTED = RegistrationStatus.WAITLISTED
CANCELLED = RegistrationStatus.CANCELLED


@dataclass
class ModelRegistration:
    registration_id: UUID
    email: str
    seq: int
    status: RegistrationStatus
    binding: bool


class ReferenceModel:
    """The rules with no cleverness: registrations in a list in received order."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.deadline_passed = False
        self.registrations: list[ModelRegistration] = []

    def active(self, email: str) -> ModelRegistration | None:
        return next((r for r in self.registrations if r.email == email and r.status is not CANCELLED), None)

    def confirmed(self) -> int:
        return sum(r.status is CONFIRMED for r in self.registrations)

    def waiting(self) -> list[ModelRegistration]:
        return [r for r in self.registrations if r.status is WAITLISTED]

    def pass_deadline_if_due(self, at: datetime) -> None:
        if not self.deadline_passed and at >= DEADLINE:
            self.deadline_passed = True
            for r in self.registrations:
                if r.status is CONFIRMED:
                    r.binding = True

    def promote(self) -> None:
        while self.waiting() and self.confirmed() < self.capacity:
            first = self.waiting()[0]
            first.status = CONFIRMED
            first.binding = self.deadline_passed

    def register(self, command: Register) -> None:
        self.pass_deadline_if_due(command.at)
        if self.active(command.participant_email):
            return
        free = self.confirmed() < self.capacity and not self.waiting()
        self.registrations.append(
            ModelRegistration(
                command.registration_id,
                command.participant_email,
                command.received_seq,
                CONFIRMED if free else WAITLISTED,
                free and self.deadline_passed,
            )
        )

    def cancel(self, command: Cancel) -> None:
        self.pass_deadline_if_due(command.at)
        for r in self.registrations:
            if r.registration_id == command.registration_id and r.status is not CANCELLED:
                r.status = CANCELLED
                self.promote()

    def substitute(self, command: Substitute) -> None:
        self.pass_deadline_if_due(command.at)
        for r in self.registrations:
            if (
                r.registration_id == command.registration_id
                and r.status is CONFIRMED
                and r.binding
                and self.active(command.new_participant_email) is None
            ):
                r.email = command.new_participant_email

    def change_capacity(self, command: ChangeCapacity) -> None:
        self.pass_deadline_if_due(command.at)
        self.capacity = command.capacity
        self.promote()


class CourseHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = CourseBook.open(COURSE_ID, capacity=3, starts_at=STARTS_AT, deadline=DEADLINE)
        self.model = ReferenceModel(capacity=3)
        self.clock = DEADLINE - timedelta(days=5)
        self.offset = 0
        self.known_ids: list[UUID] = []
        # The "database": what the batch writes produced, to prove pending_changes misses nothing.
        self.stored: dict[UUID, Registration] = {}
        self.stored_version = 0
        self.pending: list[CourseCommand] = []
        # Over-capacity is only legitimate after a lowering, and then nobody may be admitted meanwhile.
        self.seats_when_lowered: int | None = None
        self.admitted_since_lowering = False

    # ---------------------------------------------------------------------------------------- driving

    def tick(self, minutes: int) -> datetime:
        self.clock += timedelta(minutes=minutes)
        return self.clock

    def apply(self, command: CourseCommand) -> list[CourseEvent]:
        waiting_before = self.book.waiting_list()
        capacity_before = self.book.capacity
        events = self.book.handle(command)
        self.pending.append(command)

        admitted = [e for e in events if isinstance(e, RegistrationConfirmed | RegistrationPromoted)]
        promoted = [e.registration_id for e in events if isinstance(e, RegistrationPromoted)]
        # Promotions take the head of the waiting list, in order, never someone further back.
        assert promoted == waiting_before[: len(promoted)]
        if admitted:
            assert self.book.seats_taken <= self.book.capacity
            self.admitted_since_lowering = True
        if isinstance(command, ChangeCapacity) and command.capacity < capacity_before:
            self.seats_when_lowered = self.book.seats_taken
            self.admitted_since_lowering = False
        for happened in events:
            if isinstance(happened, RegistrationWaitlisted):
                assert happened.position == len(self.book.waiting_list())
            if isinstance(happened, RegistrationCancelled) and not happened.freed_seat:
                assert not happened.binding
        return events

    @rule(email=st.sampled_from(EMAILS), minutes=st.integers(0, 24 * 60))
    def register(self, email: str, minutes: int) -> None:
        command = Register(uuid4(), email, self.tick(minutes), self.offset)
        self.offset += 1
        self.known_ids.append(command.registration_id)
        self.apply(command)
        self.model.register(command)

    @precondition(lambda self: bool(self.known_ids))
    @rule(pick=st.integers(0, 10_000), minutes=st.integers(0, 24 * 60))
    def cancel(self, pick: int, minutes: int) -> None:
        registration_id = self.known_ids[pick % len(self.known_ids)]
        before = self.book.registration(registration_id)
        was = before.status if before else None
        command = Cancel(registration_id, self.tick(minutes))
        events = self.apply(command)
        self.model.cancel(command)
        cancelled = [e for e in events if isinstance(e, RegistrationCancelled)]
        if was is CONFIRMED:
            # After the deadline billing keeps the invoice; before it the cancellation is free.
            assert [(e.binding, e.freed_seat) for e in cancelled] == [(self.book.deadline_passed, True)]

    @precondition(lambda self: bool(self.known_ids))
    @rule(pick=st.integers(0, 10_000), email=st.sampled_from(EMAILS), minutes=st.integers(0, 24 * 60))
    def substitute(self, pick: int, email: str, minutes: int) -> None:
        command = Substitute(self.known_ids[pick % len(self.known_ids)], email, self.tick(minutes))
        if any(isinstance(e, ParticipantSubstituted) for e in self.apply(command)):
            event("substituted")
        self.model.substitute(command)

    @rule(capacity=st.integers(0, 6), minutes=st.integers(0, 24 * 60))
    def change_capacity(self, capacity: int, minutes: int) -> None:
        command = ChangeCapacity(capacity, self.tick(minutes))
        self.apply(command)
        self.model.change_capacity(command)

    @rule(minutes=st.integers(0, 60))
    def deadline_timer(self, minutes: int) -> None:
        # The timer may be late; it only ever fires at or after the deadline.
        at = max(self.clock, DEADLINE + timedelta(minutes=minutes))
        self.clock = at
        self.apply(PassDeadline(DEADLINE, at))
        self.model.pass_deadline_if_due(at)

    @rule()
    def write_part_of_batch(self) -> None:
        """A long batch writes its registration rows part by part (take_registration_changes) before the
        rest and the course row at its end: new rows are new, changed rows exist, none is lost."""
        inserted, updated = self.book.take_registration_changes()
        for registration in inserted:
            assert registration.registration_id not in self.stored
            self.stored[registration.registration_id] = registration
        for registration in updated:
            assert registration.registration_id in self.stored
            self.stored[registration.registration_id] = registration
        if inserted or updated:
            event("part of a batch written")
        again = self.book.take_registration_changes()
        assert again == ((), ())

    @rule(restore=st.booleans())
    def commit_batch(self, restore: bool) -> None:
        """Write the batch as the repository will, then optionally reload the book from the "database"."""
        changes = self.book.pending_changes()
        assert changes.expected_version == self.stored_version
        for registration in changes.inserted:
            assert registration.registration_id not in self.stored
            self.stored[registration.registration_id] = registration
        for registration in changes.updated:
            assert registration.registration_id in self.stored
            self.stored[registration.registration_id] = registration
        self.book.mark_persisted()
        self.stored_version = changes.course.version
        assert self.book.state() == changes.course
        in_memory = {r.registration_id: r for r in self.book.registrations()}
        # A restored book holds only what it needs (all active, some cancelled); each must match its row.
        assert all(self.stored[i] == r for i, r in in_memory.items())
        assert {i for i, r in self.stored.items() if r.status is not CANCELLED} <= in_memory.keys()
        if restore:
            active = [dataclasses.replace(r) for r in self.stored.values() if r.status is not CANCELLED]
            referenced = {c.registration_id for c in self.pending if isinstance(c, Cancel | Substitute)}
            cancelled = [
                dataclasses.replace(r)
                for r in self.stored.values()
                if r.status is CANCELLED and r.registration_id in referenced
            ]
            waiting = self.book.waiting_list()
            self.book = CourseBook(changes.course, active + cancelled)
            assert self.book.waiting_list() == waiting
        self.pending.clear()

    # ------------------------------------------------------------------------------------- invariants

    @invariant()
    def book_matches_the_reference_model(self) -> None:
        expected = {
            r.registration_id: (r.email, r.status, r.binding)
            for r in self.model.registrations
            if r.status is not CANCELLED
        }
        actual = {
            r.registration_id: (r.participant_email, r.status, r.binding)
            for r in self.book.registrations()
            if r.status is not CANCELLED
        }
        assert actual == expected
        assert self.book.waiting_list() == [r.registration_id for r in self.model.waiting()]

    @invariant()
    def seats_taken_never_exceeds_capacity_except_after_a_lowering(self) -> None:
        confirmed = [r for r in self.book.registrations() if r.status is CONFIRMED]
        assert self.book.seats_taken == len(confirmed)
        if self.book.seats_taken > self.book.capacity:
            event("over capacity after a lowering")  # shown by --hypothesis-show-statistics
            assert self.seats_when_lowered is not None
            assert self.book.seats_taken <= self.seats_when_lowered
            assert not self.admitted_since_lowering

    @invariant()
    def nobody_waits_while_a_seat_is_free(self) -> None:
        if self.book.waiting_list():
            assert self.book.seats_taken >= self.book.capacity

    @invariant()
    def no_skip_ahead(self) -> None:
        # Every seat holder was received before everyone still waiting, and the list is in received order.
        registrations = self.book.registrations()
        confirmed = [r.received_seq for r in registrations if r.status is CONFIRMED]
        waiting = [r.received_seq for r in registrations if r.status is WAITLISTED]
        if confirmed and waiting:
            event("seats taken and people waiting")
            assert max(confirmed) < min(waiting)
        ordered = [self.book.registration(i) for i in self.book.waiting_list()]
        assert [r.received_seq for r in ordered if r] == sorted(waiting)
        assert [r.queue_number for r in ordered if r] == sorted(r.queue_number or 0 for r in ordered if r)
        for position, registration_id in enumerate(self.book.waiting_list(), start=1):
            assert self.book.waiting_list_position(registration_id) == position

    @invariant()
    def binding_exactly_for_seats_after_the_deadline(self) -> None:
        for registration in self.book.registrations():
            if registration.status is CONFIRMED:
                if registration.binding:
                    event("binding seat")
                assert registration.binding == self.book.deadline_passed
                assert (registration.binding_since is not None) == registration.binding
            elif registration.status is WAITLISTED:
                assert not registration.binding

    @invariant()
    def one_active_registration_per_participant(self) -> None:
        emails = [r.participant_email for r in self.book.registrations() if r.status is not CANCELLED]
        assert len(emails) == len(set(emails))


CourseHistory.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_course_history = CourseHistory.TestCase
