"""Turns a domain email into an RFC 5322 message ready for SMTP: the envelope and the wire bytes.

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
from . import rfc5322
from .calendar_file import course_calendar
from .rendering import EmailRenderer

# Written straight to bytes by `rfc5322` rather than built as an `email.mime` tree and flattened by
# `email.generator`: flattening cost more CPU than the whole SMTP transaction, and the notifier must keep
# up with raw SMTP. Bodies in base64 (binascii, C) and headers as RFC 2047 B-words: quoted-printable is a
# per-character Python loop in the standard library, and either keeps lines under the 998-octet limit.
_TEXT_PLAIN = 'Content-Type: text/plain; charset="utf-8"\r\n'
_TEXT_HTML = 'Content-Type: text/html; charset="utf-8"\r\n'
_FIXED_HEADERS = (
    rfc5322.header("MIME-Version", "1.0")
    + rfc5322.header("Auto-Submitted", "auto-generated")
    + rfc5322.header("X-Auto-Response-Suppress", "OOF, AutoReply")
)


@dataclass(frozen=True, slots=True)
class MailIdentity:
    from_address: str
    from_name: str
    message_id_domain: str
    billing_reply_to: str = ""
    # Builds the unsubscribe URL for one send (the wiring signs a token into it). None: no header at all.
    unsubscribe_url: Callable[[SendLedgerKey], str] | None = None


@dataclass(frozen=True, slots=True)
class ComposedEmail:
    """What SMTP needs: the envelope and the message as it goes over the wire (CRLF lines, 7-bit)."""

    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str


class MimeComposer:
    def __init__(self, identity: MailIdentity, renderer: EmailRenderer) -> None:
        self._identity = identity
        self._renderer = renderer
        self._from = rfc5322.mailbox("From", identity.from_name, identity.from_address)

    def compose(self, email: Email, *, now: datetime) -> ComposedEmail:
        """Build the message; `now` comes from the injectable clock and becomes Date and DTSTAMP."""
        key = SendLedgerKey.for_email(email)
        rendered = self._renderer.render(email)
        message_id = key.message_id(self._identity.message_id_domain)
        recipient = email.recipient

        content = rfc5322.multipart(
            "alternative",
            [
                rfc5322.base64_part(_TEXT_PLAIN, rendered.text.encode("utf-8")),
                rfc5322.base64_part(_TEXT_HTML, rendered.html.encode("utf-8")),
            ],
        )
        attachments = self._calendar(email, now) + self._pdf(email)
        if attachments:
            content = rfc5322.multipart("mixed", [content, *attachments])

        data = b"".join(
            [
                self._from,
                rfc5322.mailbox("To", recipient.name, recipient.email),
                self._reply_to(email),
                rfc5322.unstructured("Subject", rendered.subject),
                rfc5322.header("Date", format_datetime(now)),
                rfc5322.header("Message-ID", message_id),
                _FIXED_HEADERS,
                # For the email log and support; ids only, no personal data.
                rfc5322.header("X-Komponent-Email-Kind", email.kind.value),
                rfc5322.header("X-Komponent-Event-Id", str(email.event_id)),
                self._unsubscribe(email, key),
                content,  # starts with the Content-Type header and the blank line ending the header
            ]
        )
        return ComposedEmail(
            envelope_from=rfc5322.addr_spec(self._identity.from_address),
            recipients=(rfc5322.addr_spec(recipient.email),),
            data=data,
            message_id=message_id,
        )

    def _reply_to(self, email: Email) -> bytes:
        if (
            isinstance(email, InvoiceIssued | CreditNoteIssued | PaymentReminder)
            and self._identity.billing_reply_to
        ):
            name = f"{self._identity.from_name} Økonomi"
            return rfc5322.mailbox("Reply-To", name, self._identity.billing_reply_to)
        contact = email.course.contact
        return rfc5322.mailbox("Reply-To", contact.name, contact.email)

    def _unsubscribe(self, email: Email, key: SendLedgerKey) -> bytes:
        if self._identity.unsubscribe_url is None or not allows_unsubscribe(email.kind):
            return b""
        url = self._identity.unsubscribe_url(key)
        lines = rfc5322.header("List-Unsubscribe", f"<{url}>")
        if url.startswith("https://"):
            lines += rfc5322.header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        return lines

    def _calendar(self, email: Email, now: datetime) -> list[bytes]:
        intent = calendar_intent(email)
        if intent is CalendarIntent.NONE:
            return []
        ics = course_calendar(
            email.course, intent, uid_domain=self._identity.message_id_domain, stamped_at=now
        )
        cancelling = intent is CalendarIntent.CANCEL
        headers = (
            f'Content-Type: text/calendar; charset="utf-8"; method={"CANCEL" if cancelling else "PUBLISH"}\r\n'
            + rfc5322.attachment_disposition("aflysning.ics" if cancelling else "kursus.ics")
        )
        return [rfc5322.base64_part(headers, ics)]

    def _pdf(self, email: Email) -> list[bytes]:
        if not isinstance(email, InvoiceIssued | CreditNoteIssued | PaymentReminder) or email.pdf is None:
            return []
        # A plain quoted filename when it is ASCII, RFC 2231 when it carries Danish letters.
        headers = "Content-Type: application/pdf\r\n" + rfc5322.attachment_disposition(email.pdf.filename)
        return [rfc5322.base64_part(headers, email.pdf.content)]
