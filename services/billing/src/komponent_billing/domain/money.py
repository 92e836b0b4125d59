"""Money in integer øre and VAT arithmetic.

Every amount is an ``int`` number of øre. VAT is computed once per document and VAT category on the
category's taxable total (billing-dk.md §1.4/§7.3), rounded half away from zero, so a document's VAT can
differ by an øre from the sum of rounded line VATs. That is deliberate and accepted by both validators.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

BASIS_POINTS = 10_000


class VatCategory(Enum):
    """EN 16931 VAT category codes (UNCL5305). Only standard rate is sold today."""

    STANDARD = "S"


@dataclass(frozen=True, slots=True)
class VatRate:
    category: VatCategory
    rate_bp: int  # basis points: 2500 = 25 %

    @property
    def percent_text(self) -> str:
        """Percent as written in XML ``cbc:Percent`` and on the PDF (``25`` or ``12.5``)."""
        whole, rest = divmod(self.rate_bp, 100)
        return str(whole) if rest == 0 else f"{whole}.{rest:02d}".rstrip("0")


DANISH_STANDARD_VAT = VatRate(VatCategory.STANDARD, 2500)


def round_half_away_from_zero(numerator: int, denominator: int) -> int:
    """Integer division rounded half away from zero, without floats."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return sign * quotient


def vat_oere(taxable_oere: int, rate: VatRate) -> int:
    """VAT on one category's taxable amount: taxable × rate, rounded half away from zero."""
    return round_half_away_from_zero(taxable_oere * rate.rate_bp, BASIS_POINTS)


def xml_amount(oere: int) -> str:
    """Amount as UBL writes it: ``5500.00`` (dot decimal, no grouping, two decimals)."""
    sign = "-" if oere < 0 else ""
    kroner, oere_part = divmod(abs(oere), 100)
    return f"{sign}{kroner}.{oere_part:02d}"
