from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from komponent_notifications.domain.course import CourseSnapshot, Session
from komponent_notifications.domain.emails import (
    CalendarIntent,
    CancellationReceipt,
    Email,
    EmailKind,
    PdfDocument,
    calendar_intent,
    is_after_deadline,
)
from komponent_notifications.domain.ledger import SendLedgerKey
from komponent_notifications.domain.money import vat_amount_ore
from komponent_notifications.domain.policy import NotificationPolicy, allows_unsubscribe

CPH = ZoneInfo("Europe/Copenhagen")
MakeCourse = Callable[..., CourseSnapshot]


def test_seed_course_price_including_vat(course: CourseSnapshot) -> None:
    assert course.vat_ore == 137_500
    assert course.price_incl_vat_ore == 687_500


@pytest.mark.parametrize(("net", "vat"), [(2, 1), (-2, -1), (1, 0), (6, 2), (-6, -2), (550_000, 137_500)])
def test_vat_rounds_half_away_from_zero(net: int, vat: int) -> None:
    assert vat_amount_ore(net, 25) == vat


def test_course_refuses_naive_times_and_backwards_sessions(make_course: MakeCourse) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Session(datetime(2023, 5, 3, 11, 30), datetime(2023, 5, 3, 14, 0, tzinfo=CPH))
    with pytest.raises(ValueError, match="end after"):
        Session(datetime(2023, 5, 3, 14, 0, tzinfo=CPH), datetime(2023, 5, 3, 11, 30, tzinfo=CPH))
    with pytest.raises(ValueError, match="at least one session"):
        make_course(sessions=())


def test_course_start_and_end_come_from_sessions_in_time_order(
    course: CourseSnapshot, make_course: MakeCourse
) -> None:
    reversed_course = make_course(sessions=tuple(reversed(course.sessions)))
    assert reversed_course.starts_at == datetime(2023, 5, 3, 11, 30, tzinfo=CPH)
    assert reversed_course.ends_at == datetime(2023, 5, 4, 14, 0, tzinfo=CPH)


def test_deadline_is_binding_from_the_exact_minute(course: CourseSnapshot) -> None:
    assert not is_after_deadline(course, course.registration_deadline - timedelta(seconds=1))
    assert is_after_deadline(course, course.registration_deadline)


def test_ledger_key_ignores_case_and_whitespace_of_the_address() -> None:
    event = UUID(int=7)
    a = SendLedgerKey(event, " Soeren@AEROE.dk ", EmailKind.INVOICE)
    b = SendLedgerKey(event, "soeren@aeroe.dk", EmailKind.INVOICE)
    assert a == b
    assert a.message_id("komponent.dk") == b.message_id("komponent.dk")


def test_message_id_is_stable_and_distinct_per_kind_and_recipient() -> None:
    event = UUID(int=7)
    base = SendLedgerKey(event, "a@x.dk", EmailKind.SUBSTITUTED_OUT)
    assert base.message_id("komponent.dk") == SendLedgerKey(
        event, "a@x.dk", EmailKind.SUBSTITUTED_OUT
    ).message_id("komponent.dk")
    others = {
        SendLedgerKey(event, "b@x.dk", EmailKind.SUBSTITUTED_OUT).message_id("komponent.dk"),
        SendLedgerKey(event, "a@x.dk", EmailKind.SUBSTITUTED_IN).message_id("komponent.dk"),
        SendLedgerKey(UUID(int=8), "a@x.dk", EmailKind.SUBSTITUTED_OUT).message_id("komponent.dk"),
    }
    assert base.message_id("komponent.dk") not in others
    assert len(others) == 3
    assert base.message_id("komponent.dk").startswith("<") and base.message_id("komponent.dk").endswith(
        "@komponent.dk>"
    )


def test_ledger_key_needs_an_address() -> None:
    with pytest.raises(ValueError, match="email address"):
        SendLedgerKey(UUID(int=1), "nobody", EmailKind.WAITLISTED)


def test_every_email_knows_its_ledger_key(emails: dict[EmailKind, Email]) -> None:
    keys = {SendLedgerKey.for_email(e) for e in emails.values()}
    assert len(keys) == len(EmailKind)


def test_leaving_the_waiting_list_sends_no_calendar_cancellation(emails: dict[EmailKind, Email]) -> None:
    receipt = emails[EmailKind.CANCELLATION_RECEIPT]
    assert isinstance(receipt, CancellationReceipt)
    assert calendar_intent(receipt) is CalendarIntent.CANCEL
    assert calendar_intent(replace(receipt, was_waitlisted=True, is_binding=False)) is CalendarIntent.NONE


def test_only_courtesy_emails_are_optional_and_unsubscribable() -> None:
    policy = NotificationPolicy(send_became_binding=False)
    assert not policy.wants(EmailKind.BECAME_BINDING)
    assert policy.wants(EmailKind.COURSE_REMINDER)
    assert all(policy.wants(k) for k in EmailKind if k is not EmailKind.BECAME_BINDING)
    assert {k for k in EmailKind if allows_unsubscribe(k)} == {
        EmailKind.BECAME_BINDING,
        EmailKind.COURSE_REMINDER,
    }


def test_a_pdf_attachment_must_be_a_pdf() -> None:
    with pytest.raises(ValueError, match="not a PDF"):
        PdfDocument("Faktura.pdf", b"<html>")
