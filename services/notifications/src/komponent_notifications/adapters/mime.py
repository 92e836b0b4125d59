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

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.charset import BASE64, Charset
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr

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

# Built with the classic `email.mime` classes, not `EmailMessage` + `policy.default`: the modern API
# re-parses every header through the header registry, which made composing cost more CPU than sending
# (≈7 ms per message against a fraction of that), and the notifier must keep up with raw SMTP.
# Headers are encoded explicitly instead (RFC 2047 words for Danish names and subjects).
# Bodies in base64: the encoder is C (binascii), where quoted-printable is a per-character Python loop
# that cost more than the SMTP transaction; both keep lines under the 998-octet limit.
# Encoded words in base64 too ("=?utf-8?b?…?="): the quoted-printable header encoder measures every split
# candidate character by character and was the single hottest spot when composing.
_UTF8_B64 = Charset("utf-8")
_UTF8_B64.header_encoding = BASE64
_UTF8_B64.body_encoding = BASE64
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class MailIdentity:
    from_address: str
    from_name: str
    message_id_domain: str
    billing_reply_to: str = ""
    # Builds the unsubscribe URL for one send (the wiring signs a token into it). None: no header at all.
    unsubscribe_url: Callable[[SendLedgerKey], str] | None = None


def _address(name: str, email: str) -> str:
    # One line whatever the name contains: a display name must never be able to start a new header.
    return formataddr((_WHITESPACE.sub(" ", name).strip(), email), charset=_UTF8_B64)


def _text_part(content: str, subtype: str, charset: Charset = _UTF8_B64) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(content, charset=charset)
    return part


class MimeComposer:
    def __init__(self, identity: MailIdentity, renderer: EmailRenderer) -> None:
        self._identity = identity
        self._renderer = renderer

    def compose(self, email: Email, *, now: datetime) -> Message:
        """Build the message; `now` comes from the injectable clock and becomes Date and DTSTAMP."""
        key = SendLedgerKey.for_email(email)
        rendered = self._renderer.render(email)

        body = MIMEMultipart("alternative")
        body.attach(_text_part(rendered.text, "plain"))
        body.attach(_text_part(rendered.html, "html"))
        attachments = self._calendar(email, now) + self._pdf(email)
        if attachments:
            message: Message = MIMEMultipart("mixed")
            message.attach(body)
            for attachment in attachments:
                message.attach(attachment)
        else:
            message = body

        message["From"] = _address(self._identity.from_name, self._identity.from_address)
        message["To"] = _address(email.recipient.name, email.recipient.email)
        message["Reply-To"] = self._reply_to(email)
        message["Subject"] = Header(rendered.subject, _UTF8_B64).encode()
        message["Date"] = format_datetime(now)
        message["Message-ID"] = key.message_id(self._identity.message_id_domain)
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "OOF, AutoReply"
        # For the email log and support; ids only, no personal data.
        message["X-Komponent-Email-Kind"] = email.kind.value
        message["X-Komponent-Event-Id"] = str(email.event_id)
        self._add_unsubscribe(message, email, key)
        return message

    def _reply_to(self, email: Email) -> str:
        if (
            isinstance(email, InvoiceIssued | CreditNoteIssued | PaymentReminder)
            and self._identity.billing_reply_to
        ):
            return _address(f"{self._identity.from_name} Økonomi", self._identity.billing_reply_to)
        contact = email.course.contact
        return _address(contact.name, contact.email)

    def _add_unsubscribe(self, message: Message, email: Email, key: SendLedgerKey) -> None:
        if self._identity.unsubscribe_url is None or not allows_unsubscribe(email.kind):
            return
        url = self._identity.unsubscribe_url(key)
        message["List-Unsubscribe"] = f"<{url}>"
        if url.startswith("https://"):
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    def _calendar(self, email: Email, now: datetime) -> list[Message]:
        intent = calendar_intent(email)
        if intent is CalendarIntent.NONE:
            return []
        ics = course_calendar(
            email.course, intent, uid_domain=self._identity.message_id_domain, stamped_at=now
        )
        cancelling = intent is CalendarIntent.CANCEL
        part = _text_part(ics.decode("utf-8"), "calendar", _UTF8_B64)
        part.set_param("method", "CANCEL" if cancelling else "PUBLISH")
        filename = "aflysning.ics" if cancelling else "kursus.ics"
        part.add_header("Content-Disposition", "attachment", filename=filename)
        return [part]

    def _pdf(self, email: Email) -> list[Message]:
        if not isinstance(email, InvoiceIssued | CreditNoteIssued | PaymentReminder) or email.pdf is None:
            return []
        part = MIMEApplication(email.pdf.content, "pdf")
        # RFC 2231 encoding keeps "Kreditnota K-…pdf" and Danish letters intact in the filename.
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", email.pdf.filename))
        return [part]
