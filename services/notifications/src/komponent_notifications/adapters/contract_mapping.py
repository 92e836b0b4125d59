"""Anti-corruption layer: the platform's event payloads (komponent_contracts) → the domain's email data.

The domain was written in the words emails need (one contact person, a sentence about what the price
includes, programme days as dates); the contracts carry what the catalogue and registration know. The
translation lives here so neither side bends to the other.
"""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from komponent_contracts import events as ev

from ..domain.course import ContactPerson, CourseSnapshot, ProgrammeDay, ProgrammeItem, Session, Venue
from ..domain.recipients import BillingContact, BillingReferences, Participant

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def course_snapshot(
    course: ev.CourseSnapshot, *, revision: int, fallback_contact: ContactPerson
) -> CourseSnapshot:
    sessions = tuple(Session(s.starts_at, s.ends_at) for s in course.sessions)
    first_day = min(s.starts_at for s in course.sessions).astimezone(COPENHAGEN).date()
    session_days = sorted({s.starts_at.astimezone(COPENHAGEN).date() for s in course.sessions})
    return CourseSnapshot(
        course_id=course.course_id,
        title=course.title,
        sessions=sessions,
        venue=Venue(course.venue.name, course.venue.street, course.venue.postcode, course.venue.city),
        price_excl_vat_ore=course.price_excl_vat_ore,
        vat_rate_percent=course.vat_rate_percent,
        price_includes=_price_includes(course.price_includes),
        registration_deadline=course.registration_deadline,
        contact=_contact(course.contacts, fallback_contact),
        programme=tuple(_programme_day(d, session_days, first_day) for d in course.programme),
        what_to_bring=course.what_to_bring,
        revision=revision,
    )


def _price_includes(parts: tuple[str, ...]) -> str:
    if not parts:
        return ""
    words = [p[0].lower() + p[1:] for p in parts]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " og " + words[-1]
    return f"Prisen dækker {listed}."


def _contact(contacts: tuple[ev.ContactPerson, ...], fallback: ContactPerson) -> ContactPerson:
    # Reply-To must be a mailbox: the first contact person with an address answers the participants.
    for c in contacts:
        if c.email:
            return ContactPerson(c.name, str(c.email), c.phone, c.role)
    return fallback


def _programme_day(day: ev.ProgrammeDay, session_days: list[date], first_day: date) -> ProgrammeDay:
    n = day.day_number - 1
    on = session_days[n] if n < len(session_days) else first_day + timedelta(days=n)
    items = tuple(
        ProgrammeItem(
            i.title,
            i.description,
            i.starts_at.astimezone(COPENHAGEN).time().replace(tzinfo=None) if i.starts_at else None,
        )
        for i in day.items
    )
    return ProgrammeDay(on, items)


def participant(p: ev.Participant, *, registration_id: UUID, buyer: ev.Buyer | None = None) -> Participant:
    # The registration is the participant's identity within one course; there is no person id on events.
    return Participant(registration_id, p.name, str(p.email), buyer.municipality_name if buyer else "")


def billing_contact_of_buyer(buyer: ev.Buyer) -> BillingContact:
    organisation = buyer.municipality_name + (f", {buyer.department}" if buyer.department else "")
    return BillingContact(
        name=buyer.person_reference,
        email=str(buyer.billing_email),
        organisation=organisation,
        references=BillingReferences(
            ean=str(buyer.ean),
            order_number=buyer.order_number,
            person_reference=buyer.person_reference,
            account_string=buyer.account_string,
        ),
    )


def billing_contact_of_document(doc: ev.InvoiceIssued | ev.CreditNoteIssued) -> BillingContact:
    return BillingContact(
        name=doc.buyer_reference,
        email=str(doc.billing_email),
        organisation=doc.buyer_name,
        references=BillingReferences(
            ean=doc.buyer_ean, order_number=doc.order_number, person_reference=doc.buyer_reference
        ),
    )
