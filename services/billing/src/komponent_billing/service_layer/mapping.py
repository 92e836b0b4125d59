"""Translating the contracts' event values into billing's domain values."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from komponent_contracts.events import Buyer, CourseSnapshot

from ..domain.danish_format import format_period
from ..domain.documents import DeliveryPeriod, InvoiceLine
from ..domain.money import DANISH_STANDARD_VAT
from ..domain.parties import BuyerSnapshot, PostalAddress
from .ports import DocumentRejected

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def buyer_snapshot(buyer: Buyer) -> BuyerSnapshot:
    """The contract has no separate billing-contact name; the person reference approves the invoice, so
    it names the contact too."""
    return BuyerSnapshot(
        municipality_name=buyer.municipality_name,
        department=buyer.department,
        ean=buyer.ean,
        address=PostalAddress(
            buyer.address.street,
            buyer.address.building_number,
            buyer.address.postcode,
            buyer.address.city,
            buyer.address.country_code,
        ),
        person_reference=buyer.person_reference,
        order_number=buyer.order_number,
        billing_contact_name=buyer.person_reference,
        billing_contact_email=str(buyer.billing_email),
        account_string=buyer.account_string or None,
        cvr=buyer.cvr,
    )


def course_period(course: CourseSnapshot) -> DeliveryPeriod:
    """Course dates as Copenhagen calendar days: the delivery date §58 nr. 6 asks for."""
    days = [s.starts_at.astimezone(COPENHAGEN).date() for s in course.sessions]
    days += [s.ends_at.astimezone(COPENHAGEN).date() for s in course.sessions]
    return DeliveryPeriod(min(days), max(days))


def _danish_list(items: tuple[str, ...]) -> str:
    words = [i.strip().lower() for i in items if i.strip()]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} og {words[-1]}"


def course_line(course: CourseSnapshot, participant_name: str) -> InvoiceLine:
    if course.vat_rate_percent != 25:
        # Only standard-rated (S 25 %) courses are sold; anything else needs a renderer decision first.
        raise DocumentRejected(f"course {course.course_id}: VAT {course.vat_rate_percent} % is not supported")
    includes = _danish_list(course.price_includes)
    period = course_period(course)
    return InvoiceLine(
        description=f"Kursusplads inkl. {includes}" if includes else "Kursusplads",
        item_name=f"{course.title}, {format_period(period.start, period.end)}",
        unit_price_oere=course.price_excl_vat_ore,
        participant_name=participant_name,
        vat=DANISH_STANDARD_VAT,
    )


def course_note(course: CourseSnapshot) -> str:
    period = course_period(course)
    return f"Kursus: {course.title}, {format_period(period.start, period.end)}, {course.venue.name}."
