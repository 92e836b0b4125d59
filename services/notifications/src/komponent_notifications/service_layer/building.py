"""From a ledger row's stored data back to the domain email the composer renders (at send time)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from komponent_contracts import events as ev
from komponent_contracts.events.base import EVENT_TYPES

from ..adapters import contract_mapping as mapping
from ..domain import emails as em
from ..domain.course import CourseSnapshot
from ..domain.emails import EmailKind
from ..domain.recipients import BillingContact, BillingReferences

# Renteloven §9b: a rykker may demand payment no sooner than 10 days after it is sent.
REMINDER_PAYMENT_DAYS = 10
NEEDS_PDF = frozenset({EmailKind.INVOICE, EmailKind.CREDIT_NOTE})


def stored_event(render_data: dict[str, Any]) -> ev.Event:
    # Stored render data is validated again at send time (types, dates, nested models, EAN: it may be
    # days old and written by an older version). Addresses cost next to nothing here: the contracts' Email
    # type remembers each address it has checked in this process, and this process checked these when it
    # consumed the event, so email-validator runs again only in a process that has not seen the address
    # (another replica, or after a restart: once per address).
    return EVENT_TYPES[render_data["event_type"]].model_validate(render_data["event"])


def build_email(
    kind: EmailKind,
    event_id: UUID,
    render_data: dict[str, Any],
    course: CourseSnapshot,
    *,
    cancel_reason: str = "",
    pdf: em.PdfDocument | None = None,
) -> em.Email:
    event = stored_event(render_data)
    if kind in NEEDS_PDF:
        if pdf is None:
            raise ValueError(f"a {kind} email is never sent without its PDF")
        return _document_email(kind, event_id, event, render_data, course, pdf)
    if kind is EmailKind.PAYMENT_REMINDER:
        assert isinstance(event, ev.PaymentReminderDue)
        return _payment_reminder(event_id, event, render_data, course)
    return _participant_email(kind, event_id, event, render_data, course, cancel_reason)


def _participant_email(
    kind: EmailKind,
    event_id: UUID,
    event: ev.Event,
    data: dict[str, Any],
    course: CourseSnapshot,
    cancel_reason: str,
) -> em.ParticipantEmail:
    person = ev.Participant.model_validate(data["participant"])
    buyer = ev.Buyer.model_validate(data["buyer"]) if data.get("buyer") else None
    registration_id = UUID(data["registration_id"])
    common: dict[str, Any] = {
        "event_id": event_id,
        "course": course,
        "participant": mapping.participant(person, registration_id=registration_id, buyer=buyer),
        "registration_id": registration_id,
    }
    invoiced_to = mapping.billing_contact_of_buyer(buyer) if buyer else None
    match kind:
        case EmailKind.REGISTRATION_CONFIRMED:
            assert isinstance(event, ev.RegistrationConfirmed)
            return em.RegistrationConfirmed(**common, is_binding=event.binding, invoiced_to=invoiced_to)
        case EmailKind.WAITLISTED:
            assert isinstance(event, ev.RegistrationWaitlisted)
            return em.Waitlisted(**common, position=event.position)
        case EmailKind.PROMOTED_FROM_WAITING_LIST:
            assert isinstance(event, ev.RegistrationPromoted)
            return em.PromotedFromWaitingList(**common, is_binding=event.binding, invoiced_to=invoiced_to)
        case EmailKind.BECAME_BINDING:
            return em.BecameBinding(**common)
        case EmailKind.CANCELLATION_RECEIPT:
            assert isinstance(event, ev.RegistrationCancelled)
            return em.CancellationReceipt(
                **common, is_binding=event.binding, was_waitlisted=event.was_waitlisted
            )
        case EmailKind.COURSE_CANCELLED:
            return em.CourseCancelled(**common, reason=cancel_reason)
        case EmailKind.SUBSTITUTED_OUT:
            assert isinstance(event, ev.ParticipantSubstituted)
            return em.SubstitutedOut(**common, substitute_name=event.new_participant.name)
        case EmailKind.SUBSTITUTED_IN:
            assert isinstance(event, ev.ParticipantSubstituted)
            return em.SubstitutedIn(
                **common,
                replaces_name=event.previous_participant.name,
                is_binding=event.binding,
                invoiced_to=invoiced_to,
            )
        case EmailKind.COURSE_REMINDER:
            return em.CourseReminder(**common)
    raise ValueError(f"{kind} is not a participant email")


def _document_email(
    kind: EmailKind,
    event_id: UUID,
    event: ev.Event,
    data: dict[str, Any],
    course: CourseSnapshot,
    pdf: em.PdfDocument,
) -> em.Email:
    assert isinstance(event, ev.InvoiceIssued | ev.CreditNoteIssued)
    common: dict[str, Any] = {
        "event_id": event_id,
        "course": course,
        "billing_contact": mapping.billing_contact_of_document(event),
        "document_number": event.document_number,
        "issue_date": date.fromisoformat(event.issue_date),
        "net_ore": event.total_excl_vat_ore,
        "vat_ore": event.vat_ore,
        "participant_names": tuple(data.get("participant_names") or ()),
        "pdf": pdf,
    }
    if isinstance(event, ev.CreditNoteIssued):
        return em.CreditNoteIssued(**common, credited_invoice_number=event.credited_document_number)
    # No due date on the invoice event means billing applies its default; show the issue date's term.
    due = date.fromisoformat(event.due_date) if event.due_date else common["issue_date"] + timedelta(days=30)
    return em.InvoiceIssued(**common, due_date=due)


def _payment_reminder(
    event_id: UUID, event: ev.PaymentReminderDue, data: dict[str, Any], course: CourseSnapshot
) -> em.PaymentReminder:
    invoice = ev.InvoiceIssued.model_validate(data["invoice"]) if data.get("invoice") else None
    if invoice is not None:
        contact = mapping.billing_contact_of_document(invoice)
        issue_date = date.fromisoformat(invoice.issue_date)
    else:
        contact = BillingContact(
            event.buyer_name, str(event.billing_email), event.buyer_name, BillingReferences()
        )
        issue_date = date.fromisoformat(event.original_due_date)
    if invoice is not None and invoice.total_incl_vat_ore == event.outstanding_ore:
        net, vat = invoice.total_excl_vat_ore, invoice.vat_ore
    else:
        # Part-paid: billing states only the outstanding total; VAT is not split out again.
        net, vat = event.outstanding_ore, 0
    sent_on = _copenhagen_date(event.occurred_at)
    return em.PaymentReminder(
        event_id=event_id,
        course=course,
        billing_contact=contact,
        document_number=event.document_number,
        issue_date=issue_date,
        net_ore=net,
        vat_ore=vat,
        participant_names=tuple(data.get("participant_names") or ()),
        due_date=date.fromisoformat(event.original_due_date),
        new_due_date=sent_on + timedelta(days=REMINDER_PAYMENT_DAYS),
        reminder_number=event.reminder_number,
        reminder_fee_ore=event.fee_ore,
    )


def _copenhagen_date(moment: datetime) -> date:
    return moment.astimezone(mapping.COPENHAGEN).date()
