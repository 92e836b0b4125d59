"""Timer derivation: kinds, due instants in UTC (DST included), deterministic ids, lateness."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo

import pytest
from komponent_catalogue.domain.course import Course, CourseStatus, Session
from komponent_catalogue.domain.timers import (
    TIMER_EVENT_NAMESPACE,
    Timer,
    TimerKind,
    TimerRecord,
    derive_timers,
    due_timers,
    lateness,
    timer_event_id,
)
from komponent_catalogue.domain.validation import validate_course
from komponent_catalogue.domain.wall_clock import copenhagen_time

CPH = ZoneInfo("Europe/Copenhagen")
MakeCourse = Callable[..., Course]
OTHER_COURSE = UUID("99999999-2222-3333-4444-555555555555")


def cph(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CPH)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def due(course: Course) -> dict[TimerKind, datetime]:
    return {t.kind: t.due_at for t in derive_timers(course)}


def test_a_published_course_has_one_timer_of_each_kind_in_utc(make_course: MakeCourse) -> None:
    # Start Wed 6 May 2026 09:00 CEST = 07:00 UTC; deadline 7 April 23:59 CEST.
    assert due(make_course()) == {
        TimerKind.DEADLINE_PASSED: utc(2026, 4, 7, 21, 59),
        TimerKind.INVOICE_DUE: utc(2026, 4, 8, 7),
        TimerKind.COURSE_REMINDER_DUE: utc(2026, 4, 29, 7),
    }
    assert all(t.due_at.tzinfo is UTC for t in derive_timers(make_course()))


@pytest.mark.parametrize("status", [CourseStatus.DRAFT, CourseStatus.CANCELLED, CourseStatus.COMPLETED])
def test_only_published_courses_have_timers(make_course: MakeCourse, status: CourseStatus) -> None:
    assert derive_timers(make_course(status=status)) == ()


def test_invoice_lead_is_configurable(make_course: MakeCourse) -> None:
    assert due(make_course(invoice_lead_days=21))[TimerKind.INVOICE_DUE] == utc(2026, 4, 15, 7)


# Last Sunday of March / October: clocks go 02:00 -> 03:00 (CET -> CEST) and 03:00 -> 02:00.
@pytest.mark.parametrize(
    ("deadline", "expected_utc"),
    [
        (cph(2026, 3, 28, 23, 59), utc(2026, 3, 28, 22, 59)),  # Saturday before: still CET (+01)
        (cph(2026, 3, 29, 23, 59), utc(2026, 3, 29, 21, 59)),  # spring-forward night: CEST (+02)
        (cph(2026, 10, 24, 23, 59), utc(2026, 10, 24, 21, 59)),  # Saturday before: still CEST
        (cph(2026, 10, 25, 23, 59), utc(2026, 10, 25, 22, 59)),  # fall-back night: CET (+01)
        (cph(2023, 3, 26, 23, 59), utc(2023, 3, 26, 21, 59)),
        (cph(2023, 10, 29, 23, 59), utc(2023, 10, 29, 22, 59)),
    ],
)
def test_a_2359_deadline_on_dst_nights_maps_to_the_right_utc_instant(
    make_course: MakeCourse, deadline: datetime, expected_utc: datetime
) -> None:
    course = make_course(starts_at=deadline + timedelta(days=40), deadline=deadline)
    assert due(course)[TimerKind.DEADLINE_PASSED] == expected_utc


def test_invoice_run_keeps_wall_clock_time_across_spring_forward(make_course: MakeCourse) -> None:
    # 09:00 CEST on 22 April; 28 days earlier is 25 March, still CET: 09:00 local = 08:00 UTC.
    # Plain UTC subtraction would give 07:00 UTC (08:00 local).
    course = make_course(starts_at=cph(2026, 4, 22, 9), deadline=cph(2026, 3, 20, 23, 59))
    assert due(course)[TimerKind.INVOICE_DUE] == utc(2026, 3, 25, 8)


def test_invoice_run_keeps_wall_clock_time_across_fall_back(make_course: MakeCourse) -> None:
    # 09:00 CET on 18 November; 28 days earlier is 21 October, CEST: 09:00 local = 07:00 UTC.
    course = make_course(starts_at=cph(2026, 11, 18, 9), deadline=cph(2026, 10, 15, 23, 59))
    assert due(course)[TimerKind.INVOICE_DUE] == utc(2026, 10, 21, 7)


def test_reminder_lead_landing_on_a_dst_sunday(make_course: MakeCourse) -> None:
    # Start Sunday 5 April 10:00 CEST, reminder 7 days before: Sunday 29 March 10:00 CEST = 08:00 UTC.
    course = make_course(starts_at=cph(2026, 4, 5, 10), deadline=cph(2026, 3, 1, 23, 59))
    assert due(course)[TimerKind.COURSE_REMINDER_DUE] == utc(2026, 3, 29, 8)


def test_event_id_is_uuid5_of_course_kind_and_utc_due_time() -> None:
    course_id = UUID("11111111-2222-3333-4444-555555555555")
    expected = uuid5(TIMER_EVENT_NAMESPACE, f"{course_id}:invoice_due:2026-04-08T07:00:00+00:00")
    assert timer_event_id(course_id, TimerKind.INVOICE_DUE, utc(2026, 4, 8, 7)) == expected
    assert TIMER_EVENT_NAMESPACE == uuid5(NAMESPACE_URL, "https://komponent.dk/ns/catalogue/timers")


def test_event_id_depends_on_the_instant_not_the_zone_it_is_written_in() -> None:
    course_id = UUID("11111111-2222-3333-4444-555555555555")
    kind = TimerKind.DEADLINE_PASSED
    assert timer_event_id(course_id, kind, cph(2026, 3, 29, 23, 59)) == timer_event_id(
        course_id, kind, utc(2026, 3, 29, 21, 59)
    )


def test_event_ids_are_deterministic_and_distinct(make_course: MakeCourse) -> None:
    first = [t.event_id for t in derive_timers(make_course())]
    again = [t.event_id for t in derive_timers(make_course())]
    other_course = [t.event_id for t in derive_timers(make_course(course_id=OTHER_COURSE))]
    moved = [t.event_id for t in derive_timers(make_course(starts_at=cph(2026, 5, 13, 9)))]
    assert first == again
    assert len(set(first)) == 3
    assert not set(first) & set(other_course)
    assert not set(first) & set(moved)


def test_sub_second_noise_does_not_change_the_id(make_course: MakeCourse) -> None:
    course_id = UUID("11111111-2222-3333-4444-555555555555")
    kind = TimerKind.INVOICE_DUE
    noisy = utc(2026, 4, 8, 7) + timedelta(microseconds=250)
    assert timer_event_id(course_id, kind, noisy) == timer_event_id(course_id, kind, utc(2026, 4, 8, 7))


def test_lateness_is_now_minus_due_and_never_negative() -> None:
    due_at = utc(2026, 4, 8, 7)
    assert lateness(due_at, utc(2026, 4, 8, 10)) == timedelta(hours=3)
    assert lateness(due_at, cph(2026, 4, 8, 9)) == timedelta(0)  # same instant, other zone
    assert lateness(due_at, utc(2026, 4, 8, 6, 59)) == timedelta(0)


def test_due_timers_are_pending_ones_at_or_before_now_oldest_first(make_course: MakeCourse) -> None:
    deadline, invoice, reminder = derive_timers(make_course())
    records = [
        TimerRecord(reminder),
        TimerRecord(invoice),
        TimerRecord(deadline, fired_at=deadline.due_at),
    ]
    assert due_timers(records, now=invoice.due_at) == (TimerRecord(invoice),)
    assert due_timers(records, now=reminder.due_at) == (TimerRecord(invoice), TimerRecord(reminder))
    assert due_timers(records, now=invoice.due_at - timedelta(seconds=1)) == ()


def test_timer_equality_is_by_value() -> None:
    a = Timer(OTHER_COURSE, TimerKind.INVOICE_DUE, utc(2026, 1, 1))
    assert a == Timer(OTHER_COURSE, TimerKind.INVOICE_DUE, utc(2026, 1, 1))


def test_wall_clock_times_inside_the_dst_gap_and_overlap_are_defined() -> None:
    # 02:30 does not exist on 29 March 2026: read with the pre-change offset, i.e. 03:30 CEST.
    # (Compared via UTC: an ambiguous local time never equals an instant in another zone, PEP 495.)
    assert copenhagen_time(date(2026, 3, 29), time(2, 30)).astimezone(UTC) == utc(2026, 3, 29, 1, 30)
    # 02:30 happens twice on 25 October 2026: the first (summer-time) occurrence is used.
    assert copenhagen_time(date(2026, 10, 25), time(2, 30)).astimezone(UTC) == utc(2026, 10, 25, 0, 30)


def test_sessions_in_the_repeated_october_hour_are_ordered_by_instant(make_course: MakeCourse) -> None:
    # 02:40 summer time (00:40 UTC) ends before 02:10 winter time (01:10 UTC) starts.
    first = Session(cph(2026, 10, 25, 2, 0), datetime(2026, 10, 25, 2, 40, tzinfo=CPH))
    second = Session(
        datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=CPH), datetime(2026, 10, 25, 4, 0, tzinfo=CPH)
    )
    course = make_course(sessions=(first, second), deadline=cph(2026, 9, 1, 23, 59))
    assert validate_course(course) == []
    assert course.schedule.starts_at == first.starts_at
