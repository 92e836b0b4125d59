"""billing-dk.md §7.6 items 1-3: EAN (GLN) and CVR check digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from komponent_billing.domain.identifiers import (
    InvalidIdentifier,
    gs1_check_digit,
    is_public_danish_ean,
    is_valid_cvr,
    is_valid_ean,
    normalise_cvr,
    normalise_ean,
    normalise_iban,
)
from komponent_contracts import identifiers as contracts_ids

VALID_GLN = "5798000123458"


def test_known_gln_is_valid_and_check_digit_matches() -> None:
    assert is_valid_ean(VALID_GLN)
    assert gs1_check_digit("579800012345") == 8


@pytest.mark.parametrize("position", range(13))
def test_every_single_digit_mutation_of_a_valid_gln_is_invalid(position: int) -> None:
    for digit in "0123456789":
        if digit == VALID_GLN[position]:
            continue
        mutated = VALID_GLN[:position] + digit + VALID_GLN[position + 1 :]
        assert not is_valid_ean(mutated), mutated


@pytest.mark.parametrize("raw", ["579800012345", "57980001234580", "", "579800012345X", "5798OOO123458"])
def test_wrong_length_and_letters_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalise_ean(raw)


@pytest.mark.parametrize("raw", ["5798 0001 2345 8", "5798-000-123458", " 5798000123458 ", "5798.000.123458"])
def test_spaces_dashes_and_dots_are_normalised_away(raw: str) -> None:
    assert normalise_ean(raw) == VALID_GLN


def test_erst_example_supplier_gln_has_a_wrong_check_digit() -> None:
    assert not is_valid_ean("5790000012345")


def test_public_prefix_is_only_a_hint() -> None:
    assert is_public_danish_ean(VALID_GLN)
    assert not is_public_danish_ean("4000001000005") and is_valid_ean("4000001000005")


@pytest.mark.parametrize("raw", ["12345674", "29123454", "13585628", "DK13585628", "dk 13 58 56 28"])
def test_valid_cvr_numbers(raw: str) -> None:
    assert is_valid_cvr(raw)


@pytest.mark.parametrize("raw", ["12345675", "24256791", "1234567", "DK1234567X"])
def test_invalid_cvr_numbers(raw: str) -> None:
    assert not is_valid_cvr(raw)


def test_all_zero_cvr_is_rejected() -> None:
    # 00000000 satisfies the bare modulus (sum 0) but is no CVR number.
    assert not is_valid_cvr("00000000")


def test_remainder_one_prefix_has_no_valid_check_digit() -> None:
    # 1000005: weighted sum of the first 7 digits ≡ 1 (mod 11), so the check digit would have to be 10.
    assert not any(is_valid_cvr(f"1000005{c}") for c in range(10))


def test_normalised_cvr_drops_prefix() -> None:
    assert normalise_cvr("DK13585628") == "13585628"


def test_non_ascii_digits_are_rejected() -> None:
    assert not is_valid_ean("٥٧٩٨٠٠٠١٢٣٤٥٨")  # Arabic-Indic digits for 5798000123458
    assert not is_valid_cvr("١٢٣٤٥٦٧٤")


@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_ean_check_agrees_with_the_contracts_package(candidate: str) -> None:
    # Registration validates with komponent_contracts; billing must never reject what intake accepted.
    assert is_valid_ean(candidate) == contracts_ids.is_valid_ean(candidate)


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_cvr_check_agrees_with_the_contracts_package(candidate: str) -> None:
    assert is_valid_cvr(candidate) == contracts_ids.is_valid_cvr(candidate)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("DK50 0040 0440 1162 43", "DK5000400440116243"),
        ("dk5000400440116243", "DK5000400440116243"),
        ("GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
    ],
)
def test_iban_is_normalised_after_the_mod_97_check(raw: str, normalised: str) -> None:
    assert normalise_iban(raw) == normalised


@pytest.mark.parametrize("raw", ["DK50 0040 0440 1162 44", "DK5000400440116", "5000400440116243", ""])
def test_a_wrong_iban_is_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalise_iban(raw)
