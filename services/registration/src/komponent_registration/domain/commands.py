"""Commands applied to one course's seat book, in the order of the course's Kafka partition.

Every command carries ``at``: the moment it happened (intake stamp for registrations, request time for
cancellations, event time for catalogue facts). The book never reads a clock, so replaying the same
commands always gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Register:
    registration_id: UUID
    participant_email: str  # already normalised at intake (see intake.normalise_email)
    at: datetime  # received_at stamped by intake
    received_seq: int  # position in the course's partition (Kafka offset): the FCFS order


@dataclass(frozen=True, slots=True)
class Cancel:
    registration_id: UUID
    at: datetime


@dataclass(frozen=True, slots=True)
class Substitute:
    """A binding participant sends a colleague instead; the seat and its binding stay with the registration."""

    registration_id: UUID
    new_participant_email: str  # normalised
    at: datetime


@dataclass(frozen=True, slots=True)
class PassDeadline:
    """The catalogue's DeadlinePassed timer fired for ``deadline``."""

    deadline: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class ChangeCapacity:
    capacity: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CancelCourse:
    at: datetime


@dataclass(frozen=True, slots=True)
class StartCourse:
    at: datetime


@dataclass(frozen=True, slots=True)
class RescheduleCourse:
    """Course dates or registration deadline changed (CourseUpdated)."""

    starts_at: datetime
    deadline: datetime
    at: datetime


CourseCommand = (
    Register
    | Cancel
    | Substitute
    | PassDeadline
    | ChangeCapacity
    | CancelCourse
    | StartCourse
    | RescheduleCourse
)
