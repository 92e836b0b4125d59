"""The course aggregate: what Komponent publishes on a course page plus what drives the timers.

Everything is an immutable value; operations (see `operations.py`) return a new `Course`. The split
into `CourseDetails` (descriptive page content) and `Schedule` (instants that drive timers) mirrors
the two kinds of change: editing text never moves a timer, rescheduling always may.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from enum import StrEnum
from uuid import UUID

DEFAULT_INVOICE_LEAD_DAYS = 28
INVOICE_LEAD_DAYS_MIN = 21
INVOICE_LEAD_DAYS_MAX = 28
DEFAULT_REMINDER_LEAD_DAYS = 7
REMINDER_LEAD_DAYS_MIN = 1
REMINDER_LEAD_DAYS_MAX = 28
DANISH_STANDARD_VAT_BASIS_POINTS = 2500  # 25 %


class CourseStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


# Cancelled and completed are terminal: a cancelled course's invoices are credited by billing, so
# reviving it would need new registrations anyway — create a new course instead.
ALLOWED_TRANSITIONS: dict[CourseStatus, frozenset[CourseStatus]] = {
    CourseStatus.DRAFT: frozenset({CourseStatus.PUBLISHED, CourseStatus.CANCELLED}),
    CourseStatus.PUBLISHED: frozenset({CourseStatus.CANCELLED, CourseStatus.COMPLETED}),
    CourseStatus.CANCELLED: frozenset(),
    CourseStatus.COMPLETED: frozenset(),
}


def can_transition(current: CourseStatus, target: CourseStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


@dataclass(frozen=True)
class Instructor:
    name: str
    title: str | None = None  # job title as printed, e.g. "Specialkonsulent"
    organisation: str | None = None


@dataclass(frozen=True)
class Price:
    excl_vat_ore: int
    vat_rate_basis_points: int = DANISH_STANDARD_VAT_BASIS_POINTS
    includes: tuple[str, ...] = ()  # e.g. ("undervisning", "materialer", "forplejning")


@dataclass(frozen=True)
class Address:
    street: str
    postcode: str  # Danish postcodes are four digits; a string keeps e.g. "0800" intact
    city: str


@dataclass(frozen=True)
class Venue:
    name: str
    address: Address


@dataclass(frozen=True)
class Session:
    """One contiguous block of teaching; overnight courses may be one session or one per day."""

    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class ProgrammeItem:
    title: str
    description: tuple[str, ...] = ()  # lines as printed, bullets included
    starts_at: time | None = None  # Copenhagen wall clock; None when the page gives no time
    ends_at: time | None = None


@dataclass(frozen=True)
class ProgrammeDay:
    day_number: int  # 1-based
    items: tuple[ProgrammeItem, ...]


@dataclass(frozen=True)
class ContactPerson:
    name: str
    role: str
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class CourseDetails:
    """The descriptive content of the course page. Danish, kept verbatim."""

    title: str
    introduction: tuple[str, ...] = ()  # paragraphs
    learning_outcomes: tuple[str, ...] = ()  # "På dette kursus får du"
    instructors: tuple[Instructor, ...] = ()
    instructors_text: str = ""  # the page's own sentence about the instructors
    price: Price = field(default_factory=lambda: Price(excl_vat_ore=0))
    price_terms: tuple[str, ...] = ()  # "Se hvad prisen inkluderer" and binding notes, verbatim
    duration_days: int = 1
    venue: Venue | None = None
    target_group: str = ""
    programme: tuple[ProgrammeDay, ...] = ()
    contacts: tuple[ContactPerson, ...] = ()


@dataclass(frozen=True)
class Schedule:
    sessions: tuple[Session, ...]
    registration_deadline: datetime

    # Compared in UTC: two values on the same ZoneInfo compare by wall clock and ignore `fold`,
    # which is wrong during the repeated hour on the October night.
    @property
    def starts_at(self) -> datetime:
        return min((s.starts_at for s in self.sessions), key=_instant)

    @property
    def ends_at(self) -> datetime:
        return max((s.ends_at for s in self.sessions), key=_instant)


def _instant(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment


@dataclass(frozen=True)
class Course:
    course_id: UUID
    details: CourseDetails
    schedule: Schedule
    capacity: int
    invoice_lead_days: int = DEFAULT_INVOICE_LEAD_DAYS
    reminder_lead_days: int = DEFAULT_REMINDER_LEAD_DAYS
    status: CourseStatus = CourseStatus.DRAFT
