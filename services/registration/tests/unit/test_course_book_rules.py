"""Every business rule of the seat book, one scenario each, in Copenhagen wall-clock time."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
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
from komponent_registration.domain.course_book import (
    CourseBook,
    CourseStatus,
    referenced_registration_ids,
    reject_for_unknown_course,
)
from komponent_registration.domain.events import (
    CancellationCause,
    CancellationRejected,
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
from komponent_registration.domain.registration import RegistrationStatus

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
DEADLINE = datetime(2027, 3, 1, 12, 0, tzinfo=COPENHAGEN)
STARTS_AT = datetime(2027, 3, 22, 9, 0, tzinfo=COPENHAGEN)
BEFORE_DEADLINE = DEADLINE - timedelta(days=10)
AFTER_DEADLINE = DEADLINE + timedelta(hours=1)
COURSE_ID = UUID("00000000-0000-4000-8000-000000000001")


def new_book(capacity: int = 2) -> CourseBook:
    return CourseBook.open(COURSE_ID, capacity=capacity, starts_at=STARTS_AT, deadline=DEADLINE)


_offsets = count()


def register(email: str, at: datetime = BEFORE_DEADLINE, registration_id: UUID | None = None) -> Register:
    # Offsets only grow, like those of the course's Kafka partition.
    return Register(registration_id or uuid4(), email, at, next(_offsets))


def status_of(book: CourseBook, registration_id: UUID) -> RegistrationStatus:
    registration = book.registration(registration_id)
    assert registration is not None
    return registration.status


def binding_of(book: CourseBook, registration_id: UUID) -> bool:
    registration = book.registration(registration_id)
    assert registration is not None
    return registration.binding


def fill(book: CourseBook, *emails: str, at: datetime = BEFORE_DEADLINE) -> list[UUID]:
    commands = [register(email, at) for email in emails]
    book.handle_all(commands)
    return [c.registration_id for c in commands]


# ------------------------------------------------------------------------------ first come, first served


def test_seats_go_to_registrations_in_received_order_then_the_waiting_list() -> None:
    book = new_book(capacity=2)
    a, b, c, d = (register(f"p{i}@kommune.dk") for i in range(4))
    events = book.handle_all([a, b, c, d])
    assert events == [
        RegistrationConfirmed(COURSE_ID, a.registration_id, False, a.at),
        RegistrationConfirmed(COURSE_ID, b.registration_id, False, b.at),
        RegistrationWaitlisted(COURSE_ID, c.registration_id, 1, c.at),
        RegistrationWaitlisted(COURSE_ID, d.registration_id, 2, d.at),
    ]
    assert book.seats_taken == 2
    assert book.waiting_list() == [c.registration_id, d.registration_id]


def test_cancelling_a_seat_promotes_the_first_on_the_waiting_list() -> None:
    book = new_book(capacity=1)
    a, b, c = fill(book, "a@k.dk", "b@k.dk", "c@k.dk")
    events = book.handle(Cancel(a, BEFORE_DEADLINE))
    assert events == [
        RegistrationCancelled(COURSE_ID, a, False, True, CancellationCause.PARTICIPANT, BEFORE_DEADLINE),
        RegistrationPromoted(COURSE_ID, b, False, BEFORE_DEADLINE),
    ]
    assert book.waiting_list() == [c]
    assert book.waiting_list_position(c) == 1
    assert book.seats_taken == 1


def test_waitlisted_participant_cancelling_just_leaves_the_list() -> None:
    book = new_book(capacity=1)
    _, b, c, d = fill(book, "a@k.dk", "b@k.dk", "c@k.dk", "d@k.dk")
    events = book.handle(Cancel(c, AFTER_DEADLINE))
    cancelled = [e for e in events if isinstance(e, RegistrationCancelled)]
    assert cancelled == [
        RegistrationCancelled(COURSE_ID, c, False, False, CancellationCause.PARTICIPANT, AFTER_DEADLINE)
    ]
    assert book.waiting_list() == [b, d]
    assert book.waiting_list_position(d) == 2
    assert book.seats_taken == 1


def test_newcomer_never_overtakes_the_waiting_list() -> None:
    book = new_book(capacity=1)
    fill(book, "a@k.dk", "b@k.dk")
    book.handle(ChangeCapacity(0, BEFORE_DEADLINE))
    late = register("c@k.dk")
    assert book.handle(late) == [RegistrationWaitlisted(COURSE_ID, late.registration_id, 2, late.at)]


# ------------------------------------------------------------------------------------------- capacity


def test_raising_capacity_promotes_from_the_waiting_list_in_order() -> None:
    book = new_book(capacity=1)
    _, b, c, d = fill(book, "a@k.dk", "b@k.dk", "c@k.dk", "d@k.dk")
    events = book.handle(ChangeCapacity(3, BEFORE_DEADLINE))
    assert events == [
        RegistrationPromoted(COURSE_ID, b, False, BEFORE_DEADLINE),
        RegistrationPromoted(COURSE_ID, c, False, BEFORE_DEADLINE),
    ]
    assert book.waiting_list() == [d]


def test_lowering_capacity_bumps_nobody_and_admits_nobody_until_seats_free() -> None:
    book = new_book(capacity=3)
    a, b, c, d = fill(book, "a@k.dk", "b@k.dk", "c@k.dk", "d@k.dk")
    assert book.handle(ChangeCapacity(1, BEFORE_DEADLINE)) == []
    assert book.seats_taken == 3
    assert [status_of(book, r) for r in (a, b, c)] == [RegistrationStatus.CONFIRMED] * 3

    # Two seats free, but 1 of capacity 1 is still taken: nobody is promoted yet.
    book.handle_all([Cancel(a, BEFORE_DEADLINE), Cancel(b, BEFORE_DEADLINE)])
    assert status_of(book, d) is RegistrationStatus.WAITLISTED
    assert book.seats_taken == 1
    # Only when seats_taken drops below capacity does the waiting list move.
    assert book.handle(Cancel(c, BEFORE_DEADLINE))[-1] == RegistrationPromoted(
        COURSE_ID, d, False, BEFORE_DEADLINE
    )


def test_negative_capacity_is_a_contract_error() -> None:
    with pytest.raises(ValueError):
        new_book().handle(ChangeCapacity(-1, BEFORE_DEADLINE))


# -------------------------------------------------------------------------------------------- binding


def test_deadline_makes_every_confirmed_registration_binding_but_not_the_waiting_list() -> None:
    book = new_book(capacity=2)
    a, b, c = fill(book, "a@k.dk", "b@k.dk", "c@k.dk")
    events = book.handle(PassDeadline(DEADLINE, DEADLINE))
    assert events == [
        RegistrationBecameBinding(COURSE_ID, a, DEADLINE),
        RegistrationBecameBinding(COURSE_ID, b, DEADLINE),
    ]
    assert not binding_of(book, c)
    # A repeated timer (downstream de-duplication missed it) changes nothing.
    assert book.handle(PassDeadline(DEADLINE, DEADLINE)) == []


def test_cancellation_before_deadline_is_free() -> None:
    book = new_book()
    [a] = fill(book, "a@k.dk")
    [event] = book.handle(Cancel(a, DEADLINE - timedelta(seconds=1)))
    assert isinstance(event, RegistrationCancelled)
    assert not event.binding


def test_cancellation_after_deadline_is_binding_and_the_promoted_one_is_binding_at_once() -> None:
    book = new_book(capacity=1)
    a, b = fill(book, "a@k.dk", "b@k.dk")
    book.handle(PassDeadline(DEADLINE, DEADLINE))
    events = book.handle(Cancel(a, AFTER_DEADLINE))
    assert events == [
        RegistrationCancelled(COURSE_ID, a, True, True, CancellationCause.PARTICIPANT, AFTER_DEADLINE),
        RegistrationPromoted(COURSE_ID, b, True, AFTER_DEADLINE),
    ]
    promoted = book.registration(b)
    assert promoted is not None
    assert promoted.binding_since == AFTER_DEADLINE


def test_late_registration_is_binding_at_once_while_seats_remain() -> None:
    book = new_book(capacity=2)
    fill(book, "a@k.dk")
    book.handle(PassDeadline(DEADLINE, DEADLINE))
    late = register("late@k.dk", AFTER_DEADLINE)
    assert book.handle(late) == [RegistrationConfirmed(COURSE_ID, late.registration_id, True, AFTER_DEADLINE)]


def test_late_timer_does_not_decide_binding_the_command_clock_does() -> None:
    # The DeadlinePassed timer has not arrived yet (catalogue was down), but the registration was stamped
    # after the deadline: the deadline passes first, then the late registration is binding.
    book = new_book(capacity=3)
    [a] = fill(book, "a@k.dk")
    late = register("late@k.dk", AFTER_DEADLINE)
    assert book.handle(late) == [
        RegistrationBecameBinding(COURSE_ID, a, AFTER_DEADLINE),
        RegistrationConfirmed(COURSE_ID, late.registration_id, True, AFTER_DEADLINE),
    ]
    assert book.handle(PassDeadline(DEADLINE, DEADLINE + timedelta(hours=2))) == []


def test_cancellation_stamped_after_deadline_is_binding_even_before_the_timer() -> None:
    book = new_book()
    [a] = fill(book, "a@k.dk")
    events = book.handle(Cancel(a, AFTER_DEADLINE))
    assert events[-1] == RegistrationCancelled(
        COURSE_ID, a, True, True, CancellationCause.PARTICIPANT, AFTER_DEADLINE
    )


def test_stale_timer_for_a_moved_deadline_is_ignored() -> None:
    book = new_book()
    [a] = fill(book, "a@k.dk")
    later = DEADLINE + timedelta(days=7)
    book.handle(RescheduleCourse(STARTS_AT + timedelta(days=7), later, BEFORE_DEADLINE))
    assert book.handle(PassDeadline(DEADLINE, DEADLINE)) == []
    assert not binding_of(book, a)
    assert book.handle(PassDeadline(later, later)) == [RegistrationBecameBinding(COURSE_ID, a, later)]


def test_deadline_moved_into_the_future_reopens_free_cancellation_for_new_registrations() -> None:
    book = new_book(capacity=3)
    [a] = fill(book, "a@k.dk")
    book.handle(PassDeadline(DEADLINE, DEADLINE))
    later = DEADLINE + timedelta(days=7)
    assert book.handle(RescheduleCourse(STARTS_AT, later, AFTER_DEADLINE)) == []
    assert not book.deadline_passed
    assert binding_of(book, a)  # a commitment once made stays made
    newcomer = register("new@k.dk", AFTER_DEADLINE)
    assert book.handle(newcomer) == [
        RegistrationConfirmed(COURSE_ID, newcomer.registration_id, False, AFTER_DEADLINE)
    ]


def test_deadline_moved_into_the_past_passes_it_at_once() -> None:
    book = new_book()
    [a] = fill(book, "a@k.dk")
    earlier = BEFORE_DEADLINE - timedelta(days=1)
    assert book.handle(RescheduleCourse(STARTS_AT, earlier, BEFORE_DEADLINE)) == [
        RegistrationBecameBinding(COURSE_ID, a, BEFORE_DEADLINE)
    ]


def test_deadline_in_copenhagen_summer_time_is_compared_as_an_instant() -> None:
    # 2027-03-28 is the spring-forward day: 02:00 local does not exist, 01:59 CET is 00:59 UTC.
    summer_deadline = datetime(2027, 3, 28, 3, 0, tzinfo=COPENHAGEN)  # = 01:00 UTC
    book = CourseBook.open(COURSE_ID, 2, datetime(2027, 4, 5, 9, 0, tzinfo=COPENHAGEN), summer_deadline)
    just_before = register("a@k.dk", datetime(2027, 3, 28, 0, 59, tzinfo=ZoneInfo("UTC")))
    at_deadline = register("b@k.dk", datetime(2027, 3, 28, 1, 0, tzinfo=ZoneInfo("UTC")))
    events = book.handle_all([just_before, at_deadline])
    assert [type(e) for e in events] == [
        RegistrationConfirmed,
        RegistrationBecameBinding,
        RegistrationConfirmed,
    ]
    assert events[-1] == RegistrationConfirmed(COURSE_ID, at_deadline.registration_id, True, at_deadline.at)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        new_book().handle(Register(uuid4(), "a@k.dk", datetime(2027, 1, 1), 0))


# ---------------------------------------------------------------------------------------- substitution


def test_binding_participant_may_send_a_colleague() -> None:
    book = new_book(capacity=1)
    a, b = fill(book, "a@k.dk", "b@k.dk")
    events = book.handle(Substitute(a, "colleague@k.dk", AFTER_DEADLINE))
    assert events == [
        RegistrationBecameBinding(COURSE_ID, a, AFTER_DEADLINE),
        ParticipantSubstituted(COURSE_ID, a, "a@k.dk", "colleague@k.dk", AFTER_DEADLINE),
    ]
    assert binding_of(book, a)
    assert book.seats_taken == 1
    assert book.waiting_list() == [b]
    # The original participant is free to register again; the colleague is now the duplicate.
    again = register("colleague@k.dk", AFTER_DEADLINE)
    [duplicate] = book.handle(again)
    assert duplicate == RegistrationDuplicate(
        COURSE_ID, again.registration_id, a, RegistrationStatus.CONFIRMED, AFTER_DEADLINE
    )


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("before_deadline", RejectionReason.NOT_BINDING),
        ("waitlisted", RejectionReason.NOT_CONFIRMED),
        ("cancelled", RejectionReason.ALREADY_CANCELLED),
        ("unknown", RejectionReason.UNKNOWN_REGISTRATION),
        ("colleague_registered", RejectionReason.ALREADY_REGISTERED),
    ],
)
def test_substitution_is_refused_with_a_reason(setup: str, reason: RejectionReason) -> None:
    book = new_book(capacity=1)
    a, b = fill(book, "a@k.dk", "b@k.dk")
    at = AFTER_DEADLINE
    target = a
    colleague = "colleague@k.dk"
    if setup == "before_deadline":
        at = BEFORE_DEADLINE
    elif setup == "waitlisted":
        target = b
    elif setup == "cancelled":
        book.handle(Cancel(a, AFTER_DEADLINE))
    elif setup == "unknown":
        target = uuid4()
    elif setup == "colleague_registered":
        colleague = "b@k.dk"
    events = book.handle(Substitute(target, colleague, at))
    assert events[-1] == SubstitutionRejected(COURSE_ID, target, reason, at)


def test_substituting_the_same_person_changes_nothing() -> None:
    book = new_book()
    [a] = fill(book, "a@k.dk")
    book.handle(PassDeadline(DEADLINE, DEADLINE))
    book.mark_persisted()
    assert book.handle(Substitute(a, "a@k.dk", AFTER_DEADLINE)) == []
    assert book.pending_changes().is_empty


# ------------------------------------------------------------------------------------------ duplicates


def test_same_email_twice_is_answered_with_the_existing_registration() -> None:
    book = new_book(capacity=1)
    first = register("a@k.dk")
    second = register("a@k.dk")
    book.handle(first)
    assert book.handle(second) == [
        RegistrationDuplicate(
            COURSE_ID, second.registration_id, first.registration_id, RegistrationStatus.CONFIRMED, second.at
        )
    ]
    assert book.seats_taken == 1
    assert len(book.registrations()) == 1


def test_same_email_on_the_waiting_list_is_a_duplicate_too() -> None:
    book = new_book(capacity=1)
    _, b = fill(book, "a@k.dk", "b@k.dk")
    again = register("b@k.dk")
    [event] = book.handle(again)
    assert isinstance(event, RegistrationDuplicate)
    assert event.existing_registration_id == b
    assert event.existing_status is RegistrationStatus.WAITLISTED
    assert book.waiting_list() == [b]


def test_redelivered_registration_id_is_answered_with_what_it_became() -> None:
    book = new_book(capacity=1)
    command = register("a@k.dk")
    book.handle(command)
    book.handle(Cancel(command.registration_id, BEFORE_DEADLINE))
    [event] = book.handle(command)
    assert event == RegistrationDuplicate(
        COURSE_ID, command.registration_id, command.registration_id, RegistrationStatus.CANCELLED, command.at
    )


def test_after_cancelling_the_same_participant_may_register_again() -> None:
    book = new_book(capacity=1)
    [a] = fill(book, "a@k.dk")
    book.handle(Cancel(a, BEFORE_DEADLINE))
    again = register("a@k.dk")
    assert book.handle(again) == [RegistrationConfirmed(COURSE_ID, again.registration_id, False, again.at)]


# ------------------------------------------------------------------------------- closed or unknown courses


def test_unknown_course_is_rejected_with_a_reason() -> None:
    command = register("a@k.dk")
    assert reject_for_unknown_course(COURSE_ID, command) == RegistrationRejected(
        COURSE_ID, command.registration_id, RejectionReason.UNKNOWN_COURSE, command.at
    )


def test_cancelled_course_cancels_everyone_without_billing_and_rejects_newcomers() -> None:
    book = new_book(capacity=1)
    a, b = fill(book, "a@k.dk", "b@k.dk")
    book.handle(PassDeadline(DEADLINE, DEADLINE))
    events = book.handle(CancelCourse(AFTER_DEADLINE))
    assert events == [
        RegistrationCancelled(COURSE_ID, a, False, True, CancellationCause.COURSE_CANCELLED, AFTER_DEADLINE),
        RegistrationCancelled(COURSE_ID, b, False, False, CancellationCause.COURSE_CANCELLED, AFTER_DEADLINE),
    ]
    assert book.status is CourseStatus.CANCELLED
    assert book.seats_taken == 0
    assert book.waiting_list() == []
    assert not binding_of(book, a)
    assert book.handle(CancelCourse(AFTER_DEADLINE)) == []
    newcomer = register("c@k.dk", AFTER_DEADLINE)
    assert book.handle(newcomer) == [
        RegistrationRejected(
            COURSE_ID, newcomer.registration_id, RejectionReason.COURSE_CANCELLED, AFTER_DEADLINE
        )
    ]
    # No promotion on a cancelled course, whatever happens to capacity.
    assert book.handle(ChangeCapacity(10, AFTER_DEADLINE)) == []


def test_started_course_rejects_registrations_by_status_and_by_clock() -> None:
    book = new_book()
    by_clock = register("a@k.dk", STARTS_AT)
    assert book.handle(by_clock)[-1] == RegistrationRejected(
        COURSE_ID, by_clock.registration_id, RejectionReason.COURSE_STARTED, STARTS_AT
    )
    book.handle(StartCourse(AFTER_DEADLINE))
    by_status = register("b@k.dk", AFTER_DEADLINE)
    assert book.handle(by_status) == [
        RegistrationRejected(
            COURSE_ID, by_status.registration_id, RejectionReason.COURSE_STARTED, AFTER_DEADLINE
        )
    ]


def test_cancelling_unknown_or_cancelled_registration_is_refused() -> None:
    book = new_book()
    [a] = fill(book, "a@k.dk")
    unknown = uuid4()
    assert book.handle(Cancel(unknown, BEFORE_DEADLINE)) == [
        CancellationRejected(COURSE_ID, unknown, RejectionReason.UNKNOWN_REGISTRATION, BEFORE_DEADLINE)
    ]
    book.handle(Cancel(a, BEFORE_DEADLINE))
    assert book.handle(Cancel(a, BEFORE_DEADLINE)) == [
        CancellationRejected(COURSE_ID, a, RejectionReason.ALREADY_CANCELLED, BEFORE_DEADLINE)
    ]


# ------------------------------------------------------------------------------- batching and persistence


def test_batch_exposes_inserts_updates_and_the_new_course_row() -> None:
    book = new_book(capacity=1)
    [a] = fill(book, "a@k.dk")
    book.mark_persisted()
    assert book.pending_changes().is_empty

    b = register("b@k.dk")
    c = register("c@k.dk")
    book.handle_all([b, c, Cancel(a, BEFORE_DEADLINE)])
    changes = book.pending_changes()
    assert [r.registration_id for r in changes.inserted] == [b.registration_id, c.registration_id]
    assert [r.registration_id for r in changes.updated] == [a]
    assert changes.course.seats_taken == 1
    assert changes.course.next_queue_number == 3
    assert changes.expected_version == 1
    assert changes.course.version == 2
    # b joined the list and was promoted within the batch: it is written once, in its final state.
    assert changes.inserted[0].status is RegistrationStatus.CONFIRMED
    assert changes.inserted[0].queue_number == 1

    book.mark_persisted()
    assert book.pending_changes().is_empty
    assert book.state().version == 2


def test_restored_book_continues_where_the_database_left_off() -> None:
    book = new_book(capacity=1)
    a, b, c = fill(book, "a@k.dk", "b@k.dk", "c@k.dk")
    book.handle(Cancel(b, BEFORE_DEADLINE))
    state = book.state()
    restored = CourseBook(
        state, [r for r in book.registrations() if r.status is not RegistrationStatus.CANCELLED]
    )
    assert restored.waiting_list() == [c]
    assert restored.seats_taken == 1
    assert restored.handle(Cancel(a, BEFORE_DEADLINE))[-1] == RegistrationPromoted(
        COURSE_ID, c, False, BEFORE_DEADLINE
    )
    later = register("d@k.dk")
    assert restored.handle(later) == [RegistrationWaitlisted(COURSE_ID, later.registration_id, 1, later.at)]
    registration = restored.registration(later.registration_id)
    assert registration is not None
    assert registration.queue_number == 3  # numbers are never reused: b's and c's were 1 and 2


def test_restore_refuses_a_partial_load() -> None:
    book = new_book(capacity=2)
    fill(book, "a@k.dk", "b@k.dk")
    with pytest.raises(ValueError):
        CourseBook(book.state(), book.registrations()[:1])


def test_referenced_ids_lets_the_loader_fetch_cancelled_registrations_named_in_a_batch() -> None:
    first, second = uuid4(), uuid4()
    commands: list[CourseCommand] = [
        Cancel(first, BEFORE_DEADLINE),
        ChangeCapacity(3, BEFORE_DEADLINE),
        Substitute(second, "x@k.dk", AFTER_DEADLINE),
    ]
    assert referenced_registration_ids(commands) == {first, second}
