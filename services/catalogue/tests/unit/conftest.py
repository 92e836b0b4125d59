"""Builders for unit tests: a valid one-day course that individual tests bend out of shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from komponent_catalogue.domain.course import (
    Address,
    ContactPerson,
    Course,
    CourseDetails,
    CourseStatus,
    Price,
    Schedule,
    Session,
    Venue,
)

CPH = ZoneInfo("Europe/Copenhagen")
COURSE_ID = UUID("11111111-2222-3333-4444-555555555555")


def cph(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CPH)


def valid_details(**overrides: Any) -> CourseDetails:
    details = CourseDetails(
        title="Politikudvikling med vildskab",
        introduction=("Første afsnit.",),
        learning_outcomes=("Redskaber", "Indblik"),
        price=Price(excl_vat_ore=550_000, includes=("undervisning",)),
        duration_days=1,
        venue=Venue("Comwell Roskilde", Address("Vestre Kirkevej 12", "4000", "Roskilde")),
        target_group="Embedsmænd",
        contacts=(ContactPerson("Louise Angelo", "Chefkonsulent", "loua@komponent.dk"),),
    )
    return replace(details, **overrides)


MakeCourse = Callable[..., Course]
DEFAULT_START = cph(2026, 5, 6, 9)  # a Wednesday


@pytest.fixture
def make_course() -> MakeCourse:
    """A course built without validation, so tests can also build invalid ones.

    Defaults: one session Wednesday 6 May 2026 09:00-16:00, deadline 23:59 twenty-nine days before
    start (the evening before the invoice run), capacity 30, invoice lead 28, reminder lead 7, published.
    """

    def make(
        *,
        starts_at: datetime = DEFAULT_START,
        ends_at: datetime | None = None,
        sessions: tuple[Session, ...] | None = None,
        deadline: datetime | None = None,
        capacity: int = 30,
        invoice_lead_days: int = 28,
        reminder_lead_days: int = 7,
        status: CourseStatus = CourseStatus.PUBLISHED,
        course_id: UUID = COURSE_ID,
        **detail_overrides: Any,
    ) -> Course:
        if sessions is None:
            sessions = (Session(starts_at, ends_at or starts_at + timedelta(hours=7)),)
        if deadline is None:
            first_day = min(s.starts_at for s in sessions).astimezone(CPH).date()
            deadline = datetime.combine(first_day - timedelta(days=29), time(23, 59), tzinfo=CPH)
        return Course(
            course_id=course_id,
            details=valid_details(**detail_overrides),
            schedule=Schedule(sessions=sessions, registration_deadline=deadline),
            capacity=capacity,
            invoice_lead_days=invoice_lead_days,
            reminder_lead_days=reminder_lead_days,
            status=status,
        )

    return make
