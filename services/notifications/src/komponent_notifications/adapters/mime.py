"""Turns a domain email into an RFC 5322 message ready for SMTP.

Structure: multipart/alternative (text/plain first, then text/html: clients show the last part they
understand) wrapped in multipart/mixed when there are attachments (.ics, PDF).

Header decisions:
- Message-ID derives from the send-ledger key, so a resend after a crash is recognisably the same message.
- Reply-To is the course's contact person: participants answer a human, never a no-reply box. Billing
  emails use the finance mailbox when one is configured, because questions about an invoice go there.
- List-Unsubscribe (+ RFC 8058 one-click) only on optional courtesy emails (course reminder, became binding)
  and only when an unsubscribe URL builder is configured. Transactional mail (confirmations, receipts,
  cancellations, invoices, reminders to pay) carries none: the recipient cannot opt out of them, and a
  header that promises otherwise would be a lie that large mailbox providers also do not ask for.
- Auto-Submitted / X-Auto-Response-Suppress stop out-of-office replies from bouncing around (RFC 3834).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from ..domain.emails import (
    CalendarIntent,
    CreditNoteIssued,
    Email,
    InvoiceIssued,
    PaymentReminder,
    calendar_intent,
)
from ..domain.ledger import SendLedgerKey
from ..domain.policy import allows_unsubscribe
from .calendar_file import course_calendar
from .rendering import EmailRenderer


@dataclass(frozen=True, slots=True)
class MailIdentity:
    from_address: str
    from_name: str
    message_id_domain: str
    billing_reply_to: str = ""
    # Builds the unsubscribe URL for one send (the wiring signs a token into it). None: no header at all.
    unsubscribe_url: Callable[[SendLedgerKey], str] | None = None


def _address(name: str, email: str) -> Address:
    local_part, _, domain = email.partition("@")
    return Address(display_name=name, username=local_part, domain=domain)


class MimeComposer:
    def __init__(self, identity: MailIdentity, renderer: EmailRenderer) -> None:
        self._identity = identity
        self._renderer = renderer

    def compose(self, email: Email, *, now: datetime) -> EmailMessage:
        """Build the message; `now` comes from the injectable clock and becomes Date and DTSTAMP."""
        key = SendLedgerKey.for_email(email)
        rendered = self._renderer.render(email)

        message = EmailMessage()
        message["From"] = _address(self._identity.from_name, self._identity.from_address)
        message["To"] = _address(email.recipient.name, email.recipient.email)
        message["Reply-To"] = self._reply_to(email)
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = key.message_id(self._identity.message_id_domain)
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "OOF, AutoReply"
        # For the email log and support; ids only, no personal data.
        message["X-Komponent-Email-Kind"] = email.kind.value
        message["X-Komponent-Event-Id"] = str(email.event_id)
        self._add_unsubscribe(message, email, key)

        message.set_content(rendered.text, subtype="plain", charset="utf-8")
        message.add_alternative(rendered.html, subtype="html", charset="utf-8")
        self._attach_calendar(message, email, now)
        self._attach_pdf(message, email)
        return message

    def _reply_to(self, email: Email) -> Address:
        if (
            isinstance(email, InvoiceIssued | CreditNoteIssued | PaymentReminder)
            and self._identity.billing_reply_to
        ):
            return _address(f"{self._identity.from_name} Økonomi", self._identity.billing_reply_to)
        contact = email.course.contact
        return _address(contact.name, contact.email)

    def _add_unsubscribe(self, message: EmailMessage, email: Email, key: SendLedgerKey) -> None:
        if self._identity.unsubscribe_url is None or not allows_unsubscribe(email.kind):
            return
        url = self._identity.unsubscribe_url(key)
        message["List-Unsubscribe"] = f"<{url}>"
        if url.startswith("https://"):
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    def _attach_calendar(self, message: EmailMessage, email: Email, now: datetime) -> None:
        intent = calendar_intent(email)
        if intent is CalendarIntent.NONE:
            return
        ics = course_calendar(
            email.course, intent, uid_domain=self._identity.message_id_domain, stamped_at=now
        )
        method = "CANCEL" if intent is CalendarIntent.CANCEL else "PUBLISH"
        message.add_attachment(
            ics,
            maintype="text",
            subtype="calendar",
            filename="aflysning.ics" if intent is CalendarIntent.CANCEL else "kursus.ics",
            params={"method": method, "charset": "utf-8"},
        )

    def _attach_pdf(self, message: EmailMessage, email: Email) -> None:
        if not isinstance(email, InvoiceIssued | CreditNoteIssued | PaymentReminder) or email.pdf is None:
            return
        message.add_attachment(
            email.pdf.content, maintype="application", subtype="pdf", filename=email.pdf.filename
        )
