"""One realistic example per event type, built from the seed course. Committed as JSON next to the schemas
so other systems can see a valid payload, and used by tests across the platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from komponent_contracts.events import (
    Buyer,
    ContactPerson,
    CourseCancelled,
    CoursePublished,
    CourseReminderDue,
    CourseSeatsChanged,
    CourseSession,
    CourseSnapshot,
    CourseUpdated,
    CreditNoteIssued,
    DeadlinePassed,
    EmailFailed,
    EmailSent,
    Event,
    FormerParticipantDataErased,
    HandedOver,
    InvoiceDue,
    InvoiceIssued,
    Participant,
    ParticipantDataErased,
    ParticipantSubstituted,
    PaymentRegistered,
    PaymentReminderDue,
    PostalAddress,
    ProgrammeDay,
    ProgrammeItem,
    RegistrationBecameBinding,
    RegistrationCancellationRequested,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
    RegistrationReceived,
    RegistrationRejected,
    RegistrationRequestRefused,
    RegistrationWaitlisted,
    SubstitutionRequested,
    Venue,
)

CPH = ZoneInfo("Europe/Copenhagen")
COURSE_ID = UUID("5b1f3c1e-4a57-4d0e-9a43-0c2b8f3d2a10")
REGISTRATION_ID = UUID("0d7c2a0e-7a55-4a2f-9d1b-6f4e1c9b3a21")
NOW = datetime(2023, 3, 1, 9, 15, tzinfo=UTC)


def participant() -> Participant:
    return Participant(
        name="Søren Ærø Østergård", email="soeren@roskilde.dk", job_title="Udviklingskonsulent"
    )


def buyer() -> Buyer:
    return Buyer(
        municipality_name="Roskilde Kommune",
        department="Politisk sekretariat",
        ean="5798000012349",
        cvr="29189404",
        address=PostalAddress(street="Rådhusbuen", building_number="1", postcode="4000", city="Roskilde"),
        person_reference="Mette Hansen",
        order_number="PO-2023-0042",
        account_string="1234-5678",
        billing_email="faktura@roskilde.dk",
    )


def course() -> CourseSnapshot:
    return CourseSnapshot(
        course_id=COURSE_ID,
        title="Vildskab og innovation i politikudvikling",
        status="published",
        sessions=(
            CourseSession(
                starts_at=datetime(2023, 5, 3, 11, 30, tzinfo=CPH),
                ends_at=datetime(2023, 5, 3, 21, 0, tzinfo=CPH),
            ),
            CourseSession(
                starts_at=datetime(2023, 5, 4, 8, 30, tzinfo=CPH),
                ends_at=datetime(2023, 5, 4, 14, 0, tzinfo=CPH),
            ),
        ),
        venue=Venue(name="Comwell Roskilde", street="Vestre Kirkevej 12", postcode="4000", city="Roskilde"),
        price_excl_vat_ore=550_000,
        vat_rate_percent=25,
        price_includes=("Undervisning", "Materialer", "Forplejning"),
        capacity=30,
        registration_deadline=datetime(2023, 4, 5, 23, 59, tzinfo=CPH),
        invoice_lead_days=28,
        reminder_lead_days=7,
        contacts=(
            ContactPerson(name="Louise Angelo", role="Chefkonsulent", email="loua@komponent.dk"),
            ContactPerson(name="Aida Hadzimahovic Buzdalek", role="Koordinator", email="ah@komponent.dk"),
        ),
        programme=(
            ProgrammeDay(day_number=1, items=(ProgrammeItem(title="Fælles frokost"),)),
            ProgrammeDay(day_number=2, items=(ProgrammeItem(title="Frokost og tak for i dag"),)),
        ),
    )


INVOICE_ID = UUID("9a3e0b7c-1f2d-4c5e-8b6a-7d8e9f0a1b2c")
COLLEAGUE = Participant(name="Åse Ødegård", email="aase@roskilde.dk", job_title="Chefkonsulent")


def invoice_issued() -> InvoiceIssued:
    return InvoiceIssued(
        document_id=INVOICE_ID,
        document_number="F-2023-00001",
        course_id=COURSE_ID,
        registration_ids=(REGISTRATION_ID,),
        issued_at=NOW,
        issue_date="2023-04-05",
        due_date="2023-05-05",
        buyer_name="Roskilde Kommune",
        buyer_ean="5798000012349",
        buyer_reference="Mette Hansen",
        order_number="PO-2023-0042",
        billing_email="faktura@roskilde.dk",
        total_excl_vat_ore=550_000,
        vat_ore=137_500,
        total_incl_vat_ore=687_500,
        pdf_url="/documents/9a3e0b7c-1f2d-4c5e-8b6a-7d8e9f0a1b2c/pdf",
    )


def open_course(course_id: UUID, capacity: int, now: datetime) -> CourseSnapshot:
    """The example course open for registration at `now`: one 7-hour day in 60 days, deadline in 30 (for
    tests and benchmarks that need a course people can still register for)."""
    return course().model_copy(
        update={
            "course_id": course_id,
            "capacity": capacity,
            "sessions": (
                CourseSession(starts_at=now + timedelta(days=60), ends_at=now + timedelta(days=60, hours=7)),
            ),
            "registration_deadline": now + timedelta(days=30),
        }
    )


def all_examples() -> list[Event]:
    starts = course().starts_at
    outcome = {"registration_id": REGISTRATION_ID, "course_id": COURSE_ID, "occurred_at": NOW}
    return [
        RegistrationReceived(
            registration_id=REGISTRATION_ID,
            course_id=COURSE_ID,
            received_at=NOW,
            participant=participant(),
            buyer=buyer(),
            terms_version="2023-01",
        ),
        RegistrationConfirmed(
            registration_id=REGISTRATION_ID,
            course_id=COURSE_ID,
            occurred_at=NOW,
            participant=participant(),
            buyer=buyer(),
            binding=False,
        ),
        RegistrationWaitlisted(
            registration_id=REGISTRATION_ID,
            course_id=COURSE_ID,
            occurred_at=NOW,
            participant=participant(),
            position=3,
        ),
        RegistrationRejected(
            registration_id=REGISTRATION_ID,
            course_id=COURSE_ID,
            occurred_at=NOW,
            reason="course_cancelled",
            detail="the course was cancelled",
        ),
        RegistrationRequestRefused(
            **outcome,
            request="registration",
            reason="already_registered",
            existing_registration_id=UUID("7f0e1d2c-3b4a-4958-8677-a5b4c3d2e1f0"),
        ),
        CoursePublished(course_id=COURSE_ID, course=course(), occurred_at=NOW),
        DeadlinePassed(
            course_id=COURSE_ID,
            due_at=course().registration_deadline,
            fired_at=course().registration_deadline + timedelta(seconds=2),
            lateness_seconds=2.0,
        ),
        InvoiceDue(
            course_id=COURSE_ID,
            due_at=starts - timedelta(days=28),
            fired_at=starts - timedelta(days=28),
            lateness_seconds=0.0,
            course_starts_at=starts,
        ),
        CourseReminderDue(
            course_id=COURSE_ID,
            due_at=starts - timedelta(days=7),
            fired_at=starts - timedelta(days=7),
            lateness_seconds=0.0,
            course_starts_at=starts,
        ),
        CourseUpdated(course_id=COURSE_ID, course=course(), changed=("capacity",), occurred_at=NOW),
        CourseCancelled(course_id=COURSE_ID, reason="For få tilmeldte", occurred_at=NOW),
        CourseSeatsChanged(
            course_id=COURSE_ID,
            capacity=30,
            seats_taken=12,
            waiting_list_length=0,
            version=12,
            occurred_at=NOW,
        ),
        RegistrationCancellationRequested(
            registration_id=REGISTRATION_ID, course_id=COURSE_ID, requested_at=NOW
        ),
        SubstitutionRequested(
            registration_id=REGISTRATION_ID, course_id=COURSE_ID, requested_at=NOW, new_participant=COLLEAGUE
        ),
        RegistrationPromoted(**outcome, participant=participant(), buyer=buyer(), binding=True),
        RegistrationBecameBinding(**outcome),
        RegistrationCancelled(**outcome, participant=participant(), binding=False),
        ParticipantSubstituted(
            **outcome,
            previous_participant=participant(),
            new_participant=COLLEAGUE,
            previous_buyer=buyer(),
            new_buyer=buyer(),
            binding=True,
        ),
        ParticipantDataErased(course_id=COURSE_ID, registration_ids=[REGISTRATION_ID], erased_at=NOW),
        FormerParticipantDataErased(
            course_id=COURSE_ID,
            handed_over=[
                HandedOver(
                    registration_id=REGISTRATION_ID,
                    substitution_event_id=UUID("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"),
                )
            ],
            erased_at=NOW,
        ),
        invoice_issued(),
        CreditNoteIssued(
            **{**invoice_issued().model_dump(), "document_number": "K-2023-00001"},
            credited_document_number="F-2023-00001",
            reason="Gratis afmelding før fristen",
        ),
        PaymentRegistered(
            payment_id=UUID("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"),
            course_id=COURSE_ID,
            document_number="F-2023-00001",
            amount_ore=687_500,
            paid_on="2023-04-20",
            registered_at=NOW,
        ),
        PaymentReminderDue(
            course_id=COURSE_ID,
            document_id=INVOICE_ID,
            document_number="F-2023-00001",
            reminder_number=1,
            billing_email="faktura@roskilde.dk",
            buyer_name="Roskilde Kommune",
            outstanding_ore=687_500,
            original_due_date="2023-05-05",
            occurred_at=NOW,
        ),
        EmailSent(
            email_id=UUID("6e7f8091-a2b3-4c4d-9e5f-60718293a4b5"),
            course_id=COURSE_ID,
            kind="registration_confirmed",
            caused_by_event_id=UUID("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"),
            occurred_at=NOW,
            smtp_reply="250 2.0.0 Ok: queued",
        ),
        EmailFailed(
            email_id=UUID("6e7f8091-a2b3-4c4d-9e5f-60718293a4b6"),
            course_id=COURSE_ID,
            kind="invoice",
            caused_by_event_id=UUID("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3e"),
            occurred_at=NOW,
            smtp_reply="550 5.1.1 mailbox unavailable",
            attempts=1,
        ),
    ]
