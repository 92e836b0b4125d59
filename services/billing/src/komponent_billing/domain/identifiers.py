"""Danish party identifiers: EAN location numbers (GLN) and CVR numbers.

The Peppol rules check the GLN check digit (PEPPOL-COMMON-R040) but not the CVR modulus; OIOUBL checks
neither, so we check both ourselves before a document is ever built.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[ \t\-.]")
_CVR_WEIGHTS = (2, 7, 6, 5, 4, 3, 2, 1)


class InvalidIdentifier(ValueError):
    """An EAN or CVR number that cannot be used on an invoice."""


def gs1_check_digit(payload: str) -> int:
    """GS1 mod-10 check digit for the digits before it (weights 3,1,3,… from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return (10 - total % 10) % 10


def normalise_ean(raw: str) -> str:
    """Strip the spaces, dashes and dots people type, then validate. Returns the 13 digits."""
    ean = _SEPARATORS.sub("", raw)
    if not re.fullmatch(r"[0-9]{13}", ean):
        raise InvalidIdentifier(f"EAN must be exactly 13 digits, got {raw!r}")
    if gs1_check_digit(ean[:12]) != int(ean[12]):
        raise InvalidIdentifier(f"EAN {ean} has a wrong GS1 check digit")
    return ean


def is_valid_ean(raw: str) -> bool:
    try:
        normalise_ean(raw)
    except InvalidIdentifier:
        return False
    return True


def is_public_danish_ean(ean: str) -> bool:
    """Danish public EANs usually start with 5798; callers may warn, never block, on False."""
    return ean.startswith("5798")


def normalise_cvr(raw: str) -> str:
    """``DK 13 58 56 28`` → ``13585628`` after the modulus-11 check (all CVR numbers satisfy it)."""
    cvr = _SEPARATORS.sub("", raw).upper().removeprefix("DK")
    if not re.fullmatch(r"[1-9][0-9]{7}", cvr):
        # CVR numbers are issued from 10000000 up; 00000000 would pass the bare modulus.
        raise InvalidIdentifier(
            f"CVR must be 8 digits not starting with 0, optionally prefixed DK, got {raw!r}"
        )
    if sum(int(d) * w for d, w in zip(cvr, _CVR_WEIGHTS, strict=True)) % 11 != 0:
        raise InvalidIdentifier(f"CVR {cvr} fails the modulus-11 check")
    return cvr


def is_valid_cvr(raw: str) -> bool:
    try:
        normalise_cvr(raw)
    except InvalidIdentifier:
        return False
    return True


def normalise_iban(raw: str) -> str:
    """``DK50 0040 0440 1162 43`` → ``DK5000400440116243`` after the ISO 13616 check: two letters, two check
    digits, the account; mod 97 of the rearranged number is 1. A Danish IBAN is 18 characters."""
    iban = _SEPARATORS.sub("", raw).upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", iban):
        raise InvalidIdentifier(f"IBAN must be a country code, 2 check digits and the account, got {raw!r}")
    if iban.startswith("DK") and len(iban) != 18:
        raise InvalidIdentifier(f"a Danish IBAN has 18 characters, got {len(iban)}")
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise InvalidIdentifier(f"IBAN {iban} fails the mod-97 check")
    return iban
