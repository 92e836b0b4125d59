"""§7.6 items 29-31: the Danish PDF copy, read back with pypdf."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from komponent_billing.adapters.pdf_document import render_pdf
from komponent_billing.domain.documents import CreditNote, Invoice, InvoiceLine, full_credit_note
from pypdf import PdfReader


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _fonts(pdf: bytes) -> list[Any]:
    reader = PdfReader(io.BytesIO(pdf))
    fonts: list[Any] = []
    for page in reader.pages:
        resources: Any = page["/Resources"].get_object()
        fonts.extend(f.get_object() for f in resources["/Font"].get_object().values())
    return fonts


@pytest.fixture
def unicode_invoice(make_invoice: Callable[..., Invoice], make_line: Callable[..., InvoiceLine]) -> Invoice:
    line = make_line("Mette Æbelø Sørensen")
    line = InvoiceLine(
        description="Kursusplads – «Vildskab» i politik, materialer (værdi 0 €) ÆØÅ æøå",
        item_name=line.item_name,
        unit_price_oere=line.unit_price_oere,
        participant_name=line.participant_name,
    )
    return make_invoice(line)


def test_unicode_characters_round_trip(unicode_invoice: Invoice) -> None:
    text = _text(render_pdf(unicode_invoice))
    for expected in ("Sørensen", "Æbelø", "6.875,00", "–", "€", "«Vildskab»", "ÆØÅ æøå"):
        assert expected in text, expected


def test_invoice_shows_every_required_field(seed_invoice: Invoice) -> None:
    text = _text(render_pdf(seed_invoice))
    for expected in (
        "FAKTURA",
        "Fakturanr.: 2023-000123",
        "Fakturadato: 05.04.2023",
        "Leveringsdato/Kursusdato: 3.-4. maj 2023",
        "Forfaldsdato: 05.05.2023",
        "Netto 30 dage",
        "CVR-nr. 25525701",  # seller VAT number
        "Komponent – Kommunernes Udviklingscenter",
        "Weidekampsgade 10, 2300 København S",
        "Eksempel Kommune",
        "Jobcenter",
        "Rådhuspladsen 1, 9999 Eksempelby",
        "EAN-nr.: 5798000123458",
        "Ordrenr./Rekv.nr.: PO-778812",
        "Reference: Anne Jensen",
        "Kontostreng: 4.22.05.01-0012",
        "Deltager: Mette Æbelø Sørensen",
        "5.500,00",  # unit price excl. VAT
        "Moms 25 % af 5.500,00 = 1.375,00",
        "Total inkl. moms DKK 6.875,00",
        "5.500,00 + 1.375,00 = 6.875,00 kr.",
        "Reg.nr. 1234",
        "Angiv fakturanr. 2023-000123 ved betaling",
        "renteloven",
        "fremsendt elektronisk til EAN 5798000123458",
    ):
        assert expected in text, expected


def test_credit_note_is_marked_and_refers_to_its_invoice(seed_credit_note: CreditNote) -> None:
    text = _text(render_pdf(seed_credit_note))
    assert "KREDITNOTA" in text
    assert "Kreditnota til faktura nr. 2023-000123 af 05.04.2023" in text
    assert "Kreditnotanr.: KN-2023-000001" in text
    assert "Forfaldsdato" not in text


def test_font_is_embedded_dejavu_not_a_core_font(seed_invoice: Invoice) -> None:
    fonts = _fonts(render_pdf(seed_invoice))
    assert fonts
    for font in fonts:
        assert "DejaVu" in str(font["/BaseFont"])
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor  # the TrueType program is in the file


def test_rendering_is_deterministic(seed_invoice: Invoice) -> None:
    assert render_pdf(seed_invoice) == render_pdf(seed_invoice)


def test_long_course_title_and_many_lines_stay_readable(
    seed_invoice: Invoice, make_invoice: Callable[..., Invoice], make_line: Callable[..., InvoiceLine]
) -> None:
    lines = tuple(make_line(f"Deltager {i} Ørsted") for i in range(25))
    text = _text(render_pdf(make_invoice(*lines)))
    assert "Deltager: Deltager 24 Ørsted" in text
    assert "137.500,00" in text  # 25 × 5.500,00


def test_credit_note_for_fee_invoice_keeps_dates(seed_invoice: Invoice) -> None:
    note = full_credit_note(
        seed_invoice, number="KN-2023-000002", issue_date=date(2023, 5, 1), reason="Rettelse"
    )
    assert "Dato: 01.05.2023" in _text(render_pdf(note))
