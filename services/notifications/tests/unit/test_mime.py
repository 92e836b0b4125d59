"""Composed messages parsed back with Python's email package: structure, headers and attachments."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import icalendar
import pytest
from komponent_notifications.adapters.mime import MailIdentity, MimeComposer
from komponent_notifications.adapters.rendering import EmailRenderer
from komponent_notifications.domain.course import CourseSnapshot, Session
from komponent_notifications.domain.emails import (
    CalendarIntent,
    CourseReminder,
    CreditNoteIssued,
    Email,
    EmailKind,
    InvoiceIssued,
    RegistrationConfirmed,
    calendar_intent,
)
from komponent_notifications.domain.ledger import SendLedgerKey
from pypdf import PdfReader

CPH = ZoneInfo("Europe/Copenhagen")
IDENTITY = MailIdentity(
    from_address="kurser@komponent.dk", from_name="Komponent", message_id_domain="komponent.dk"
)
Emails = dict[EmailKind, Email]

PDF_KINDS = {EmailKind.INVOICE, EmailKind.CREDIT_NOTE}


def compose(email: Email, now: datetime, identity: MailIdentity = IDENTITY) -> EmailMessage:
    """Compose, serialise to bytes as SMTP would, and parse back: tests see what a recipient sees."""
    wire = MimeComposer(identity, EmailRenderer()).compose(email, now=now).data
    parsed = message_from_bytes(wire, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def attachments(message: EmailMessage) -> dict[str, EmailMessage]:
    found: dict[str, EmailMessage] = {}
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        found[part.get_content_type()] = part
    return found


def calendar_of(message: EmailMessage) -> icalendar.Calendar:
    part = attachments(message)["text/calendar"]
    return icalendar.Calendar.from_ical(part.get_payload(decode=True))


def assert_opens_as_pdf(data: bytes, expected_text: str) -> None:
    """The attachment opens in a PDF reader (pypdf, strict) and shows the document it was made from."""
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) == 1
    assert expected_text in reader.pages[0].extract_text()
    assert_xref_is_sound(data)


def assert_xref_is_sound(data: bytes) -> None:
    """What any reader relies on: header, trailer, and an xref whose offsets hit the objects."""
    assert data.startswith(b"%PDF-1.")
    assert data.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    assert data[startxref : startxref + 4] == b"xref"
    table = re.match(rb"xref\s+0 (\d+)\s+((?:\d{10} \d{5} [nf]\s*)+)", data[startxref:])
    assert table is not None
    entries = re.findall(rb"(\d{10}) \d{5} ([nf])", table.group(2))
    assert len(entries) == int(table.group(1))
    for number, (offset, used) in enumerate(entries):
        if used == b"n":
            assert re.match(rb"%d 0 obj" % number, data[int(offset) :]), f"object {number} not at its offset"
    assert b"/Type /Catalog" in data and b"/Type /Page" in data


@pytest.mark.parametrize("kind", list(EmailKind), ids=lambda k: k.value)
def test_every_kind_is_a_well_formed_multipart_message(
    kind: EmailKind, emails: Emails, now: datetime
) -> None:
    email = emails[kind]
    message = compose(email, now)
    files = attachments(message)

    if files:
        assert message.get_content_type() == "multipart/mixed"
        alternative = message.get_payload()[0]
    else:
        alternative = message
    assert alternative.get_content_type() == "multipart/alternative"
    # Plain text first, HTML last: clients show the last alternative they can display.
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]

    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    for body in (text.get_content(), html.get_content()):
        assert email.recipient.name in body  # æøå intact after transfer encoding and back
        assert "{{" not in body and "{%" not in body

    expected: set[str] = set()
    if calendar_intent(email) is not CalendarIntent.NONE:
        expected.add("text/calendar")
    if kind in PDF_KINDS:
        expected.add("application/pdf")
    assert set(files) == expected


@pytest.mark.parametrize("kind", list(EmailKind), ids=lambda k: k.value)
def test_headers(kind: EmailKind, emails: Emails, now: datetime) -> None:
    email = emails[kind]
    message = compose(email, now)
    assert message["From"] == "Komponent <kurser@komponent.dk>"
    assert message["To"].addresses[0].addr_spec == email.recipient.email
    assert message["To"].addresses[0].display_name == email.recipient.name
    assert message["Reply-To"] == "Louise Angelo <loua@komponent.dk>"
    assert parsedate_to_datetime(message["Date"]) == now
    assert message["Message-ID"] == SendLedgerKey.for_email(email).message_id("komponent.dk")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Komponent-Email-Kind"] == kind.value
    assert "List-Unsubscribe" not in message  # no unsubscribe URL configured
    # Long subjects are folded right after "Subject:"; CPython's parser keeps that fold's space, mail clients drop it.
    assert message["Subject"].strip() == EmailRenderer().render(email).subject


def test_a_resend_carries_the_same_message_id(emails: Emails, now: datetime) -> None:
    email = emails[EmailKind.INVOICE]
    later = datetime(2023, 4, 11, 8, 0, tzinfo=CPH)
    assert compose(email, now)["Message-ID"] == compose(email, later)["Message-ID"]


def test_unsubscribe_header_only_on_optional_courtesy_emails(emails: Emails, now: datetime) -> None:
    identity = replace(
        IDENTITY, unsubscribe_url=lambda key: f"https://kurser.komponent.dk/afmeld/{key.message_uuid}"
    )
    for kind, email in emails.items():
        message = compose(email, now, identity)
        if kind in {EmailKind.COURSE_REMINDER, EmailKind.BECAME_BINDING}:
            key = SendLedgerKey.for_email(email)
            assert (
                message["List-Unsubscribe"].strip()
                == f"<https://kurser.komponent.dk/afmeld/{key.message_uuid}>"
            )
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        else:
            assert "List-Unsubscribe" not in message, kind


def test_billing_emails_reply_to_finance_when_configured(emails: Emails, now: datetime) -> None:
    identity = replace(IDENTITY, billing_reply_to="oekonomi@komponent.dk")
    assert compose(emails[EmailKind.INVOICE], now, identity)["Reply-To"].addresses[0].addr_spec == (
        "oekonomi@komponent.dk"
    )
    assert compose(emails[EmailKind.COURSE_REMINDER], now, identity)["Reply-To"].addresses[0].addr_spec == (
        "loua@komponent.dk"
    )


@pytest.mark.parametrize("kind", sorted(PDF_KINDS), ids=lambda k: k.value)
def test_pdf_attachment_arrives_byte_for_byte_and_opens(
    kind: EmailKind, emails: Emails, now: datetime
) -> None:
    email = emails[kind]
    assert isinstance(email, InvoiceIssued | CreditNoteIssued)
    part = attachments(compose(email, now))["application/pdf"]
    assert part.get_filename() == email.pdf.filename
    assert part.get_content_disposition() == "attachment"
    data = part.get_payload(decode=True)
    assert data == email.pdf.content
    assert_opens_as_pdf(data, email.document_number)


def test_calendar_has_one_event_per_session_at_the_right_times(emails: Emails, now: datetime) -> None:
    email = emails[EmailKind.REGISTRATION_CONFIRMED]
    message = compose(email, now)
    part = attachments(message)["text/calendar"]
    assert part.get_param("method") == "PUBLISH"
    assert part.get_filename() == "kursus.ics"
    cal = calendar_of(message)
    assert cal["METHOD"] == "PUBLISH"
    events = cal.walk("VEVENT")
    assert [(e.decoded("DTSTART"), e.decoded("DTEND")) for e in events] == [
        (datetime(2023, 5, 3, 11, 30, tzinfo=CPH), datetime(2023, 5, 3, 21, 30, tzinfo=CPH)),
        (datetime(2023, 5, 4, 8, 30, tzinfo=CPH), datetime(2023, 5, 4, 14, 0, tzinfo=CPH)),
    ]
    # 11:30 CEST is 09:30 UTC: compared as instants, not only as wall-clock.
    assert events[0].decoded("DTSTART").astimezone(UTC) == datetime(2023, 5, 3, 9, 30, tzinfo=UTC)
    assert [str(e["SUMMARY"]) for e in events] == [
        "Vildskab og innovation i politikudvikling (dag 1 af 2)",
        "Vildskab og innovation i politikudvikling (dag 2 af 2)",
    ]
    assert all(str(e["LOCATION"]) == "Comwell Roskilde, Vestre Kirkevej 12, 4000 Roskilde" for e in events)
    assert all(e["SEQUENCE"] == 3 and e["STATUS"] == "CONFIRMED" for e in events)
    assert all(str(e["ORGANIZER"]) == "mailto:loua@komponent.dk" for e in events)
    assert len({str(e["UID"]) for e in events}) == 2
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Copenhagen"]


def test_calendar_across_the_autumn_dst_change(
    emails: Emails, now: datetime, make_course: Callable[..., CourseSnapshot]
) -> None:
    # Denmark leaves summer time at 03:00 on Sunday 29 October 2023: the same 09:00 is an hour later in UTC.
    course = make_course(
        sessions=(
            Session(datetime(2023, 10, 28, 9, 0, tzinfo=CPH), datetime(2023, 10, 28, 16, 0, tzinfo=CPH)),
            Session(datetime(2023, 10, 29, 9, 0, tzinfo=CPH), datetime(2023, 10, 29, 16, 0, tzinfo=CPH)),
        )
    )
    confirmed = emails[EmailKind.REGISTRATION_CONFIRMED]
    assert isinstance(confirmed, RegistrationConfirmed)
    message = compose(replace(confirmed, course=course), now)
    raw = attachments(message)["text/calendar"].get_payload(decode=True).decode()
    assert "DTSTART;TZID=Europe/Copenhagen:20231028T090000" in raw
    assert "DTSTART;TZID=Europe/Copenhagen:20231029T090000" in raw
    starts = [e.decoded("DTSTART").astimezone(UTC) for e in calendar_of(message).walk("VEVENT")]
    assert starts == [datetime(2023, 10, 28, 7, 0, tzinfo=UTC), datetime(2023, 10, 29, 8, 0, tzinfo=UTC)]
    # The VTIMEZONE must describe both offsets, or Outlook would shift one of the days.
    vtimezone = calendar_of(message).walk("VTIMEZONE")[0]
    offsets = {sub["TZOFFSETTO"].to_ical() for sub in vtimezone.subcomponents}
    assert {"+0100", "+0200"} <= offsets


def test_cancellations_withdraw_the_same_calendar_entries(emails: Emails, now: datetime) -> None:
    published = calendar_of(compose(emails[EmailKind.REGISTRATION_CONFIRMED], now)).walk("VEVENT")
    for kind in (EmailKind.COURSE_CANCELLED, EmailKind.CANCELLATION_RECEIPT, EmailKind.SUBSTITUTED_OUT):
        message = compose(emails[kind], now)
        assert attachments(message)["text/calendar"].get_param("method") == "CANCEL"
        cal = calendar_of(message)
        assert cal["METHOD"] == "CANCEL"
        cancelled = cal.walk("VEVENT")
        assert [str(e["UID"]) for e in cancelled] == [str(e["UID"]) for e in published]
        assert all(e["STATUS"] == "CANCELLED" for e in cancelled)
        assert all(e["SEQUENCE"] > p["SEQUENCE"] for e, p in zip(cancelled, published, strict=True))


def test_reminder_calendar_is_stamped_in_utc(emails: Emails, now: datetime) -> None:
    reminder = emails[EmailKind.COURSE_REMINDER]
    assert isinstance(reminder, CourseReminder)
    raw = attachments(compose(reminder, now))["text/calendar"].get_payload(decode=True).decode()
    assert "DTSTAMP:20230410T071500Z" in raw
