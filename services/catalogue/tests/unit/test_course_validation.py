"""Every validation rule, one test each, plus the operations that apply them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from komponent_catalogue.domain.course import (
    Address,
    ContactPerson,
    Course,
    CourseStatus,
    Price,
    Schedule,
    Session,
    Venue,
)
from komponent_catalogue.domain.operations import (
    change_capacity,
    create_course,
    reschedule,
    update_course,
)
from komponent_catalogue.domain.validation import CourseInvalid, FieldError, validate_course

# conftest.py provides the `make_course` fixture; test modules cannot import it (importlib mode).
CPH = ZoneInfo("Europe/Copenhagen")
MakeCourse = Callable[..., Course]


def cph(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CPH)


def found(errors: list[FieldError]) -> set[tuple[str, str]]:
    return {(e.field, e.rule) for e in errors}


def test_a_valid_course_has_no_errors(make_course: MakeCourse) -> None:
    assert validate_course(make_course()) == []


def test_empty_title_is_required(make_course: MakeCourse) -> None:
    assert found(validate_course(make_course(title="  "))) == {("details.title", "required")}


def test_empty_learning_outcome_is_flagged_by_index(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(learning_outcomes=("Redskaber", "")))
    assert found(errors) == {("details.learning_outcomes.1", "required")}


def test_negative_price_is_rejected(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(price=Price(excl_vat_ore=-1)))
    assert found(errors) == {("details.price.excl_vat_ore", "price_negative")}


def test_free_course_is_allowed(make_course: MakeCourse) -> None:
    assert validate_course(make_course(price=Price(excl_vat_ore=0))) == []


@pytest.mark.parametrize("rate", [-1, 10_001])
def test_vat_rate_outside_0_to_100_percent_is_rejected(make_course: MakeCourse, rate: int) -> None:
    errors = validate_course(make_course(price=Price(excl_vat_ore=100, vat_rate_basis_points=rate)))
    assert found(errors) == {("details.price.vat_rate_basis_points", "vat_rate_out_of_range")}


def test_duration_below_one_day_is_rejected(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(duration_days=0))
    assert found(errors) == {("details.duration_days", "duration_not_positive")}


def test_duration_must_match_the_days_the_sessions_cover(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(duration_days=2))
    assert found(errors) == {("details.duration_days", "duration_mismatch")}


def test_duration_counts_teaching_days_not_the_span(make_course: MakeCourse) -> None:
    two_separate_days = (
        Session(cph(2026, 5, 6, 9), cph(2026, 5, 6, 16)),
        Session(cph(2026, 5, 13, 9), cph(2026, 5, 13, 16)),
    )
    assert validate_course(make_course(sessions=two_separate_days, duration_days=2)) == []


def test_postcode_must_be_four_digits(make_course: MakeCourse) -> None:
    venue = Venue("Comwell", Address("Vestre Kirkevej 12", "400", "Roskilde"))
    errors = validate_course(make_course(venue=venue))
    assert found(errors) == {("details.venue.address.postcode", "postcode_invalid")}


def test_contact_email_must_look_like_an_address(make_course: MakeCourse) -> None:
    contacts = (ContactPerson("A", "Koordinator", "ah@komponent.dk"), ContactPerson("B", "X", "no-at-sign"))
    errors = validate_course(make_course(contacts=contacts))
    assert found(errors) == {("details.contacts.1.email", "email_invalid")}


def test_a_course_needs_a_session(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(sessions=(), deadline=cph(2026, 4, 1)))
    assert found(errors) == {("schedule.sessions", "required")}


def test_naive_times_are_rejected_not_guessed(make_course: MakeCourse) -> None:
    naive = Session(datetime(2026, 5, 6, 9), datetime(2026, 5, 6, 16))
    errors = validate_course(make_course(sessions=(naive,), deadline=cph(2026, 4, 1)))
    assert found(errors) == {
        ("schedule.sessions.0.starts_at", "timezone_required"),
        ("schedule.sessions.0.ends_at", "timezone_required"),
    }


def test_session_ending_before_it_starts_is_rejected(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(starts_at=cph(2026, 5, 6, 16), ends_at=cph(2026, 5, 6, 9)))
    assert ("schedule.sessions.0.ends_at", "session_ends_before_start") in found(errors)


def test_session_of_zero_length_is_rejected(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(starts_at=cph(2026, 5, 6, 9), ends_at=cph(2026, 5, 6, 9)))
    assert ("schedule.sessions.0.ends_at", "session_ends_before_start") in found(errors)


def test_overlapping_sessions_are_rejected(make_course: MakeCourse) -> None:
    sessions = (
        Session(cph(2026, 5, 6, 9), cph(2026, 5, 6, 12)),
        Session(cph(2026, 5, 6, 11), cph(2026, 5, 6, 15)),
    )
    errors = validate_course(make_course(sessions=sessions))
    assert found(errors) == {("schedule.sessions.1.starts_at", "sessions_overlap")}


def test_a_long_session_overlapping_a_later_short_one_is_caught(make_course: MakeCourse) -> None:
    # B and C do not overlap each other, but both lie inside A.
    sessions = (
        Session(cph(2026, 5, 6, 9), cph(2026, 5, 6, 17)),
        Session(cph(2026, 5, 6, 10), cph(2026, 5, 6, 11)),
        Session(cph(2026, 5, 6, 12), cph(2026, 5, 6, 13)),
    )
    errors = validate_course(make_course(sessions=sessions))
    assert found(errors) == {
        ("schedule.sessions.1.starts_at", "sessions_overlap"),
        ("schedule.sessions.2.starts_at", "sessions_overlap"),
    }


def test_back_to_back_sessions_do_not_overlap(make_course: MakeCourse) -> None:
    sessions = (
        Session(cph(2026, 5, 6, 9), cph(2026, 5, 6, 12)),
        Session(cph(2026, 5, 6, 12), cph(2026, 5, 6, 15)),
    )
    assert validate_course(make_course(sessions=sessions)) == []


def test_deadline_after_start_is_rejected(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(deadline=cph(2026, 5, 6, 10)))
    assert ("schedule.registration_deadline", "deadline_after_start") in found(errors)


def test_deadline_after_the_invoice_run_is_allowed(make_course: MakeCourse) -> None:
    # Start 6 May 09:00, invoice run 8 April 09:00; a deadline that evening is fine: billing credits a
    # free cancellation after invoicing in full.
    assert validate_course(make_course(deadline=cph(2026, 4, 8, 23, 59))) == []


def test_a_published_course_needs_a_venue(make_course: MakeCourse) -> None:
    errors = validate_course(make_course(venue=None))
    assert found(errors) == {("details.venue", "required")}
    assert validate_course(make_course(venue=None, status=CourseStatus.DRAFT)) == []


def test_deadline_at_the_invoice_run_itself_is_allowed(make_course: MakeCourse) -> None:
    assert validate_course(make_course(deadline=cph(2026, 4, 8, 9))) == []


def test_capacity_must_be_positive(make_course: MakeCourse) -> None:
    assert found(validate_course(make_course(capacity=0))) == {("capacity", "capacity_not_positive")}


def test_capacity_below_seats_taken_is_rejected(make_course: MakeCourse) -> None:
    with pytest.raises(CourseInvalid) as raised:
        change_capacity(make_course(capacity=30), capacity=11, seats_taken=12)
    assert found(list(raised.value.errors)) == {("capacity", "capacity_below_seats_taken")}


def test_capacity_may_drop_to_exactly_the_seats_taken(make_course: MakeCourse) -> None:
    assert change_capacity(make_course(capacity=30), capacity=12, seats_taken=12).capacity == 12


@pytest.mark.parametrize("lead", [20, 29, 0])
def test_invoice_lead_outside_21_to_28_days_is_rejected(make_course: MakeCourse, lead: int) -> None:
    errors = validate_course(make_course(invoice_lead_days=lead, deadline=cph(2026, 3, 1, 23, 59)))
    assert found(errors) == {("invoice_lead_days", "invoice_lead_out_of_range")}


@pytest.mark.parametrize("lead", [21, 28])
def test_invoice_lead_bounds_are_inclusive(make_course: MakeCourse, lead: int) -> None:
    assert validate_course(make_course(invoice_lead_days=lead)) == []


@pytest.mark.parametrize("lead", [0, 29])
def test_reminder_lead_out_of_range_is_rejected(make_course: MakeCourse, lead: int) -> None:
    errors = validate_course(make_course(reminder_lead_days=lead))
    assert found(errors) == {("reminder_lead_days", "reminder_lead_out_of_range")}


def test_all_problems_are_reported_at_once(make_course: MakeCourse) -> None:
    course = make_course(title="", capacity=0, invoice_lead_days=40, price=Price(excl_vat_ore=-5))
    assert {rule for _, rule in found(validate_course(course))} == {
        "required",
        "capacity_not_positive",
        "invoice_lead_out_of_range",
        "price_negative",
    }


def test_create_raises_with_field_errors_and_starts_as_draft(make_course: MakeCourse) -> None:
    template = make_course()
    with pytest.raises(CourseInvalid) as raised:
        create_course(template.course_id, template.details, template.schedule, capacity=0)
    assert raised.value.errors == (
        FieldError("capacity", "capacity_not_positive", "Capacity must be at least 1."),
    )
    created = create_course(template.course_id, template.details, template.schedule, capacity=30)
    assert created.status == "draft"


def test_create_keeps_times_on_the_copenhagen_clock(make_course: MakeCourse) -> None:
    template = make_course()
    in_utc = Schedule(
        sessions=(Session(datetime(2026, 5, 6, 7, tzinfo=UTC), datetime(2026, 5, 6, 14, tzinfo=UTC)),),
        registration_deadline=datetime(2026, 4, 7, 21, 59, tzinfo=UTC),
    )
    created = create_course(template.course_id, template.details, in_utc, capacity=30)
    assert created.schedule.starts_at.tzinfo == CPH
    assert (created.schedule.starts_at.hour, created.schedule.registration_deadline.hour) == (9, 23)


def test_reschedule_moves_sessions_and_deadline_together(make_course: MakeCourse) -> None:
    course = make_course()
    week = timedelta(days=7)
    moved = reschedule(
        course,
        Schedule(
            sessions=tuple(Session(s.starts_at + week, s.ends_at + week) for s in course.schedule.sessions),
            registration_deadline=course.schedule.registration_deadline + week,
        ),
    )
    assert moved.schedule.starts_at == cph(2026, 5, 13, 9)
    assert moved.schedule.registration_deadline == cph(2026, 4, 14, 23, 59)


def test_reschedule_is_validated(make_course: MakeCourse) -> None:
    course = make_course()
    with pytest.raises(CourseInvalid) as raised:
        reschedule(course, replace(course.schedule, registration_deadline=cph(2026, 6, 1)))
    assert ("schedule.registration_deadline", "deadline_after_start") in found(list(raised.value.errors))


def test_update_changes_content_and_lead_days(make_course: MakeCourse) -> None:
    course = make_course()
    updated = update_course(course, details=replace(course.details, title="Ny titel"), reminder_lead_days=3)
    assert (updated.details.title, updated.reminder_lead_days) == ("Ny titel", 3)
    assert updated.schedule == course.schedule
