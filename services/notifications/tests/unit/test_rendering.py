"""Every email kind renders in Danish, completely, and escapes what participants typed."""

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import jinja2
import pytest
from komponent_notifications.adapters.rendering import EmailRenderer, build_environment
from komponent_notifications.domain.course import CourseSnapshot
from komponent_notifications.domain.emails import (
    CancellationReceipt,
    Email,
    EmailKind,
    PromotedFromWaitingList,
    RegistrationConfirmed,
)

renderer = EmailRenderer()
Emails = dict[EmailKind, Email]


@pytest.mark.parametrize("kind", list(EmailKind), ids=lambda k: k.value)
def test_every_kind_renders_completely_in_danish(kind: EmailKind, emails: Emails) -> None:
    email = emails[kind]
    rendered = renderer.render(email)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert part.strip()
        for syntax in ("{{", "}}", "{%", "%}", "{#"):
            assert syntax not in part
    assert "\n" not in rendered.subject
    assert f"Kære {email.recipient.name}" in rendered.text
    assert "Med venlig hilsen" in rendered.text
    assert '<html lang="da">' in rendered.html
    # The recipients' names and organisations are full of æøå; they must survive untouched.
    assert any(ch in rendered.text for ch in "æøåÆØÅ")
    assert "&amp;" not in rendered.text


def test_confirmation_before_deadline_explains_the_free_cancellation_window(emails: Emails) -> None:
    text = renderer.render(emails[EmailKind.REGISTRATION_CONFIRMED]).text
    assert "onsdag den 29. marts 2023 kl. 23:59" in text
    assert "uden omkostninger" in text
    assert "5.500,00 kr. ekskl. moms" in text
    assert "6.875,00 kr. inkl. 25 % moms" in text
    assert "Onsdag den 3. maj 2023 kl. 11:30–21:30" in text
    assert "Comwell Roskilde, Vestre Kirkevej 12, 4000 Roskilde" in text


def test_late_confirmation_and_late_promotion_say_binding(emails: Emails) -> None:
    confirmed = emails[EmailKind.REGISTRATION_CONFIRMED]
    assert isinstance(confirmed, RegistrationConfirmed)
    late = renderer.render(replace(confirmed, is_binding=True)).text
    assert "din tilmelding er derfor bindende" in late
    assert "uden omkostninger" not in late
    promoted = emails[EmailKind.PROMOTED_FROM_WAITING_LIST]
    assert isinstance(promoted, PromotedFromWaitingList)
    assert "bindende" in renderer.render(promoted).text
    assert "uden omkostninger" in renderer.render(replace(promoted, is_binding=False)).text


def test_waiting_list_email_states_the_position(emails: Emails) -> None:
    rendered = renderer.render(emails[EmailKind.WAITLISTED])
    assert "(3. plads)" in rendered.subject
    assert "ventelisten som nummer 3" in rendered.text
    assert "<strong>3</strong>" in rendered.html


def test_cancellation_receipt_free_versus_binding(emails: Emails) -> None:
    receipt = emails[EmailKind.CANCELLATION_RECEIPT]
    assert isinstance(receipt, CancellationReceipt)
    binding = renderer.render(receipt).text
    assert "faktureres derfor fuld pris: 5.500,00 kr. ekskl. moms" in binding
    free = renderer.render(replace(receipt, is_binding=False)).text
    assert "Afmeldingen er gratis, da den er modtaget inden tilmeldingsfristen." in free
    assert "fuld pris" not in free
    waitlist = renderer.render(replace(receipt, is_binding=False, was_waitlisted=True)).text
    assert "taget dig af ventelisten" in waitlist
    assert "kalenderfil" not in waitlist


def test_substitution_names_the_other_participant(emails: Emails) -> None:
    assert "overdraget til Bo Kjær" in renderer.render(emails[EmailKind.SUBSTITUTED_OUT]).text
    incoming = renderer.render(emails[EmailKind.SUBSTITUTED_IN])
    assert "Søren Ærø Østergård har overdraget sin plads til dig" in incoming.text
    assert "Kære Bo Kjær" in incoming.text


@pytest.mark.parametrize("kind", [EmailKind.INVOICE, EmailKind.CREDIT_NOTE, EmailKind.PAYMENT_REMINDER])
def test_billing_emails_show_ean_and_references_and_vat(kind: EmailKind, emails: Emails) -> None:
    rendered = renderer.render(emails[kind])
    for part in (rendered.text, rendered.html):
        assert "5798000000001" in part
        assert "REK-2023-117" in part
        assert "ÅBØ" in part
        assert "6.45.51.1-22" in part
        assert "5.500,00 kr." in part
        assert "1.375,00 kr." in part
        assert "6.875,00 kr." in part
    assert emails[kind].document_number in rendered.subject


