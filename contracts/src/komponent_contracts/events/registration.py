"""Registration events: the intake command other systems may publish, and the allocation outcomes."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from komponent_contracts import topics
from komponent_contracts.events.base import Event, register
from komponent_contracts.events.values import Buyer, Participant, Value


@register
class RegistrationReceived(Event):
    """A participant asks for a seat. Published by registration's HTTP intake or by another Komponent system.

    `received_at` is stamped by whoever received it first; admission order is the order on the partition.
    """

    ce_type: ClassVar[str] = "dk.komponent.registration.received.v1"
    topic: ClassVar[str] = topics.REGISTRATION_INTAKE

    registration_id: UUID
    course_id: UUID
    received_at: AwareDatetime
    participant: Participant
    buyer: Buyer
    terms_version: Annotated[str, Field(min_length=1, max_length=50)]


class _Outcome(Event):
    topic: ClassVar[str] = topics.REGISTRATION

    registration_id: UUID
    course_id: UUID
    occurred_at: AwareDatetime


@register
class RegistrationConfirmed(_Outcome):
    """A seat was allocated. Carries participant and buyer so notifications and billing need no lookup."""

    ce_type: ClassVar[str] = "dk.komponent.registration.confirmed.v1"
    participant: Participant
    buyer: Buyer
    binding: bool


@register
class RegistrationWaitlisted(_Outcome):
    ce_type: ClassVar[str] = "dk.komponent.registration.waitlisted.v1"
    participant: Participant
    position: Annotated[int, Field(ge=1)]


@register
class RegistrationRejected(_Outcome):
    ce_type: ClassVar[str] = "dk.komponent.registration.rejected.v1"
    reason: Literal[
        "unknown_course", "course_not_published", "course_cancelled", "course_started", "invalid_registration"
    ]
    detail: Annotated[str, Field(max_length=1000)] = ""


@register
class RegistrationCancellationRequested(Event):
    """A participant (or an admin on their behalf) asks to cancel. Goes through the intake topic so it is
    applied in the same serial order per course as registrations and promotions."""

    ce_type: ClassVar[str] = "dk.komponent.registration.cancellation-requested.v1"
    topic: ClassVar[str] = topics.REGISTRATION_INTAKE

    registration_id: UUID
    course_id: UUID
    requested_at: AwareDatetime


@register
class SubstitutionRequested(Event):
    """A confirmed or binding participant sends a colleague instead; buyer data may change too."""

    ce_type: ClassVar[str] = "dk.komponent.registration.substitution-requested.v1"
    topic: ClassVar[str] = topics.REGISTRATION_INTAKE

    registration_id: UUID
    course_id: UUID
    requested_at: AwareDatetime
    new_participant: Participant
    new_buyer: Buyer | None = None


@register
class RegistrationPromoted(_Outcome):
    """A waitlisted registration got a seat that freed. Binding at once when after the deadline."""

    ce_type: ClassVar[str] = "dk.komponent.registration.promoted.v1"
    participant: Participant
    buyer: Buyer
    binding: bool


@register
class RegistrationBecameBinding(_Outcome):
    """The deadline passed while the registration held a seat: it can no longer be cancelled for free."""

    ce_type: ClassVar[str] = "dk.komponent.registration.became-binding.v1"


@register
class RegistrationCancelled(_Outcome):
    """Cancelled. `binding` says whether it was binding (billing keeps the invoice) or free.

    `by_course_cancellation` marks cancellations caused by Komponent cancelling the course (not billable)."""

    ce_type: ClassVar[str] = "dk.komponent.registration.cancelled.v1"
    participant: Participant
    binding: bool
    was_waitlisted: bool = False
    by_course_cancellation: bool = False


@register
class ParticipantSubstituted(_Outcome):
    ce_type: ClassVar[str] = "dk.komponent.registration.participant-substituted.v1"
    previous_participant: Participant
    new_participant: Participant
    previous_buyer: Buyer
    new_buyer: Buyer
    binding: bool


@register
class RegistrationRequestRefused(_Outcome):
    """A request on the intake topic that changed nothing, with the reason: a second registration of a
    participant who already holds one on the course, or a cancellation/substitution the rules refuse.

    A new type rather than new `RegistrationRejected.reason` values, so existing consumers of that enum
    are not broken. `existing_registration_id` names the registration that already exists (duplicates)."""

    ce_type: ClassVar[str] = "dk.komponent.registration.request-refused.v1"
    request: Literal["registration", "cancellation", "substitution"]
    reason: Literal[
        "already_registered",
        "unknown_registration",
        "already_cancelled",
        "not_confirmed",
        "not_binding",
    ]
    existing_registration_id: UUID | None = None


@register
class ParticipantDataErased(Event):
    """A participant's personal data was erased on request (GDPR art. 17) from these registrations of one
    course. Carries ids only, never the data itself: each consumer anonymises what it holds for the listed
    registrations (see `komponent_contracts.erasure` for what an anonymised participant looks like) and
    keeps what the law requires it to keep (billing's issued documents). Keyed by course."""

    ce_type: ClassVar[str] = "dk.komponent.registration.participant-data-erased.v1"
    topic: ClassVar[str] = topics.REGISTRATION

    course_id: UUID
    registration_ids: Annotated[list[UUID], Field(min_length=1, max_length=10_000)]
    erased_at: AwareDatetime


class HandedOver(Value):
    """A registration a participant handed over to a colleague: the registration and the CloudEvents id of
    the `ParticipantSubstituted` event that replaced them."""

    registration_id: UUID
    substitution_event_id: UUID


@register
class FormerParticipantDataErased(Event):
    """A participant who handed these registrations of one course over to colleagues had their personal
    data erased on request (GDPR art. 17). The registrations now belong to the colleagues, who keep theirs:
    each consumer anonymises only what it holds about the person each named `ParticipantSubstituted`
    event replaced (their emails, their name in the colleague's emails). Ids only, like
    `ParticipantDataErased`. Keyed by course."""

    ce_type: ClassVar[str] = "dk.komponent.registration.former-participant-data-erased.v1"
    topic: ClassVar[str] = topics.REGISTRATION

    course_id: UUID
    handed_over: Annotated[list[HandedOver], Field(min_length=1, max_length=10_000)]
    erased_at: AwareDatetime
