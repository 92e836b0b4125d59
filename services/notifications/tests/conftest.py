"""Shared test data: the seed course (Comwell Roskilde, 3.–4. maj 2023) and one instance of every email kind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from fpdf import FPDF
from komponent_notifications.domain.course import (
    ContactPerson,
    CourseSnapshot,
    ProgrammeDay,
    ProgrammeItem,
    Session,
    Venue,
)
from komponent_notifications.domain.emails import (
    BecameBinding,
    CancellationReceipt,
    CourseCancelled,
    CourseReminder,
    CreditNoteIssued,
    Email,
    EmailKind,
    InvoiceIssued,
    PaymentReminder,
    PdfDocument,
    PromotedFromWaitingList,
    RegistrationConfirmed,
    SubstitutedIn,
    SubstitutedOut,
    Waitlisted,
)
from komponent_notifications.domain.recipients import BillingContact, BillingReferences, Participant

CPH = ZoneInfo("Europe/Copenhagen")
COURSE_ID = UUID("0b7d8e64-5f55-4b8e-9d1e-2a5b6c7d8e90")
REGISTRATION_ID = UUID("11111111-2222-4333-8444-555555555555")
NOW = datetime(2023, 4, 10, 9, 15, tzinfo=CPH)


def seed_course(**overrides: object) -> CourseSnapshot:
    fields: dict[str, object] = dict(
        course_id=COURSE_ID,
        title="Vildskab og innovation i politikudvikling",
        sessions=(
            Session(datetime(2023, 5, 3, 11, 30, tzinfo=CPH), datetime(2023, 5, 3, 21, 30, tzinfo=CPH)),
            Session(datetime(2023, 5, 4, 8, 30, tzinfo=CPH), datetime(2023, 5, 4, 14, 0, tzinfo=CPH)),
        ),
        venue=Venue("Comwell Roskilde", "Vestre Kirkevej 12", "4000", "Roskilde"),
        price_excl_vat_ore=550_000,
        vat_rate_percent=25,
        price_includes="Prisen dækker undervisning, materialer og forplejning.",
        registration_deadline=datetime(2023, 3, 29, 23, 59, tzinfo=CPH),
        contact=ContactPerson("Louise Angelo", "loua@komponent.dk", "+45 33 70 35 00", "Chefkonsulent"),
        programme=(
            ProgrammeDay(
                date(2023, 5, 3),
                (
                    ProgrammeItem("Fælles frokost", starts_at=time(11, 30)),
                    ProgrammeItem("Velkomst og introduktion", "Fokus på politikudvikling i dag."),
                    ProgrammeItem("Vildskab og innovation i politik", "Sammen med CO-PI."),
                    ProgrammeItem("Klap Kæphesten", "Spillet, der udforsker politiske ønsker."),
                ),
            ),
            ProgrammeDay(
                date(2023, 5, 4),
                (
                    ProgrammeItem("Mandat – spillet, der bringer innovation ind i politikudviklingen"),
                    ProgrammeItem("Frokost og tak for i dag", starts_at=time(13, 15)),
                ),
            ),
        ),
        what_to_bring="Bærbar computer og gode sko til walk and talk.",
        course_url="https://www.komponent.dk/kurser/vildskab",
        revision=3,
    )
    fields.update(overrides)
    return CourseSnapshot(**fields)  # type: ignore[arg-type]


def participant(name: str = "Søren Ærø Østergård", email: str = "soeren@aeroe.dk") -> Participant:
    return Participant(UUID("22222222-3333-4444-8555-666666666666"), name, email, "Ærø Kommune")


def billing_contact() -> BillingContact:
    return BillingContact(
        name="Åse Bødker",
        email="faktura@aeroe.dk",
        organisation="Ærø Kommune, Økonomiafdelingen",
        references=BillingReferences(
            ean="5798000000001",
            order_number="REK-2023-117",
            person_reference="ÅBØ",
            account_string="6.45.51.1-22",
        ),
    )


def make_pdf(title: str) -> bytes:
    """A small real PDF with Danish text, made the way billing makes its invoices (fpdf2)."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text=title)
    return bytes(pdf.output())


def event(n: int) -> UUID:
    return UUID(int=n)


def every_email() -> dict[EmailKind, Email]:
    course = seed_course()
    p = participant()
    common = dict(course=course, participant=p, registration_id=REGISTRATION_ID)
    billing = dict(
        course=course,
        billing_contact=billing_contact(),
        issue_date=date(2023, 4, 10),
        net_ore=550_000,
        vat_ore=137_500,
        participant_names=(p.name,),
    )
    emails: list[Email] = [
        RegistrationConfirmed(event_id=event(1), invoiced_to=billing_contact(), **common),  # type: ignore[arg-type]
        Waitlisted(event_id=event(2), position=3, **common),  # type: ignore[arg-type]
        PromotedFromWaitingList(event_id=event(3), is_binding=True, **common),  # type: ignore[arg-type]
        BecameBinding(event_id=event(4), **common),  # type: ignore[arg-type]
        CancellationReceipt(event_id=event(5), is_binding=True, **common),  # type: ignore[arg-type]
        SubstitutedOut(event_id=event(6), substitute_name="Bo Kjær", **common),  # type: ignore[arg-type]
        SubstitutedIn(
            event_id=event(7),
            course=course,
            participant=participant("Bo Kjær", "bo@aeroe.dk"),
            registration_id=REGISTRATION_ID,
            replaces_name=p.name,
            is_binding=True,
        ),
        CourseCancelled(event_id=event(8), reason="For få tilmeldte.", **common),  # type: ignore[arg-type]
        InvoiceIssued(
            event_id=event(9),
            document_number="2023-0117",
            due_date=date(2023, 5, 10),
            pdf=PdfDocument("Faktura 2023-0117.pdf", make_pdf("Faktura 2023-0117")),
            **billing,  # type: ignore[arg-type]
        ),
        CreditNoteIssued(
            event_id=event(10),
            document_number="K-2023-0004",
            credited_invoice_number="2023-0117",
            pdf=PdfDocument("Kreditnota K-2023-0004.pdf", make_pdf("Kreditnota K-2023-0004")),
            **billing,  # type: ignore[arg-type]
        ),
        PaymentReminder(
            event_id=event(11),
            document_number="2023-0117",
            due_date=date(2023, 5, 10),
            new_due_date=date(2023, 5, 24),
            reminder_number=2,
            reminder_fee_ore=10_000,
            **billing,  # type: ignore[arg-type]
        ),
        CourseReminder(event_id=event(12), **common),  # type: ignore[arg-type]
    ]
    by_kind = {e.kind: e for e in emails}
    assert set(by_kind) == set(EmailKind), "every kind needs an example"
    return by_kind


# Tests run with --import-mode=importlib, so they cannot import this module; they get its builders as fixtures.


@pytest.fixture
def course() -> CourseSnapshot:
    return seed_course()


@pytest.fixture
def make_course() -> Callable[..., CourseSnapshot]:
    return seed_course


@pytest.fixture
def emails() -> dict[EmailKind, Email]:
    return every_email()


@pytest.fixture
def now() -> datetime:
    return NOW
