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
