"""Danish business identifiers used for invoicing: EAN (GLN) location numbers and CVR numbers.

Pure functions with no dependency on the rest of the domain, so the module can move to the shared
contracts package unchanged once another service needs the same checks.
"""

from __future__ import annotations

import re

_EAN_PATTERN = re.compile(r"\d{13}")
_CVR_PATTERN = re.compile(r"[1-9]\d{7}")

# CVR check: the weighted digit sum must be divisible by 11 (the last weight covers the check digit).
_CVR_WEIGHTS = (2, 7, 6, 5, 4, 3, 2, 1)


def _strip_separators(raw: str) -> str:
    # People copy numbers from letters and invoices with spaces or hyphens between digit groups.
    return re.sub(r"[\s-]", "", raw)


def gs1_check_digit(payload: str) -> int:
    """GS1 mod-10 check digit for a digit string without its check digit.

    Weights alternate 3, 1, 3, … starting from the rightmost payload digit, which makes the same
    function correct for GTIN-8/12/13/14 and GLN alike.
    """
    if not payload.isdigit() or not payload.isascii():
        raise ValueError("GS1 payload must consist of ASCII digits")
    total = sum(int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(payload)))
    return (10 - total % 10) % 10


def normalise_ean(raw: str) -> str:
    """Return the 13-digit EAN location number, or raise ValueError explaining why it is invalid."""
    ean = _strip_separators(raw)
    if not _EAN_PATTERN.fullmatch(ean):
        raise ValueError("EAN must be exactly 13 digits")
    if gs1_check_digit(ean[:12]) != int(ean[12]):
        raise ValueError("EAN check digit does not match")
    return ean


def is_valid_ean(raw: str) -> bool:
    try:
        normalise_ean(raw)
    except ValueError:
        return False
    return True


def cvr_checksum_ok(cvr: str) -> bool:
    """Modulus-11 test of an 8-digit CVR number (weights 2, 7, 6, 5, 4, 3, 2, 1)."""
    return sum(int(digit) * weight for digit, weight in zip(cvr, _CVR_WEIGHTS, strict=True)) % 11 == 0


def normalise_cvr(raw: str) -> str:
    """Return the 8-digit CVR number, or raise ValueError explaining why it is invalid.

    Accepts an optional ``DK`` prefix because the VAT number printed on Danish invoices is ``DK`` + CVR.
    """
    cvr = _strip_separators(raw)
    if cvr[:2].upper() == "DK":
        cvr = cvr[2:]
    if not _CVR_PATTERN.fullmatch(cvr):
        raise ValueError("CVR must be 8 digits and cannot start with 0")
    if not cvr_checksum_ok(cvr):
        raise ValueError("CVR fails the modulus-11 check")
    return cvr


def is_valid_cvr(raw: str) -> bool:
    try:
        normalise_cvr(raw)
    except ValueError:
        return False
    return True
