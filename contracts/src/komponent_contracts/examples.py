"""One realistic example per event type, built from the seed course. Committed as JSON next to the schemas
so other systems can see a valid payload, and used by tests across the platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from komponent_contracts.events import (
    Buyer,
    ContactPerson,
    CoursePublished,
    CourseSession,
    CourseSnapshot,
    DeadlinePassed,
    Event,
    InvoiceDue,
    Participant,
    PostalAddress,
    ProgrammeDay,
    ProgrammeItem,
    RegistrationConfirmed,
    RegistrationReceived,
    RegistrationRejected,
    RegistrationWaitlisted,
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
        price_includes="Undervisning, materialer og forplejning",
        capacity=30,
        registration_deadline=datetime(2023, 4, 5, 23, 59, tzinfo=CPH),
        invoice_lead_days=28,
        reminder_lead_days=7,
        contacts=(
            ContactPerson(name="Louise Angelo", role="Chefkonsulent", email="loua@komponent.dk"),
            ContactPerson(name="Aida Hadzimahovic Buzdalek", role="Koordinator", email="ahb@komponent.dk"),
        ),
        programme=(
            ProgrammeDay(day_number=1, items=(ProgrammeItem(title="Fælles frokost"),)),
            ProgrammeDay(day_number=2, items=(ProgrammeItem(title="Frokost og tak for i dag"),)),
        ),
    )


def all_examples() -> list[Event]:
    starts = course().starts_at
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
    ]
