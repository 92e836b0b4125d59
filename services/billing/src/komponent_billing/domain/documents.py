"""Invoices and credit notes: every field of a Danish full invoice (momsbekendtgørelsen §58).

Documents are immutable values. They get a number only when issued (drafts have none) and are never
edited afterwards; a change is a credit note referencing the original, then a new invoice.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from .money import DANISH_STANDARD_VAT, VatRate, round_half_away_from_zero, vat_oere
from .parties import BuyerSnapshot, SellerConfig

# Namespace for deterministic document UUIDs (OIOUBL cbc:UUID): same seller + kind + number → same UUID,
# so re-rendering an issued document reproduces it byte for byte.
_DOCUMENT_UUID_NAMESPACE = uuid.UUID("5d0c7a52-5a8e-4e0f-9a57-6b6f6d706f6e")

MAX_PUBLIC_PAYMENT_DAYS = 30  # public authorities may not agree to longer terms (late-payment directive)


class DocumentKind(Enum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


@dataclass(frozen=True, slots=True)
class PaymentTerms:
    days: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.days <= MAX_PUBLIC_PAYMENT_DAYS:
            raise ValueError(f"payment term must be 1..{MAX_PUBLIC_PAYMENT_DAYS} days, got {self.days}")

    def due_date(self, issue_date: date) -> date:
        return issue_date + timedelta(days=self.days)

    @property
    def note(self) -> str:
        return f"Netto {self.days} dage"


@dataclass(frozen=True, slots=True)
class DeliveryPeriod:
    """The course dates: the delivery date §58 nr. 6 requires when it differs from the invoice date."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("course ends before it starts")


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One course seat (or several). Amounts are excl. VAT, in øre."""

    description: str  # what is sold, e.g. "Kursusplads inkl. materialer og forplejning"
    item_name: str  # course title with dates
    unit_price_oere: int
    quantity: int = 1
    participant_name: str | None = None
    seller_item_id: str | None = None  # our course code
    discount_oere: int = 0  # a discount not built into the unit price (§58 nr. 7)
    vat: VatRate = DANISH_STANDARD_VAT

    def __post_init__(self) -> None:
        if self.quantity <= 0 or self.unit_price_oere < 0 or self.discount_oere < 0:
            raise ValueError("quantity must be positive and amounts non-negative")
        if self.discount_oere > self.unit_price_oere * self.quantity:
            raise ValueError("discount exceeds the line amount")

    @property
    def net_oere(self) -> int:
        return self.unit_price_oere * self.quantity - self.discount_oere

    @property
    def rounded_line_vat_oere(self) -> int:
        """Per-line VAT, only for formats that want a line TaxTotal (OIOUBL, tolerance ±1.00)."""
        return vat_oere(self.net_oere, self.vat)


@dataclass(frozen=True, slots=True)
class VatBreakdown:
    rate: VatRate
    taxable_oere: int
    vat_oere: int


@dataclass(frozen=True, slots=True)
class DocumentTotals:
    lines_net_oere: int
    vat: tuple[VatBreakdown, ...]

    @property
    def vat_total_oere(self) -> int:
        return sum(b.vat_oere for b in self.vat)

    @property
    def total_excl_vat_oere(self) -> int:
        return self.lines_net_oere

    @property
    def total_incl_vat_oere(self) -> int:
        return self.lines_net_oere + self.vat_total_oere


def compute_totals(lines: tuple[InvoiceLine, ...]) -> DocumentTotals:
    """VAT per category on the category total, never the sum of rounded line VATs (§7.3)."""
    taxable: dict[VatRate, int] = defaultdict(int)
    for line in lines:
        taxable[line.vat] += line.net_oere
    breakdown = tuple(
        VatBreakdown(rate, amount, vat_oere(amount, rate))
        for rate, amount in sorted(taxable.items(), key=lambda kv: (kv[0].category.value, kv[0].rate_bp))
    )
    return DocumentTotals(sum(line.net_oere for line in lines), breakdown)


@dataclass(frozen=True, slots=True)
class InvoiceReference:
    """How a credit note unambiguously refers to its invoice (§58 stk. 2): number + date (+ UUID)."""

    number: str
    issue_date: date
    uuid: str


@dataclass(frozen=True, slots=True)
class _DocumentBase:
    number: str
    issue_date: date
    seller: SellerConfig
    buyer: BuyerSnapshot
    lines: tuple[InvoiceLine, ...]
    delivery: DeliveryPeriod
    registration_id: str  # the registration this document bills; links documents across corrections
    course_id: str
    note: str | None = None  # at most one document note (PEPPOL-EN16931-R002)
    totals: DocumentTotals = field(init=False)

    def __post_init__(self) -> None:
        if not self.number.strip():
            raise ValueError("an issued document has a number; drafts are not documents")
        if not self.lines:
            raise ValueError("a document needs at least one line")
        object.__setattr__(self, "totals", compute_totals(self.lines))

    @property
    def kind(self) -> DocumentKind:
        raise NotImplementedError

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(_DOCUMENT_UUID_NAMESPACE, f"{self.seller.cvr}/{self.kind.value}/{self.number}"))


@dataclass(frozen=True, slots=True)
class Invoice(_DocumentBase):
    due_date: date = field(default=date.min)
    payment_terms: PaymentTerms = field(default_factory=PaymentTerms)

    def __post_init__(self) -> None:
        _DocumentBase.__post_init__(self)
        if self.due_date == date.min:
            object.__setattr__(self, "due_date", self.payment_terms.due_date(self.issue_date))
        if not self.issue_date <= self.due_date <= self.issue_date + timedelta(days=MAX_PUBLIC_PAYMENT_DAYS):
            raise ValueError("due date must be within 30 days of the issue date")

    @property
    def kind(self) -> DocumentKind:
        return DocumentKind.INVOICE

    def reference(self) -> InvoiceReference:
        return InvoiceReference(self.number, self.issue_date, self.uuid)


@dataclass(frozen=True, slots=True)
class CreditNote(_DocumentBase):
    """Carries positive amounts; the document type gives the sign (Peppol DK-R-016)."""

    # Defaults only because dataclass fields after defaulted base fields must have one; __post_init__
    # rejects the empty reference, so every credit note names its invoice.
    credited_invoice: InvoiceReference = field(default=InvoiceReference("", date.min, ""))
    reason: str = ""

    def __post_init__(self) -> None:
        _DocumentBase.__post_init__(self)
        if not self.credited_invoice.number or not self.reason.strip():
            raise ValueError("a credit note must reference its invoice and state a reason")

    @property
    def kind(self) -> DocumentKind:
        return DocumentKind.CREDIT_NOTE


def cancellation_fee_line(line: InvoiceLine, fee_percent: int) -> InvoiceLine:
    """The line of a new invoice billing ``fee_percent`` of a cancelled seat (after a full credit note).

    The fee is priced as its own unit price rather than as a discount, so the invoice reads plainly.
    """
    if not 0 < fee_percent <= 100:
        raise ValueError("fee percent must be 1..100")
    unit_price = round_half_away_from_zero(line.unit_price_oere * fee_percent, 100)
    return InvoiceLine(
        description=f"Afmeldingsgebyr {fee_percent} % af kursuspris",
        item_name=line.item_name,
        unit_price_oere=unit_price,
        quantity=line.quantity,
        participant_name=line.participant_name,
        seller_item_id=line.seller_item_id,
        vat=line.vat,
    )


def full_credit_note(invoice: Invoice, *, number: str, issue_date: date, reason: str) -> CreditNote:
    """A credit note for the whole invoice, same buyer snapshot and lines, referencing the original."""
    if issue_date < invoice.issue_date:
        raise ValueError("a credit note cannot predate its invoice")
    return CreditNote(
        number=number,
        issue_date=issue_date,
        seller=invoice.seller,
        buyer=invoice.buyer,
        lines=invoice.lines,
        delivery=invoice.delivery,
        registration_id=invoice.registration_id,
        course_id=invoice.course_id,
        note=f"Kreditnota til faktura nr. {invoice.number}: {reason}",
        credited_invoice=invoice.reference(),
        reason=reason,
    )


Document = Invoice | CreditNote
