"""Every platform event that causes email, from the contracts' own examples: planned (who gets which kind)
and then built, composed and parsed back, the way the sender does it at send time."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from komponent_contracts import events as ev
from komponent_contracts.examples import all_examples, course
from komponent_notifications.adapters import contract_mapping as mapping
from komponent_notifications.adapters.mime import MailIdentity, MimeComposer
from komponent_notifications.adapters.rendering import EmailRenderer
from komponent_notifications.domain.course import ContactPerson
from komponent_notifications.domain.emails import EmailKind, PdfDocument
from komponent_notifications.domain.policy import NotificationPolicy
from komponent_notifications.service_layer.building import build_email
from komponent_notifications.service_layer.planning import (
    PlannedEmail,
    RegistrationView,
    plan_billing_email,
    plan_course_reminder,
    plan_registration_outcome,
)

FALLBACK = ContactPerson("Komponent", "kurser@komponent.dk", "")
NOW = datetime(2023, 4, 1, 10, 0, tzinfo=UTC)
PDF = PdfDocument("Faktura F-2023-00001.pdf", b"%PDF-1.4\n% test\n%%EOF\n")


def example(cls: type[ev.Event]) -> ev.Event:
    return next(e for e in all_examples() if isinstance(e, cls))


def known() -> RegistrationView:
    confirmed = example(ev.RegistrationConfirmed)
    assert isinstance(confirmed, ev.RegistrationConfirmed)
    return RegistrationView(
        confirmed.registration_id, confirmed.course_id, confirmed.participant, confirmed.buyer, False
    )


DEFAULT_POLICY = NotificationPolicy()


def plan(event: ev.Event, policy: NotificationPolicy = DEFAULT_POLICY) -> list[PlannedEmail]:
    eid = uuid.uuid4()
    if isinstance(event, ev.CourseReminderDue):
        return plan_course_reminder(eid, event, [known()], policy)
    if isinstance(event, ev.InvoiceIssued | ev.CreditNoteIssued | ev.PaymentReminderDue):
        invoice = example(ev.InvoiceIssued) if isinstance(event, ev.PaymentReminderDue) else None
        assert invoice is None or isinstance(invoice, ev.InvoiceIssued)
        return plan_billing_email(eid, event, ["Søren Ærø Østergård"], invoice)
    return plan_registration_outcome(eid, event, known(), policy)


EXPECTED: list[tuple[type[ev.Event], list[EmailKind]]] = [
    (ev.RegistrationConfirmed, [EmailKind.REGISTRATION_CONFIRMED]),
    (ev.RegistrationWaitlisted, [EmailKind.WAITLISTED]),
    (ev.RegistrationPromoted, [EmailKind.PROMOTED_FROM_WAITING_LIST]),
    (ev.RegistrationBecameBinding, [EmailKind.BECAME_BINDING]),
    (ev.RegistrationCancelled, [EmailKind.CANCELLATION_RECEIPT]),
    (ev.ParticipantSubstituted, [EmailKind.SUBSTITUTED_OUT, EmailKind.SUBSTITUTED_IN]),
    (ev.CourseReminderDue, [EmailKind.COURSE_REMINDER]),
    (ev.InvoiceIssued, [EmailKind.INVOICE]),
    (ev.CreditNoteIssued, [EmailKind.CREDIT_NOTE]),
    (ev.PaymentReminderDue, [EmailKind.PAYMENT_REMINDER]),
    (ev.RegistrationRejected, []),
]


@pytest.mark.parametrize(("event_type", "kinds"), EXPECTED, ids=[t.__name__ for t, _ in EXPECTED])
def test_each_event_plans_its_emails_and_each_renders(
    event_type: type[ev.Event], kinds: list[EmailKind]
) -> None:
    planned = plan(example(event_type))
    assert [p.kind for p in planned] == kinds
    composer = MimeComposer(
        MailIdentity("kurser@komponent.dk", "Komponent", "mail.komponent.dk"), EmailRenderer()
    )
    snapshot = mapping.course_snapshot(course(), revision=2, fallback_contact=FALLBACK)
    for p in planned:
        # The ledger stores render data as JSON: go through a JSON round trip like the database does.
        data = json.loads(json.dumps(p.render_data))
        email = build_email(p.kind, p.event_id, data, snapshot, cancel_reason="For få tilmeldte", pdf=PDF)
        assert email.recipient.email.lower() == p.recipient
        message = message_from_bytes(composer.compose(email, now=NOW).data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        assert message["Message-ID"] == p.key.message_id("mail.komponent.dk")
        text = message.get_body(("plain",))
        assert text is not None
        body = text.get_content()
        assert "Vildskab og innovation i politikudvikling" in body or "F-2023-00001" in body
        assert "{{" not in body


def test_substitution_goes_to_both_participants() -> None:
    out, into = plan(example(ev.ParticipantSubstituted))
    assert (out.recipient, into.recipient) == ("soeren@roskilde.dk", "aase@roskilde.dk")


def test_cancellation_by_course_cancellation_is_the_course_cancelled_email() -> None:
    cancelled = example(ev.RegistrationCancelled)
    assert isinstance(cancelled, ev.RegistrationCancelled)
    by_course = cancelled.model_copy(update={"by_course_cancellation": True})
    assert [p.kind for p in plan(by_course)] == [EmailKind.COURSE_CANCELLED]


def test_optional_emails_follow_the_policy() -> None:
    off = NotificationPolicy(send_became_binding=False, send_course_reminder=False)
    assert plan(example(ev.RegistrationBecameBinding), off) == []
    assert plan(example(ev.CourseReminderDue), off) == []


def test_became_binding_without_a_known_registration_plans_nothing() -> None:
    assert (
        plan_registration_outcome(
            uuid.uuid4(), example(ev.RegistrationBecameBinding), None, NotificationPolicy()
        )
        == []
    )


def test_invoice_is_never_built_without_its_pdf() -> None:
    (p,) = plan(example(ev.InvoiceIssued))
    snapshot = mapping.course_snapshot(course(), revision=0, fallback_contact=FALLBACK)
    with pytest.raises(ValueError, match="PDF"):
        build_email(p.kind, p.event_id, p.render_data, snapshot, pdf=None)


def test_course_mapping_speaks_the_domains_words() -> None:
    snapshot = mapping.course_snapshot(course(), revision=4, fallback_contact=FALLBACK)
    assert snapshot.price_includes == "Prisen dækker undervisning, materialer og forplejning."
    assert snapshot.contact.email == "loua@komponent.dk"
    assert [d.day.isoformat() for d in snapshot.programme] == ["2023-05-03", "2023-05-04"]
    assert snapshot.revision == 4
    no_contacts = course().model_copy(update={"contacts": ()})
    assert mapping.course_snapshot(no_contacts, revision=0, fallback_contact=FALLBACK).contact == FALLBACK
