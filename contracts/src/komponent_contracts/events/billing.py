"""Billing events: documents issued, payments, reminders."""

from __future__ import annotations

from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import AwareDatetime, Field

from komponent_contracts import topics
from komponent_contracts.events.base import Event, register
from komponent_contracts.events.values import Email, Text


class _BillingDocument(Event):
    """An issued invoice or credit note. Notifications emails the PDF (fetched from billing by id and
    number) to the billing contact; the amounts are here so the email can show them."""

    topic: ClassVar[str] = topics.BILLING

    document_id: UUID
    document_number: Annotated[str, Field(min_length=1, max_length=40)]
    course_id: UUID
    registration_ids: tuple[UUID, ...]
    issued_at: AwareDatetime
    issue_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    due_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    buyer_name: Text
    buyer_ean: Annotated[str, Field(pattern=r"^\d{13}$")]
    buyer_reference: Text
    order_number: Text
    billing_email: Email
    total_excl_vat_ore: int
    vat_ore: int
    total_incl_vat_ore: int
    pdf_url: Annotated[str, Field(max_length=500)]


@register
class InvoiceIssued(_BillingDocument):
    ce_type: ClassVar[str] = "dk.komponent.billing.invoice-issued.v1"


@register
class CreditNoteIssued(_BillingDocument):
    ce_type: ClassVar[str] = "dk.komponent.billing.credit-note-issued.v1"
    credited_document_number: Annotated[str, Field(min_length=1, max_length=40)]
    reason: Annotated[str, Field(max_length=500)] = ""


@register
class PaymentRegistered(Event):
    """A payment against an invoice (from the bank reconciliation or an admin)."""

    ce_type: ClassVar[str] = "dk.komponent.billing.payment-registered.v1"
    topic: ClassVar[str] = topics.BILLING

    payment_id: UUID
    course_id: UUID
    document_number: Annotated[str, Field(min_length=1, max_length=40)]
    amount_ore: Annotated[int, Field(gt=0)]
    paid_on: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    registered_at: AwareDatetime


@register
class PaymentReminderDue(Event):
    """An invoice is overdue and unpaid: the billing contact gets reminder number `reminder_number`."""

    ce_type: ClassVar[str] = "dk.komponent.billing.payment-reminder-due.v1"
    topic: ClassVar[str] = topics.BILLING

    course_id: UUID
    document_id: UUID
    document_number: Annotated[str, Field(min_length=1, max_length=40)]
    reminder_number: Annotated[int, Field(ge=1, le=3)]
    billing_email: Email
    buyer_name: Text
    outstanding_ore: Annotated[int, Field(gt=0)]
    fee_ore: Annotated[int, Field(ge=0)] = 0
    original_due_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    occurred_at: AwareDatetime
