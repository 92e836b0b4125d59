"""Email outcomes from notifications: what was handed to SMTP, and what failed for good."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from komponent_contracts import topics
from komponent_contracts.events.base import Event, register

EmailKind = Literal[
    "registration_confirmed",
    "registration_waitlisted",
    "registration_promoted",
    "registration_binding",
    "registration_cancelled",
    "participant_substituted",
    "course_cancelled",
    "invoice",
    "credit_note",
    "payment_reminder",
    "course_reminder",
]


class _EmailOutcome(Event):
    """Keyed by course. Recipients are not named (personal data): `email_id` leads to notifications' log."""

    topic: ClassVar[str] = topics.EMAIL

    email_id: UUID
    course_id: UUID
    kind: EmailKind
    caused_by_event_id: UUID
    occurred_at: AwareDatetime


@register
class EmailSent(_EmailOutcome):
    ce_type: ClassVar[str] = "dk.komponent.email.sent.v1"
    smtp_reply: Annotated[str, Field(max_length=500)]


@register
class EmailFailed(_EmailOutcome):
    ce_type: ClassVar[str] = "dk.komponent.email.failed.v1"
    smtp_reply: Annotated[str, Field(max_length=500)]
    attempts: Annotated[int, Field(ge=1)]
