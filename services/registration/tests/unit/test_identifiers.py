"""EAN (GLN) and CVR validation: known-good numbers, every single-digit error, and malformed input.

The checks are the contracts package's (`komponent_contracts.identifiers`), the same every event border
applies; intake only adds the normalisation of what people type (separators, the DK prefix)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from komponent_contracts.identifiers import gs1_check_digit, is_valid_cvr, is_valid_ean
from komponent_registration.domain.intake import normalise_cvr, normalise_ean

VALID_EANS = [
    "5798000416642",  # Danish public-sector location number (prefix 5798)
    "5790000000005",
    "5901234123457",  # GS1's own worked example
    "4006381333931",
    "9780306406157",  # an ISBN-13 is a GTIN-13, same check digit
]

VALID_CVRS = ["24256790", "10150817", "25313763", "29189846", "61126228", "55133018", "10103940"]


@pytest.mark.parametrize("ean", VALID_EANS)
def test_valid_ean_is_accepted_unchanged(ean: str) -> None:
    assert normalise_ean(ean) == ean
    assert is_valid_ean(ean)


def test_ean_with_spaces_and_hyphens_is_normalised() -> None:
    assert normalise_ean(" 5798 0004-16642 ") == "5798000416642"


@pytest.mark.parametrize(
    "ean",
    [
        "5798000416643",  # wrong check digit
        "579800041664",  # 12 digits
        "57980004166420",  # 14 digits
        "579800041664X",
        "",
        "５７９８０００４１６６４２",  # full-width digits are not ASCII digits
    ],
)
def test_invalid_ean_is_rejected(ean: str) -> None:
    assert not is_valid_ean(ean)
    with pytest.raises(ValueError):
        normalise_ean(ean)


@pytest.mark.parametrize("ean", VALID_EANS)
def test_every_single_digit_change_in_an_ean_is_detected(ean: str) -> None:
    # The whole point of the mod-10 check digit: one mistyped digit never passes.
    for index in range(13):
        for replacement in "0123456789":
            if replacement == ean[index]:
                continue
            typo = ean[:index] + replacement + ean[index + 1 :]
            assert not is_valid_ean(typo), typo


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_appending_the_gs1_check_digit_makes_a_valid_ean(payload: str) -> None:
    assert is_valid_ean(payload + str(gs1_check_digit(payload)))


def test_gs1_check_digit_rejects_non_digits() -> None:
    with pytest.raises(ValueError):
        gs1_check_digit("12345a")


@pytest.mark.parametrize("cvr", VALID_CVRS)
def test_valid_cvr_is_accepted(cvr: str) -> None:
    assert normalise_cvr(cvr) == cvr
    assert is_valid_cvr(cvr)


def test_cvr_accepts_dk_vat_prefix_and_spaces() -> None:
    assert normalise_cvr("DK 24 25 67 90") == "24256790"
    assert normalise_cvr("dk24256790") == "24256790"


@pytest.mark.parametrize(
    "cvr",
    [
        "24256791",  # fails modulus 11
        "12345678",
        "2425679",  # 7 digits
        "242567900",  # 9 digits
        "02425679",  # CVR numbers never start with 0
        "2425679O",  # letter O, not zero
        "",
    ],
)
def test_invalid_cvr_is_rejected(cvr: str) -> None:
    assert not is_valid_cvr(cvr)
    with pytest.raises(ValueError):
        normalise_cvr(cvr)


@pytest.mark.parametrize("cvr", VALID_CVRS)
def test_every_single_digit_change_in_a_cvr_is_detected(cvr: str) -> None:
    # Modulus 11 with weights coprime to 11 detects every single-digit substitution.
    for index in range(8):
        for replacement in "0123456789":
            if replacement != cvr[index]:
                assert not is_valid_cvr(cvr[:index] + replacement + cvr[index + 1 :])
