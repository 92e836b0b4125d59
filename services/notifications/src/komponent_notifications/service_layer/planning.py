"""Which emails an event causes, to whom, and the data each needs later to be rendered.

Planning happens in the consumer's transaction (together with the inbox row); rendering and sending happen
later in the sender loop. So a plan carries everything the email needs, as JSON, except the things that
may legitimately arrive later: the course snapshot (when the course event is still in flight) and the PDF
(fetched from billing at send time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from komponent_contracts import events as ev

from ..domain.emails import EmailKind
from ..domain.ledger import SendLedgerKey
from ..domain.policy import NotificationPolicy

RenderData = dict[str, Any]


@dataclass(frozen=True)
class RegistrationView:
    """A registration as the local projection knows it."""

    registration_id: UUID
    course_id: UUID
    participant: ev.Participant
    buyer: ev.Buyer | None
    binding: bool


@dataclass(frozen=True)
class PlannedEmail:
    event_id: UUID
    kind: EmailKind
    recipient: str
    course_id: UUID
    registration_id: UUID | None
    render_data: RenderData
    document_number: str | None = None
    caused_by: UUID | None = None  # set on resends: the original triggering event
    key: SendLedgerKey = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", SendLedgerKey(self.event_id, self.recipient, self.kind))


def _json(model: Any) -> Any:
    return None if model is None else model.model_dump(mode="json")


def _base(event: ev.Event) -> RenderData:
    return {"event_type": event.ce_type, "event": event.model_dump(mode="json")}


def _to_participant(
    event_id: UUID,
    event: ev.Event,
    kind: EmailKind,
    registration_id: UUID,
    course_id: UUID,
    person: ev.Participant,
    buyer: ev.Buyer | None,
    **extra: Any,
) -> PlannedEmail:
    data = _base(event) | {
        "participant": _json(person),
        "buyer": _json(buyer),
        "registration_id": str(registration_id),
        **extra,
    }
    return PlannedEmail(event_id, kind, str(person.email), course_id, registration_id, data)


def plan_registration_outcome(
    event_id: UUID, event: ev.Event, known: RegistrationView | None, policy: NotificationPolicy
) -> list[PlannedEmail]:
    """Emails for one event of `komponent.registration.v1`. `known` is the projection before the event."""
    match event:
        case ev.RegistrationConfirmed():
            kind = EmailKind.REGISTRATION_CONFIRMED
            return [
                _to_participant(
                    event_id,
                    event,
                    kind,
                    event.registration_id,
                    event.course_id,
                    event.participant,
                    event.buyer,
                )
            ]
        case ev.RegistrationWaitlisted():
            return [
                _to_participant(
                    event_id,
                    event,
                    EmailKind.WAITLISTED,
                    event.registration_id,
                    event.course_id,
                    event.participant,
                    known.buyer if known else None,
                )
            ]
        case ev.RegistrationPromoted():
            kind = EmailKind.PROMOTED_FROM_WAITING_LIST
            return [
                _to_participant(
                    event_id,
                    event,
                    kind,
                    event.registration_id,
                    event.course_id,
                    event.participant,
                    event.buyer,
                )
            ]
        case ev.RegistrationBecameBinding():
            # The event names no participant; the projection does (Confirmed came first on this partition).
            if not policy.wants(EmailKind.BECAME_BINDING) or known is None:
                return []
            return [
                _to_participant(
                    event_id,
                    event,
                    EmailKind.BECAME_BINDING,
                    event.registration_id,
                    event.course_id,
                    known.participant,
                    known.buyer,
                )
            ]
        case ev.RegistrationCancelled():
            kind = (
                EmailKind.COURSE_CANCELLED if event.by_course_cancellation else EmailKind.CANCELLATION_RECEIPT
            )
            return [
                _to_participant(
                    event_id,
                    event,
                    kind,
                    event.registration_id,
                    event.course_id,
                    event.participant,
                    known.buyer if known else None,
                )
            ]
        case ev.ParticipantSubstituted():
            args = (event_id, event)
            ids = (event.registration_id, event.course_id)
            return [
                _to_participant(
                    *args, EmailKind.SUBSTITUTED_OUT, *ids, event.previous_participant, event.previous_buyer
                ),
                _to_participant(
                    *args, EmailKind.SUBSTITUTED_IN, *ids, event.new_participant, event.new_buyer
                ),
            ]
    return []  # RegistrationRejected, CourseSeatsChanged: no email (the intake answers rejections)


def plan_course_reminder(
    event_id: UUID, event: ev.CourseReminderDue, confirmed: list[RegistrationView], policy: NotificationPolicy
) -> list[PlannedEmail]:
    if not policy.wants(EmailKind.COURSE_REMINDER):
        return []
    return [
        _to_participant(
            event_id,
            event,
            EmailKind.COURSE_REMINDER,
            r.registration_id,
            event.course_id,
            r.participant,
            r.buyer,
        )
        for r in confirmed
    ]


def plan_billing_email(
    event_id: UUID,
    event: ev.InvoiceIssued | ev.CreditNoteIssued | ev.PaymentReminderDue,
    participant_names: list[str],
    invoice: ev.InvoiceIssued | None,
) -> list[PlannedEmail]:
    data = _base(event) | {"participant_names": participant_names, "invoice": _json(invoice)}
    match event:
        case ev.InvoiceIssued():
            kind = EmailKind.INVOICE
        case ev.CreditNoteIssued():
            kind = EmailKind.CREDIT_NOTE
        case ev.PaymentReminderDue():
            kind = EmailKind.PAYMENT_REMINDER
    return [
        PlannedEmail(
            event_id, kind, str(event.billing_email), event.course_id, None, data, event.document_number
        )
    ]
