"""Domain `Course` -> the contract's `CourseSnapshot`, the state other services keep of a course.

The wire format differs from our model in a few deliberate ways: VAT in whole percent, programme
descriptions as one string (lines joined by newlines), programme times as instants (the wall-clock
time on the day's Copenhagen date), and phone numbers as "" when unknown.
"""

from __future__ import annotations

from datetime import date, timedelta

from komponent_contracts.events import values as wire
from pydantic import ValidationError

from komponent_catalogue.domain.course import Course, ProgrammeItem
from komponent_catalogue.domain.validation import CourseInvalid, FieldError
from komponent_catalogue.domain.wall_clock import COPENHAGEN, copenhagen_time


def course_snapshot(course: Course) -> wire.CourseSnapshot:
    """Raises `CourseInvalid` (fields prefixed `snapshot.`) when the course does not fit the contract,
    e.g. a title longer than the contract allows, so the change is refused instead of half-published."""
    details = course.details
    first_day = course.schedule.starts_at.astimezone(COPENHAGEN).date()
    try:
        venue = details.venue
        return wire.CourseSnapshot(
            course_id=course.course_id,
            title=details.title,
            status=course.status.value,
            sessions=tuple(
                wire.CourseSession(starts_at=s.starts_at, ends_at=s.ends_at) for s in course.schedule.sessions
            ),
            venue=wire.Venue(
                name=venue.name,
                street=venue.address.street,
                postcode=venue.address.postcode,
                city=venue.address.city,
            )
            if venue is not None
            else None,  # rejected below: the contract requires a venue
            price_excl_vat_ore=details.price.excl_vat_ore,
            # Basis points to whole percent; Danish VAT rates are whole percents (25 %, 0 %).
            vat_rate_percent=round(details.price.vat_rate_basis_points / 100),
            price_includes=details.price.includes,
            capacity=course.capacity,
            registration_deadline=course.schedule.registration_deadline,
            invoice_lead_days=course.invoice_lead_days,
            reminder_lead_days=course.reminder_lead_days,
            contacts=tuple(
                wire.ContactPerson(name=c.name, role=c.role, email=c.email, phone=c.phone or "")
                for c in details.contacts
            ),
            programme=tuple(
                wire.ProgrammeDay(
                    day_number=day.day_number,
                    items=tuple(
                        _item(item, first_day + timedelta(days=day.day_number - 1)) for item in day.items
                    ),
                )
                for day in details.programme
            ),
        )
    except ValidationError as exc:
        raise CourseInvalid(
            [
                FieldError(
                    "snapshot." + ".".join(str(p) for p in e["loc"]), f"contract_{e['type']}", e["msg"]
                )
                for e in exc.errors()
            ]
        ) from exc


def _item(item: ProgrammeItem, day: date) -> wire.ProgrammeItem:
    return wire.ProgrammeItem(
        title=item.title,
        description="\n".join(item.description),
        starts_at=copenhagen_time(day, item.starts_at) if item.starts_at else None,
        ends_at=copenhagen_time(day, item.ends_at) if item.ends_at else None,
    )
