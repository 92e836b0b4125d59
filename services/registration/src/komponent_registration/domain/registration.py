"""One participant's registration on one course, as the seat book sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class RegistrationStatus(StrEnum):
    CONFIRMED = "confirmed"  # holds a seat
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class Registration:
    """Mutable only through ``CourseBook``, which records every change for the batch write.

    ``received_seq`` is the FCFS order (partition offset) and never changes. ``queue_number`` is handed
    out from the course's monotonically increasing counter when the registration joins the waiting list;
    the waiting-list position is its rank among waitlisted queue numbers, so a promotion never renumbers
    anyone. It is kept after promotion or cancellation for the audit trail.
    """

    registration_id: UUID
    course_id: UUID
    participant_email: str
    status: RegistrationStatus
    binding: bool
    received_seq: int
    received_at: datetime
    queue_number: int | None = None
    binding_since: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def holds_seat(self) -> bool:
        return self.status is RegistrationStatus.CONFIRMED

    def snapshot(self) -> Registration:
        """An independent copy, safe to hand to I/O while the book changes the original.

        Positional construction: ``dataclasses.replace`` costs several times more, once per changed row
        of every batch."""
        return Registration(
            self.registration_id,
            self.course_id,
            self.participant_email,
            self.status,
            self.binding,
            self.received_seq,
            self.received_at,
            self.queue_number,
            self.binding_since,
            self.cancelled_at,
        )
