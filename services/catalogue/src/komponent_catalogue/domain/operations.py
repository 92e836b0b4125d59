"""Course operations: create, update, publish, reschedule, change capacity, cancel, complete.

Each returns a new, validated `Course` or raises `CourseInvalid` with field-level errors. Persisting
the result, deriving timers (`timers.derive_timers`) and emitting events is the service layer's job.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from komponent_catalogue.domain.course import (
    DEFAULT_INVOICE_LEAD_DAYS,
    DEFAULT_REMINDER_LEAD_DAYS,
    Course,
    CourseDetails,
    CourseStatus,
    Schedule,
    Session,
    can_transition,
)
from komponent_catalogue.domain.validation import CourseInvalid, FieldError, ensure_valid
from komponent_catalogue.domain.wall_clock import is_aware, normalise

# A course that is over or called off is history: editing it would rewrite what participants saw.
_EDITABLE = frozenset({CourseStatus.DRAFT, CourseStatus.PUBLISHED})


class TransitionNotAllowed(CourseInvalid):
    def __init__(self, current: CourseStatus, target: CourseStatus | str) -> None:
        super().__init__(
            [FieldError("status", "transition_not_allowed", f"A {current} course cannot become {target}.")]
        )
        self.current = current
        self.target = target


def create_course(
    course_id: UUID,
    details: CourseDetails,
    schedule: Schedule,
    capacity: int,
    invoice_lead_days: int = DEFAULT_INVOICE_LEAD_DAYS,
    reminder_lead_days: int = DEFAULT_REMINDER_LEAD_DAYS,
) -> Course:
    """A new course starts as a draft: no timers run until it is published."""
    course = Course(
        course_id=course_id,
        details=details,
        schedule=_on_copenhagen_clock(schedule),
        capacity=capacity,
        invoice_lead_days=invoice_lead_days,
        reminder_lead_days=reminder_lead_days,
        status=CourseStatus.DRAFT,
    )
    return ensure_valid(course)


def update_course(
    course: Course,
    *,
    details: CourseDetails | None = None,
    invoice_lead_days: int | None = None,
    reminder_lead_days: int | None = None,
    seats_taken: int = 0,
) -> Course:
    """Edit content and lead days. Lead days move timers, so the caller re-derives them after."""
    _ensure_editable(course, "updated")
    updated = replace(
        course,
        details=details if details is not None else course.details,
        invoice_lead_days=invoice_lead_days if invoice_lead_days is not None else course.invoice_lead_days,
        reminder_lead_days=(
            reminder_lead_days if reminder_lead_days is not None else course.reminder_lead_days
        ),
    )
    return ensure_valid(updated, seats_taken)


def publish(course: Course, seats_taken: int = 0) -> Course:
    return ensure_valid(_transition(course, CourseStatus.PUBLISHED), seats_taken)


def reschedule(course: Course, schedule: Schedule, seats_taken: int = 0) -> Course:
    """Move sessions and deadline together; timers follow via `timers.reconcile_timers`."""
    _ensure_editable(course, "rescheduled")
    return ensure_valid(replace(course, schedule=_on_copenhagen_clock(schedule)), seats_taken)


def change_capacity(course: Course, capacity: int, seats_taken: int) -> Course:
    """Never below seats already taken: the registration service has admitted those people."""
    _ensure_editable(course, "given a new capacity")
    return ensure_valid(replace(course, capacity=capacity), seats_taken)


def cancel(course: Course) -> Course:
    return _transition(course, CourseStatus.CANCELLED)


def complete(course: Course) -> Course:
    return _transition(course, CourseStatus.COMPLETED)


def _transition(course: Course, target: CourseStatus) -> Course:
    if not can_transition(course.status, target):
        raise TransitionNotAllowed(course.status, target)
    return replace(course, status=target)


def _ensure_editable(course: Course, what: str) -> None:
    if course.status not in _EDITABLE:
        raise TransitionNotAllowed(course.status, what)


def _on_copenhagen_clock(schedule: Schedule) -> Schedule:
    # Keep aware values on the Copenhagen clock so the model reads like the course page; naive
    # values are left for validation to reject with a field error rather than guessing a zone.
    def local(moment: datetime) -> datetime:
        return normalise(moment) if is_aware(moment) else moment

    return Schedule(
        sessions=tuple(
            Session(starts_at=local(s.starts_at), ends_at=local(s.ends_at)) for s in schedule.sessions
        ),
        registration_deadline=local(schedule.registration_deadline),
    )
