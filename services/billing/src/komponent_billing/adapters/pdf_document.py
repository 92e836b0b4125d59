"""Danish PDF copy of an invoice or credit note (fpdf2, embedded DejaVu Sans).

The XML is the legal e-invoice to the municipality; the PDF is the readable copy for the billing contact.
Core PDF fonts are Latin-1 only and fail on "–" and "€", so a Unicode TTF is embedded (subset). Debian's
fonts-dejavu-core provides it; the platform setup installs that package when it is absent.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, time
from pathlib import Path

from fpdf import FPDF

from ..domain.danish_format import format_date, format_dkk, format_kr, format_period
from ..domain.documents import CreditNote, Document, Invoice

DEFAULT_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FAMILY = "DejaVu"


class FontMissing(RuntimeError):
    pass


def _font_dir() -> Path:
    font_dir = Path(os.environ.get("BILLING_PDF_FONT_DIR", DEFAULT_FONT_DIR))
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        if not (font_dir / name).is_file():
            raise FontMissing(f"{font_dir / name} not found: install Debian's fonts-dejavu-core")
    return font_dir


class _DocumentPdf(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        font_dir = _font_dir()
        self.add_font(FONT_FAMILY, "", str(font_dir / "DejaVuSans.ttf"))
        self.add_font(FONT_FAMILY, "B", str(font_dir / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(auto=True, margin=20)
        self.set_margins(18, 18, 18)

    def text_line(self, text: str, size: float = 9, bold: bool = False, height: float = 4.6) -> None:
        self.set_font(FONT_FAMILY, "B" if bold else "", size)
        self.multi_cell(0, height, text, align="L", new_x="LMARGIN", new_y="NEXT")


def render_pdf(document: Document) -> bytes:
    """A4 PDF bytes. Deterministic for a given document (creation date = issue date)."""
    is_invoice = isinstance(document, Invoice)
    seller, buyer, totals = document.seller, document.buyer, document.totals
    pdf = _DocumentPdf()
    pdf.set_title(f"{'Faktura' if is_invoice else 'Kreditnota'} {document.number}")
    pdf.set_author(seller.legal_name)
    pdf.set_creation_date(datetime.combine(document.issue_date, time(12), tzinfo=UTC))
    pdf.add_page()

    pdf.text_line("FAKTURA" if is_invoice else "KREDITNOTA", size=20, bold=True, height=10)
    pdf.text_line(seller.legal_name, bold=True)
    pdf.text_line(f"{seller.address.street_line}, {seller.address.postal_code} {seller.address.city}")
    pdf.text_line(f"CVR-nr. {seller.cvr} · Tlf. {seller.phone} · {seller.email} · {seller.web}")
    pdf.ln(4)

    pdf.text_line("Faktureres til" if is_invoice else "Krediteres til", bold=True)
    pdf.text_line(buyer.municipality_name)
    if buyer.department.strip():
        pdf.text_line(buyer.department)
    pdf.text_line(f"{buyer.address.street_line}, {buyer.address.postal_code} {buyer.address.city}")
    pdf.text_line(f"EAN-nr.: {buyer.ean}")
    if buyer.cvr:
        pdf.text_line(f"CVR-nr.: {buyer.cvr}")
    pdf.text_line(f"Ordrenr./Rekv.nr.: {buyer.order_number}")
    pdf.text_line(f"Reference: {buyer.person_reference}")
    if buyer.account_string:
        pdf.text_line(f"Kontostreng: {buyer.account_string}")
    pdf.ln(4)

    label = "Fakturanr." if is_invoice else "Kreditnotanr."
    pdf.text_line(f"{label}: {document.number}", bold=True)
    pdf.text_line(f"{'Fakturadato' if is_invoice else 'Dato'}: {format_date(document.issue_date)}")
    pdf.text_line(
        f"Leveringsdato/Kursusdato: {format_period(document.delivery.start, document.delivery.end)}"
    )
    if isinstance(document, Invoice):
        pdf.text_line(f"Forfaldsdato: {format_date(document.due_date)}")
        pdf.text_line(f"Betalingsbetingelser: {document.payment_terms.note}")
    if isinstance(document, CreditNote):
        ref = document.credited_invoice
        pdf.text_line(f"Kreditnota til faktura nr. {ref.number} af {format_date(ref.issue_date)}", bold=True)
        pdf.text_line(f"Årsag: {document.reason}")
    pdf.ln(4)

    widths = (88, 14, 16, 28, 28)
    headings = (("Beskrivelse", ""), ("Antal", ""), ("Enhed", ""), ("Enhedspris", "ekskl. moms"),
                ("Beløb", "ekskl. moms"))  # fmt: skip
    pdf.set_font(FONT_FAMILY, "B", 8.5)
    for row in (0, 1):
        for width, heading in zip(widths, headings, strict=True):
            align = "L" if heading[0] == "Beskrivelse" else "R"
            pdf.cell(width, 4.2, heading[row], border="B" if row else "", align=align)
        pdf.ln(4.2)
    pdf.ln(1.5)
    pdf.set_font(FONT_FAMILY, "", 8.5)
    for line in document.lines:
        description = f"{line.item_name}\n{line.description}"
        if line.participant_name:
            description += f"\nDeltager: {line.participant_name}"
        if line.discount_oere:
            description += f"\nRabat: {format_dkk(line.discount_oere)}"
        y = pdf.get_y()
        pdf.set_x(pdf.l_margin + widths[0])
        pdf.cell(widths[1], 4.5, str(line.quantity), align="R")
        pdf.cell(widths[2], 4.5, "plads", align="R")
        pdf.cell(widths[3], 4.5, format_dkk(line.unit_price_oere), align="R")
        pdf.cell(widths[4], 4.5, format_dkk(line.net_oere), align="R")
        pdf.set_xy(pdf.l_margin, y)
        pdf.multi_cell(widths[0], 4.5, description, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1.5)
    pdf.ln(3)

    pdf.text_line(f"Subtotal ekskl. moms: {format_dkk(totals.total_excl_vat_oere)}")
    for vat in totals.vat:
        pdf.text_line(
            f"Moms {vat.rate.percent_text.replace('.', ',')} % af {format_dkk(vat.taxable_oere)} = "
            f"{format_dkk(vat.vat_oere)}"
        )
    pdf.text_line(
        f"Total inkl. moms DKK {format_dkk(totals.total_incl_vat_oere)}", size=11, bold=True, height=6
    )
    pdf.text_line(
        f"{format_dkk(totals.total_excl_vat_oere)} + {format_dkk(totals.vat_total_oere)} = "
        f"{format_kr(totals.total_incl_vat_oere)}"
    )
    pdf.ln(4)

    if isinstance(document, Invoice):
        pdf.text_line(
            f"Betales senest {format_date(document.due_date)} til Reg.nr. {seller.bank_registration_number} "
            f"Kontonr. {seller.bank_account_number} (IBAN {seller.iban}, BIC {seller.bic}). "
            f"Angiv fakturanr. {document.number} ved betaling."
        )
        pdf.text_line("Ved for sen betaling beregnes renter efter renteloven.")
    else:
        pdf.text_line(
            f"Beløbet {format_kr(totals.total_incl_vat_oere)} krediteres. Kreditnotaen skal ikke betales."
        )
    kind = "Fakturaen" if is_invoice else "Kreditnotaen"
    pdf.text_line(f"{kind} er fremsendt elektronisk til EAN {buyer.ean}.")
    pdf.text_line(f"Betingelser: {seller.terms_url}")
    return bytes(pdf.output())
