"""§7.6 items 4-8: VAT per document per category, half away from zero, integers only; Danish format."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from komponent_billing.domain.danish_format import format_date, format_dkk, format_kr, format_period
from komponent_billing.domain.documents import InvoiceLine, compute_totals
from komponent_billing.domain.money import (
    DANISH_STANDARD_VAT,
    round_half_away_from_zero,
    vat_oere,
    xml_amount,
)


def _line(price: int, quantity: int = 1) -> InvoiceLine:
    return InvoiceLine("Kursusplads", "Kursus", unit_price_oere=price, quantity=quantity)


def test_seed_course_seat() -> None:
    totals = compute_totals((_line(550_000),))
    assert (totals.total_excl_vat_oere, totals.vat_total_oere, totals.total_incl_vat_oere) == (
        550_000,
        137_500,
        687_500,
    )


def test_fractional_three_lines_use_document_level_vat() -> None:
    lines = (_line(123_457), _line(123_457), _line(123_457))
    totals = compute_totals(lines)
    assert totals.total_excl_vat_oere == 370_371
    assert totals.vat_total_oere == 92_593  # 925,93
    assert totals.total_incl_vat_oere == 462_964
    assert sum(line.rounded_line_vat_oere for line in lines) == 92_592  # the sum of line VATs differs


@pytest.mark.parametrize(("net", "vat"), [(1, 0), (2, 1), (6, 2), (0, 0), (550_000, 137_500)])
def test_half_oere_rounds_away_from_zero(net: int, vat: int) -> None:
    assert vat_oere(net, DANISH_STANDARD_VAT) == vat


def test_rounding_helper_is_symmetric_for_negative_values() -> None:
    assert round_half_away_from_zero(-5, 10) == -1
    assert round_half_away_from_zero(5, 10) == 1
    assert round_half_away_from_zero(-4, 10) == 0


@given(st.lists(st.tuples(st.integers(0, 10_000_000), st.integers(1, 20)), min_size=1, max_size=15))
def test_totals_add_up_in_integers(raw_lines: list[tuple[int, int]]) -> None:
    lines = tuple(_line(price, qty) for price, qty in raw_lines)
    totals = compute_totals(lines)
    values = (totals.total_excl_vat_oere, totals.vat_total_oere, totals.total_incl_vat_oere)
    assert all(type(v) is int for v in values)
    assert totals.total_excl_vat_oere == sum(price * qty for price, qty in raw_lines)
    assert totals.total_incl_vat_oere == totals.total_excl_vat_oere + totals.vat_total_oere
    # Document VAT is the exact 25 % rounded once: never more than half an øre off.
    assert abs(totals.vat_total_oere * 4 - totals.total_excl_vat_oere) <= 2


@pytest.mark.parametrize(
    ("oere", "text"),
    [(550_000, "5.500,00"), (123_456_789, "1.234.567,89"), (0, "0,00"), (5, "0,05"), (-137_500, "-1.375,00")],
)
def test_format_dkk(oere: int, text: str) -> None:
    assert format_dkk(oere) == text


def test_format_kr_and_xml_amount() -> None:
    assert format_kr(550_000) == "5.500,00 kr."
    assert xml_amount(92_593) == "925.93"
    assert xml_amount(5) == "0.05"


def test_danish_dates() -> None:
    assert format_date(date(2026, 4, 20)) == "20.04.2026"
    assert format_period(date(2023, 5, 3), date(2023, 5, 4)) == "3.-4. maj 2023"
    assert format_period(date(2026, 4, 30), date(2026, 5, 1)) == "30. april - 1. maj 2026"
    assert format_period(date(2026, 5, 18), date(2026, 5, 18)) == "18. maj 2026"
