"""Domain events a course's seat book emits; the wiring maps them to the contracts' CloudEvents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from komponent_registration.domain.registration import RegistrationStatus


class RejectionReason(StrEnum):
    UNKNOWN_COURSE = "unknown_course"  # no published course in the projection (also: not yet published)
    COURSE_CANCELLED = "course_cancelled"
    COURSE_STARTED = "course_started"
    UNKNOWN_REGISTRATION = "unknown_registration"
    NOT_CONFIRMED = "not_confirmed"  # substitution needs a seat to hand over
    NOT_BINDING = "not_binding"  # before the deadline the participant can cancel instead
    ALREADY_REGISTERED = "already_registered"  # the colleague already has a registration on the course
    ALREADY_CANCELLED = "already_cancelled"


class CancellationCause(StrEnum):
    PARTICIPANT = "participant"
    COURSE_CANCELLED = "course_cancelled"


@dataclass(frozen=True, slots=True)
class RegistrationConfirmed:
    course_id: UUID
    registration_id: UUID
    binding: bool  # late registrations are binding at once
    at: datetime


@dataclass(frozen=True, slots=True)
class RegistrationWaitlisted:
    course_id: UUID
    registration_id: UUID
    position: int  # 1-based place in the waiting list at the moment of joining
    at: datetime


@dataclass(frozen=True, slots=True)
class RegistrationPromoted:
    course_id: UUID
    registration_id: UUID
    binding: bool  # promoted after the deadline means binding at once
    at: datetime


@dataclass(frozen=True, slots=True)
class RegistrationBecameBinding:
    course_id: UUID
    registration_id: UUID
    at: datetime


@dataclass(frozen=True, slots=True)
class RegistrationCancelled:
    course_id: UUID
    registration_id: UUID
    binding: bool  # True: cancelled after the deadline, billing keeps the invoice
    freed_seat: bool  # False for a waiting-list entry that just left the list
    cause: CancellationCause
    at: datetime


@dataclass(frozen=True, slots=True)
class ParticipantSubstituted:
    course_id: UUID
    registration_id: UUID
    previous_participant_email: str
    participant_email: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RegistrationDuplicate:
    """The same participant registered twice: the answer is the existing registration, nothing changes."""

    course_id: UUID
    registration_id: UUID  # the id the second attempt carried
    existing_registration_id: UUID
    existing_status: RegistrationStatus
    at: datetime


@dataclass(frozen=True, slots=True)
class RegistrationRejected:
    course_id: UUID
    registration_id: UUID
    reason: RejectionReason
    at: datetime


@dataclass(frozen=True, slots=True)
class CancellationRejected:
    course_id: UUID
    registration_id: UUID
    reason: RejectionReason
    at: datetime


@dataclass(frozen=True, slots=True)
class SubstitutionRejected:
    course_id: UUID
    registration_id: UUID
    reason: RejectionReason
    at: datetime


CourseEvent = (
    RegistrationConfirmed
    | RegistrationWaitlisted
    | RegistrationPromoted
    | RegistrationBecameBinding
    | RegistrationCancelled
    | ParticipantSubstituted
    | RegistrationDuplicate
    | RegistrationRejected
    | CancellationRejected
    | SubstitutionRejected
)