def test_invoice_states_due_date_and_reminder_states_new_deadline_and_fee(emails: Emails) -> None:
    assert "Betalingsfrist: onsdag den 10. maj 2023" in renderer.render(emails[EmailKind.INVOICE]).text
    reminder = renderer.render(emails[EmailKind.PAYMENT_REMINDER]).text
    assert reminder.startswith("Kære Åse Bødker\n\n2. påmindelse:")
    assert "senest onsdag den 24. maj 2023" in reminder
    assert "Rykkergebyr: 100,00 kr.\nSamlet at betale: 6.975,00 kr." in reminder
    credit = renderer.render(emails[EmailKind.CREDIT_NOTE]).text
    assert "krediterer faktura nr. 2023-0117" in credit


def test_course_reminder_has_programme_venue_times_what_to_bring_and_contact(emails: Emails) -> None:
    text = renderer.render(emails[EmailKind.COURSE_REMINDER]).text
    assert "Dag 1: Onsdag den 3. maj 2023" in text
    assert "Dag 2: Torsdag den 4. maj 2023" in text
    assert "- 11:30 Fælles frokost" in text
    assert "Klap Kæphesten" in text
    assert "Torsdag den 4. maj 2023 kl. 08:30–14:00" in text
    assert "Comwell Roskilde, Vestre Kirkevej 12, 4000 Roskilde" in text
    assert "Bærbar computer og gode sko" in text
    assert "+45 33 70 35 00" in text
    assert "5.500,00" not in text  # a reminder is no place for the price


def test_user_supplied_text_is_escaped_in_html_but_verbatim_in_text(
    emails: Emails, make_course: Callable[..., CourseSnapshot]
) -> None:
    confirmed = emails[EmailKind.REGISTRATION_CONFIRMED]
    assert isinstance(confirmed, RegistrationConfirmed)
    hostile = replace(confirmed, course=make_course(title='Ledelse & <script>alert("x")</script>'))
    rendered = renderer.render(hostile)
    assert "<script>" not in rendered.html
    assert "Ledelse &amp; &lt;script&gt;" in rendered.html
    assert 'Ledelse & <script>alert("x")</script>' in rendered.text


def test_a_line_break_in_a_title_cannot_escape_the_subject_line(
    emails: Emails, make_course: Callable[..., CourseSnapshot]
) -> None:
    confirmed = emails[EmailKind.REGISTRATION_CONFIRMED]
    assert isinstance(confirmed, RegistrationConfirmed)
    sneaky = replace(confirmed, course=make_course(title="Kursus\r\nBcc: alle@example.com"))
    assert renderer.render(sneaky).subject == "Bekræftelse af tilmelding: Kursus Bcc: alle@example.com"


def test_a_template_asking_for_missing_data_fails_instead_of_rendering_blank() -> None:
    env = build_environment()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ email.no_such_field }}").render(email=object())


def test_confirmation_shows_who_is_invoiced_with_ean_and_references(emails: Emails) -> None:
    confirmed = emails[EmailKind.REGISTRATION_CONFIRMED]
    assert isinstance(confirmed, RegistrationConfirmed)
    rendered = renderer.render(confirmed)
    for part in (rendered.text, rendered.html):
        assert "Fakturaen sendes til Ærø Kommune, Økonomiafdelingen med disse oplysninger:" in part
        assert "EAN-nummer: 5798000000001" in part
        assert "Personreference: ÅBØ" in part
    without = renderer.render(replace(confirmed, invoiced_to=None)).text
    assert "Fakturaen sendes til" not in without


def test_memoised_formats_answer_by_value_never_by_a_lookalike() -> None:
    filters = build_environment().filters
    utc, cph = ZoneInfo("UTC"), ZoneInfo("Europe/Copenhagen")
    late_evening_utc = datetime(2023, 5, 3, 23, 30, tzinfo=utc)  # already 4 May in Copenhagen
    assert filters["long_date"](date(2023, 5, 3)) == "onsdag den 3. maj 2023"
    assert filters["long_date"](late_evening_utc) == "torsdag den 4. maj 2023"
    assert filters["long_date"](date(2023, 5, 3)) == "onsdag den 3. maj 2023"  # cached, not mixed up
    # The same instant in another zone reads the same (Copenhagen wall-clock time either way).
    same_instant = late_evening_utc.astimezone(cph)
    assert filters["time_span"](late_evening_utc, late_evening_utc + timedelta(hours=1)) == (
        filters["time_span"](same_instant, same_instant + timedelta(hours=1))
    )
    assert filters["clock"](late_evening_utc) == "01:30"
    assert filters["kroner"](550_000) == "5.500,00 kr." and filters["kroner"](-1) == "-0,01 kr."
    with pytest.raises(ValueError):
        filters["clock"](datetime(2023, 5, 3, 9, 0))  # naive: refused every time, never cached
    with pytest.raises(ValueError):
        filters["clock"](datetime(2023, 5, 3, 9, 0))
