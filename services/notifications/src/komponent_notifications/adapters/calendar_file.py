"""The .ics attachment: one VEVENT per course session.

Times are written as local wall-clock time with TZID=Europe/Copenhagen plus the matching VTIMEZONE rather
than as UTC. The course *is* defined in Danish local time; a TZID keeps "kl. 11:30" right for a Danish
recipient whatever their calendar's own zone setting, and RFC 5545 §3.2.19 requires the VTIMEZONE for each
TZID used, which Outlook (the municipalities' client) relies on rather than its own tz database.

UIDs are stable per course and session position, and SEQUENCE follows the course revision, so an update or
a METHOD:CANCEL replaces/removes the entries an earlier email added instead of duplicating them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import icalendar

from ..domain.course import ContactPerson, CourseSnapshot
from ..domain.emails import CalendarIntent
from .danish_format import COPENHAGEN

PRODID = "-//Komponent//Kursustilmelding//DA"


def session_uid(course: CourseSnapshot, index: int, uid_domain: str) -> str:
    return f"course-{course.course_id}-session-{index}@{uid_domain}"


def course_calendar(
    course: CourseSnapshot,
    intent: CalendarIntent,
    *,
    uid_domain: str,
    stamped_at: datetime,
) -> bytes:
    if intent is CalendarIntent.NONE:
        raise ValueError("no calendar for this email")
    # Everything but DTSTAMP is the same for every participant of a course revision, and building it
    # (the VTIMEZONE above all) costs more than sending the message: build once per revision, stamp per send.
    stamp = stamped_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ").encode()
    return _calendar(course, intent, uid_domain).replace(_PLACEHOLDER_STAMP, b"DTSTAMP:" + stamp)


_PLACEHOLDER = datetime(1970, 1, 1, tzinfo=UTC)
_PLACEHOLDER_STAMP = b"DTSTAMP:19700101T000000Z"


@lru_cache(maxsize=256)
def _calendar(course: CourseSnapshot, intent: CalendarIntent, uid_domain: str) -> bytes:
    stamped_at = _PLACEHOLDER
    cancelling = intent is CalendarIntent.CANCEL
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "CANCEL" if cancelling else "PUBLISH")
    # A cancellation must out-rank the publication it withdraws (RFC 5546 §2.1.4).
    sequence = course.revision + 1 if cancelling else course.revision
    total = len(course.sessions_sorted)
    for index, session in enumerate(course.sessions_sorted, start=1):
        event = icalendar.Event()
        event.add("uid", session_uid(course, index, uid_domain))
        event.add("dtstamp", stamped_at.astimezone(UTC))  # RFC 5545: DTSTAMP is always UTC
        event.add("dtstart", session.starts_at.astimezone(COPENHAGEN))
        event.add("dtend", session.ends_at.astimezone(COPENHAGEN))
        event.add("summary", course.title if total == 1 else f"{course.title} (dag {index} af {total})")
        event.add("location", f"{course.venue.name}, {course.venue.address_line}")
        event.add("description", _description(course))
        event.add("organizer", _organizer(course.contact))
        event.add("sequence", sequence)
        event.add("status", "CANCELLED" if cancelling else "CONFIRMED")
        event.add("transp", "OPAQUE")
        cal.add_component(event)
    cal.add_missing_timezones()
    ics: bytes = cal.to_ical()
    return ics


def _organizer(contact: ContactPerson) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{contact.email}")
    address.params["cn"] = icalendar.vText(contact.name)
    return address


def _description(course: CourseSnapshot) -> str:
    lines = [
        course.title,
        f"Kontakt: {course.contact.name}, {course.contact.email}, tlf. {course.contact.phone}",
    ]
    if course.course_url:
        lines.append(course.course_url)
    return "\n".join(lines)
