"""Move a course's dates into the future for a demo, keeping its weekday and time-of-day pattern.

The seed page is from May 2023; a demo needs a course whose deadline, invoice run and reminder are
all still ahead so every timer can be seen firing. Shifting by whole weeks on the Copenhagen wall
clock keeps "Wednesday 11:30 to Thursday 14:00" and the deadline's 23:59, across DST changes.
"""

from __future__ import annotations

from datetime import date, datetime

from komponent_catalogue.domain.course import Course, Schedule, Session
from komponent_catalogue.domain.operations import reschedule
from komponent_catalogue.domain.wall_clock import COPENHAGEN, days_after

DEMO_MIN_WEEKS_AHEAD = 8  # > invoice lead (max 28 days) + margin, so every timer is still pending


def weeks_to_shift(course_start: date, today: date, min_weeks_ahead: int = DEMO_MIN_WEEKS_AHEAD) -> int:
    """Fewest whole weeks that put `course_start` at least `min_weeks_ahead` weeks after `today`."""
    shortfall_days = (today - course_start).days + 7 * min_weeks_ahead
    return max(0, -(-shortfall_days // 7))  # ceiling division


def shift_to_future(course: Course, today: date, min_weeks_ahead: int = DEMO_MIN_WEEKS_AHEAD) -> Course:
    start = course.schedule.starts_at.astimezone(COPENHAGEN).date()
    weeks = weeks_to_shift(start, today, min_weeks_ahead)
    if weeks == 0:
        return course

    def move(moment: datetime) -> datetime:
        return days_after(moment, 7 * weeks)

    shifted = Schedule(
        sessions=tuple(Session(move(s.starts_at), move(s.ends_at)) for s in course.schedule.sessions),
        registration_deadline=move(course.schedule.registration_deadline),
    )
    return reschedule(course, shifted)
