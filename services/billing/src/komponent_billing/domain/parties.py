"""Seller configuration and the buyer snapshot frozen onto each document at issue time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .identifiers import InvalidIdentifier, normalise_cvr, normalise_ean, normalise_iban


@dataclass(frozen=True, slots=True)
class PostalAddress:
    # Street name and building number are separate: OIOUBL's StructuredDK needs BuildingNumber.
    street_name: str
    building_number: str
    postal_code: str
    city: str
    country_code: str = "DK"

    def __post_init__(self) -> None:
        if not self.street_name.strip() or not self.building_number.strip() or not self.city.strip():
            raise ValueError("street name, building number and city are required")
        if self.country_code == "DK" and not re.fullmatch(r"\d{4}", self.postal_code):
            raise ValueError(f"Danish postal code must be 4 digits, got {self.postal_code!r}")

    @property
    def street_line(self) -> str:
        return f"{self.street_name} {self.building_number}"


@dataclass(frozen=True, slots=True)
class SellerConfig:
    """Everything about the seller that appears on an invoice. One object, loaded from settings."""

    legal_name: str
    trading_name: str
    cvr: str  # 8 digits, no DK prefix
    address: PostalAddress
    phone: str
    email: str
    web: str
    bank_registration_number: str  # reg.nr., 4 digits
    bank_account_number: str  # kontonr., up to 10 digits
    iban: str
    bic: str
    terms_url: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "cvr", normalise_cvr(self.cvr))

    @classmethod
    def configured(cls, **fields: Any) -> SellerConfig:
        """A seller from configuration, its payment details checked too (`InvalidIdentifier`): the IBAN's
        mod-97, a 4-digit reg.nr., an account of up to 10 digits, an 8- or 11-character BIC. (A seller read
        back from an issued document is taken as it was issued.)"""
        seller = cls(**{**fields, "iban": normalise_iban(str(fields["iban"]))})
        if not re.fullmatch(r"\d{4}", seller.bank_registration_number):
            raise InvalidIdentifier(f"bank reg.nr. must be 4 digits, got {seller.bank_registration_number!r}")
        if not re.fullmatch(r"\d{1,10}", seller.bank_account_number):
            raise InvalidIdentifier(f"bank account must be 1-10 digits, got {seller.bank_account_number!r}")
        if not re.fullmatch(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", seller.bic):
            raise InvalidIdentifier(f"BIC must be 8 or 11 letters and digits, got {seller.bic!r}")
        return seller

    @property
    def is_placeholder(self) -> bool:
        """Still the made-up CVR, bank account or IBAN of `KOMPONENT`: never on an invoice to be paid."""
        return not _PLACEHOLDER_VALUES.isdisjoint({self.cvr, self.bank_account_number, self.iban})

    @property
    def vat_number(self) -> str:
        """Danish VAT number as written in PartyTaxScheme (DK-R-015): ``DK`` + CVR."""
        return f"DK{self.cvr}"


# Plausible defaults for Komponent. The CVR, bank account and IBAN are PLACEHOLDERS (checksums valid) until
# the client gives the real values: `BILLING_SELLER_*` settings override every field (config.SellerSettings).
KOMPONENT = SellerConfig(
    legal_name="Komponent – Kommunernes Udviklingscenter",
    trading_name="Komponent",
    cvr="25525701",
    address=PostalAddress("Weidekampsgade", "10", "2300", "København S"),
    phone="+45 33 70 33 70",
    email="faktura@komponent.dk",
    web="www.komponent.dk",
    bank_registration_number="1234",
    bank_account_number="0001234567",
    iban="DK0812340001234567",
    bic="DABADKKK",
    terms_url="https://www.komponent.dk/betingelser",
)
# What makes a seller a placeholder: `KOMPONENT`'s made-up identifiers (see SellerConfig.is_placeholder).
_PLACEHOLDER_VALUES = frozenset({KOMPONENT.cvr, KOMPONENT.bank_account_number, KOMPONENT.iban})


@dataclass(frozen=True, slots=True)
class BuyerSnapshot:
    """The billing data as the municipality gave it, copied onto the document at issue time.

    Later profile edits never reach an issued document; a correction is a credit note + new invoice.
    """

    municipality_name: str  # legal name, e.g. "Eksempel Kommune"
    department: str  # e.g. "Jobcenter"; may be empty (the registration contract makes it optional)
    ean: str  # 13-digit GLN, check digit verified
    address: PostalAddress
    person_reference: str  # personreference: who approves the invoice (Peppol BuyerReference)
    order_number: str  # ordre-/rekvisitionsnummer (Peppol OrderReference/ID)
    billing_contact_name: str
    billing_contact_email: str
    account_string: str | None = None  # kontostreng, only if the authority gave one (AccountingCost)
    cvr: str | None = None  # the municipality's CVR, optional
    billing_contact_phone: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ean", normalise_ean(self.ean))
        if self.cvr is not None:
            object.__setattr__(self, "cvr", normalise_cvr(self.cvr))
        for name in ("municipality_name", "person_reference", "order_number"):
            if not getattr(self, name).strip():
                raise ValueError(f"buyer {name} is required on a Danish public invoice")
        if "@" not in self.billing_contact_email:
            raise ValueError("billing contact e-mail is required")
        if self.account_string is not None and not self.account_string.strip():
            object.__setattr__(self, "account_string", None)

    @property
    def party_name(self) -> str:
        if not self.department.strip():
            return self.municipality_name
        return f"{self.municipality_name}, {self.department}"

    def routing_key(self) -> tuple[str, str, str, str | None]:
        """What decides where and to whom an invoice goes. A change here needs a new invoice."""
        return (self.ean, self.person_reference, self.order_number, self.account_string)


__all__ = ["KOMPONENT", "BuyerSnapshot", "InvalidIdentifier", "PostalAddress", "SellerConfig"]
