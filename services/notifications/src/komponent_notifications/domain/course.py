"""The course as an email needs to see it: a frozen snapshot taken from catalogue events.

Notifications keeps no live link to the catalogue (services never call each other); the wiring fills
these snapshots from the local projection of CoursePublished/Updated events, so an email always shows the
course as it was when the triggering event happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from uuid import UUID

from .money import vat_amount_ore


def _require_aware(value: datetime, what: str) -> None:
    # A naive datetime would be silently read as server-local time; course times must never depend on the
    # host's timezone, so we refuse them at the boundary.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class Session:
    """One continuous block of teaching (a course day, or the part of it at the venue)."""

    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.starts_at, "Session.starts_at")
        _require_aware(self.ends_at, "Session.ends_at")
        if self.ends_at <= self.starts_at:
            raise ValueError("a session must end after it starts")


@dataclass(frozen=True, slots=True)
class Venue:
    name: str
    street: str
    postal_code: str
    city: str

    @property
    def address_line(self) -> str:
        return f"{self.street}, {self.postal_code} {self.city}"


@dataclass(frozen=True, slots=True)
class ContactPerson:
    """The Komponent employee participants should answer to; becomes Reply-To on every course email."""

    name: str
    email: str
    phone: str
    job_title: str = ""


@dataclass(frozen=True, slots=True)
class ProgrammeItem:
    title: str
    description: str = ""
    starts_at: time | None = None  # course pages often list items without times


@dataclass(frozen=True, slots=True)
class ProgrammeDay:
    day: date
    items: tuple[ProgrammeItem, ...]


@dataclass(frozen=True, slots=True)
class CourseSnapshot:
    course_id: UUID
    title: str
    sessions: tuple[Session, ...]
    venue: Venue
    price_excl_vat_ore: int
    vat_rate_percent: int
    price_includes: str
    registration_deadline: datetime
    contact: ContactPerson
    programme: tuple[ProgrammeDay, ...] = ()
    what_to_bring: str = ""
    course_url: str = ""
    # Bumped by the catalogue on every change; becomes the iCalendar SEQUENCE so calendars replace
    # an earlier invitation instead of showing two.
    revision: int = 0
    sessions_sorted: tuple[Session, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.sessions:
            raise ValueError("a course needs at least one session")
        if self.price_excl_vat_ore < 0:
            raise ValueError("price cannot be negative")
        if not 0 <= self.vat_rate_percent <= 100:
            raise ValueError("VAT rate is a percentage")
        _require_aware(self.registration_deadline, "CourseSnapshot.registration_deadline")
        object.__setattr__(self, "sessions_sorted", tuple(sorted(self.sessions, key=lambda s: s.starts_at)))

    @property
    def starts_at(self) -> datetime:
        return self.sessions_sorted[0].starts_at

    @property
    def ends_at(self) -> datetime:
        return self.sessions_sorted[-1].ends_at

    @property
    def vat_ore(self) -> int:
        return vat_amount_ore(self.price_excl_vat_ore, self.vat_rate_percent)

    @property
    def price_incl_vat_ore(self) -> int:
        return self.price_excl_vat_ore + self.vat_ore
