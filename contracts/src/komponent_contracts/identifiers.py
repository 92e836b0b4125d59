"""Danish public-sector identifiers that appear in event payloads.

EAN (GLN) numbers address a municipality's e-invoice inbox; a wrong digit sends the invoice nowhere, so
the GS1 check digit is verified at every border. CVR is the business register number (modulus 11).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

_CVR_WEIGHTS = (2, 7, 6, 5, 4, 3, 2, 1)


def gs1_check_digit(first_12_digits: str) -> int:
    """The GS1 mod-10 check digit for the first 12 digits of an EAN-13/GLN."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first_12_digits))
    return (10 - total % 10) % 10


def is_valid_ean(value: str) -> bool:
    return (
        len(value) == 13
        and value.isascii()
        and value.isdigit()
        and gs1_check_digit(value[:12]) == int(value[12])
    )


def is_valid_cvr(value: str) -> bool:
    if not (len(value) == 8 and value.isascii() and value.isdigit()) or value[0] == "0":
        return False
    return sum(int(d) * w for d, w in zip(value, _CVR_WEIGHTS, strict=True)) % 11 == 0


def _check_ean(value: str) -> str:
    if not (len(value) == 13 and value.isascii() and value.isdigit()):
        raise ValueError("EAN must be exactly 13 digits")
    if not is_valid_ean(value):
        raise ValueError("EAN check digit (GS1 mod 10) does not match")
    return value


def _check_cvr(value: str) -> str:
    if not (len(value) == 8 and value.isascii() and value.isdigit()):
        raise ValueError("CVR must be exactly 8 digits")
    if not is_valid_cvr(value):
        raise ValueError("CVR fails the modulus 11 check")
    return value


EanNumber = Annotated[str, AfterValidator(_check_ean)]
CvrNumber = Annotated[str, AfterValidator(_check_cvr)]
