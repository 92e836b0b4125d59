"""Which events a course change publishes. Only what other services have seen matters to them:

- draft -> published: CoursePublished with the whole snapshot;
- published -> published with a different snapshot: CourseUpdated naming the changed snapshot fields
  (page text that is not in the snapshot changes nothing downstream, so it publishes nothing);
- published -> cancelled: CourseCancelled. A draft cancelled was never seen, so it publishes nothing.
"""

from __future__ import annotations

from datetime import datetime

from komponent_contracts import CloudEvent, Event
from komponent_contracts.events import CourseCancelled, CoursePublished, CourseUpdated

from komponent_catalogue.adapters.snapshot import course_snapshot
from komponent_catalogue.domain.course import Course, CourseStatus

SOURCE = "/komponent/catalogue"


def course_events(before: Course | None, after: Course, now: datetime, reason: str = "") -> list[Event]:
    was = before.status if before is not None else CourseStatus.DRAFT
    if after.status is CourseStatus.PUBLISHED:
        snapshot = course_snapshot(after)
        if was is CourseStatus.DRAFT:
            return [CoursePublished(course_id=after.course_id, course=snapshot, occurred_at=now)]
        assert before is not None
        previous = course_snapshot(before)
        changed = tuple(
            name for name in type(snapshot).model_fields if getattr(snapshot, name) != getattr(previous, name)
        )
        if changed:
            return [
                CourseUpdated(course_id=after.course_id, course=snapshot, changed=changed, occurred_at=now)
            ]
        return []
    if after.status is CourseStatus.CANCELLED and was is CourseStatus.PUBLISHED:
        return [CourseCancelled(course_id=after.course_id, reason=reason, occurred_at=now)]
    return []


def envelope(events: list[Event], now: datetime) -> list[CloudEvent[Event]]:
    return [CloudEvent(data=e, source=SOURCE, time=now) for e in events]
