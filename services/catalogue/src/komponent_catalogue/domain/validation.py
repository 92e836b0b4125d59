"""Validation rules returning field-level errors.

Each rule reports (field path, rule code, English message) so the HTTP layer can point at the exact
input and clients can switch on the stable rule code rather than the message. All rules run, so a
form shows every problem at once instead of one per round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from komponent_catalogue.domain.course import (
    INVOICE_LEAD_DAYS_MAX,
    INVOICE_LEAD_DAYS_MIN,
    REMINDER_LEAD_DAYS_MAX,
    REMINDER_LEAD_DAYS_MIN,
    Course,
    CourseDetails,
    CourseStatus,
    Schedule,
)
from komponent_catalogue.domain.wall_clock import COPENHAGEN, is_aware, to_utc

_POSTCODE = re.compile(r"^\d{4}$")
# Deliberately loose: the mail server is the real judge; this only catches obvious typos.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path, list indexes as numbers: "schedule.sessions.1.ends_at"
    rule: str  # stable machine code, e.g. "deadline_after_start"
    message: str


class CourseInvalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = tuple(errors)


def validate_details(details: CourseDetails) -> Iterator[FieldError]:
    if not details.title.strip():
        yield FieldError("details.title", "required", "Title must not be empty.")
    for i, outcome in enumerate(details.learning_outcomes):
        if not outcome.strip():
            yield FieldError(f"details.learning_outcomes.{i}", "required", "Learning outcome is empty.")
    if details.price.excl_vat_ore < 0:
        yield FieldError("details.price.excl_vat_ore", "price_negative", "Price must not be negative.")
    if not 0 <= details.price.vat_rate_basis_points <= 10_000:
        yield FieldError(
            "details.price.vat_rate_basis_points",
            "vat_rate_out_of_range",
            "VAT rate must be between 0 and 10000 basis points (0-100 %).",
        )
    if details.duration_days < 1:
        yield FieldError("details.duration_days", "duration_not_positive", "Duration must be at least 1 day.")
    if details.venue is not None and not _POSTCODE.match(details.venue.address.postcode):
        yield FieldError(
            "details.venue.address.postcode", "postcode_invalid", "Danish postcode must be four digits."
        )
    for i, contact in enumerate(details.contacts):
        if contact.email is not None and not _EMAIL.match(contact.email):
            yield FieldError(f"details.contacts.{i}.email", "email_invalid", "Email address is not valid.")


def validate_schedule(schedule: Schedule) -> Iterator[FieldError]:
    if not schedule.sessions:
        yield FieldError("schedule.sessions", "required", "A course needs at least one session.")
        return
    naive = False
    for i, session in enumerate(schedule.sessions):
        for name, moment in (("starts_at", session.starts_at), ("ends_at", session.ends_at)):
            if not is_aware(moment):
                naive = True
                yield FieldError(
                    f"schedule.sessions.{i}.{name}", "timezone_required", "Time must carry a time zone."
                )
    if not is_aware(schedule.registration_deadline):
        naive = True
        yield FieldError(
            "schedule.registration_deadline", "timezone_required", "Time must carry a time zone."
        )
    if naive:
        return  # comparing naive with aware values would raise; the rest waits for a fix
    # Compare in UTC: same-zone comparisons use the wall clock and ignore `fold` (October's
    # repeated hour), so 02:30 summer time would wrongly count as later than 02:10 winter time.
    for i, session in enumerate(schedule.sessions):
        if to_utc(session.ends_at) <= to_utc(session.starts_at):
            yield FieldError(
                f"schedule.sessions.{i}.ends_at",
                "session_ends_before_start",
                "Session must end after it starts.",
            )
    ordered = sorted(enumerate(schedule.sessions), key=lambda pair: to_utc(pair[1].starts_at))
    # Compare with the latest end so far, not just the previous session: a long session can
    # swallow several short ones that do not overlap each other.
    latest_end = to_utc(ordered[0][1].ends_at)
    for j, later in ordered[1:]:
        if to_utc(later.starts_at) < latest_end:
            yield FieldError(
                f"schedule.sessions.{j}.starts_at", "sessions_overlap", "Session overlaps another session."
            )
        latest_end = max(latest_end, to_utc(later.ends_at))
    if to_utc(schedule.registration_deadline) >= to_utc(schedule.starts_at):
        yield FieldError(
            "schedule.registration_deadline",
            "deadline_after_start",
            "Registration deadline must be before the course starts.",
        )


def validate_course(course: Course, seats_taken: int = 0) -> list[FieldError]:
    errors = [*validate_details(course.details), *validate_schedule(course.schedule)]
    if course.capacity < 1:
        errors.append(FieldError("capacity", "capacity_not_positive", "Capacity must be at least 1."))
    elif course.capacity < seats_taken:
        errors.append(
            FieldError(
                "capacity",
                "capacity_below_seats_taken",
                f"Capacity must not be below the {seats_taken} seats already taken.",
            )
        )
    invoice_lead_ok = INVOICE_LEAD_DAYS_MIN <= course.invoice_lead_days <= INVOICE_LEAD_DAYS_MAX
    # The deadline may fall after the invoice run: invoices go out 3-4 weeks before start and a
    # free cancellation after invoicing is credited in full (billing), so no rule ties the two.
    if not invoice_lead_ok:
        errors.append(
            FieldError(
                "invoice_lead_days",
                "invoice_lead_out_of_range",
                f"Invoice lead must be {INVOICE_LEAD_DAYS_MIN}-{INVOICE_LEAD_DAYS_MAX} days before start.",
            )
        )
    if not REMINDER_LEAD_DAYS_MIN <= course.reminder_lead_days <= REMINDER_LEAD_DAYS_MAX:
        errors.append(
            FieldError(
                "reminder_lead_days",
                "reminder_lead_out_of_range",
                f"Reminder lead must be {REMINDER_LEAD_DAYS_MIN}-{REMINDER_LEAD_DAYS_MAX} days before start.",
            )
        )
    if course.status is CourseStatus.PUBLISHED and course.details.venue is None:
        # Every published course is carried to registration, billing and emails as a snapshot whose
        # venue is required: participants must know where to go.
        errors.append(FieldError("details.venue", "required", "A published course needs a venue."))
    schedule_ok = not any(e.field.startswith("schedule.") for e in errors)
    errors.extend(_duration_matches_sessions(course) if schedule_ok else [])
    return errors


def _duration_matches_sessions(course: Course) -> list[FieldError]:
    # "Varighed" on the page counts course days: distinct Copenhagen dates with teaching. Counting
    # dates (not the span) keeps a course taught on two separate weeks at "2 days".
    teaching_days: set[date] = set()
    for session in course.schedule.sessions:
        day = session.starts_at.astimezone(COPENHAGEN).date()
        last = session.ends_at.astimezone(COPENHAGEN).date()
        while day <= last:
            teaching_days.add(day)
            day += timedelta(days=1)
    if course.details.duration_days >= 1 and course.details.duration_days != len(teaching_days):
        return [
            FieldError(
                "details.duration_days",
                "duration_mismatch",
                f"Duration is {course.details.duration_days} days but the sessions cover "
                f"{len(teaching_days)}.",
            )
        ]
    return []


def ensure_valid(course: Course, seats_taken: int = 0) -> Course:
    errors = validate_course(course, seats_taken)
    if errors:
        raise CourseInvalid(errors)
    return course
