"""Shared fixtures: the seed course (5.500 kr. excl. moms, 3.-4. maj 2023, Comwell Roskilde) billed to a
municipality, and the official e-invoice validator."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import date

import pytest
from komponent_billing.adapters.einvoice_rules import FETCH_SCRIPT, EInvoiceRules, RulesNotInstalled
from komponent_billing.adapters.einvoice_validation import EInvoiceValidator
from komponent_billing.domain.documents import (
    CreditNote,
    DeliveryPeriod,
    Invoice,
    InvoiceLine,
    full_credit_note,
)
from komponent_billing.domain.parties import KOMPONENT, BuyerSnapshot, PostalAddress

SEED_COURSE_TITLE = "Nye typer af udfordringer kræver nye typer af løsninger"
SEED_PRICE_OERE = 550_000
SEED_DATES = DeliveryPeriod(date(2023, 5, 3), date(2023, 5, 4))


def build_buyer(**overrides: object) -> BuyerSnapshot:
    values: dict[str, object] = {
        "municipality_name": "Eksempel Kommune",
        "department": "Jobcenter",
        "ean": "5798000123458",
        "address": PostalAddress("Rådhuspladsen", "1", "9999", "Eksempelby"),
        "person_reference": "Anne Jensen",
        "order_number": "PO-778812",
        "account_string": "4.22.05.01-0012",
        "cvr": "29123454",
        "billing_contact_name": "Anne Jensen",
        "billing_contact_email": "anje@eksempel.kommune.example",
    }
    values.update(overrides)
    return BuyerSnapshot(**values)  # type: ignore[arg-type]


def build_line(participant: str = "Mette Æbelø Sørensen", price_oere: int = SEED_PRICE_OERE) -> InvoiceLine:
    return InvoiceLine(
        description="Kursusplads inkl. undervisning, materialer og forplejning – Comwell Roskilde",
        item_name=f"{SEED_COURSE_TITLE}, 3.-4. maj 2023",
        unit_price_oere=price_oere,
        participant_name=participant,
        seller_item_id="KURSUS-2023-05-03",
    )


def build_invoice(
    *lines: InvoiceLine, number: str = "2023-000123", buyer: BuyerSnapshot | None = None, **kw: object
) -> Invoice:
    return Invoice(
        number=number,
        issue_date=date(2023, 4, 5),  # T-28 days before the course
        seller=KOMPONENT,
        buyer=buyer or build_buyer(),
        lines=lines or (build_line(),),
        delivery=SEED_DATES,
        registration_id="reg-1",
        course_id="course-seed",
        note=f"Kursus: {SEED_COURSE_TITLE}, 3.-4. maj 2023.",
        **kw,  # type: ignore[arg-type]
    )


# Factories as fixtures: pytest's importlib mode does not let test modules import conftest.
@pytest.fixture
def make_buyer() -> Callable[..., BuyerSnapshot]:
    return build_buyer


@pytest.fixture
def make_line() -> Callable[..., InvoiceLine]:
    return build_line


@pytest.fixture
def make_invoice() -> Callable[..., Invoice]:
    return build_invoice


@pytest.fixture
def seed_invoice() -> Invoice:
    return build_invoice()


@pytest.fixture
def seed_credit_note(seed_invoice: Invoice) -> CreditNote:
    return full_credit_note(
        seed_invoice, number="KN-2023-000001", issue_date=date(2023, 4, 12), reason="Kurset er aflyst"
    )


@pytest.fixture(scope="session")
def einvoice_rules() -> EInvoiceRules:
    """The official artefacts. Fetched on demand; a test needing them FAILS (never skips) without them."""
    try:
        return EInvoiceRules.load()
    except RulesNotInstalled:
        if os.environ.get("EINVOICE_RULES_NO_FETCH") != "1":
            subprocess.run(["bash", str(FETCH_SCRIPT)], check=False)
    try:
        return EInvoiceRules.load()
    except RulesNotInstalled as error:
        pytest.fail(f"official e-invoice rules are required for this test and could not be fetched: {error}")


@pytest.fixture(scope="session")
def validator(einvoice_rules: EInvoiceRules) -> EInvoiceValidator:
    return EInvoiceValidator(einvoice_rules)
