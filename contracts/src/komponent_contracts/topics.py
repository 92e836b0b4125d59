"""Topic names: one topic per event family and major version, each consumed topic with a dead-letter topic.

Partition counts are part of the contract: a course's events are keyed by course id, so changing the count
would move a course to another partition and break its order.
"""

from __future__ import annotations

from dataclasses import dataclass

REGISTRATION_INTAKE = "komponent.registration-intake.v1"
REGISTRATION = "komponent.registration.v1"
COURSE = "komponent.course.v1"
COURSE_CALENDAR = "komponent.course-calendar.v1"
BILLING = "komponent.billing.v1"
EMAIL = "komponent.email.v1"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int = -1  # event families are kept: projections are rebuilt from them


EVENT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(REGISTRATION_INTAKE, partitions=12),
    TopicSpec(REGISTRATION, partitions=12),
    TopicSpec(COURSE, partitions=6),
    TopicSpec(COURSE_CALENDAR, partitions=6),
    TopicSpec(BILLING, partitions=6),
    TopicSpec(EMAIL, partitions=6),
)

# Dead letters keep the partition count of their source so a replay keeps per-key order.
ALL_TOPICS: tuple[TopicSpec, ...] = EVENT_TOPICS + tuple(
    TopicSpec(dead_letter_topic(t.name), t.partitions, retention_ms=30 * 24 * 3600 * 1000)
    for t in EVENT_TOPICS
)
