"""The base every event payload derives from, and the registry of event types.

Each event class names its CloudEvents type, the topic its family lives on, and the aggregate id that
becomes the Kafka key and `ce_subject`. Unknown fields are ignored on read so that a producer may add an
optional field within a major version without breaking older consumers.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    ce_type: ClassVar[str]
    topic: ClassVar[str]

    def subject(self) -> str:
        """The aggregate id: Kafka key and `ce_subject`. Course-scoped events are keyed by course."""
        course_id: UUID = getattr(self, "course_id")  # noqa: B009 - every event in this package has one
        return str(course_id)


EVENT_TYPES: dict[str, type[Event]] = {}


def register(cls: type[Event]) -> type[Event]:
    if cls.ce_type in EVENT_TYPES:
        raise ValueError(f"duplicate event type {cls.ce_type}")
    EVENT_TYPES[cls.ce_type] = cls
    return cls
