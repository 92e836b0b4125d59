"""§58 document model, due date, credit-note references, immutability, numbering rules (§7.6 items 11,
12, 19; the concurrency items 9-10 need the database and belong to the wiring phase)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date

import pytest
from komponent_billing.adapters.document_snapshot import render_snapshot
from komponent_billing.domain.documents import (
    CreditNote,
    DocumentKind,
    Invoice,
    InvoiceLine,
    PaymentTerms,
    full_credit_note,
)
from komponent_billing.domain.identifiers import InvalidIdentifier
from komponent_billing.domain.numbering import NumberingConfig, NumberSeries, is_gapless, next_number
from komponent_billing.domain.parties import BuyerSnapshot, PostalAddress


def test_due_date_defaults_to_issue_plus_30_days(seed_invoice: Invoice) -> None:
    assert seed_invoice.due_date == date(2023, 5, 5)
    assert seed_invoice.payment_terms.note == "Netto 30 dage"


def test_payment_term_is_configurable_but_never_over_30_days(make_invoice: Callable[..., Invoice]) -> None:
    assert make_invoice(payment_terms=PaymentTerms(14)).due_date == date(2023, 4, 19)
    with pytest.raises(ValueError):
        PaymentTerms(31)
    with pytest.raises(ValueError):
        make_invoice(due_date=date(2023, 5, 6))


def test_invoice_carries_every_section_58_field(seed_invoice: Invoice) -> None:
    inv = seed_invoice
    assert inv.issue_date and inv.number  # nr. 1, 2
    assert inv.seller.vat_number == "DK25525701"  # nr. 3
    assert inv.seller.address.street_line and inv.buyer.address.street_line  # nr. 4
    assert inv.lines[0].quantity == 1 and inv.lines[0].description  # nr. 5
    assert inv.delivery.start == date(2023, 5, 3)  # nr. 6 (course date ≠ invoice date)
    assert inv.lines[0].unit_price_oere == 550_000 and inv.totals.vat[0].taxable_oere == 550_000  # nr. 7
    assert inv.totals.vat[0].rate.rate_bp == 2500  # nr. 8
    assert inv.totals.vat_total_oere == 137_500  # nr. 9
    buyer = inv.buyer  # public-buyer extras (§1.2)
    assert (buyer.ean, buyer.person_reference, buyer.order_number, buyer.account_string) == (
        "5798000123458",
        "Anne Jensen",
        "PO-778812",
        "4.22.05.01-0012",
    )


def test_buyer_snapshot_validates_what_a_municipality_needs(make_buyer: Callable[..., BuyerSnapshot]) -> None:
    with pytest.raises(InvalidIdentifier):
        make_buyer(ean="5798000123459")
    with pytest.raises(ValueError):
        make_buyer(person_reference=" ")
    with pytest.raises(ValueError):
        make_buyer(order_number="")
    with pytest.raises(ValueError):
        PostalAddress("Rådhuspladsen", "1", "99", "Eksempelby")
    assert make_buyer(account_string="").account_string is None  # kontostreng is optional
    assert make_buyer(cvr="DK29123454").cvr == "29123454"


def test_credit_note_references_original_and_keeps_positive_amounts(
    seed_invoice: Invoice, seed_credit_note: CreditNote
) -> None:
    ref = seed_credit_note.credited_invoice
    assert (ref.number, ref.issue_date, ref.uuid) == (
        seed_invoice.number,
        seed_invoice.issue_date,
        seed_invoice.uuid,
    )
    assert seed_credit_note.totals == seed_invoice.totals
    assert seed_credit_note.totals.total_incl_vat_oere > 0
    assert seed_credit_note.kind is DocumentKind.CREDIT_NOTE
    assert "2023-000123" in (seed_credit_note.note or "")


def test_credit_note_cannot_predate_its_invoice(seed_invoice: Invoice) -> None:
    with pytest.raises(ValueError):
        full_credit_note(seed_invoice, number="KN-2023-000001", issue_date=date(2023, 4, 1), reason="x")


def test_drafts_have_no_number(make_invoice: Callable[..., Invoice]) -> None:
    with pytest.raises(ValueError):
        make_invoice(number="")


def test_issued_documents_are_immutable_and_snapshot_ignores_later_profile_edits(
    seed_invoice: Invoice,
) -> None:
    before = render_snapshot(seed_invoice)
    with pytest.raises(dataclasses.FrozenInstanceError):
        seed_invoice.number = "2023-000999"  # type: ignore[misc]
    edited_profile = dataclasses.replace(seed_invoice.buyer, person_reference="Ny Person")
    assert edited_profile is not seed_invoice.buyer
    assert render_snapshot(seed_invoice) == before


def test_uuid_is_deterministic_per_number(
    seed_invoice: Invoice, make_invoice: Callable[..., Invoice]
) -> None:
    assert make_invoice().uuid == seed_invoice.uuid
    assert make_invoice(number="2023-000124").uuid != seed_invoice.uuid


def test_number_format_and_next_number() -> None:
    series = NumberSeries("", 2026)
    assert next_number(series, None) == (1, "2026-000001")
    assert next_number(series, 122) == (123, "2026-000123")
    assert series.parse("2026-000123") == 123
    with pytest.raises(ValueError):
        series.parse("2025-000123")
    with pytest.raises(ValueError):
        series.format(1_000_000)


def test_credit_notes_follow_the_configured_series() -> None:
    separate = NumberingConfig()
    assert separate.series_for(DocumentKind.CREDIT_NOTE, 2026).format(7) == "KN-2026-000007"
    assert separate.series_for(DocumentKind.INVOICE, 2026).format(7) == "2026-000007"
    shared = NumberingConfig(separate_credit_note_series=False)
    assert shared.series_for(DocumentKind.CREDIT_NOTE, 2026) == shared.series_for(DocumentKind.INVOICE, 2026)
    assert separate.series_for(DocumentKind.CREDIT_NOTE, 2026).key == "KN-2026"


def test_sequential_allocation_is_gapless() -> None:
    series, last, issued = NumberSeries("", 2026), None, []
    for _ in range(1000):
        last, number = next_number(series, last)
        issued.append(series.parse(number))
    assert is_gapless(issued)
    assert not is_gapless([1, 2, 4])
    assert not is_gapless([1, 2, 2])


def test_discount_not_built_into_unit_price_reduces_the_line(
    make_invoice: Callable[..., Invoice], make_line: Callable[..., InvoiceLine]
) -> None:
    line = dataclasses.replace(make_line(), discount_oere=50_000)
    assert make_invoice(line).totals.total_excl_vat_oere == 500_000
