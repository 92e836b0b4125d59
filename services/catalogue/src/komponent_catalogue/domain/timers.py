"""Durable timers derived from course state, and how they follow a reschedule or cancellation.

A timer is identified by (course, kind, due instant): its event id is
``uuid5(TIMER_EVENT_NAMESPACE, f"{course_id}:{kind}:{due_at_utc.isoformat()}")``. Emitting it twice
(crash between outbox insert and marking the row fired, two schedulers racing) yields the same
`ce_id`, which every consumer's inbox de-duplicates. Moving the due time changes the id, so a course
moved after its deadline passed gets a fresh DeadlinePassed for the new deadline, while the old,
already-fired timer is never fired again.

Lead days are subtracted on the Copenhagen wall clock (see `wall_clock.days_before`): "28 days
before a 09:00 start" is 09:00 local, whether or not summer time begins in between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid5

from komponent_catalogue.domain.course import Course, CourseStatus
from komponent_catalogue.domain.wall_clock import days_before, to_utc

# uuid5(NAMESPACE_URL, "https://komponent.dk/ns/catalogue/timers"). Fixed forever: changing it would
# change every event id and defeat downstream de-duplication.
TIMER_EVENT_NAMESPACE = UUID("2549539e-c2f3-52ca-9e3b-ccfe673959d2")


class TimerKind(StrEnum):
    DEADLINE_PASSED = "deadline_passed"
    INVOICE_DUE = "invoice_due"
    COURSE_REMINDER_DUE = "course_reminder_due"


@dataclass(frozen=True)
class Timer:
    course_id: UUID
    kind: TimerKind
    due_at: datetime  # UTC

    @property
    def event_id(self) -> UUID:
        return timer_event_id(self.course_id, self.kind, self.due_at)


@dataclass(frozen=True)
class TimerRecord:
    """A timer as stored: `fired_at` is None while pending."""

    timer: Timer
    fired_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.fired_at is None


@dataclass(frozen=True)
class TimerMove:
    old: Timer
    new: Timer


@dataclass(frozen=True)
class TimerPlan:
    """What the repository must do to bring stored timers in line with the course.

    Fired timers never appear in `remove` or `move`: they are history (and the audit of lateness).
    """

    add: tuple[Timer, ...] = ()
    move: tuple[TimerMove, ...] = ()
    remove: tuple[Timer, ...] = ()
    keep: tuple[Timer, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.add or self.move or self.remove)


def timer_event_id(course_id: UUID, kind: TimerKind, due_at: datetime) -> UUID:
    due_utc = to_utc(due_at).replace(microsecond=0)
    return uuid5(TIMER_EVENT_NAMESPACE, f"{course_id}:{kind.value}:{due_utc.isoformat()}")


def derive_timers(course: Course) -> tuple[Timer, ...]:
    """The timers a course should have now. Only a published course has any.

    Drafts have none (nobody can register yet); cancelled and completed courses have none (their
    pending timers are removed by `reconcile_timers`). Due times already in the past are still
    returned: a course published or moved late fires them at once, which is what billing expects.
    Due instants are truncated to whole seconds so ids survive a round trip through the database.
    """
    if course.status is not CourseStatus.PUBLISHED:
        return ()
    start = course.schedule.starts_at
    due = {
        TimerKind.DEADLINE_PASSED: course.schedule.registration_deadline,
        TimerKind.INVOICE_DUE: days_before(start, course.invoice_lead_days),
        TimerKind.COURSE_REMINDER_DUE: days_before(start, course.reminder_lead_days),
    }
    return tuple(
        Timer(course.course_id, kind, to_utc(moment).replace(microsecond=0)) for kind, moment in due.items()
    )


def reconcile_timers(stored: Iterable[TimerRecord], desired: Iterable[Timer]) -> TimerPlan:
    """Compare stored timers with the derived set, kind by kind.

    - desired and already stored (pending or fired) with the same event id: keep; a fired one is
      never re-added, so it never fires twice for the same due time;
    - desired, and a pending timer of the same kind with another due time exists: move it;
    - desired with nothing pending of its kind: add;
    - pending but no longer desired (cancelled, unpublished kind): remove.
    """
    stored_list = list(stored)
    known_ids = {record.timer.event_id for record in stored_list}
    pending_by_kind: dict[TimerKind, list[Timer]] = {}
    for record in stored_list:
        if record.pending:
            pending_by_kind.setdefault(record.timer.kind, []).append(record.timer)

    add: list[Timer] = []
    move: list[TimerMove] = []
    keep: list[Timer] = []
    remove: list[Timer] = []
    desired_ids: set[UUID] = set()
    for timer in desired:
        desired_ids.add(timer.event_id)
        pending = pending_by_kind.get(timer.kind, [])
        if timer.event_id in known_ids:
            keep.append(timer)
            pending[:] = [p for p in pending if p.event_id != timer.event_id]
        elif pending:
            move.append(TimerMove(old=pending.pop(0), new=timer))
        else:
            add.append(timer)
    for leftovers in pending_by_kind.values():
        remove.extend(t for t in leftovers if t.event_id not in desired_ids)
    return TimerPlan(add=tuple(add), move=tuple(move), remove=tuple(remove), keep=tuple(keep))


def lateness(due_at: datetime, fired_at: datetime) -> timedelta:
    """How late a timer fired (after downtime, say). Never negative: early firing is a clock skew."""
    return max(fired_at.astimezone(UTC) - due_at.astimezone(UTC), timedelta(0))


def due_timers(stored: Iterable[TimerRecord], now: datetime) -> tuple[TimerRecord, ...]:
    """Pending timers due at `now`, oldest first — the pure twin of the SKIP LOCKED claim query."""
    return tuple(
        sorted((r for r in stored if r.pending and r.timer.due_at <= now), key=lambda r: r.timer.due_at)
    )
