"""Every email the platform sends, and exactly the data each one needs.

One frozen dataclass per kind. The wiring builds them from the triggering event (its `ce_id` becomes
`event_id`) plus local projections; templates read nothing else. Keeping the data per kind explicit makes it
obvious, when an event schema changes, which emails are affected.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

from .course import CourseSnapshot
from .recipients import BillingContact, Participant


class EmailKind(enum.StrEnum):
    REGISTRATION_CONFIRMED = "registration_confirmed"
    WAITLISTED = "waitlisted"
    PROMOTED_FROM_WAITING_LIST = "promoted_from_waiting_list"
    BECAME_BINDING = "became_binding"
    CANCELLATION_RECEIPT = "cancellation_receipt"
    SUBSTITUTED_OUT = "substituted_out"
    SUBSTITUTED_IN = "substituted_in"
    COURSE_CANCELLED = "course_cancelled"
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PAYMENT_REMINDER = "payment_reminder"
    COURSE_REMINDER = "course_reminder"


class CalendarIntent(enum.Enum):
    """What the attached .ics should do in the recipient's calendar."""

    NONE = "none"
    PUBLISH = "publish"  # add or update the course sessions
    CANCEL = "cancel"  # remove sessions added earlier (same UIDs)


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class PdfDocument:
    filename: str
    content: bytes

    def __post_init__(self) -> None:
        if not self.content.startswith(b"%PDF-"):
            raise ValueError(f"{self.filename} is not a PDF")


@dataclass(frozen=True, slots=True, kw_only=True)
class _ParticipantEmail:
    """Common shape of the emails addressed to a course participant."""

    event_id: UUID
    course: CourseSnapshot
    participant: Participant
    registration_id: UUID

    @property
    def recipient(self) -> Recipient:
        return Recipient(self.participant.name, self.participant.email)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationConfirmed(_ParticipantEmail):
    kind: ClassVar[EmailKind] = EmailKind.REGISTRATION_CONFIRMED
    calendar: ClassVar[CalendarIntent] = CalendarIntent.PUBLISH
    # A registration accepted after the deadline is binding from the start; the email must say so.
    is_binding: bool = False
    # Who will be invoiced, so a wrong EAN or person reference is caught weeks before the invoice run.
    invoiced_to: BillingContact | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Waitlisted(_ParticipantEmail):
    kind: ClassVar[EmailKind] = EmailKind.WAITLISTED
    calendar: ClassVar[CalendarIntent] = CalendarIntent.NONE
    position: int

    def __post_init__(self) -> None:
        if self.position < 1:
            raise ValueError("waiting-list positions start at 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotedFromWaitingList(_ParticipantEmail):
    kind: ClassVar[EmailKind] = EmailKind.PROMOTED_FROM_WAITING_LIST
    calendar: ClassVar[CalendarIntent] = CalendarIntent.PUBLISH
    is_binding: bool = False  # promoted after the deadline: binding at once
    invoiced_to: BillingContact | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BecameBinding(_ParticipantEmail):
    """Sent when DeadlinePassed flips a registration to binding; only if policy says so."""

    kind: ClassVar[EmailKind] = EmailKind.BECAME_BINDING
    calendar: ClassVar[CalendarIntent] = CalendarIntent.NONE


@dataclass(frozen=True, slots=True, kw_only=True)
class CancellationReceipt(_ParticipantEmail):
    kind: ClassVar[EmailKind] = EmailKind.CANCELLATION_RECEIPT
    calendar: ClassVar[CalendarIntent] = CalendarIntent.CANCEL
    # Cancelled after the deadline: the seat is still paid for (unless someone substitutes).
    is_binding: bool = False
    was_waitlisted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SubstitutedOut(_ParticipantEmail):
    """To the participant who handed their seat over."""

    kind: ClassVar[EmailKind] = EmailKind.SUBSTITUTED_OUT
    calendar: ClassVar[CalendarIntent] = CalendarIntent.CANCEL
    substitute_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubstitutedIn(_ParticipantEmail):
    """To the participant who takes over the seat (and its binding status)."""

    kind: ClassVar[EmailKind] = EmailKind.SUBSTITUTED_IN
    calendar: ClassVar[CalendarIntent] = CalendarIntent.PUBLISH
    replaces_name: str = ""
    is_binding: bool = False
    invoiced_to: BillingContact | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CourseCancelled(_ParticipantEmail):
    kind: ClassVar[EmailKind] = EmailKind.COURSE_CANCELLED
    calendar: ClassVar[CalendarIntent] = CalendarIntent.CANCEL
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CourseReminder(_ParticipantEmail):
    kind: ClassVar[EmailKind] = EmailKind.COURSE_REMINDER
    calendar: ClassVar[CalendarIntent] = CalendarIntent.PUBLISH


@dataclass(frozen=True, slots=True, kw_only=True)
class _BillingEmail:
    """Common shape of the emails addressed to a buyer's billing contact."""

    event_id: UUID
    course: CourseSnapshot
    billing_contact: BillingContact
    document_number: str
    issue_date: date
    net_ore: int
    vat_ore: int
    participant_names: tuple[str, ...]

    @property
    def recipient(self) -> Recipient:
        return Recipient(self.billing_contact.name, self.billing_contact.email)

    @property
    def total_ore(self) -> int:
        return self.net_ore + self.vat_ore


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceIssued(_BillingEmail):
    kind: ClassVar[EmailKind] = EmailKind.INVOICE
    calendar: ClassVar[CalendarIntent] = CalendarIntent.NONE
    due_date: date
    pdf: PdfDocument


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditNoteIssued(_BillingEmail):
    kind: ClassVar[EmailKind] = EmailKind.CREDIT_NOTE
    calendar: ClassVar[CalendarIntent] = CalendarIntent.NONE
    credited_invoice_number: str
    pdf: PdfDocument


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentReminder(_BillingEmail):
    """A rykker. `document_number` is the overdue invoice; amounts are what is still outstanding."""

    kind: ClassVar[EmailKind] = EmailKind.PAYMENT_REMINDER
    calendar: ClassVar[CalendarIntent] = CalendarIntent.NONE
    due_date: date
    new_due_date: date
    reminder_number: int = 1
    reminder_fee_ore: int = 0  # renteloven caps fees; the amount comes from billing, never decided here
    pdf: PdfDocument | None = None  # a copy of the invoice, if billing supplies one


ParticipantEmail = (
    RegistrationConfirmed
    | Waitlisted
    | PromotedFromWaitingList
    | BecameBinding
    | CancellationReceipt
    | SubstitutedOut
    | SubstitutedIn
    | CourseCancelled
    | CourseReminder
)
BillingEmail = InvoiceIssued | CreditNoteIssued | PaymentReminder
Email = ParticipantEmail | BillingEmail


def is_after_deadline(course: CourseSnapshot, moment: datetime) -> bool:
    """The binding rule as the emails phrase it: at or after the deadline a registration is binding."""
    return moment >= course.registration_deadline


def calendar_intent(email: Email) -> CalendarIntent:
    """The .ics a message carries. Someone leaving the waiting list never had the sessions in a calendar."""
    if isinstance(email, CancellationReceipt) and email.was_waitlisted:
        return CalendarIntent.NONE
    return email.calendar
