"""Course events from the catalogue: state for projections, and the calendar's timers."""

from __future__ import annotations

from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import AwareDatetime, Field

from komponent_contracts import topics
from komponent_contracts.events.base import Event, register
from komponent_contracts.events.values import CourseSnapshot


@register
class CoursePublished(Event):
    ce_type: ClassVar[str] = "dk.komponent.course.published.v1"
    topic: ClassVar[str] = topics.COURSE

    course_id: UUID
    course: CourseSnapshot
    occurred_at: AwareDatetime


@register
class CourseUpdated(Event):
    """Capacity, dates, deadline, price, venue or text changed. Carries the whole new snapshot."""

    ce_type: ClassVar[str] = "dk.komponent.course.updated.v1"
    topic: ClassVar[str] = topics.COURSE

    course_id: UUID
    course: CourseSnapshot
    changed: tuple[str, ...] = ()
    occurred_at: AwareDatetime


@register
class CourseCancelled(Event):
    """Komponent cancelled the course: every registration is cancelled and nothing is billable."""

    ce_type: ClassVar[str] = "dk.komponent.course.cancelled.v1"
    topic: ClassVar[str] = topics.COURSE

    course_id: UUID
    reason: Annotated[str, Field(max_length=1000)] = ""
    occurred_at: AwareDatetime


@register
class CourseSeatsChanged(Event):
    """Registration's count of seats after a change, for the catalogue's public "seats left".

    `version` grows with every change of one course, so a reader keeps the highest it has seen."""

    ce_type: ClassVar[str] = "dk.komponent.course.seats-changed.v1"
    topic: ClassVar[str] = topics.REGISTRATION

    course_id: UUID
    capacity: Annotated[int, Field(ge=0)]
    seats_taken: Annotated[int, Field(ge=0)]
    waiting_list_length: Annotated[int, Field(ge=0)]
    version: Annotated[int, Field(ge=1)]
    occurred_at: AwareDatetime


class _Timer(Event):
    """A durable timer fired by the catalogue. Its `ce_id` is uuid5(course, kind, due time): a timer fired
    twice carries the same id, so consumers' inboxes drop the second."""

    topic: ClassVar[str] = topics.COURSE_CALENDAR

    course_id: UUID
    due_at: AwareDatetime
    fired_at: AwareDatetime
    lateness_seconds: Annotated[float, Field(ge=0)]


@register
class DeadlinePassed(_Timer):
    """The registration deadline passed: confirmed registrations become binding."""

    ce_type: ClassVar[str] = "dk.komponent.course.deadline-passed.v1"


@register
class InvoiceDue(_Timer):
    """The course starts within its invoice lead time: invoice every confirmed registration."""

    ce_type: ClassVar[str] = "dk.komponent.course.invoice-due.v1"
    course_starts_at: AwareDatetime


@register
class CourseReminderDue(_Timer):
    """The course starts within its reminder lead time: remind every confirmed participant."""

    ce_type: ClassVar[str] = "dk.komponent.course.reminder-due.v1"
    course_starts_at: AwareDatetime
